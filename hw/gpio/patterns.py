"""What each LED pattern looks like over time. Pure: no pins, no clock.

A pattern is a periodic list of (seconds, level) segments, level 0..1; steady patterns have
none. `level(p, t)` is the brightness at time t (seconds on the panel's clock, so every LED
showing the same pattern blinks in step) and `next_change(p, t)` when it may change next.
PULSE fades in and out where the pin has PWM; elsewhere it is a heartbeat (two short
flashes), which no other pattern looks like.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

PULSE_PERIOD_S = 2.0
PULSE_STEPS = 40  # 50 ms steps: smooth to the eye, 20 wake-ups a second while pulsing
COUNT_ON_S, COUNT_OFF_S, COUNT_PAUSE_S = 0.2, 0.3, 1.5
MAX_COUNT = 9

Segments = tuple[tuple[float, float], ...]


class Kind(enum.Enum):
    """The shapes an LED can show."""

    OFF = "off"
    ON = "on"
    SLOW_BLINK = "slow_blink"  # 1 s on, 1 s off: booting
    BLINK = "blink"  # 0.5 s on, 0.5 s off: a line registering
    FAST_BLINK = "fast_blink"  # 0.1 s on, 0.1 s off: a fault
    PULSE = "pulse"  # fade in and out over 2 s (heartbeat without PWM): a line in a call
    COUNT = "count"  # `count` flashes, then a pause: signal bars when the status is shown
    CONFIRM = "confirm"  # 0.25 s on, 0.25 s off on every LED at once: factory reset accepted


@dataclass(frozen=True)
class Pattern:
    """One LED's pattern; count is for COUNT only (0-9 flashes)."""

    kind: Kind
    count: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.count <= MAX_COUNT or (self.count and self.kind is not Kind.COUNT):
            raise ValueError(f"count {self.count} does not fit pattern {self.kind.value}")


OFF = Pattern(Kind.OFF)
ON = Pattern(Kind.ON)
SLOW_BLINK = Pattern(Kind.SLOW_BLINK)
BLINK = Pattern(Kind.BLINK)
FAST_BLINK = Pattern(Kind.FAST_BLINK)
PULSE = Pattern(Kind.PULSE)
CONFIRM = Pattern(Kind.CONFIRM)


def count(n: int) -> Pattern:
    """n flashes then a pause (n clamped to 0-9; 0 is OFF)."""
    n = max(0, min(MAX_COUNT, n))
    return OFF if n == 0 else Pattern(Kind.COUNT, n)


def _pulse_pwm() -> Segments:
    step = PULSE_PERIOD_S / PULSE_STEPS
    # A triangle 0 -> 1 -> 0, sampled in the middle of each step.
    return tuple((step, round(1 - abs(2 * ((i + 0.5) / PULSE_STEPS) - 1), 3))
                 for i in range(PULSE_STEPS))


_SEGMENTS: dict[Kind, Segments] = {
    Kind.SLOW_BLINK: ((1.0, 1.0), (1.0, 0.0)),
    Kind.BLINK: ((0.5, 1.0), (0.5, 0.0)),
    Kind.FAST_BLINK: ((0.1, 1.0), (0.1, 0.0)),
    Kind.CONFIRM: ((0.25, 1.0), (0.25, 0.0)),
}
_PULSE_PWM = _pulse_pwm()
_HEARTBEAT: Segments = ((0.1, 1.0), (0.15, 0.0), (0.1, 1.0), (0.65, 0.0))


def segments(p: Pattern, pwm: bool) -> Segments:
    """The pattern's periodic segments; empty for a steady one."""
    if p.kind is Kind.PULSE:
        return _PULSE_PWM if pwm else _HEARTBEAT
    if p.kind is Kind.COUNT:
        flashes: Segments = ((COUNT_ON_S, 1.0), (COUNT_OFF_S, 0.0)) * p.count
        return (*flashes, (COUNT_PAUSE_S, 0.0))
    return _SEGMENTS.get(p.kind, ())


def _where(segs: Segments, t: float) -> tuple[int, float]:
    """The index of the segment at time t and the time left in it."""
    period = sum(d for d, _ in segs)
    phase = math.fmod(t, period)
    if phase < 0:
        phase += period
    edge = 0.0
    for i, (duration, _) in enumerate(segs):
        edge += duration
        if phase < edge:
            return i, edge - phase
    return 0, segs[0][0]  # phase == period after rounding: the start of the next cycle


def level(p: Pattern, t: float, pwm: bool = False) -> float:
    """Brightness 0..1 of pattern p at time t."""
    segs = segments(p, pwm)
    if not segs:
        return 1.0 if p.kind is Kind.ON else 0.0
    return segs[_where(segs, t)[0]][1]


def next_change(p: Pattern, t: float, pwm: bool = False) -> float | None:
    """The next time after t at which p's level may change; None for a steady pattern."""
    segs = segments(p, pwm)
    if not segs:
        return None
    i, left = _where(segs, t)
    # Rounding can leave a sliver of a segment: never return t itself (a busy loop).
    return t + (left if left > 1e-6 else left + segs[(i + 1) % len(segs)][0])
