"""The one line interface (DESIGN.md section 3): SIM lines, SIP trunks and FXO gateways alike.

A line has a key, a kind, a state with `LineStateChanged` events, capabilities, a health
dict, and `dial(number) -> LineCall`; incoming calls arrive as `IncomingCall` events. A
`LineCall` has its own state (with events), an outcome mapped to a SIP status code, the remote
number, and answer/hangup/send_dtmf. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)


class LineState(enum.Enum):
    """Where a line is; only READY takes a new call."""

    DISABLED = "disabled"
    DOWN = "down"
    STARTING = "starting"
    READY = "ready"
    IN_CALL = "in_call"
    RESETTING = "resetting"
    FAILED = "failed"


class LineCallState(enum.Enum):
    """A call on a line: DIALING/ALERTING outgoing, RINGING incoming, then ACTIVE, ENDED."""

    DIALING = "dialing"
    RINGING = "ringing"
    ALERTING = "alerting"
    ACTIVE = "active"
    ENDED = "ended"


class Outcome(enum.Enum):
    """How a call ended; sip_code is what a SIP leg bridged to it should get."""

    NORMAL = "normal"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    NO_NETWORK = "no_network"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def sip_code(self) -> int:
        """The SIP final response code for a call that ended this way."""
        return SIP_CODES[self]


# No answer is 480 (the callee is there but did not pick up); a line without network is 503
# so the caller's routing fails over to the next line rather than giving up.
SIP_CODES = {
    Outcome.NORMAL: 200, Outcome.BUSY: 486, Outcome.NO_ANSWER: 480, Outcome.TIMEOUT: 408,
    Outcome.UNREACHABLE: 480, Outcome.NO_NETWORK: 503, Outcome.CANCELLED: 487,
    Outcome.REJECTED: 603, Outcome.FAILED: 500,
}


@dataclass(frozen=True)
class Capabilities:
    """What a line can do."""

    voice: bool = True
    sms: bool = False
    ussd: bool = False
    channels: int = 1


@dataclass(frozen=True)
class LineStateChanged:
    """A line moved from one state to another; detail says why (for logs and the API)."""

    line: str
    old: LineState
    new: LineState
    detail: str = ""


@dataclass(frozen=True)
class CallStateChanged:
    """A call on a line changed state."""

    line: str
    call_id: str
    old: LineCallState
    new: LineCallState


@dataclass(frozen=True)
class IncomingCall:
    """A call arrives on a line; caller is None when withheld or unknown."""

    line: str
    call: LineCall
    caller: str | None


@dataclass(frozen=True)
class DtmfReceived:
    """The far end pressed a key (as the modem's own detector heard it)."""

    line: str
    call_id: str
    digit: str


@dataclass(frozen=True)
class SmsReceived:
    """A message was stored in the database (partial: some parts never came)."""

    line: str
    sms_id: int
    sender: str
    text: str
    partial: bool = False


@dataclass(frozen=True)
class SmsStatusChanged:
    """A sent message changed status (sent, delivered, failed)."""

    line: str
    sms_id: int
    status: str


@dataclass(frozen=True)
class BalanceChecked:
    """A USSD balance answer was parsed (amount None when no amount was found)."""

    line: str
    amount: float | None
    currency: str | None
    text: str


@dataclass(frozen=True)
class LowBalance:
    """A line's balance fell below notifications.low_balance_threshold."""

    line: str
    amount: float
    currency: str | None
    threshold: float


@dataclass(frozen=True)
class LineAlert:
    """Something a person must look at (a refused PIN, a blocked SIM, resets given up)."""

    line: str
    reason: str


LineEvent = (LineStateChanged | CallStateChanged | IncomingCall | DtmfReceived | SmsReceived
             | SmsStatusChanged | BalanceChecked | LowBalance | LineAlert)
Handler = Callable[[Any], None]


class EventHub:
    """Synchronous fan-out to subscribers; a failing subscriber is logged, never propagated."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call handler(event) for every event until the returned function is called."""
        self._handlers.append(handler)

        def undo() -> None:
            """Stop delivering to handler."""
            with contextlib.suppress(ValueError):
                self._handlers.remove(handler)

        return undo

    def emit(self, event: object) -> None:
        """Deliver event to every subscriber (they must not block)."""
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # one bad subscriber must not stop the line
                log.exception("line event handler %r failed on %r", handler, event)


class Clock(Protocol):
    """Time for timers and backoff; tests pass a fake one."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait seconds."""
        ...


class RealClock:
    """The event loop's time."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep()."""
        await asyncio.sleep(seconds)


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Delay before retry number attempt (0-based): base, 2*base, 4*base ... at most cap."""
    if attempt < 0:
        return 0.0
    return min(cap, base * (2 ** min(attempt, 30)))


_call_ids = itertools.count(1)


class LineCall:
    """One call on a line; subclasses drive it, users answer/hang up/send DTMF and await state."""

    def __init__(self, line: str, *, outgoing: bool, remote: str | None,
                 state: LineCallState) -> None:
        self.line = line
        self.call_id = f"{line}-{next(_call_ids)}"
        self.outgoing = outgoing
        self.remote = remote
        self.state = state
        self.outcome: Outcome | None = None
        self.detail = ""
        self.events = EventHub()
        self.audio_device: str | None = None
        self._changed = asyncio.Event()

    @property
    def sip_code(self) -> int | None:
        """The outcome's SIP code once ended (None before)."""
        return None if self.outcome is None else self.outcome.sip_code

    @property
    def ended(self) -> bool:
        """True once the call is over."""
        return self.state is LineCallState.ENDED

    def set_state(self, new: LineCallState, outcome: Outcome | None = None,
                  detail: str = "") -> bool:
        """Move to new (never out of ENDED); returns whether anything changed."""
        if self.state is LineCallState.ENDED or new is self.state:
            return False
        old, self.state = self.state, new
        if new is LineCallState.ENDED:
            self.outcome = outcome or Outcome.NORMAL
            self.detail = detail
        self.events.emit(CallStateChanged(self.line, self.call_id, old, new))
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    async def wait_state(self, *states: LineCallState, timeout: float | None = None) -> None:
        """Until the call is in one of states (or ENDED); TimeoutError after timeout."""
        async def until() -> None:
            while self.state not in states and self.state is not LineCallState.ENDED:
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    async def answer(self) -> None:
        """Answer an incoming ringing call."""
        raise NotImplementedError  # abstract: SimCall and EndedCall implement it

    async def hangup(self) -> None:
        """End the call (cancel an outgoing one, reject a ringing one)."""
        raise NotImplementedError  # abstract: SimCall and EndedCall implement it

    async def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits to the far end of an active call."""
        raise NotImplementedError  # abstract: SimCall and EndedCall implement it

    def summary(self) -> dict[str, Any]:
        """The call for the control API."""
        return {"call_id": self.call_id, "state": self.state.value,
                "direction": "out" if self.outgoing else "in", "remote": self.remote,
                "outcome": self.outcome.name.lower() if self.outcome else None,
                "sip_code": self.sip_code, "audio_device": self.audio_device}


class EndedCall(LineCall):
    """A call refused before it started (line busy, not ready): already ENDED."""

    def __init__(self, line: str, number: str, outcome: Outcome, detail: str) -> None:
        super().__init__(line, outgoing=True, remote=number, state=LineCallState.DIALING)
        self.set_state(LineCallState.ENDED, outcome, detail)

    async def answer(self) -> None:
        """Nothing to answer."""

    async def hangup(self) -> None:
        """Already over."""

    async def send_dtmf(self, digits: str) -> None:
        """Nobody to hear it."""


@runtime_checkable
class Line(Protocol):
    """What every line kind offers the rest of the box."""

    key: str
    kind: str

    @property
    def state(self) -> LineState:
        """The current state."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this line can do."""
        ...

    def health(self) -> dict[str, Any]:
        """Signal, registration, identity ... as plain JSON-able data."""
        ...

    async def dial(self, number: str, *, withhold: bool = False) -> LineCall:
        """Place a call (`withhold`: without showing our number); a refused call comes back
        already ENDED with its outcome."""
        ...

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Line events (LineEvent) to handler until the returned function is called."""
        ...


@dataclass
class LineSnapshot:
    """A line's state for listings."""

    key: str
    kind: str
    state: LineState
    health: dict[str, Any] = field(default_factory=dict)
