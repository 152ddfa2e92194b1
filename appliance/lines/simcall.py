"""Calls on a SIM line: what each modem report means for our call (pure), and `SimCall`.

Families tell the same story differently (Huawei ^ORIG/^CONF/^CONN/^CEND, Quectel +QIND
"ccinfo", SIMCom pushed +CLCC and VOICE CALL, everybody RING/+CLIP/NO CARRIER/BUSY). `observe`
turns each report into one `Observation`; `outcome_for` decides how a call ended. A report
that says "gone" without saying why waits briefly for a BUSY or a cause (`decisive`); an
outgoing call that still has no cause then asks the modem (AT+CEER, `release_cause`), since
Quectel and SIMCom say only NO CARRIER where Huawei's ^CEND carries the cause.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hw.modem.calls import (
    CallAlerting,
    CallConnected,
    CallEnded,
    CallerId,
    CallInfo,
    CallOriginated,
    CallResult,
    CallState,
    MissedCall,
    Ring,
    Urc,
)
from hw.modem.ceer import CeerParseError, parse_ceer_lines
from hw.modem.commands import AtError, Response
from hw.modem.results import FinalKind

from .base import LineCall, LineCallState, Outcome

log = logging.getLogger(__name__)

# A modem answers AT+CEER at once; the switchboard waits for the call's end meanwhile.
CEER_TIMEOUT_S = 1.0
# Q.850 causes (from ^CEND, AT+CEER or a scripted release) that say why a call failed.
CAUSE_OUTCOMES: dict[int, Outcome] = {
    1: Outcome.UNREACHABLE, 3: Outcome.UNREACHABLE, 17: Outcome.BUSY, 18: Outcome.NO_ANSWER,
    19: Outcome.NO_ANSWER, 20: Outcome.UNREACHABLE, 21: Outcome.REJECTED,
    27: Outcome.UNREACHABLE, 28: Outcome.UNREACHABLE, 34: Outcome.NO_NETWORK,
    38: Outcome.NO_NETWORK, 41: Outcome.NO_NETWORK, 42: Outcome.NO_NETWORK,
    47: Outcome.NO_NETWORK,
}
RESULT_OUTCOMES: dict[FinalKind, Outcome] = {
    FinalKind.BUSY: Outcome.BUSY, FinalKind.NO_ANSWER: Outcome.NO_ANSWER,
    FinalKind.NO_DIALTONE: Outcome.NO_NETWORK,
}
_STATES = {
    CallState.DIALING: LineCallState.DIALING, CallState.ALERTING: LineCallState.ALERTING,
    CallState.ACTIVE: LineCallState.ACTIVE, CallState.HELD: LineCallState.ACTIVE,
    CallState.INCOMING: LineCallState.RINGING, CallState.WAITING: LineCallState.RINGING,
}


@dataclass(frozen=True)
class Seen:
    """A call exists in this state (index and number when the report carries them)."""

    state: LineCallState
    index: int | None = None
    incoming: bool | None = None
    number: str | None = None


@dataclass(frozen=True)
class Caller:
    """The caller's number (None: withheld)."""

    number: str | None


@dataclass(frozen=True)
class Gone:
    """The call ended; result/cause when the report says why."""

    index: int | None = None
    result: FinalKind | None = None
    cause: int | None = None
    missed: bool = False  # SIMCom MISSED_CALL: about a call that rang, never ours if answered

    @property
    def decisive(self) -> bool:
        """True when this report alone says how the call ended."""
        return (self.result in RESULT_OUTCOMES
                or (self.cause is not None and self.cause in CAUSE_OUTCOMES)
                or self.cause == 16)


Observation = Seen | Caller | Gone


def observe(urc: Urc) -> Observation | None:
    """What one modem report says about the call on the line (None: nothing)."""
    if isinstance(urc, Ring):
        return Seen(LineCallState.RINGING, incoming=True)
    if isinstance(urc, CallerId):
        return Caller(None if urc.withheld else urc.number)
    if isinstance(urc, CallInfo):
        if urc.ended:
            return Gone(urc.index)
        state = _STATES.get(urc.state)
        if state is None:
            return None
        return Seen(state, urc.index, urc.incoming, urc.number or None)
    if isinstance(urc, CallOriginated):
        return Seen(LineCallState.DIALING, urc.index, False)
    if isinstance(urc, CallAlerting):
        return Seen(LineCallState.ALERTING, urc.index, False)
    if isinstance(urc, CallConnected):
        return Seen(LineCallState.ACTIVE, urc.index)
    if isinstance(urc, CallEnded):
        # ^CEND cause 16 after a call that never connected is the far end releasing it.
        return Gone(urc.index, None, urc.cause)
    if isinstance(urc, CallResult):
        return Gone(None, urc.kind)
    if isinstance(urc, MissedCall):
        return Gone(None, None, 19, missed=True)
    return None


