"""Drives gpiozero LEDs through patterns, timed by an injectable clock.

The driver owns one gpiozero output per named LED: a PWMLED where the pin does PWM (the
PULSE fades), else a plain LED (PULSE becomes a heartbeat). `tick()` sets every LED to its
pattern's level at the clock's now and says when something next changes; `run()` is the
loop that sleeps until then or until a pattern changes. Tests call tick() with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from . import patterns
from .patterns import Pattern

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Time for patterns and the button; tests pass a fake one."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait seconds."""
        ...


class Lamp:
    """One LED on one pin."""

    def __init__(self, name: str, pin: int, factory: Any) -> None:
        from gpiozero import LED, PWMLED
        from gpiozero.exc import PinPWMUnsupported

        self.name = name
        self.pin = pin
        self.device: Any
        try:
            self.device = PWMLED(pin, pin_factory=factory)
            self.pwm = True
        except PinPWMUnsupported:
            self.device = LED(pin, pin_factory=factory)
            self.pwm = False
        self.value = 0.0

    def set(self, value: float) -> None:
        """Brightness 0..1 (a plain LED is on above one half)."""
        if value == self.value:
            return
        self.value = value
        self.device.value = value if self.pwm else value >= 0.5

    def close(self) -> None:
        """Switch off and let the pin go."""
        with contextlib.suppress(Exception):
            self.device.off()
        self.device.close()


class LampDriver:
    """Named LEDs showing patterns, all on one time base."""

    def __init__(self, pins: Mapping[str, int], factory: Any, clock: Clock) -> None:
        self.clock = clock
        self.lamps: dict[str, Lamp] = {}
        try:
            for name, pin in pins.items():
                self.lamps[name] = Lamp(name, pin, factory)
        except Exception:
            self.close()
            raise
        self.shown: dict[str, Pattern] = {name: patterns.OFF for name in self.lamps}
        self._start = clock.monotonic()
        self._changed = asyncio.Event()

    def show(self, shown: Mapping[str, Pattern]) -> None:
        """Give LEDs new patterns (names the board lacks are ignored); applied at once."""
        changed = False
        for name, pattern in shown.items():
            if name in self.lamps and self.shown[name] != pattern:
                self.shown[name] = pattern
                changed = True
        if changed:
            self._changed.set()

    def tick(self) -> float | None:
        """Set every LED for now; the clock time of the next change (None: all steady)."""
        now = self.clock.monotonic()
        t = now - self._start
        wake: float | None = None
        for name, lamp in self.lamps.items():
            pattern = self.shown[name]
            lamp.set(patterns.level(pattern, t, lamp.pwm))
            nxt = patterns.next_change(pattern, t, lamp.pwm)
            if nxt is not None and (wake is None or nxt < wake):
                wake = nxt
        return None if wake is None else wake + self._start

    async def run(self) -> None:
        """Keep the LEDs showing their patterns until cancelled."""
        while True:
            self._changed.clear()
            wake = self.tick()
            changed = asyncio.ensure_future(self._changed.wait())
            waits: set[asyncio.Future[Any]] = {changed}
            if wake is not None:
                waits.add(asyncio.ensure_future(
                    self.clock.sleep(max(0.0, wake - self.clock.monotonic()))))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    def close(self) -> None:
        """Switch every LED off and release the pins."""
        for lamp in self.lamps.values():
            try:
                lamp.close()
            except Exception:  # one bad pin must not keep the others
                log.exception("LED %s did not close", lamp.name)
        self.lamps.clear()
