"""The front panel's decisions: box, line and call state in, one pattern per LED out. Pure.

LEDs are named "status", "call" and "line1", "line2", ... (the board's line LEDs, given to
the SIM lines in the order of their keys). The runtime (frontpanel.py) gathers a PanelState
from the box and drives the pins; nothing here touches either.

* status: booting slow blink, ready steady, fault fast blink (a line that gave up, an engine
  that stopped polling, a factory reset that failed).
* a line: absent (no modem, switched off, no line for the LED) off; a modem starting,
  registering or being reset blink; ready on; in a call pulse; failed fast blink.
* call: on while any call is answered, blinking while calls only ring.
* a short press shows each line's signal as 0-4 flashes for a few seconds; a factory reset,
  once accepted, is confirmed by every LED flashing together.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from hw.gpio import patterns
from hw.gpio.boards import BoardProfile
from hw.gpio.patterns import Pattern

# Modem states (hw.modem.state.ModemState values) as a line LED shows them.
_STARTING = frozenset({"initialising", "sim_locked", "registering", "resetting"})


class Phase(enum.Enum):
    """Where the box as a whole is."""

    BOOTING = "booting"
    READY = "ready"
    FAULT = "fault"


@dataclass(frozen=True)
class LineView:
    """What the panel needs of one SIM line."""

    key: str
    enabled: bool = True
    modem: str = "absent"  # hw.modem.state.ModemState value
    signal: int | None = None  # +CSQ rssi 0-31 (99 or None: unknown)


@dataclass(frozen=True)
class PanelState:
    """Everything the LEDs show, as of one moment."""

    phase: Phase = Phase.BOOTING
    lines: tuple[LineView, ...] = ()
    calls_ringing: int = 0
    calls_answered: int = 0
    showing_status: bool = False  # after a short press, for a few seconds
    confirming_reset: bool = False  # the button was held long enough
    resetting: bool = False  # the factory reset runs


@dataclass(frozen=True)
class Lamps:
    """The decision: a pattern per LED name."""

    patterns: dict[str, Pattern] = field(default_factory=dict)


def line_led_names(board: BoardProfile) -> list[str]:
    """The names of the board's line LEDs, in order."""
    return [f"line{i + 1}" for i in range(len(board.line_leds))]


def led_pins(board: BoardProfile) -> dict[str, int]:
    """LED name -> BCM pin for every LED the board has."""
    pins = {"status": board.status_led, "call": board.call_led,
            **dict(zip(line_led_names(board), board.line_leds, strict=True))}
    return {name: pin for name, pin in pins.items() if pin is not None}


def signal_bars(rssi: int | None) -> int:
    """+CSQ rssi -> 0-4 bars (99 and None: unknown, 0 bars)."""
    if rssi is None or not 0 <= rssi <= 31:
        return 0
    if rssi < 10:
        return 1
    if rssi < 15:
        return 2
    if rssi < 20:
        return 3
    return 4


def line_pattern(line: LineView | None) -> Pattern:
    """A line LED's pattern for a line's state (None: no line for this LED)."""
    if line is None or not line.enabled or line.modem == "absent":
        return patterns.OFF
    if line.modem == "ready":
        return patterns.ON
    if line.modem == "in_call":
        return patterns.PULSE
    if line.modem == "failed":
        return patterns.FAST_BLINK
    if line.modem in _STARTING:
        return patterns.BLINK
    return patterns.OFF


def status_pattern(state: PanelState) -> Pattern:
    """The status LED: booting (and resetting) slow blink, ready on, fault fast blink."""
    if state.resetting or state.phase is Phase.BOOTING:
        return patterns.SLOW_BLINK
    if state.phase is Phase.FAULT:
        return patterns.FAST_BLINK
    return patterns.ON


def call_pattern(state: PanelState) -> Pattern:
    """The call LED: on with an answered call, blinking while calls only ring."""
    if state.calls_answered:
        return patterns.ON
    return patterns.BLINK if state.calls_ringing else patterns.OFF


def decide(state: PanelState, board: BoardProfile) -> Lamps:
    """Every LED's pattern for state on board."""
    names = line_led_names(board)
    if state.confirming_reset:
        return Lamps({name: patterns.CONFIRM for name in ("status", "call", *names)})
    lines: list[LineView | None] = [*sorted(state.lines, key=lambda x: x.key)]
    lines += [None] * max(0, len(names) - len(lines))
    out = {"status": status_pattern(state), "call": call_pattern(state)}
    for name, line in zip(names, lines, strict=False):
        if state.showing_status:
            out[name] = patterns.count(signal_bars(line.signal)) if line else patterns.OFF
        else:
            out[name] = line_pattern(line)
    return Lamps(out)


def status_line(state: PanelState, lines_detail: Sequence[str] = ()) -> str:
    """The one journal line a short press writes."""
    parts = [f"box {state.phase.value}",
             f"calls {state.calls_answered} answered, {state.calls_ringing} ringing"]
    for line in sorted(state.lines, key=lambda x: x.key):
        bars = signal_bars(line.signal)
        parts.append(f"line {line.key}: {line.modem if line.enabled else 'disabled'}, "
                     f"signal {bars}/4")
    parts.extend(lines_detail)
    return "; ".join(parts)
