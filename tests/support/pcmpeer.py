"""Test peers for the audio pump: a paced PCM 'modem' on a pty pair and a 20 ms 'bridge'.

Both tick on absolute 20 ms deadlines (a clock, as the real ends have), and report what they
saw through conditions the tests wait on.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable

from hw.audio import SerialAudio

FRAME = 320


def numbered(n: int, size: int = FRAME) -> bytes:
    """A frame that carries its number in every 4 bytes (never all zero: n + 1)."""
    return (n + 1).to_bytes(4, "little") * (size // 4)


def number_of(frame: bytes | bytearray) -> int | None:
    """The number of a numbered frame; None for silence or a torn frame."""
    head = bytes(frame[:4])
    if head == b"\0\0\0\0" or bytes(frame) != head * (len(frame) // 4):
        return None
    return int.from_bytes(head, "little") - 1


class PcmModem:
    """The modem end of a raw pty pair: a frame every `period` s, uplink recorded."""

    def __init__(self, period: float = 0.020, size: int = FRAME,
                 source: Callable[[int], bytes] = numbered,
                 chunks: Callable[[int], list[int]] | None = None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.period = period
        self.size = size
        self.source = source
        self.chunks = chunks  # how frame n is split into writes (None: one write)
        self.sent = 0
        self.received = bytearray()
        self.sending = threading.Event()
        self.sending.set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="pcm-modem", daemon=True)

    def start(self) -> PcmModem:
        """Start ticking."""
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop:
            deadline += self.period
            while (left := deadline - time.monotonic()) > 0 and not self._stop:
                readable, _, _ = select.select([self.master], [], [], left)
                if readable:
                    self._read()
            if self._stop:
                return
            if not self.sending.is_set():
                continue
            n = self.sent
            frame = self.source(n)
            pieces = self.chunks(n) if self.chunks else [len(frame)]
            with self._cond:
                # Counted before the write: whoever waits for the answer to `sent` frames
                # never sees the count lag behind a frame already on the wire.
                self.sent += 1
                self._cond.notify_all()
            pos = 0
            try:
                for piece in pieces:
                    os.write(self.master, frame[pos:pos + piece])
                    pos += piece
            except BlockingIOError:
                continue  # nobody reads: the frame is lost, as on a modem
            except OSError:
                return

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return
        with self._cond:
            self.received.extend(data)
            self._cond.notify_all()

    def wait(self, pred: Callable[[PcmModem], bool], timeout: float = 5.0) -> bool:
        """Wait until pred(self) holds (checked whenever a frame goes or comes)."""
        with self._cond:
            return self._cond.wait_for(lambda: pred(self), timeout)

    def uplink_frames(self) -> list[bytes]:
        """What came back, as whole frames."""
        with self._cond:
            data = bytes(self.received)
        return [data[i:i + self.size] for i in range(0, len(data) - self.size + 1, self.size)]

    def unplug(self) -> None:
        """Close both ends, as a USB unplug does."""
        self._stop = True
        if self._thread.ident is not None:
            self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    close = unplug


class FakeBridge:
    """Pops the pump's downlink and pushes its uplink every 20 ms, like the conference bridge."""

    def __init__(self, pump: SerialAudio, uplink: Callable[[int], bytes] = numbered) -> None:
        self.pump = pump
        self.uplink = uplink
        self.heard: list[bytes | bytearray] = []
        self.ticks = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-bridge", daemon=True)

    def start(self) -> FakeBridge:
        """Start ticking."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            deadline += 0.020
            frame = self.pump.downlink.pop()
            self.pump.uplink.push(self.uplink(self.ticks))
            with self._cond:
                self.heard.append(frame)
                self.ticks += 1
                self._cond.notify_all()

    def wait(self, pred: Callable[[FakeBridge], bool], timeout: float = 5.0) -> bool:
        """Wait until pred(self) holds (checked every tick)."""
        with self._cond:
            return self._cond.wait_for(lambda: pred(self), timeout)

    def numbers(self) -> list[int]:
        """Numbers of the non-silent frames heard, in order."""
        with self._cond:
            heard = list(self.heard)
        return [n for n in map(number_of, heard) if n is not None]
