"""Board profiles: which BCM pin is which LED, the button, and the modem power pins.

Chosen by the setting `board` (env PBX_BOARD). Pins are BCM (GPIO) numbers. The LEDs and the
button are the box's own front panel, wired as the README shows (each LED through a resistor
to ground, the button from its pin to ground, using the Pi's internal pull-up); the modem pins
are the HAT's. A new board is one more entry in BOARDS.
"""

from __future__ import annotations

from dataclasses import dataclass


class BoardError(ValueError):
    """An unknown board name, or a profile that uses a pin twice."""


@dataclass(frozen=True)
class ModemPins:
    """A HAT modem's power pins; `usb_path` None: the board's only modem, whatever its path."""

    pwrkey: int | None = None
    reset: int | None = None
    # Both pins drive the module through a transistor on the HAT: GPIO high = key pressed.
    active_high: bool = True
    usb_path: str | None = None

    def serves(self, usb_path: str) -> bool:
        """True when these pins belong to the modem at usb_path."""
        return self.usb_path is None or self.usb_path == usb_path


@dataclass(frozen=True)
class BoardProfile:
    """Every pin the box drives on one kind of board."""

    name: str
    description: str
    status_led: int | None = None
    call_led: int | None = None
    # One LED per SIM line, given to the lines in the order of their keys.
    line_leds: tuple[int, ...] = ()
    button: int | None = None
    modems: tuple[ModemPins, ...] = ()

    @property
    def has_gpio(self) -> bool:
        """False for a board without any pin (a PC, a VM)."""
        return bool(self.pins())

    def pins(self) -> list[int]:
        """Every pin the profile uses."""
        out = [p for p in (self.status_led, self.call_led, self.button) if p is not None]
        out += list(self.line_leds)
        for modem in self.modems:
            out += [p for p in (modem.pwrkey, modem.reset) if p is not None]
        return out

    def check(self) -> BoardProfile:
        """Raise BoardError when a pin is used twice or is no BCM GPIO number; return self."""
        pins = self.pins()
        if len(set(pins)) != len(pins):
            raise BoardError(f"board {self.name}: a pin is used twice: {sorted(pins)}")
        bad = [p for p in pins if not 2 <= p <= 27]
        if bad:
            raise BoardError(f"board {self.name}: {bad} are not BCM GPIO numbers (2-27)")
        return self

    def modem_pins(self, usb_path: str) -> ModemPins | None:
        """The power pins of the modem at usb_path, if the board has any."""
        return next((m for m in self.modems if m.serves(usb_path)), None)


# Waveshare's SIM7600 HAT puts the module's PWRKEY on BCM 6 (through a transistor, so high
# presses the key) and flight mode on BCM 4; its RESET is not on the header, so recovery
# there is a power-key cycle. The front panel avoids the HAT's pins and the UART (14, 15).
BOARDS: dict[str, BoardProfile] = {b.name: b.check() for b in (
    BoardProfile("none", "no GPIO (a PC or VM): no LEDs, no button"),
    BoardProfile("pi-sim7600-hat", "Raspberry Pi + SIM7600 HAT: status, call and one line LED,"
                 " button, modem power key",
                 status_led=17, call_led=27, line_leds=(22,), button=26,
                 modems=(ModemPins(pwrkey=6),)),
    BoardProfile("pi-2usb", "Raspberry Pi + 2 USB modems: status, call and two line LEDs,"
                 " button", status_led=17, call_led=27, line_leds=(22, 23), button=26),
)}


def board(name: str) -> BoardProfile:
    """The profile called name; BoardError listing the known ones otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        known = ", ".join(sorted(BOARDS))
        raise BoardError(f"unknown board {name!r}; known boards: {known}") from None
