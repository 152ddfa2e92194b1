"""The switchboard: connects an inbound leg to whoever it is for.

This is the smallest honest back-to-back user agent: the inbound leg rings,
every contact of the target is dialled at once, the first to answer is
bridged and the others are cancelled; busy, offline, unknown and no-answer
end with the right SIP code.  The routing core of later issues replaces
`Directory` lookups with full call flows; this keeps the mechanics
(ring sets, answer, bridge, teardown, call records) in one place.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from . import features
from .engine import (
    Engine,
    EngineError,
    EngineEvent,
    LegEvent,
    LegInfo,
    LegState,
    ReplacedEvent,
    TransferEvent,
)
from .features import Feature, FeatureCall
from .presence import NullPresence, Presence
from .transfers import Bridge, Transfer

log = logging.getLogger(__name__)

RING_TIMEOUT_S = 60.0


class Disposition(enum.Enum):
    """How a call ended, as the call records say it."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class Directory(Protocol):
    """Who a dialled user part reaches (a snapshot reloaded on SIGHUP)."""

    def contacts(self, user: str) -> list[str] | None:
        """SIP URIs to ring for user; [] if known but offline; None if unknown."""
        ...

    def records(self, user: str) -> bool:
        """Whether calls to user are recorded."""
        ...

    def owner_of(self, device: str) -> str | None:
        """The extension a device (SIP username) belongs to."""
        ...

    def same_group(self, a: str, b: str) -> bool:
        """Whether two extensions share a pickup group."""
        ...


@dataclass
class CallRecord:
    """One call through the switchboard, as it will be written down."""

    call_id: str
    inbound_leg: str
    caller: str
    dialled: str
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    disposition: Disposition | None = None
    hangup_side: str = ""
    sip_code: int = 0
    answered_leg: str | None = None
    answered_contact: str = ""
    answered_extension: str = ""  # set when someone else's phone picked the call up
    transferred_to: str = ""  # the Refer-To target, when a party transferred the call away
    caller_device: str = ""  # the calling desk phone's SIP username ("" from outside)
    ringing: dict[str, str] = field(default_factory=dict)  # leg id -> contact uri
    rang: list[str] = field(default_factory=list)  # every contact dialled, in order
    recording: str | None = None  # path relative to the data directory, once answered
    failures: list[int] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class CallLog(Protocol):
    """Where call records go (written at start, completed at the end)."""

    def started(self, call: CallRecord) -> None:
        """A call began."""
        ...

    def finished(self, call: CallRecord) -> None:
        """A call ended."""
        ...


def final_code(failures: list[int]) -> int:
    """The reply for the caller when every contact failed."""
    if not failures:
        return 480
    if 486 in failures or 600 in failures:
        return 486
    if all(code in (408, 480, 0) for code in failures):
        return 480
    return min(failures)


def disposition_for(code: int) -> Disposition:
    """Map the final failure code to a disposition."""
    if code in (486, 600):
        return Disposition.BUSY
    if code in (408, 480):
        return Disposition.NO_ANSWER
    return Disposition.FAILED


