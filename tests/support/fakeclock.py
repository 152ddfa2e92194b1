"""A fake clock for code timed by `clock.monotonic()` and `await clock.sleep()` (the front
panel, the button, the modem power pulses): time moves only when the test says."""

from __future__ import annotations

import asyncio
import contextlib


class FakeClock:
    """Time that moves only when the test says; `slept` is set whenever someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiting: list[tuple[float, asyncio.Event]] = []
        self.slept = asyncio.Event()

    def monotonic(self) -> float:
        """The fake now."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Wait until advance() passes now + seconds (no time: not at all)."""
        if seconds <= 0:
            return
        event = asyncio.Event()
        entry = (self.now + seconds, event)
        self._waiting.append(entry)
        self.slept.set()
        try:
            await event.wait()
        finally:
            with contextlib.suppress(ValueError):
                self._waiting.remove(entry)

    def advance(self, seconds: float) -> None:
        """Move time on and wake the sleepers that are due."""
        self.now += seconds
        for due, event in list(self._waiting):
            if due <= self.now + 1e-9:
                event.set()

    def sleepers(self) -> int:
        """How many are asleep now."""
        return len(self._waiting)

    async def asleep_until(self, due: float) -> None:
        """Return once someone sleeps until the time due."""
        while not any(abs(d - due) < 1e-9 for d, _ in self._waiting):
            self.slept.clear()
            await self.slept.wait()