def outcome_for(gone: Gone, *, was_active: bool, outgoing: bool, local: bool) -> Outcome:
    """How a call ended, from everything known when it did."""
    if local:
        return Outcome.NORMAL if was_active else Outcome.CANCELLED
    if was_active:
        return Outcome.NORMAL
    if not outgoing:
        return Outcome.CANCELLED  # the caller gave up (or the network did) before we answered
    if gone.result in RESULT_OUTCOMES:
        return RESULT_OUTCOMES[gone.result]
    if gone.cause is not None and gone.cause in CAUSE_OUTCOMES:
        return CAUSE_OUTCOMES[gone.cause]
    if gone.cause == 16:
        return Outcome.NO_ANSWER
    return Outcome.UNREACHABLE


def merge(first: Gone, later: Gone) -> Gone:
    """Two end reports of the same call joined (the later fills what the first lacked)."""
    return Gone(first.index if first.index is not None else later.index,
                first.result or later.result,
                first.cause if first.cause is not None else later.cause,
                first.missed and later.missed)


def wants_release_cause(gone: Gone, *, was_active: bool, outgoing: bool, local: bool) -> bool:
    """True when an outgoing call failed and its reports never said why (plain NO CARRIER)."""
    return (outgoing and not was_active and not local and gone.cause is None
            and gone.result in (None, FinalKind.NO_CARRIER))


Command = Callable[[str, float], Awaitable[Response]]


async def release_cause(command: Command, timeout: float = CEER_TIMEOUT_S) -> int | None:
    """The cause of the last release as AT+CEER tells it (None: error, timeout, no cause)."""
    try:
        resp = await command("AT+CEER", timeout)
    except AtError as exc:
        log.info("AT+CEER went unanswered (%s); the call ends without a cause", exc)
        return None
    if not resp.ok:
        return None  # firmware without +CEER: today's outcome stands
    try:
        report = parse_ceer_lines(resp.lines)
    except CeerParseError as exc:
        log.info("AT+CEER: %s", exc)
        return None
    return report.cause


Action = Callable[["SimCall"], Awaitable[None]]
DtmfAction = Callable[["SimCall", str], Awaitable[None]]


class SimCall(LineCall):
    """A call on one SIM line; the line's driver feeds it observations and runs its commands."""

    def __init__(self, line: str, *, outgoing: bool, remote: str | None,
                 state: LineCallState, audio_device: str | None,
                 answer: Action, hangup: Action, dtmf: DtmfAction) -> None:
        super().__init__(line, outgoing=outgoing, remote=remote, state=state)
        self.index: int | None = None
        self.audio_device = audio_device
        self.was_active = False
        self.caller_known = outgoing
        self.pending_end: Gone | None = None
        self.local_end = False
        self.reconcile = False  # +CLCC may end the call (not while ATD is still being sent)
        self.end_scheduled = False
        self.armed = False  # the profile's on-connected audio commands ran
        self._answer, self._hangup, self._dtmf = answer, hangup, dtmf

    async def answer(self) -> None:
        """Answer (ATA and the profile's audio arming)."""
        if self.state is not LineCallState.RINGING or self.outgoing:
            raise RuntimeError(f"call {self.call_id} is {self.state.value}, not ringing")
        await self._answer(self)

    async def hangup(self) -> None:
        """Release the call (reject when ringing, cancel when dialling)."""
        if self.ended:
            return
        self.local_end = True
        await self._hangup(self)

    async def send_dtmf(self, digits: str) -> None:
        """Send digits one by one with the profile's command (only while active)."""
        if self.state is not LineCallState.ACTIVE:
            raise RuntimeError(f"call {self.call_id} is {self.state.value}, not active")
        for digit in digits:
            await self._dtmf(self, digit)

    def apply_seen(self, seen: Seen) -> bool:
        """A state report; returns True when the call's state moved."""
        if seen.index is not None:
            self.index = seen.index
        if seen.number and not self.remote:
            self.remote = seen.number
            self.caller_known = True
        if seen.state is LineCallState.RINGING and self.state is not LineCallState.RINGING:
            return False  # a late RING for a call we already answered
        order = [LineCallState.DIALING, LineCallState.RINGING, LineCallState.ALERTING,
                 LineCallState.ACTIVE]
        if seen.state in order and self.state in order and (
                order.index(seen.state) <= order.index(self.state)):
            return False  # reports never move a call backwards
        if seen.state is LineCallState.ACTIVE:
            self.was_active = True
        return self.set_state(seen.state)

    def finish(self, gone: Gone) -> bool:
        """End the call with the outcome the reports add up to."""
        outcome = outcome_for(gone, was_active=self.was_active, outgoing=self.outgoing,
                              local=self.local_end)
        detail = f"result={gone.result.name if gone.result else '-'} cause={gone.cause}"
        return self.set_state(LineCallState.ENDED, outcome, detail)
