"""The call engine as the asyncio side sees it: commands in, events out.

Only `owner` and `legs` import pjsua2; everything here hands work to the
owner thread and awaits the result, so the event loop never touches pjsua2.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .config import EngineConfig, EngineError
from .events import (
    DtmfEvent,
    EngineEvent,
    LegEvent,
    LegInfo,
    LegState,
    MediaStats,
    PromptEvent,
    ReplacedEvent,
    TransferEvent,
)

__all__ = [
    "DtmfEvent",
    "Engine",
    "EngineConfig",
    "EngineError",
    "EngineEvent",
    "LegEvent",
    "LegInfo",
    "LegState",
    "MediaStats",
    "PromptEvent",
    "ReplacedEvent",
    "TransferEvent",
]

log = logging.getLogger(__name__)

# The owner thread polls every 10 ms; two seconds without a poll means a
# callback or command is stuck and the engine is unhealthy.
STALL_LIMIT_S = 2.0


async def wav_closed(path: str, timeout: float = 2.0) -> bool:
    """Wait until pjmedia has finished a WAV file (its RIFF length is written on close).

    pjmedia closes a recorder in the conference bridge's next clock tick, after the
    command that dropped it has returned; a reader before that sees a header of zeros.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
            if len(head) == 8 and int.from_bytes(head[4:8], "little") > 0:
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            log.warning("recording %s was not closed within %.1f s", path, timeout)
            return False
        await asyncio.sleep(0.01)


class ExternalLegs(Protocol):
    """Legs whose signalling is not SIP (a SIM line's calls) but whose audio is a port leg.

    The switchboard drives them through the engine like SIP legs: `dial` with a URI of the
    handler's scheme (`line:sim1/+79161234567`), `answer`, `hangup`; the handler reports
    their states as LegEvents through `Engine.inject`.
    """

    scheme: str

    def owns(self, leg_id: str) -> bool:
        """Whether the leg is one of ours."""
        ...

    async def dial(self, uri: str, leg_id: str) -> str:
        """Place a call; returns leg_id at once, states follow as events."""
        ...

    async def answer(self, leg_id: str, code: int) -> None:
        """Answer (200) an incoming call; 180/183 need nothing on a line."""
        ...

    async def hangup(self, leg_id: str, code: int, reason: str) -> None:
        """End the call."""
        ...

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        """Send digits to the far end (the bridged peer pressed them)."""
        ...


