"""SIM line calls as engine legs, so the switchboard routes and bridges them like SIP calls.

The modem does the signalling (ATD, ATA, +CLCC) and `hw.audio.SerialAudio` moves the PCM;
this adapter makes one call look like one engine leg: an incoming GSM call is an INCOMING
LegEvent carrying the trusted `x-pbx-line` (and `x-pbx-number`, the SIM's own number when
known) headers, so the switchboard routes it through that number's call flow; a dial of
`line:<key>/<number>` (what outbound routing hands the switchboard for a SIM line) is an
outgoing call. When a call becomes active its audio tty is opened and given to the engine
as a port leg under the same leg id, before CONFIRMED is reported, so a bridge that follows
the answer finds the audio in place. Digits: in-band ones reach the engine from the pump,
a bridged peer's reach the modem through `send_dtmf` (AT+VTS or ^DTMF).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hw.audio import AudioError, SerialAudio
from hw.modem.profiles import DtmfDetection

from ..engine import DtmfEvent, Engine, EngineError, LegEvent, LegInfo, LegState
from ..engine.events import Direction
from .base import CallStateChanged, DtmfReceived, IncomingCall, LineCall, LineCallState
from .manager import LineManager

log = logging.getLogger(__name__)

SCHEME = "line"
ACTIVE_WAIT_S = 10.0  # ATA to an active call (the network confirms within a second or two)
_STATES = {
    LineCallState.DIALING: LegState.CALLING,
    LineCallState.RINGING: LegState.INCOMING,
    LineCallState.ALERTING: LegState.EARLY,
    LineCallState.ACTIVE: LegState.CONFIRMED,
    LineCallState.ENDED: LegState.DISCONNECTED,
}


WITHHELD = ";withheld"


def parse_target(uri: str) -> tuple[str, str, bool]:
    """`line:<key>/<number>[;withheld]` -> (key, number, withheld); ValueError otherwise."""
    if not uri.startswith(SCHEME + ":"):
        raise ValueError(f"not a line URI: {uri!r}")
    withheld = uri.endswith(WITHHELD)
    if withheld:
        uri = uri[:-len(WITHHELD)]
    key, sep, number = uri[len(SCHEME) + 1:].partition("/")
    if not sep or not key or not number:
        raise ValueError(f"a line URI is line:<key>/<number>, not {uri!r}")
    return key, number, withheld


def target(key: str, number: str, *, withheld: bool = False) -> str:
    """The dial URI of `number` on SIM line `key` (withheld: our number not shown)."""
    return f"{SCHEME}:{key}/{number}" + (WITHHELD if withheld else "")


@dataclass
class _Leg:
    leg_id: str
    call: LineCall | None
    direction: Direction
    remote: str
    headers: dict[str, str]
    audio: SerialAudio | None = None
    undo: Callable[[], None] | None = None
    local_end: bool = False
    reported: LegState | None = None
    # State changes are handled one at a time, in order (opening the audio awaits).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LineLegs:
    """The engine's `ExternalLegs` for SIM lines."""

    scheme = SCHEME

    def __init__(self, engine: Engine, lines: LineManager) -> None:
        self.engine = engine
        self.lines = lines
        self._legs: dict[str, _Leg] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> Callable[[], None]:
        """Start taking line calls; returns the detach function."""
        undo_events = self.lines.subscribe(self._on_line_event)
        undo_engine = self.engine.add_external(self)

        def detach() -> None:
            undo_events()
            undo_engine()

        return detach

    def owns(self, leg_id: str) -> bool:
        """Whether leg_id is a SIM line call."""
        return leg_id in self._legs

    # --- the switchboard's commands ----------------------------------------------------
    async def dial(self, uri: str, leg_id: str) -> str:
        """Place a call on a SIM line; states follow as LegEvents."""
        try:
            key, number, withheld = parse_target(uri)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        leg = _Leg(leg_id, None, Direction.OUTBOUND, number, {"x-pbx-line": key})
        self._legs[leg_id] = leg
        self._spawn(self._place(leg, key, number, withheld))
        return leg_id

    async def _place(self, leg: _Leg, key: str, number: str, withheld: bool) -> None:
        line = self.lines.get(key)
        if line is None:
            self._report(leg, LegState.DISCONNECTED, 404, "no such line")
            return
        self._report(leg, LegState.CALLING, 0)
        try:
            call = await line.dial(number, withhold=withheld)
        except Exception as exc:
            log.warning("line %s: dialling %s failed: %s", key, number, exc)
            self._report(leg, LegState.DISCONNECTED, 503, str(exc))
            return
        if leg.local_end:  # hung up while the modem was dialling
            await _quiet(call.hangup())
        self._follow(leg, call)

    async def answer(self, leg_id: str, code: int) -> None:
        """Answer an incoming GSM call (200); ringing needs nothing (the network rings)."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.call is None:
            raise EngineError(f"no such line leg {leg_id}")
        if code != 200:
            return
        call = leg.call
        await call.answer()
        await call.wait_state(LineCallState.ACTIVE, LineCallState.ENDED, timeout=ACTIVE_WAIT_S)
        if call.state is LineCallState.ACTIVE:
            await self._open_audio(leg)

    async def hangup(self, leg_id: str, code: int, reason: str) -> None:
        """End the call on the modem (ATH)."""
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        leg.local_end = True
        if leg.call is not None:
            await _quiet(leg.call.hangup())

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        """Digits the bridged peer pressed, to the far end of the GSM call."""
        leg = self._legs.get(leg_id)
        if leg is not None and leg.call is not None and not leg.call.ended:
            await leg.call.send_dtmf(digits)

    # --- the lines' events -------------------------------------------------------------
    def _on_line_event(self, event: Any) -> None:
        if isinstance(event, IncomingCall):
            line = self.lines.get(event.line)
            own = (line.info.get("own_number") if line is not None else None) or ""
            leg_id = f"gsm-{event.line}-{next(self._ids)}"
            headers = {"x-pbx-line": event.line}
            if own:
                headers["x-pbx-number"] = own
            leg = _Leg(leg_id, event.call, Direction.INBOUND, event.caller or "anonymous",
                       headers)
            self._legs[leg_id] = leg
            self._follow(leg, event.call)

    def _follow(self, leg: _Leg, call: LineCall) -> None:
        """Report the call's states from now on (and the one it is in)."""
        leg.call = call

        def changed(event: Any) -> None:
            if isinstance(event, CallStateChanged):
                self._spawn(self._changed(leg, event.new))
            elif isinstance(event, DtmfReceived) and leg.reported is not LegState.DISCONNECTED:
                # The modem's own detector heard a key (Quectel, SIMCom): the same event
                # as an in-band digit, so menus and "press 1" work on every modem.
                self.engine.inject(DtmfEvent(leg.leg_id, event.digit))

        leg.undo = call.events.subscribe(changed)
        self._spawn(self._changed(leg, call.state))

    async def _changed(self, leg: _Leg, state: LineCallState) -> None:
        call = leg.call
        assert call is not None
        async with leg.lock:
            if state is LineCallState.ACTIVE:
                await self._open(leg)
            elif state is LineCallState.ENDED:
                await self._close(leg)
                self._report(leg, LegState.DISCONNECTED, call.sip_code or 200, call.detail)
                return
            self._report(leg, _STATES[state], 0)

    async def _open_audio(self, leg: _Leg) -> None:
        """The call's audio into the bridge as a port leg (once)."""
        async with leg.lock:
            await self._open(leg)

    async def _open(self, leg: _Leg) -> None:
        call = leg.call
        if leg.audio is not None or call is None or not call.audio_device:
            return
        line = self.lines.get(call.line)
        inband = (line is not None and line.port is not None
                  and line.port.profile.dtmf_detection is DtmfDetection.INBAND)
        engine = self.engine
        audio = SerialAudio(call.audio_device, name=leg.leg_id, detect_dtmf=inband,
                            thread_init=lambda: engine.register_thread("audio"))
        try:
            audio.start()
            leg.audio = audio
            await engine.open_port(leg.leg_id, audio)
        except (AudioError, EngineError) as exc:
            log.error("line %s: no audio for call %s: %s", call.line, leg.leg_id, exc)

    async def _close(self, leg: _Leg) -> None:
        audio, leg.audio = leg.audio, None
        if leg.undo is not None:
            leg.undo()
        if audio is not None:
            await _quiet(self.engine.close_port(leg.leg_id))
            await asyncio.get_running_loop().run_in_executor(None, audio.stop)

    def _report(self, leg: _Leg, state: LegState, code: int, reason: str = "") -> None:
        if leg.reported is state or leg.reported is LegState.DISCONNECTED:
            return
        leg.reported = state
        side = "local" if leg.local_end else "remote"
        line = leg.headers["x-pbx-line"]
        info = LegInfo(
            leg.leg_id, leg.direction, state, local_uri=f"sip:{line}@line",
            remote_uri=f"sip:{leg.remote}@{line}",
            request_user=leg.headers.get("x-pbx-number", line), sip_code=code,
            reason=reason, media_active=leg.audio is not None,
            hangup_side=side if state is LegState.DISCONNECTED else "",
            headers=dict(leg.headers))
        if state is LegState.DISCONNECTED:
            self._legs.pop(leg.leg_id, None)
        self.engine.inject(LegEvent(info))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Hang up every line call (at shutdown) and close their audio."""
        for leg in list(self._legs.values()):
            leg.local_end = True
            if leg.call is not None:
                await _quiet(leg.call.hangup())
            await self._close(leg)


class SimLineTargets:
    """Outbound routing's way to dial a SIM line: `line:<key>/<number>` while it is ready."""

    def __init__(self, lines: LineManager) -> None:
        self.lines = lines

    def target(self, line: str, kind: str, attempt: Any) -> Any:
        """The dial target, or None while the SIM cannot take a call (then: next line)."""
        from ..ringing import OutsideAttempt
        from .base import LineState

        sim = self.lines.get(line)
        if kind != "sim" or sim is None or sim.state is not LineState.READY:
            return None
        # A SIM cannot show another number; what a caller-ID rule can do is withhold it.
        withheld = bool(attempt.caller_id.withheld)
        return OutsideAttempt(target(line, attempt.number, withheld=withheld), line, {})


async def _quiet(aw: Any) -> None:
    try:
        await aw
    except Exception as exc:
        log.debug("line call command failed: %s", exc)
