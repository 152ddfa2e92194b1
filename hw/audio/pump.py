"""SerialAudio: one thread per modem moving PCM between its audio tty and two frame rings.

The modem is the clock: it sends a 20 ms frame when its PCM clock ticks, and the pump answers
each one with one uplink frame, so the modem is fed exactly at its own pace (a modem fed
faster buffers up latency, one fed slower underruns). The rings face the conference bridge,
which runs on the box's clock; `drift.py` keeps the two clocks from drifting apart in them.

- `downlink` (modem -> box): frames cut from the tty's byte stream (reads may split or join
  frames), pushed for the bridge's port to pop. While nobody pops (the port is not bridged
  yet), only the newest frame is kept, so the first audio heard is fresh.
- `uplink` (box -> modem): pushed by the bridge's port; one frame taken per modem frame. A
  late bridge frame is concealed by repeating the last one; no bridge at all sends silence.
- Optional in-band DTMF detection on the downlink for modems without a detector.

Never raises into anyone: a vanished tty (unplug, USB reset) ends the thread with state
LOST and a state-change event. No pjsua2 here: the engine's port only touches the rings.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

from .drift import DriftControl, DriftPolicy
from .dtmf import DtmfDetector, DtmfParams
from .ring import Frame, FrameRing, RingStats, frame_bytes

log = logging.getLogger(__name__)

# No modem frame for this long: the path closed (call over, or not armed), not jitter.
FLOW_GAP_S = 0.2
# The bridge has not popped (or pushed) for this long: the port is not bridged (5 frames).
STALE_S = 0.1
# Uplink bytes the tty may hold back before we drop frames instead of queueing them.
MAX_PENDING_FRAMES = 4


class AudioState(enum.Enum):
    """Where one audio pump is in its life."""

    NEW = "new"  # not started
    IDLE = "idle"  # the tty is open; the modem sends nothing (no call, or not armed)
    FLOWING = "flowing"  # modem frames arriving and answered
    STOPPED = "stopped"  # stopped by its owner
    LOST = "lost"  # the tty vanished or failed; the thread has ended


@dataclass(frozen=True)
class AudioStateChange:
    """A pump changed state (published to `on_state`)."""

    name: str
    old: AudioState
    new: AudioState
    reason: str = ""


@dataclass(frozen=True)
class PumpStats:
    """Counters of one pump (a snapshot)."""

    state: AudioState
    frames_in: int  # whole frames read from the modem
    frames_out: int  # frames written to the modem
    bytes_in: int
    bytes_out: int
    write_dropped: int  # uplink frames the tty would not take
    concealed: int  # uplink frames repeated because the bridge's was late
    silent_out: int  # uplink silence sent while nothing was bridged
    flows: int  # how many times audio started flowing
    skipped: int  # stale frames found queued when audio (re)started, not answered
    digits: int  # in-band DTMF digits detected
    down_wait_ms: float | None  # shortest wait in the downlink ring over the last window
    up_wait_ms: float | None
    downlink: RingStats
    uplink: RingStats


class AudioError(RuntimeError):
    """The audio tty cannot be opened (missing, or held by another process)."""


def open_tty(path: str) -> int:
    """The tty at path, raw, non-blocking and exclusively ours (flock, like the AT port)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise AudioError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise AudioError(f"{path} is held by another process") from None
    # Raw: no echo, no CR/LF translation, no signals from the PCM bytes 0x03 or 0x1a.
    with contextlib.suppress(termios.error):
        tty.setraw(fd)
    return fd


