"""The simulated USB serial ports: raw pty pairs whose masters the simulator keeps."""

from __future__ import annotations

import contextlib
import os
import random
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Pty:
    """One pty pair: the master is the modem's end, `path` is what the host opens."""

    master: int
    slave: int
    path: str

    def close(self) -> None:
        """Close both ends: the host's next read fails as on a USB unplug."""
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_ptys(count: int, avoid: set[str]) -> list[Pty]:
    """count raw pty pairs whose paths are not in avoid (the kernel reuses freed numbers)."""
    got: list[Pty] = []
    rejected: list[Pty] = []
    try:
        while len(got) < count:
            master, slave = os.openpty()
            tty.setraw(slave)
            # Non-blocking master: a host that stops reading must not stall the modem thread.
            os.set_blocking(master, False)
            pty = Pty(master, slave, os.ttyname(slave))
            (rejected if pty.path in avoid else got).append(pty)
            if len(rejected) > 64:
                raise OSError("no fresh pty path available")
    except BaseException:
        for pty in got:
            pty.close()
        raise
    finally:
        # Held open until now so the kernel could not hand the same number out again.
        for pty in rejected:
            pty.close()
    return got


@dataclass
class _Item:
    not_before: float
    kind: str
    data: bytes
    logged: bool = False


class Output:
    """Bytes waiting to go to the host, in order, each not before its time."""

    # A reply is queued when the command arrives (due after the response delay) and every
    # URC raised meanwhile queues behind it, so URCs never land inside a reply.

    # Gap between the pieces of a split write: wall time, not scaled, so the host's reads
    # really see the pieces separately.
    SPLIT_GAP = 0.002

    def __init__(self, rng: random.Random) -> None:
        self._items: deque[_Item] = deque()
        self._rng = rng
        self.split_writes = False
        self.max_bytes = 65536

    def push(self, kind: str, data: bytes, not_before: float = 0.0) -> None:
        """Queue data ("tx" or "urc") to be written no earlier than not_before."""
        if data:
            self._items.append(_Item(not_before, kind, data))
            self._trim()

    def _trim(self) -> None:
        # A host that never reads: drop the oldest output as a modem's buffer would.
        total = sum(len(item.data) for item in self._items)
        while total > self.max_bytes and len(self._items) > 1:
            total -= len(self._items.popleft().data)

    def clear(self) -> None:
        """Forget everything queued."""
        self._items.clear()

    def make_due(self) -> None:
        """Let everything queued go now (before the port goes away)."""
        for item in self._items:
            item.not_before = 0.0

    def pending(self) -> bool:
        """True while something waits to be written."""
        return bool(self._items)

    def next_due(self) -> float | None:
        """When the head item may be written."""
        return self._items[0].not_before if self._items else None

    def flush(self, fd: int, log: Callable[[str, bytes], None]) -> bool:
        """Write what is due, logging each item as it starts; True if the fd would block."""
        now = time.monotonic()
        while self._items and self._items[0].not_before <= now:
            item = self._items[0]
            if not item.logged:
                # Logged before the write: whoever reads the bytes finds them in the log.
                item.logged = True
                log(item.kind, item.data)
            chunk = item.data
            if self.split_writes and len(chunk) > 1:
                chunk = chunk[:self._rng.randint(1, 4)]
            try:
                written = os.write(fd, chunk)
            except BlockingIOError:
                return True
            item.data = item.data[written:]
            if not item.data:
                self._items.popleft()
            if self.split_writes:
                if self._items:
                    self._items[0].not_before = max(self._items[0].not_before,
                                                    now + self.SPLIT_GAP)
                break
        return False
