"""The front-panel button: a short press, and a long hold, timed by an injectable clock.

gpiozero reports the edges (from its own thread on real pins); they are handed to the event
loop, and the hold is timed there with the box's clock, so a test holds it for 10 s of fake
time. The hold fires while the button is still down (the LEDs confirm it at once); letting
go afterwards does nothing more. A press shorter than `min_press_s` is contact bounce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .leds import Clock

log = logging.getLogger(__name__)

HOLD_S = 10.0
MIN_PRESS_S = 0.05


class PushButton:
    """Calls on_short() after a short press and on_hold() once held for hold_s."""

    def __init__(self, pin: int, factory: Any, clock: Clock, *,
                 on_short: Callable[[], None], on_hold: Callable[[], None],
                 hold_s: float = HOLD_S, min_press_s: float = MIN_PRESS_S) -> None:
        from gpiozero import Button

        self.clock = clock
        self.on_short = on_short
        self.on_hold = on_hold
        self.hold_s = hold_s
        self.min_press_s = min_press_s
        self.pressed_at: float | None = None
        self.held = False
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.Task[None] | None = None
        # Wired from the pin to ground: the internal pull-up keeps it high until pressed.
        self.device = Button(pin, pull_up=True, pin_factory=factory)
        self.device.when_pressed = lambda: self._loop.call_soon_threadsafe(self._pressed)
        self.device.when_released = lambda: self._loop.call_soon_threadsafe(self._released)

    def _pressed(self) -> None:
        if self.pressed_at is not None:
            return
        self.pressed_at = self.clock.monotonic()
        self.held = False
        self._timer = self._loop.create_task(self._hold(), name="button-hold")

    async def _hold(self) -> None:
        await self.clock.sleep(self.hold_s)
        if self.pressed_at is not None:
            self.held = True
            log.warning("button held for %.0f s", self.hold_s)
            self.on_hold()

    def _released(self) -> None:
        if self.pressed_at is None:
            return
        length = self.clock.monotonic() - self.pressed_at
        self.pressed_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.held and length >= self.min_press_s:
            self.on_short()

    async def close(self) -> None:
        """Stop timing and release the pin."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        self.device.close()