class SerialAudio:
    """The audio pump of one modem: its own thread, two rings, optional DTMF detection."""

    def __init__(self, path: str, *, rate: int = 8000, name: str | None = None,
                 detect_dtmf: bool = False, dtmf: DtmfParams | None = None,
                 capacity: int = 10, policy: DriftPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 thread_init: Callable[[], None] | None = None,
                 on_state: Callable[[AudioStateChange], None] | None = None) -> None:
        self.path = path
        self.rate = rate
        self.name = name or os.path.basename(path)
        self.frame_size = frame_bytes(rate)
        self.downlink = FrameRing(capacity, self.frame_size, clock)
        self.uplink = FrameRing(capacity, self.frame_size, clock)
        self._clock = clock
        self._thread_init = thread_init
        self._on_state = on_state
        self._down_drift = DriftControl(policy)
        self._up_drift = DriftControl(policy)
        self._detector = DtmfDetector(dtmf or DtmfParams(rate=rate)) if detect_dtmf else None
        self._digit_listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._state = AudioState.NEW
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r = self._wake_w = -1
        self._acc = bytearray()
        self._pending = bytearray()
        self._last_up: Frame | None = None
        self._last_rx = 0.0
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0
        self.write_dropped = self.concealed = self.silent_out = self.flows = 0
        self.skipped = 0

    # --- the owner's side --------------------------------------------------------------
    @property
    def state(self) -> AudioState:
        """The pump's current state."""
        return self._state

    @property
    def detects_dtmf(self) -> bool:
        """True if the pump runs the in-band DTMF detector."""
        return self._detector is not None

    def add_digit_listener(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call listener(digit) from the pump thread per detected digit; returns a remover."""
        self._digit_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._digit_listeners.remove(listener)

        return remove

    def start(self) -> SerialAudio:
        """Open the tty and start the thread (AudioError if the tty cannot be had)."""
        with self._lock:
            if self._state is not AudioState.NEW:
                raise AudioError(f"audio {self.name} was already started")
            self._fd = open_tty(self.path)
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_w, False)
            self._thread = threading.Thread(target=self._run, name=f"audio-{self.name}",
                                            daemon=True)
        self._set_state(AudioState.IDLE, "started")
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread and close the tty; idempotent, safe after the tty vanished."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            self._close_fds()
        if self._state in (AudioState.IDLE, AudioState.FLOWING, AudioState.NEW):
            self._set_state(AudioState.STOPPED, "stopped")

    close = stop

    def __enter__(self) -> SerialAudio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> PumpStats:
        """A snapshot of the counters."""
        down, up = self._down_drift.last_min_wait, self._up_drift.last_min_wait
        return PumpStats(
            state=self._state, frames_in=self.frames_in, frames_out=self.frames_out,
            bytes_in=self.bytes_in, bytes_out=self.bytes_out,
            write_dropped=self.write_dropped, concealed=self.concealed,
            silent_out=self.silent_out, flows=self.flows, skipped=self.skipped,
            digits=self._detector.digits if self._detector else 0,
            down_wait_ms=None if down is None else round(down * 1000, 2),
            up_wait_ms=None if up is None else round(up * 1000, 2),
            downlink=self.downlink.stats(), uplink=self.uplink.stats())

    # --- state ------------------------------------------------------------------------
    def _set_state(self, new: AudioState, reason: str) -> None:
        with self._lock:
            old = self._state
            if old is new or old in (AudioState.STOPPED, AudioState.LOST):
                return
            self._state = new
        log.info("audio %s: %s -> %s (%s)", self.name, old.value, new.value, reason)
        if self._on_state is not None:
            try:
                self._on_state(AudioStateChange(self.name, old, new, reason))
            except Exception:
                log.exception("audio %s: state listener failed", self.name)

    def _close_fds(self) -> None:
        # Under the lock: the thread reads self._fd only through its own copy and stops
        # touching it once _stopping is set or it has ended.
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = None
        self._wake_r = self._wake_w = -1

    # --- the thread -------------------------------------------------------------------
    def _run(self) -> None:
        if self._thread_init is not None:
            try:
                self._thread_init()
            except Exception:
                log.exception("audio %s: thread_init failed", self.name)
        try:
            reason = self._loop()
        except Exception as exc:  # a bug must not kill the box; the line sees LOST
            log.exception("audio %s: pump crashed", self.name)
            reason = f"crashed: {exc}"
        self.downlink.active = self.uplink.active = False
        if reason:
            self._set_state(AudioState.LOST, reason)
            with self._lock:
                self._close_fds()

    def _loop(self) -> str:
        """Pump until stopped ('') or the tty is gone (the reason)."""
        fd, wake = self._fd, self._wake_r
        if fd is None or self._stopping.is_set():
            return ""
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        poller.register(wake, select.POLLIN)
        while not self._stopping.is_set():
            flowing = self._state is AudioState.FLOWING
            events = poller.poll(int((FLOW_GAP_S if flowing else 0.5) * 1000))
            if self._stopping.is_set():
                return ""
            now = self._clock()
            for got_fd, mask in events:
                if got_fd != fd:
                    continue
                if mask & select.POLLNVAL:
                    return "tty closed"
                if mask & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        data = os.read(fd, 4096)
                    except BlockingIOError:
                        if mask & (select.POLLHUP | select.POLLERR):
                            # An error or hang-up that reads nothing would spin this loop.
                            return "tty error"
                        continue
                    except OSError as exc:
                        return f"tty read failed: {exc.strerror}"
                    if not data:
                        return "tty gone (end of file)"
                    gone = self.received(fd, data, now)
                    if gone:
                        return gone
            if flowing and now - self._last_rx > FLOW_GAP_S:
                self._flow_stopped()
        return ""

    def received(self, fd: int, data: bytes, now: float) -> str:
        """The thread's work on bytes read from the tty at `now`: cut frames, feed the
        downlink, answer each frame with an uplink frame written to fd. Returns why the
        tty is gone, or ''. Public so drift can be simulated on a fake clock."""
        self.bytes_in += len(data)
        self._last_rx = now
        acc = self._acc
        acc.extend(data)
        size = self.frame_size
        if self._state is not AudioState.FLOWING and len(acc) >= 2 * size:
            # Audio that queued in the tty before we listened (the path was armed before the
            # pump started): stale, and answering each frame at once would park as many
            # uplink frames in the modem's buffer, as standing latency for the whole call.
            stale = len(acc) // size - 1
            del acc[:stale * size]
            self.skipped += stale
        while len(acc) >= size:
            frame = bytes(acc[:size])
            del acc[:size]
            if self._state is not AudioState.FLOWING:
                self._flow_started()
            self.frames_in += 1
            self._downlink(frame, now)
            gone = self._uplink(fd, now)
            if gone:
                return gone
        return ""

    def _flow_started(self) -> None:
        # A new call (or the path just armed): nothing of the last one may leak into it.
        self.flows += 1
        self.downlink.clear()
        self.uplink.clear()
        self._pending.clear()
        self._last_up = None
        self._down_drift.reset(self.downlink)
        self._up_drift.reset(self.uplink)
        if self._detector is not None:
            self._detector.reset()
        self.downlink.active = True
        self._set_state(AudioState.FLOWING, "modem audio")

    def _flow_stopped(self) -> None:
        self.downlink.active = False
        # A partial frame left over would shift every sample of the next call by its length.
        self._acc.clear()
        self._set_state(AudioState.IDLE, "no modem audio")

    def _downlink(self, frame: bytes, now: float) -> None:
        if self._detector is not None:
            digit = self._detector.feed(frame)
            if digit is not None:
                self._digit(digit)
        ring = self.downlink
        ring.push(frame)
        if now - ring.last_pop > STALE_S:
            # Not bridged: keep only the newest frame, so a later bridge starts fresh.
            ring.keep_newest(1)
            self._down_drift.reset(ring)
            return
        adjust = self._down_drift.tick(ring)
        if adjust > 0:
            ring.repeat(frame)
        elif adjust < 0:
            ring.trim(-adjust)

    def _uplink(self, fd: int, now: float) -> str:
        ring = self.uplink
        live = now - ring.last_push <= STALE_S
        ring.active = live
        frame: Frame
        if not live:
            # The bridge let go (a prompt ended, the peer left): what it sent before that is
            # still owed to the modem (the end of a prompt), then silence.
            self._up_drift.reset(ring)
            taken = ring.take()
            if taken is None:
                frame = ring.silence
                self.silent_out += 1
            else:
                frame = taken
            self._last_up = None
        else:
            adjust = self._up_drift.tick(ring)
            if adjust < 0:
                ring.trim(-adjust)
            taken = None if adjust > 0 and self._last_up is not None else ring.take()
            if taken is None:
                # The bridge's frame is late (or a repeat is due): say the last one again
                # rather than a click of silence.
                if adjust > 0:
                    ring.repeated += 1
                else:
                    self.concealed += 1
                frame = self._last_up if self._last_up is not None else ring.silence
            else:
                frame = taken
            self._last_up = frame
        return self._write(fd, frame)

    def _write(self, fd: int, frame: Frame) -> str:
        pending = self._pending
        if len(pending) >= MAX_PENDING_FRAMES * self.frame_size:
            self.write_dropped += 1  # the modem is not reading: drop whole frames, newest
        else:
            pending.extend(frame)
            self.frames_out += 1
        try:
            written = os.write(fd, pending)
        except BlockingIOError:
            return ""
        except OSError as exc:
            return f"tty write failed: {exc.strerror}"
        # A partial write keeps its tail first in line, so the byte stream stays aligned.
        del pending[:written]
        self.bytes_out += written
        return ""

    def _digit(self, digit: str) -> None:
        log.info("audio %s: in-band DTMF %s", self.name, digit)
        for listener in list(self._digit_listeners):
            try:
                listener(digit)
            except Exception:
                log.exception("audio %s: digit listener failed", self.name)
