"""Power-key and reset pulses for modems on a HAT: the lines' recovery hook on GPIO.

A hung modem that ignores AT+CFUN=1,1 needs its power cycled. On USB that is sysfs; a HAT
module is powered from the HAT, so it needs its RESET line pulsed, or, where only PWRKEY is
wired (Waveshare's SIM7600 HAT), a long press that powers it off and a short one that powers
it on again. `ModemPower.recover(port)` has the lines' `usb_reset` signature and falls back
to the next hook for modems the board has no pins for.

Timings from SIMCom's SIM7600 hardware design: RESET low >= 100 ms; PWRKEY low >= 100 ms
(typically 500 ms) powers on, >= 2.5 s powers off; the module takes seconds to shut down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .boards import BoardProfile, ModemPins
from .leds import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PulseTimes:
    """How long each pulse and pause lasts (tests keep them, the fake clock makes them free)."""

    reset_s: float = 0.5
    power_on_s: float = 0.5
    power_off_s: float = 3.0
    off_settle_s: float = 5.0  # between powering off and on: the module shuts down


class ModemPower:
    """The power pins of the board's HAT modems."""

    def __init__(self, board: BoardProfile, factory: Any, clock: Clock,
                 fallback: Callable[[Any], Awaitable[bool]] | None = None,
                 times: PulseTimes | None = None) -> None:
        from gpiozero import DigitalOutputDevice

        self.board = board
        self.clock = clock
        self.fallback = fallback
        self.times = times or PulseTimes()
        self.outputs: dict[int, Any] = {}
        for modem in board.modems:
            for pin in (modem.pwrkey, modem.reset):
                if pin is not None:
                    # Idle is "key not pressed": low through the HAT's transistor.
                    self.outputs[pin] = DigitalOutputDevice(
                        pin, active_high=modem.active_high, initial_value=False,
                        pin_factory=factory)
        self.pulses = 0

    async def _press(self, pin: int, seconds: float) -> None:
        out = self.outputs[pin]
        out.on()
        try:
            await self.clock.sleep(seconds)
        finally:
            out.off()
        self.pulses += 1

    async def pulse_reset(self, pins: ModemPins) -> bool:
        """Pulse RESET; False when the modem has no RESET pin."""
        if pins.reset is None:
            return False
        await self._press(pins.reset, self.times.reset_s)
        return True

    async def power_cycle(self, pins: ModemPins) -> bool:
        """PWRKEY long (off), wait, PWRKEY short (on); False without a PWRKEY pin."""
        if pins.pwrkey is None:
            return False
        await self._press(pins.pwrkey, self.times.power_off_s)
        await self.clock.sleep(self.times.off_settle_s)
        await self._press(pins.pwrkey, self.times.power_on_s)
        return True

    async def recover(self, port: Any) -> bool:
        """The lines' usb_reset hook: RESET, else a PWRKEY cycle, else the fallback."""
        usb_path = str(getattr(port, "usb_path", ""))
        pins = self.board.modem_pins(usb_path)
        if pins is not None:
            log.warning("modem at %s: hardware reset through GPIO", usb_path)
            if await self.pulse_reset(pins) or await self.power_cycle(pins):
                return True
        return await self.fallback(port) if self.fallback is not None else False

    def close(self) -> None:
        """Release the pins (keys left unpressed)."""
        for out in self.outputs.values():
            out.close()
        self.outputs.clear()
