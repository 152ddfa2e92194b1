"""A bounded FIFO of 20 ms audio frames between two threads (the serial pump and the bridge).

One side pushes, the other pops; neither ever waits. It leans on CPython's atomic
`deque.append`/`popleft` instead of a lock, because the consumer may be the conference
bridge's clock thread, which must never block (pjsua2-notes.md: a Python port couples the
whole bridge to the GIL). Each counter is written by one side only, so plain integers are
enough; the rare cross-side read of a counter that is being bumped is off by one at worst.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Frame = bytes | bytearray

FRAME_S = 0.020


def frame_bytes(rate: int) -> int:
    """Bytes in one 20 ms frame of s16le mono at rate."""
    return rate * 2 // 50


@dataclass(frozen=True)
class RingStats:
    """Counters of one ring (a snapshot)."""

    depth: int  # frames waiting now
    capacity: int
    pushed: int
    popped: int
    overruns: int  # oldest frames dropped because the ring was full
    underruns: int  # pops that found the ring empty while the producer was live
    trimmed: int  # frames dropped on purpose (drift or stale audio)
    repeated: int  # frames inserted on purpose (drift)


class FrameRing:
    """Bounded, drops the oldest on overrun, silence (or None) on underrun, counts both."""

    def __init__(self, capacity: int = 10, frame_size: int = 320,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or frame_size < 2 or frame_size % 2:
            raise ValueError("a ring holds at least one frame of whole s16 samples")
        self.capacity = capacity
        self.frame_size = frame_size
        self.silence = bytes(frame_size)
        self._clock = clock
        # (push time, frame): the push time tells the consumer how long a frame waited,
        # which is what the drift control steers on.
        self._q: deque[tuple[float, Frame]] = deque()
        self.pushed = 0
        self.popped = 0
        self.overruns = 0
        self.underruns = 0
        self.trimmed = 0
        self.repeated = 0
        self.last_push = -math.inf
        self.last_pop = -math.inf
        # Underruns count only while the producer is live: an idle line's bridge port is
        # popped 50 times a second and that is not a fault.
        self.active = False
        self._min_wait = math.inf

    # --- producer ---------------------------------------------------------------------
    def push(self, frame: Frame) -> None:
        """Append a frame; if full, the oldest goes (counted as an overrun)."""
        q = self._q
        if len(q) >= self.capacity:
            try:
                q.popleft()
                self.overruns += 1
            except IndexError:
                pass  # the consumer emptied it meanwhile
        now = self._clock()
        q.append((now, frame))
        self.pushed += 1
        self.last_push = now

    # --- consumer ---------------------------------------------------------------------
    def take(self) -> Frame | None:
        """The oldest frame, or None when empty (an underrun if the producer is live)."""
        now = self._clock()
        self.last_pop = now
        try:
            pushed_at, frame = self._q.popleft()
        except IndexError:
            if self.active:
                self.underruns += 1
            return None
        self.popped += 1
        wait = now - pushed_at
        if wait < self._min_wait:
            self._min_wait = wait
        return frame

    def pop(self) -> Frame:
        """The oldest frame, or a silent one when empty: never blocks, never raises."""
        frame = self.take()
        return self.silence if frame is None else frame

    # --- either side (the pump) -------------------------------------------------------
    def take_min_wait(self) -> float | None:
        """The shortest time a popped frame waited since the last call (None: no pops)."""
        wait, self._min_wait = self._min_wait, math.inf
        return None if wait == math.inf else wait

    def trim(self, count: int) -> int:
        """Drop up to count of the oldest frames on purpose; returns how many went."""
        dropped = 0
        for _ in range(max(count, 0)):
            try:
                self._q.popleft()
            except IndexError:
                break
            dropped += 1
        self.trimmed += dropped
        return dropped

    def keep_newest(self, count: int) -> int:
        """Drop all but the newest count frames (stale audio nobody listened to)."""
        return self.trim(len(self._q) - count)

    def repeat(self, frame: Frame) -> None:
        """Push one extra copy of a frame on purpose (adds 20 ms of cushion)."""
        self.push(frame)
        self.pushed -= 1
        self.repeated += 1

    def clear(self) -> None:
        """Forget every frame (not counted: a new call starts clean)."""
        self._q.clear()
        self._min_wait = math.inf

    def __len__(self) -> int:
        return len(self._q)

    def stats(self) -> RingStats:
        """A snapshot of the counters."""
        return RingStats(depth=len(self._q), capacity=self.capacity, pushed=self.pushed,
                         popped=self.popped, overruns=self.overruns,
                         underruns=self.underruns, trimmed=self.trimmed,
                         repeated=self.repeated)
