"""Timers of the simulated modem: a heap of callbacks, every delay shortened by time_scale."""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class Timer:
    """A scheduled callback; cancel() keeps it from running."""

    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Do not run this timer."""
        self.cancelled = True


class Scheduler:
    """Timers run by the modem thread; delays are in modem seconds, scaled to wall time."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def scaled(self, seconds: float) -> float:
        """Modem seconds as wall-clock seconds."""
        return seconds * self.time_scale

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run callback after seconds (modem time)."""
        timer = Timer(time.monotonic() + self.scaled(seconds), next(self._seq), callback)
        heapq.heappush(self._heap, timer)
        return timer

    def next_due(self) -> float | None:
        """Monotonic time of the earliest live timer."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    def run_due(self) -> None:
        """Run every timer whose time has come, in order."""
        now = time.monotonic()
        while self._heap and self._heap[0].due <= now:
            timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.callback()
                except Exception:
                    # One broken step must not stop the modem's thread and every later timer.
                    log.exception("modemsim: timer callback failed")

    def cancel_all(self) -> None:
        """Drop every timer (stop, or a reboot forgets what was pending)."""
        self._heap.clear()
