"""The modem's PCM audio port: s16le mono frames every 20 ms on a second raw pty.

Audio flows only while a call is active and the host has armed the path; otherwise
what the host writes is dropped and nothing is sent (the "no audio" bugs). The downlink
runs on absolute 20 ms deadlines of the modem's own clock (skewable); the uplink is cut
into frames, recorded and consumed one frame per tick, which is where an echo is taken.
Audio timing is real time and ignores time_scale: it is a sample clock, not a timer.
"""

from __future__ import annotations

import array
import contextlib
import math
import os
import random
import select
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

FRAME_S = 0.020
UPLINK_FIFO_FRAMES = 10  # 200 ms of uplink the modem buffers before it drops the oldest
UNDERRUN_S = 0.040
LATE_S = 0.010
DTMF_TONE_S = 0.070
DTMF_GAP_S = 0.070
DTMF_FREQS = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


@dataclass
class AudioStats:
    """Counters of the audio port (a snapshot)."""

    frames_tx: int = 0  # downlink frames written to the host
    bytes_tx: int = 0
    frames_rx: int = 0  # whole uplink frames received while flowing
    bytes_rx: int = 0
    underruns: int = 0  # gaps of over 40 ms without an uplink write while flowing
    overruns: int = 0  # uplink frames dropped because the modem's buffer was full
    dropped_tx: int = 0  # downlink frames lost (drop_prob, or a host that does not read)
    ignored_rx: int = 0  # bytes written while the path was closed (not active or not armed)
    # Ticks this thread ran over 10 ms after their deadline: the machine was too busy for the
    # modem's clock, so timing measured meanwhile says more about the machine than the code.
    late_ticks: int = 0