class Switchboard:
    """Reacts to engine events and drives legs through the engine."""

    def __init__(self, engine: Engine, directory: Directory, calllog: CallLog,
                 now: Callable[[], datetime] | None = None,
                 ring_timeout_s: float = RING_TIMEOUT_S,
                 data_dir: Path | None = None, presence: Presence | None = None) -> None:
        self.engine = engine
        self.directory = directory
        self.calllog = calllog
        self.accepting = True
        self.ring_timeout_s = ring_timeout_s
        self.data_dir = data_dir  # recordings go under <data_dir>/recordings; None: never
        # Busy lamps (the edge's notifier). Not `or`: an empty LineStates is falsy.
        self.presence = presence if presence is not None else NullPresence()
        self._now = now or (lambda: datetime.now(UTC))
        self._calls: dict[str, CallRecord] = {}
        self._by_leg: dict[str, str] = {}
        self._transfers: dict[str, Transfer] = {}  # by each of its three legs
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> Callable[[], None]:
        """Start receiving engine events; returns the detach function."""
        return self.engine.subscribe(self.on_event)

    def active_calls(self) -> list[CallRecord]:
        """Calls in progress."""
        return list(self._calls.values())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_event(self, event: EngineEvent) -> None:
        """Engine event entry point (runs on the event loop)."""
        if isinstance(event, TransferEvent):
            self._transfer_started(event)
            return
        if isinstance(event, ReplacedEvent):
            self._replaced(event)
            return
        if not isinstance(event, LegEvent) or event.media_changed:
            return
        leg = event.leg
        transfer = self._transfers.get(leg.leg_id)
        if transfer is not None:
            self._transfer_changed(transfer, leg)
            return
        call_id = self._by_leg.get(leg.leg_id)
        log.debug("leg %s %s (code %s) -> call %s", leg.leg_id, leg.state.value,
                  leg.sip_code, call_id)
        if call_id is None:
            if leg.state is LegState.INCOMING:
                # Claim the leg now: pjsua2 reports INCOMING more than once.
                self._by_leg[leg.leg_id] = ""
                self._spawn(self._inbound(leg))
            return
        if not call_id:
            return  # still being set up by _inbound
        call = self._calls.get(call_id)
        if call is None:
            return
        if leg.leg_id == call.inbound_leg:
            self._spawn(self._inbound_changed(call, leg))
        else:
            self._spawn(self._outbound_changed(call, leg))

    async def _inbound(self, leg: LegInfo) -> None:
        if not self.accepting:
            await self._safe_hangup(leg.leg_id, 503, "Shutting down")
            return
        feature = features.parse(leg.request_user)
        if feature is not None:
            await self._pickup(leg, feature)
            return
        caller = leg.remote_uri
        if "x-pbx-hairpin" in leg.headers:
            # A transfer's new leg, back from the edge: the caller is the transferee.
            caller = next((t.caller for t in self._transfers.values()
                           if t.target_call_id == leg.sip_call_id and t.caller), caller)
        call = CallRecord(
            call_id=str(uuid.uuid4()),
            inbound_leg=leg.leg_id,
            caller=caller,
            dialled=leg.request_user,
            started_at=self._now(),
            caller_device=leg.headers.get("x-pbx-device", ""),
        )
        self._calls[call.call_id] = call
        self._by_leg[leg.leg_id] = call.call_id
        self.calllog.started(call)
        targets = self.directory.contacts(leg.request_user)
        if targets is None:
            await self._fail(call, 404)
            return
        if not targets:
            await self._fail(call, 480)
            return
        # Before any await: the caller may hang up meanwhile, and its end must come after.
        self.presence.ringing(call.call_id, call.dialled, leg.headers.get("x-pbx-device", ""))
        await self._safe(self.engine.answer(leg.leg_id, 180))
        for index, uri in enumerate(targets):
            # Claim the leg id before dialling: a fast far end answers before
            # the dial command's result is back on this loop.
            out = f"{call.call_id[:8]}-{index}"
            call.ringing[out] = uri
            call.rang.append(uri)
            self._by_leg[out] = call.call_id
            try:
                await self.engine.dial(uri, leg_id=out)
            except EngineError as exc:
                log.warning("call %s: dialling %s failed: %s", call.call_id, uri, exc)
                call.ringing.pop(out, None)
                self._by_leg.pop(out, None)
                call.failures.append(500)
        if not call.ringing:
            await self._fail(call, final_code(call.failures))
            return
        call.timer = asyncio.get_running_loop().call_later(
            self.ring_timeout_s, lambda: self._spawn(self._no_answer(call)))

    def _ringing_call(self, picker: str, feature: FeatureCall) -> CallRecord | None:
        """The oldest unanswered call this pickup may take."""
        candidates = [
            call for call in self._calls.values()
            if call.answered_leg is None and call.disposition is None and call.ringing
            and (call.dialled == feature.target if feature.feature is Feature.DIRECTED_PICKUP
                 else self.directory.same_group(picker, call.dialled))]
        return min(candidates, key=lambda c: c.started_at, default=None)

    async def _pickup(self, leg: LegInfo, feature: FeatureCall) -> None:
        """Answer a call ringing elsewhere on the phone that dialled the pickup code."""
        picker = self.directory.owner_of(leg.headers.get("x-pbx-device", ""))
        if picker is None:
            self._by_leg.pop(leg.leg_id, None)
            await self._safe_hangup(leg.leg_id, 403, "Pickup is for desk phones")
            return
        call = self._ringing_call(picker, feature)
        if call is None:
            log.info("pickup by %s (%s): nothing ringing", picker, feature.feature.value)
            self._by_leg.pop(leg.leg_id, None)
            await self._safe_hangup(leg.leg_id, 404, "Nothing to pick up")
            return
        log.info("call %s to %s picked up by %s", call.call_id, call.dialled, picker)
        self._by_leg[leg.leg_id] = call.call_id
        call.answered_leg = leg.leg_id
        call.answered_at = self._now()
        call.answered_contact = leg.remote_uri
        call.answered_extension = picker
        call.rang.append(leg.remote_uri)
        self.presence.answered(call.call_id, picker)
        if call.timer:
            call.timer.cancel()
        ringing = list(call.ringing)
        call.ringing.clear()
        for out in ringing:
            await self._safe_hangup(out)
        await self._safe(self.engine.answer(leg.leg_id, 200))
        await self._safe(self.engine.answer(call.inbound_leg, 200))
        await self._safe(self.engine.bridge(call.inbound_leg, leg.leg_id,
                                            self._recording_path(call)))

    def _recording_path(self, call: CallRecord) -> str | None:
        """Where this call is recorded (both parties mixed), or None."""
        if self.data_dir is None or not self.directory.records(call.dialled):
            return None
        day = (call.answered_at or call.started_at).strftime("%Y/%m/%d")
        relative = f"recordings/{day}/{call.call_id}.wav"
        (self.data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        call.recording = relative
        return str(self.data_dir / relative)

    async def _no_answer(self, call: CallRecord) -> None:
        if call.answered_leg is None and call.call_id in self._calls:
            for out in list(call.ringing):
                await self._safe_hangup(out)
            call.ringing.clear()
            await self._fail(call, 480)

    async def _inbound_changed(self, call: CallRecord, leg: LegInfo) -> None:
        if leg.state is not LegState.DISCONNECTED:
            return
        # Decide the record before awaiting anything: the other legs' events
        # arrive while we hang them up.
        if call.disposition is None:
            call.disposition = (Disposition.ANSWERED if call.answered_at
                                else Disposition.CANCELLED)
            call.hangup_side = "caller" if leg.hangup_side == "remote" else "system"
            call.sip_code = 200 if call.answered_at else 487
        others = list(call.ringing) + ([call.answered_leg] if call.answered_leg else [])
        self._finish(call)
        for out in others:
            await self._safe_hangup(out)

    async def _outbound_changed(self, call: CallRecord, leg: LegInfo) -> None:
        if leg.state is LegState.CONFIRMED and call.answered_leg is None:
            call.answered_leg = leg.leg_id
            call.answered_at = self._now()
            call.answered_contact = call.ringing.pop(leg.leg_id, "")
            self.presence.answered(call.call_id, call.dialled)
            if call.timer:
                call.timer.cancel()
            for out in list(call.ringing):
                await self._safe_hangup(out)
            call.ringing.clear()
            await self._safe(self.engine.answer(call.inbound_leg, 200))
            record_to = self._recording_path(call)
            await self._safe(self.engine.bridge(call.inbound_leg, leg.leg_id, record_to))
            return
        if leg.state is LegState.CONFIRMED and leg.leg_id != call.answered_leg:
            # Answered in the same instant as another phone or a pickup: too late.
            self._by_leg.pop(leg.leg_id, None)
            await self._safe_hangup(leg.leg_id)
            return
        if leg.state is not LegState.DISCONNECTED:
            return
        self._by_leg.pop(leg.leg_id, None)
        if leg.leg_id == call.answered_leg:
            if call.disposition is None:
                call.disposition = Disposition.ANSWERED
                call.hangup_side = "callee" if leg.hangup_side == "remote" else "system"
                call.sip_code = 200
            await self._safe_hangup(call.inbound_leg)
            return
        if leg.leg_id in call.ringing:
            call.ringing.pop(leg.leg_id)
            call.failures.append(leg.sip_code)
            if not call.ringing and call.answered_leg is None:
                await self._fail(call, final_code(call.failures))

    async def _fail(self, call: CallRecord, code: int) -> None:
        call.disposition = disposition_for(code)
        call.sip_code = code
        call.hangup_side = "system"
        if call.timer:
            call.timer.cancel()
        await self._safe_hangup(call.inbound_leg, code)

    def _finish(self, call: CallRecord) -> None:
        if self._calls.pop(call.call_id, None) is None:
            return
        for leg_id in [call.inbound_leg, call.answered_leg, *call.ringing]:
            if leg_id:
                self._by_leg.pop(leg_id, None)
        if call.timer:
            call.timer.cancel()
        call.ended_at = self._now()
        self.presence.ended(call.call_id)
        self.calllog.finished(call)

    # --- transfers ------------------------------------------------------------------
    def _transfer_started(self, event: TransferEvent) -> None:
        """A party of an answered call sent REFER: its call record ends, the transfer starts."""
        call = self._calls.get(self._by_leg.get(event.transferor) or "")
        if call is None or call.answered_leg is None:
            log.warning("transfer from leg %s outside an answered call", event.transferor)
            self._spawn(self._safe_hangup(event.new_leg))
            return
        by_callee = event.transferor == call.answered_leg
        transferee = call.inbound_leg if by_callee else call.answered_leg
        transfer = Transfer(
            transferee=transferee, transferor=event.transferor, target_leg=event.new_leg,
            target=event.target,
            caller=call.caller if by_callee else call.answered_contact)
        call.disposition = Disposition.ANSWERED
        call.hangup_side = "callee" if by_callee else "caller"
        call.sip_code = 200
        call.transferred_to = event.target
        self._finish(call)
        # The transferee is still on the phone: its busy lamp stays lit through the transfer.
        transferee_ext: str | None
        if by_callee:
            transferee_ext = (self.directory.owner_of(call.caller_device)
                              if call.caller_device else None)
        else:
            transferee_ext = call.answered_extension or call.dialled
        if transferee_ext:
            transfer.lamp = transferee_ext
            self.presence.ringing(transfer.presence_id, transferee_ext)
            self.presence.answered(transfer.presence_id, transferee_ext)
        for leg_id in transfer.legs():
            self._transfers[leg_id] = transfer
        log.info("call %s: %s transfers %s to %s", call.call_id, event.transferor,
                 transferee, event.target)
        self._spawn(self._safe(self.engine.play(transferee, "ringback")))

    def _transfer_changed(self, transfer: Transfer, leg: LegInfo) -> None:
        if leg.leg_id == transfer.target_leg and leg.sip_call_id:
            transfer.target_call_id = leg.sip_call_id
        actions = transfer.step(leg.leg_id, leg.state)
        if leg.state is LegState.DISCONNECTED:
            self._transfers.pop(leg.leg_id, None)
            if leg.leg_id == transfer.transferee and transfer.lamp:
                self.presence.ended(transfer.presence_id)
        for action in actions:
            if isinstance(action, Bridge):
                self._spawn(self._safe(self.engine.bridge(action.a, action.b)))
            else:
                self._spawn(self._safe_hangup(action.leg))

    def _replaced(self, event: ReplacedEvent) -> None:
        """An attended transfer's INVITE with Replaces took over a leg of a call."""
        call = self._calls.get(self._by_leg.pop(event.old_leg, "") or "")
        if call is None:
            return
        if call.inbound_leg == event.old_leg:
            call.inbound_leg = event.new_leg
        elif call.answered_leg == event.old_leg:
            call.answered_leg = event.new_leg
        self._by_leg[event.new_leg] = call.call_id

    async def shutdown(self) -> None:
        """Stop taking calls, hang up every call and complete its record."""
        self.accepting = False
        for call in list(self._calls.values()):
            if call.disposition is None:
                # An answered call cut by shutdown was still answered; one
                # still ringing never got its outcome.
                call.disposition = (Disposition.ANSWERED if call.answered_at
                                    else Disposition.INTERRUPTED)
                call.hangup_side = "system"
            for out in list(call.ringing):
                await self._safe_hangup(out)
            if call.answered_leg:
                await self._safe_hangup(call.answered_leg)
            await self._safe_hangup(call.inbound_leg, 503)
            self._finish(call)

    async def _safe_hangup(self, leg_id: str, code: int = 0, reason: str = "") -> None:
        await self._safe(self.engine.hangup(leg_id, code, reason))

    async def _safe(self, aw: Awaitable[None]) -> None:
        try:
            await aw
        except EngineError as exc:
            # Legs vanish under us all the time (the far end hung up first).
            log.debug("engine command failed: %s", exc)
