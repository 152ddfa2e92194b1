"""Port legs: a GSM modem's PCM as a leg of the conference bridge (an AudioMediaPort).

The bridge's clock thread calls `onFrameRequested`/`onFrameReceived` 50 times a second
with the GIL taken, and while one runs the whole bridge waits (pjsua2-notes.md). So they
only pop and push the rings of an `hw.audio` pump: no I/O, no locks, no logging on the hot
path, silence on underrun, and never an exception into SWIG (counted instead).
`bytes(frame.buf)` walks a SWIG iterator (200-380 us a frame); `copy_to_bytearray` and
`assign_from_bytes` are single memcpys in our build.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import pjsua2 as pj

from .events import MediaStats

log = logging.getLogger(__name__)


class RingLike(Protocol):
    """The half of hw.audio.FrameRing a port leg uses."""

    frame_size: int
    silence: bytes

    def pop(self) -> bytes | bytearray:
        """The oldest frame, or silence."""
        ...

    def push(self, frame: bytes | bytearray) -> None:
        """Append a frame (dropping the oldest when full)."""
        ...


class PortAudio(Protocol):
    """What open_port needs: the rings of a running pump (hw.audio.SerialAudio fits)."""

    rate: int
    downlink: RingLike  # modem -> box: the port pops it
    uplink: RingLike  # box -> modem: the port pushes it

    def add_digit_listener(self, listener: Any) -> Any:
        """Call listener(digit) per in-band digit; returns a remover."""
        ...


class PortLeg(pj.AudioMediaPort):
    """One modem's audio in the bridge; a leg for Bridges like a SIP call's stream."""

    def __init__(self, leg_id: str, audio: PortAudio) -> None:
        super().__init__()
        self.leg_id = leg_id
        self.audio = audio
        self._pop = audio.downlink.pop
        self._push = audio.uplink.push
        self._size = audio.uplink.frame_size
        self._silence = audio.uplink.silence
        self.requested = 0
        self.received = 0
        self.empty_received = 0  # frames the bridge had nothing for (nobody talks to us)
        self.errors = 0
        self.remove_digits: Any = None

    def open(self) -> None:
        """Register the port with the conference bridge (owner thread)."""
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, self.audio.rate, 1, 20000, 16)
        self.createPort(f"gsm-{self.leg_id}", fmt)

    def destroy(self) -> None:
        """Unregister from the bridge and free the C++ port, while this object is alive.

        Left to garbage collection, the C++ destructor would run while this Python object
        is already being freed, and the bridge's clock thread can still be inside a
        callback on it (the destructor waits for that callback with the GIL released).
        Deleted explicitly, the object is intact until the port is gone. Owner thread
        only; no pjsua2 call on this object afterwards.
        """
        if self.remove_digits is not None:
            self.remove_digits()
            self.remove_digits = None
        pj.AudioMediaPort.__swig_destroy__(self)

    # --- what Bridges asks of a leg -----------------------------------------------------
    def audio_port(self) -> tuple[Any | None, bool]:
        """The port itself (always up, never held)."""
        return self, False

    def media_stats(self) -> MediaStats:
        """Bridge wiring and the rings' counters."""
        try:
            info = self.getPortInfo()
            slot, listeners = int(info.portId), tuple(int(x) for x in info.listeners)
        except pj.Error:
            slot, listeners = -1, ()
        counters: dict[str, Any] = {
            "requested": self.requested, "received": self.received,
            "empty_received": self.empty_received, "callback_errors": self.errors}
        stats = getattr(self.audio, "stats", None)
        if callable(stats):
            try:
                snap = stats()
                counters.update(_flat(snap))
            except Exception:
                log.exception("port %s: audio stats failed", self.leg_id)
        return MediaStats(self.leg_id, slot=slot, listeners=listeners, kind="port",
                          rx_packets=self.requested, tx_packets=self.received,
                          port=counters)

    # --- the bridge clock thread: pop/push only ------------------------------------------
    def onFrameRequested(self, frame: Any) -> None:
        try:
            self.requested += 1
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf.assign_from_bytes(self._pop())
        except Exception:
            self.errors += 1

    def onFrameReceived(self, frame: Any) -> None:
        try:
            self.received += 1
            buf = frame.buf
            size = buf.size()
            if size != self._size or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
                # Nobody transmits to us (a NONE frame): the modem still needs its frames.
                self.empty_received += 1
                self._push(self._silence)
                return
            out = bytearray(size)
            buf.copy_to_bytearray(out)
            self._push(out)
        except Exception:
            self.errors += 1


def _flat(snap: Any) -> dict[str, Any]:
    """A pump's stats dataclass as flat JSON-friendly counters (rings prefixed)."""
    out: dict[str, Any] = {}
    for name, value in vars(snap).items():
        if hasattr(value, "__dataclass_fields__"):
            for sub, v in vars(value).items():
                out[f"{name}_{sub}"] = v
        elif hasattr(value, "value"):
            out[name] = value.value  # an enum
        else:
            out[name] = value
    return out