class Engine:
    """Async facade over the pjsua2 owner thread."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._owner: Any = None
        self._handlers: list[Callable[[EngineEvent], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.info: dict[str, Any] = {}
        self._external: list[ExternalLegs] = []
        self._peers: dict[str, str] = {}  # bridged pairs, both ways (digits to external legs)
        self._tasks: set[asyncio.Task[None]] = set()
        self._recordings: dict[str, str] = {}  # leg -> the WAV file record() writes

    def add_external(self, legs: ExternalLegs) -> Callable[[], None]:
        """Let these non-SIP legs be dialled, answered and hung up through the engine."""
        self._external.append(legs)
        return lambda: self._external.remove(legs)

    def _owner_of(self, leg_id: str) -> ExternalLegs | None:
        return next((x for x in self._external if x.owns(leg_id)), None)

    def inject(self, event: EngineEvent) -> None:
        """Deliver an external leg's event as if the engine had raised it (on the loop)."""
        self._dispatch(event)

    async def start(self) -> dict[str, Any]:
        """Start pjsua2 in its owner thread; returns version, limits and codecs."""
        from .owner import Owner

        self._loop = asyncio.get_running_loop()
        loop = self._loop

        def emit(event: EngineEvent) -> None:
            loop.call_soon_threadsafe(self._dispatch, event)

        self._owner = Owner(self.config, emit)
        self._owner.start()
        try:
            self.info = await asyncio.wrap_future(self._owner.started)
        except Exception as exc:
            raise EngineError(f"the call engine failed to start: {exc}") from exc
        # The event loop's thread may run gc over pjsua2 objects: register it.
        self._owner.register_thread("asyncio")
        return self.info

    def register_thread(self, name: str) -> None:
        """Register the calling thread with pjlib (for executors, db writer)."""
        if self._owner is not None:
            self._owner.register_thread(name)

    def subscribe(self, handler: Callable[[EngineEvent], None]) -> Callable[[], None]:
        """Call handler for every engine event; returns an unsubscribe function."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def _dispatch(self, event: EngineEvent) -> None:
        if isinstance(event, LegEvent) and event.leg.state is LegState.DISCONNECTED:
            peer = self._peers.pop(event.leg.leg_id, None)
            if peer is not None and self._peers.get(peer) == event.leg.leg_id:
                del self._peers[peer]
        elif isinstance(event, DtmfEvent):
            # pjsua2 passes digits between SIP legs itself; an external leg gets them here.
            peer = self._peers.get(event.leg_id)
            external = self._owner_of(peer) if peer is not None else None
            if external is not None and peer is not None:
                task = asyncio.get_running_loop().create_task(
                    self._quiet(external.send_dtmf(peer, event.digit)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                log.exception("engine event handler %r failed", handler)

    async def run(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """Run an Owner command by name in the owner thread and await it."""
        if self._owner is None:
            raise EngineError("the engine is not running")
        method = getattr(self._owner, fn_name)
        fut = self._owner.submit(lambda: method(*args, **kwargs))
        try:
            return await asyncio.wrap_future(fut)
        except EngineError:
            raise
        except Exception as exc:
            # pjsua2.Error and the owner's own errors become one type here.
            info = exc.info() if hasattr(exc, "info") else str(exc)
            raise EngineError(f"{fn_name}: {info}") from None

    @staticmethod
    async def _quiet(aw: Any) -> None:
        try:
            await aw
        except Exception as exc:
            log.warning("digits to an external leg failed: %s", exc)

    async def answer(self, leg_id: str, code: int = 200) -> None:
        """Answer (200) or ring (180/183) an inbound leg."""
        external = self._owner_of(leg_id)
        if external is not None:
            await external.answer(leg_id, code)
            return
        await self.run("answer", leg_id, code)

    async def hangup(self, leg_id: str, code: int = 0, reason: str = "") -> None:
        """End a leg (code: the final reply for an unanswered inbound leg)."""
        external = self._owner_of(leg_id)
        if external is not None:
            await external.hangup(leg_id, code, reason)
            return
        await self.run("hangup", leg_id, code, reason)

    async def dial(self, uri: str, leg_id: str | None = None,
                   headers: dict[str, str] | None = None) -> str:
        """Place an outbound leg (with the id the caller chose, if any); returns its id."""
        for external in self._external:
            if uri.startswith(external.scheme + ":"):
                if leg_id is None:
                    raise EngineError(f"dial {uri}: a line call needs the caller's leg id")
                return await external.dial(uri, leg_id)
        return str(await self.run("dial", uri, leg_id=leg_id, headers=headers))

    async def bridge(self, a: str, b: str, record_to: str | None = None) -> None:
        """Connect two legs' audio (and record both into record_to, if given)."""
        await self.run("bridge", a, b, record_to)
        self._peers[a] = b
        self._peers[b] = a

    async def play(self, leg: str, source: str) -> None:
        """Let a leg hear "music" (on hold) or "ringback" instead of a peer."""
        await self.run("play", leg, source)

    async def play_prompt(self, leg: str, paths: Sequence[str], play_id: int) -> None:
        """Play WAV files once to a leg, instead of whatever it heard.

        PromptEvent(leg, play_id) follows when the last file has played; the caller picks
        the id before awaiting, because a very short prompt's event can arrive first. A
        prompt started before the leg's media is up starts when it is; bridging the leg,
        another prompt or `silence` ends it without an event.
        """
        await self.run("play_prompt", leg, list(paths), play_id)

    async def silence(self, leg: str, play_id: int | None = None) -> None:
        """Let a leg that is in no bridge hear nothing (ends a prompt or a tone).

        With play_id, only if that prompt is still what the leg hears: a stop sent late
        never cuts the prompt that followed.
        """
        await self.run("silence", leg, play_id)

    async def record(self, leg: str, path: str) -> None:
        """Record what a leg says (a voice message) into a WAV file."""
        await self.run("record", leg, path)
        self._recordings[leg] = path

    async def stop_record(self, leg: str) -> None:
        """Close a leg's recording; the file is complete when this returns."""
        await self.run("stop_record", leg)
        path = self._recordings.pop(leg, None)
        if path is not None:
            await wav_closed(path)

    async def open_port(self, leg_id: str, audio: Any) -> str:
        """Bridge a modem's audio as leg leg_id: `audio` is a running hw.audio.SerialAudio
        (or anything with its `rate`, `downlink`, `uplink` rings and `add_digit_listener`).

        The leg then works with bridge(), play() and recording like a SIP leg; in-band
        digits its pump detects arrive as DtmfEvent(leg_id, digit). Returns leg_id.
        """
        return str(await self.run("open_port", leg_id, audio))

    async def close_port(self, leg_id: str) -> None:
        """Take a modem's audio out of the bridge (before stopping its pump); idempotent."""
        await self.run("close_port", leg_id)

    async def set_music(self, path: str) -> None:
        """Use this WAV file as the music on hold."""
        await self.run("set_music", path)

    def set_transfer_policy(self, target_ok: Callable[[str], bool]) -> None:
        """Which Refer-To URIs a transfer may dial (called in the owner thread)."""
        if self._owner is not None:
            self._owner.transfer_target_ok = target_ok

    async def legs(self) -> list[LegInfo]:
        """Snapshots of all live legs."""
        return list(await self.run("legs"))

    async def media(self) -> list[MediaStats]:
        """RTP counters and bridge wiring of all live legs (modem ports: kind "port")."""
        return list(await self.run("media"))

    async def hangup_all(self) -> int:
        """Hang up every leg; returns the number of live legs."""
        return int(await self.run("hangup_all"))

    def healthy(self) -> bool:
        """True while the owner thread is alive and polling."""
        owner = self._owner
        if owner is None or not owner.is_alive():
            return False
        return time.monotonic() - owner.last_poll < STALL_LIMIT_S

    async def stop(self, timeout: float = 3.0) -> None:
        """Hang up everything and shut pjsua2 down in its own thread."""
        owner = self._owner
        if owner is None:
            return
        owner.stop()
        await asyncio.get_running_loop().run_in_executor(None, owner.join, timeout)
        if owner.is_alive():
            log.error("the pjsua2 owner thread did not stop within %.1f s", timeout)
        self._owner = None