def _samples(data: bytes) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(data[:len(data) - len(data) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm(samples: array.array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _clip(value: float) -> int:
    return max(-32768, min(32767, round(value)))


def dtmf_pcm(digits: str, rate: int, dbfs: float = -9.0) -> bytes:
    """In-band DTMF: each digit a 70 ms tone pair followed by 70 ms of silence."""
    amp = 32767 * 10 ** (dbfs / 20)
    out = array.array("h")
    tone_n, gap_n = int(rate * DTMF_TONE_S), int(rate * DTMF_GAP_S)
    for digit in digits.upper():
        if digit not in DTMF_FREQS:
            continue
        low, high = DTMF_FREQS[digit]
        out.extend(_clip(amp * (math.sin(2 * math.pi * low * n / rate)
                                + math.sin(2 * math.pi * high * n / rate)))
                   for n in range(tone_n))
        out.extend([0] * gap_n)
    return _pcm(out)


class AudioChannel:
    """The audio pty's modem end: a thread ticking every 20 ms while the path is open."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._fd: int | None = None
        self._flowing = False
        self.rate = 8000
        # Knobs (settable any time; read at each tick).
        self.jitter_ms = 0.0
        self.drop_prob = 0.0
        self.clock_skew_ppm = 0.0
        self.burst = 1
        self.echo_ms = 0.0
        self.echo_gain = 0.0
        self._stats = AudioStats()
        self._captured = bytearray()
        self._play = bytearray()
        self._dtmf = bytearray()
        self._tone: tuple[float, float] | None = None
        self._tone_n = 0
        self._fifo: deque[bytes] = deque()
        self._rx_partial = bytearray()
        self._echo = array.array("h")
        self._pending_out: list[bytes] = []
        self._last_rx = 0.0
        self._in_gap = False
        self._next: float | None = None
        self._jitter = 0.0
        # Bumped whenever the path opens or the port changes, so the thread restarts its clock.
        self._generation = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- control from the modem -------------------------------------------------------

    def start(self) -> None:
        """Start the audio thread."""
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="modemsim-audio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the audio thread and release its wake-up pipe."""
        if self._stop:
            return
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def attach(self, fd: int | None) -> None:
        """Use this master fd (None: unplugged)."""
        with self._cond:
            self._fd = fd
            self._generation += 1
            self._cond.notify_all()
        self._wake()

    def set_flowing(self, flowing: bool) -> None:
        """Open or close the path (a call active and armed, or not)."""
        with self._cond:
            if flowing == self._flowing:
                return
            self._flowing = flowing
            self._generation += 1
            if not flowing:
                # Nothing queued for one call leaks into the next.
                self._fifo.clear()
                self._rx_partial.clear()
                self._pending_out.clear()
                self._dtmf.clear()
            self._cond.notify_all()
        self._wake()

    def set_rate(self, rate: int) -> None:
        """8000, or 16000 after AT+CPCMFRM=1."""
        with self._lock:
            self.rate = rate

    def dtmf(self, digits: str) -> None:
        """Put DTMF tone pairs on the downlink (lost if the path is closed, as on a modem)."""
        with self._lock:
            if self._flowing:
                self._dtmf.extend(dtmf_pcm(digits, self.rate))

    # -- the test's side ------------------------------------------------------------

    @property
    def flowing(self) -> bool:
        """True while audio flows (call active and path armed)."""
        return self._flowing

    @property
    def frame_bytes(self) -> int:
        """Bytes in one 20 ms frame at the current rate."""
        return self.rate * 2 // 50

    def play(self, pcm: bytes) -> None:
        """Queue s16le PCM for the downlink (sent ahead of any tone)."""
        with self._lock:
            self._play.extend(pcm)

    def tone(self, hz: float | None, dbfs: float = -12.0) -> None:
        """A continuous downlink tone when nothing is queued (None: silence)."""
        with self._lock:
            self._tone = None if hz is None else (float(hz), 32767 * 10 ** (dbfs / 20))
            self._tone_n = 0

    def captured(self, clear: bool = False) -> bytes:
        """Uplink PCM received while flowing (s16le)."""
        with self._lock:
            data = bytes(self._captured)
            if clear:
                self._captured.clear()
            return data

    @property
    def stats(self) -> AudioStats:
        """A snapshot of the counters."""
        with self._lock:
            return replace(self._stats)

    def wait_flowing(self, flowing: bool = True, timeout: float = 5.0) -> bool:
        """Wait until the path is open (or closed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._flowing == flowing, timeout)

    def wait_captured(self, nbytes: int, timeout: float = 5.0) -> bool:
        """Wait until at least nbytes of uplink were captured; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._captured) >= nbytes, timeout)

    # -- the thread ------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _period(self) -> float:
        # A modem clock fast by +N ppm sends its frames that much more often.
        return FRAME_S / (1 + self.clock_skew_ppm * 1e-6)

    def _run(self) -> None:
        seen = -1
        while not self._stop:
            with self._lock:
                fd, flowing, generation = self._fd, self._flowing, self._generation
            now = time.monotonic()
            timeout = 0.5
            if flowing and fd is not None:
                if self._next is None or generation != seen:
                    self._start_flow(now)
                    seen = generation
                assert self._next is not None
                timeout = max(0.0, self._next + self._jitter - now)
            else:
                self._next = None
            fds = [self._wake_r] + ([fd] if fd is not None else [])
            try:
                readable, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):
                readable = []  # the fd was closed under us by an unplug
            if self._wake_r in readable:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            # Ticks that fell due while we waited consume the uplink first: the modem's
            # clock ran then, whatever time this thread got to read the port.
            if flowing and fd is not None and self._next is not None:
                self._catch_up(fd)
            if fd is not None and fd in readable:
                data = self._read(fd)
                if data:
                    self._uplink(data)
            if flowing and fd is not None and self._next is not None:
                self._catch_up(fd)

    def _read(self, fd: int) -> bytes:
        # Under the lock and only if fd is still ours: the modem closes a port only after
        # attach(None), and a closed fd's number may already belong to the next pty.
        with self._lock:
            if self._fd != fd:
                return b""
            try:
                return os.read(fd, 4096)
            except OSError:
                return b""

    def _start_flow(self, now: float) -> None:
        with self._lock:
            self._next = now + self._period()
            self._jitter = 0.0
            self._last_rx = now
            self._in_gap = False
            self._echo = array.array("h")

    def _catch_up(self, fd: int) -> None:
        assert self._next is not None
        now = time.monotonic()
        lag = now - self._next
        if lag > 0.2:
            # Paused (a stopped process, a debugger): resynchronise instead of a flood. The
            # modem's clock ran meanwhile, so the uplink those ticks consumed is gone too.
            skipped = int(lag / self._period())
            with self._lock:
                for _ in range(min(skipped, len(self._fifo))):
                    self._fifo.popleft()
                self._stats.dropped_tx += skipped
                self._stats.late_ticks += skipped
            self._next = now
        while self._next is not None and now >= self._next + self._jitter:
            if now - (self._next + self._jitter) > LATE_S:
                with self._lock:
                    self._stats.late_ticks += 1
            self._tick(fd, now)
            self._next += self._period()
            self._jitter = self._rng.uniform(0, self.jitter_ms / 1000) if self.jitter_ms else 0

    def _uplink(self, data: bytes) -> None:
        with self._cond:
            if not self._flowing:
                self._stats.ignored_rx += len(data)
                return
            self._captured.extend(data)
            self._stats.bytes_rx += len(data)
            self._rx_partial.extend(data)
            size = self.frame_bytes
            while len(self._rx_partial) >= size:
                self._fifo.append(bytes(self._rx_partial[:size]))
                del self._rx_partial[:size]
                self._stats.frames_rx += 1
                if len(self._fifo) > UPLINK_FIFO_FRAMES:
                    self._fifo.popleft()
                    self._stats.overruns += 1
            self._last_rx = time.monotonic()
            self._in_gap = False
            self._cond.notify_all()

    def _source(self, size: int) -> array.array[int]:
        """The next downlink frame before echo: DTMF, else played PCM, else tone, else silence."""
        if self._dtmf:
            chunk = bytes(self._dtmf[:size])
            del self._dtmf[:size]
            return _samples(chunk.ljust(size, b"\0"))
        if self._play:
            chunk = bytes(self._play[:size])
            del self._play[:size]
            return _samples(chunk.ljust(size, b"\0"))
        n = size // 2
        if self._tone is None:
            return array.array("h", bytes(size))
        hz, amp = self._tone
        start = self._tone_n
        self._tone_n += n
        return array.array("h", (_clip(amp * math.sin(2 * math.pi * hz * (start + i)
                                                        / self.rate)) for i in range(n)))

    def _tick(self, fd: int, now: float) -> None:
        with self._lock:
            if not self._flowing:
                return
            if now - self._last_rx > UNDERRUN_S and not self._in_gap:
                self._stats.underruns += 1
                self._in_gap = True
            size = self.frame_bytes
            n = size // 2
            up = self._fifo.popleft() if self._fifo else bytes(size)
            frame = self._source(size)
            if self.echo_gain:
                self._echo.extend(_samples(up))
                delay = int(self.echo_ms * self.rate / 1000)
                # The echo of the uplink sample `delay` samples before this frame's each one.
                start = len(self._echo) - n - delay
                for i in range(n):
                    j = start + i
                    if j >= 0:
                        frame[i] = _clip(frame[i] + self.echo_gain * self._echo[j])
                keep = delay + 2 * n
                if len(self._echo) > keep:
                    del self._echo[:len(self._echo) - keep]
            if self.drop_prob and self._rng.random() < self.drop_prob:
                self._stats.dropped_tx += 1
                return
            self._pending_out.append(_pcm(frame))
            if len(self._pending_out) < max(1, self.burst):
                return
            out, self._pending_out = self._pending_out, []
            if self._fd != fd:
                return  # unplugged since: the number may already name another pty
            try:
                os.write(fd, b"".join(out))
            except BlockingIOError:
                self._stats.dropped_tx += len(out)
                return
            except OSError:
                return
            self._stats.frames_tx += len(out)
            self._stats.bytes_tx += sum(len(f) for f in out)
