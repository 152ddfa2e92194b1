"""Clock drift between a modem's PCM clock and the bridge clock: when to drop or repeat a frame.

The modem sends (and takes) a frame every 20 ms of *its* clock; the conference bridge pops
(and pushes) one every 20 ms of *the box's* clock. Two crystals never agree: at +300 ppm the
modem delivers one frame more than the bridge takes every ~67 s, so a ring between them
slowly fills (latency creeps up until frames are dropped on overrun) or empties (an
underrun: 20 ms of silence). The decision here watches how long frames wait in the ring
and steers that wait into [low, high]:

- the shortest wait of a window over `high`: a standing excess -> drop the oldest frames
  (only the excess, so one decision fixes a ring that filled while nobody listened);
- an underrun in the window, or a shortest wait under `low`: the ring is about to run dry
  -> repeat one frame, 20 ms of cushion.

Whole frames, not samples: the frame is the bridge's unit, a step comes about once a
minute at realistic drift, and repeating or dropping 20 ms of speech that rarely is less
audible than the silence an underrun would insert, while it costs no resampling CPU.
`high - low` is wider than one frame, so a repeat never triggers a drop (no hunting).
Pure: the pump feeds it numbers, tests feed it numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ring import FRAME_S, FrameRing


@dataclass(frozen=True)
class DriftPolicy:
    """How the wait in a ring is kept bounded."""

    window: int = 50  # frames per decision (one second)
    low_s: float = 0.002  # a frame waiting less than this was nearly late
    high_s: float = 0.030  # every frame waited longer than this: latency to shed
    target_s: float = 0.010  # the shortest wait a drop aims for
    frame_s: float = FRAME_S

    def __post_init__(self) -> None:
        if self.high_s - self.low_s <= self.frame_s:
            raise ValueError("high - low must exceed one frame, or a repeat triggers a drop")
        if not self.low_s <= self.target_s < self.high_s or self.window < 1:
            raise ValueError("need low <= target < high and a window of at least one frame")


def decide(min_wait: float | None, underruns: int, policy: DriftPolicy) -> int:
    """Frames to add (+1), drop (-n) or 0, from one window's shortest wait and underruns."""
    if underruns > 0:
        return 1
    if min_wait is None or math.isnan(min_wait):
        return 0  # nobody popped: nothing to measure
    if min_wait < policy.low_s:
        return 1
    if min_wait > policy.high_s:
        return -max(1, int((min_wait - policy.target_s) // policy.frame_s))
    return 0


class DriftControl:
    """Counts frames and, once per window, asks `decide` about one ring."""

    def __init__(self, policy: DriftPolicy | None = None) -> None:
        self.policy = policy or DriftPolicy()
        self._frames = 0
        self._underruns_seen: int | None = None
        self._settling = False
        self.last_min_wait: float | None = None

    def reset(self, ring: FrameRing) -> None:
        """Start a fresh window (a new call, or audio back after a gap)."""
        self._frames = 0
        self._settling = False
        self._underruns_seen = ring.underruns
        ring.take_min_wait()

    def tick(self, ring: FrameRing) -> int:
        """Called once per frame; returns the adjustment due now (mostly 0)."""
        if self._underruns_seen is None:
            self.reset(ring)
        self._frames += 1
        if self._frames < self.policy.window:
            return 0
        self._frames = 0
        seen = self._underruns_seen or 0
        self._underruns_seen = ring.underruns
        self.last_min_wait = ring.take_min_wait()
        if self._settling:
            # Frames queued before the last step still popped in this window with their old
            # wait: judging them would repeat the step (a repeat, then a second one, then
            # two drops...). One window to settle, then measure afresh.
            self._settling = False
            return 0
        adjust = decide(self.last_min_wait, ring.underruns - seen, self.policy)
        self._settling = adjust != 0
        return adjust
