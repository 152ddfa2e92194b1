"""Calls through trunks and gateways: channel accounting and the SIP rewrites (pure).

The edge stays a stateless proxy for phones; a call through a trunk is the one place it
keeps a little state per call (`TrunkCall` in a `CallTable`):

* **Channels**: every call in or out through a line holds one of its `channels` from the
  INVITE until a final non-2xx answer, a BYE, or a time limit (no final answer within
  `TimerLimits.trying_s`, still ringing after `ringing_s`, or up after `max_call_s`,
  which only frees the channel count, never the call). States are explicit
  (`CallState`) and every change is a `CallChange` event.
* **Outbound rewrite**: the INVITE the engine sends towards a line is re-addressed to the
  provider (Request-URI and To `sip:<number>@<host>`, From `sip:<caller id or
  username>@<from_domain or host>`, the engine's tags kept), the box's private headers
  are stripped, and the outbound proxy goes in a Route.
* **Digest on INVITE**: a 401/407 from the provider is not passed to the engine (it has
  no credentials). The edge ACKs it itself and sends the INVITE again with credentials,
  the same Call-ID and CSeq + 1. From then on the provider's CSeq numbers for the
  engine's requests in that call run `cseq_offset` ahead of the engine's: requests to the
  trunk get it added, responses to the engine get it taken off, and the engine's CANCEL
  and non-2xx ACK are rebuilt from the INVITE as last sent (same branch, same CSeq).
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..sip import Header, Request, Response, SipParseError, SipUri, parse_uri
from ..sip.digest_client import Challenge, authorization
from ..sip.headers import quote
from ..sip.uri import set_param
from .transport import Source

# The box's private headers between the edge and the engine (never sent outside).
PRIVATE_PREFIX = "x-pbx-"
MAX_ENDED = 4096
# What a caller ID may hold before it goes into a From user part.
_CALLER_ID_CHARS = frozenset("0123456789+*#abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-")


class CallState(enum.Enum):
    """Where one call through a line is."""

    TRYING = "trying"  # INVITE sent or received, no answer from the far side yet
    EARLY = "early"  # a provisional answer came
    CONFIRMED = "confirmed"  # answered
    ENDED = "ended"  # released (final failure, BYE, or a time limit)


@dataclass(frozen=True)
class CallChange:
    """A call through a line changed state."""

    call_id: str
    line: str
    before: CallState
    after: CallState
    why: str


@dataclass(frozen=True)
class TimerLimits:
    """How long a call may stay in a state before its channel is freed (seconds)."""

    trying_s: float = 32.0  # Timer B: no answer at all
    ringing_s: float = 300.0  # Timer C's three minutes and some
    max_call_s: float = 6 * 3600.0


@dataclass
class TrunkCall:
    """One call through a line."""

    call_id: str
    line: str
    outbound: bool
    started: float
    state: CallState = CallState.TRYING
    deadline: float = 0.0
    # Outbound calls only: how the engine named the parties, and what the trunk sees.
    engine_branch: str = ""
    engine_from: str = ""
    engine_to: str = ""
    trunk_from: str = ""
    trunk_to: str = ""
    cseq_offset: int = 0
    sent: Request | None = None  # the INVITE as last sent to the trunk (our Via on top)
    dest: Source | None = None
    auth_nonces: list[str] = field(default_factory=list)
    # The edge already ACKed the final answer (a challenge it could not meet): the
    # engine's ACK for the 503 it got instead goes nowhere.
    absorb_ack: bool = False


class CallTable:
    """Calls through lines, by Call-ID, with channel counts per line."""

    def __init__(self, clock: Callable[[], float], limits: TimerLimits | None = None) -> None:
        self.clock = clock
        self.limits = limits or TimerLimits()
        self._calls: dict[str, TrunkCall] = {}
        self._per_line: Counter[str] = Counter()
        # Ended calls, kept for Timer B's span: the engine's ACK of a failure and the
        # answer to a BYE still need their CSeq translated. Oldest first.
        self._ended: OrderedDict[str, tuple[float, TrunkCall]] = OrderedDict()

    def get(self, call_id: str) -> TrunkCall | None:
        """The live call with this Call-ID."""
        return self._calls.get(call_id)

    def lookup(self, call_id: str) -> TrunkCall | None:
        """The live call with this Call-ID, or one that ended moments ago."""
        call = self._calls.get(call_id)
        if call is not None:
            return call
        ended = self._ended.get(call_id)
        return ended[1] if ended is not None else None

    def count(self, line: str) -> int:
        """Channels of a line in use."""
        return self._per_line[line]

    def admit(self, call_id: str, line: str, channels: int, *, outbound: bool
              ) -> TrunkCall | None:
        """Take a channel for a new call (the same call again is not counted twice).

        None when the line has no channel free.
        """
        known = self._calls.get(call_id)
        if known is not None:
            return known
        if self._per_line[line] >= channels:
            return None
        now = self.clock()
        call = TrunkCall(call_id, line, outbound, now, deadline=now + self.limits.trying_s)
        self._calls[call_id] = call
        self._per_line[line] += 1
        return call

    def progress(self, call_id: str, status: int) -> CallChange | None:
        """The far side answered the INVITE with this status."""
        call = self._calls.get(call_id)
        if call is None or status == 100:
            return None
        if 100 < status < 200:
            if call.state is not CallState.TRYING:
                return None
            return self._set(call, CallState.EARLY, f"{status} from the far side",
                             self.limits.ringing_s)
        if 200 <= status < 300:
            if call.state is CallState.CONFIRMED:
                return None
            return self._set(call, CallState.CONFIRMED, "answered", self.limits.max_call_s)
        if call.state is CallState.CONFIRMED:
            return None  # a late failure for a forked branch; the call is up
        return self.end(call_id, f"{status} from the far side")

    def end(self, call_id: str, why: str) -> CallChange | None:
        """Release a call's channel."""
        call = self._calls.pop(call_id, None)
        if call is None:
            return None
        self._per_line[call.line] -= 1
        if self._per_line[call.line] <= 0:
            del self._per_line[call.line]
        change = CallChange(call.call_id, call.line, call.state, CallState.ENDED, why)
        call.state = CallState.ENDED
        self._ended[call_id] = (self.clock() + self.limits.trying_s, call)
        self._ended.move_to_end(call_id)
        while len(self._ended) > MAX_ENDED:
            self._ended.popitem(last=False)
        return change

    def expire(self) -> list[CallChange]:
        """Release the calls whose state outlived its limit."""
        now = self.clock()
        while self._ended and next(iter(self._ended.values()))[0] <= now:
            self._ended.popitem(last=False)
        late = [c for c in self._calls.values() if c.deadline <= now]
        changes = []
        for call in late:
            change = self.end(call.call_id, f"no change for too long while {call.state.value}")
            if change is not None:
                changes.append(change)
        return changes

    def next_deadline(self) -> float | None:
        """The earliest deadline of any call."""
        return min((c.deadline for c in self._calls.values()), default=None)

    def calls(self) -> list[TrunkCall]:
        """Every live call."""
        return list(self._calls.values())

    def _set(self, call: TrunkCall, state: CallState, why: str, limit: float) -> CallChange:
        change = CallChange(call.call_id, call.line, call.state, state, why)
        call.state = state
        call.deadline = self.clock() + limit
        return change


# --- rewrites --------------------------------------------------------------------------

def strip_private(msg: Request) -> Request:
    """The request without any of the box's X-PBX-* headers."""
    names = {h.name for h in msg.headers if h.name.lower().startswith(PRIVATE_PREFIX)}
    for name in names:
        msg = msg.without_header(name)
    return msg


def clean_caller_id(value: str | None) -> str | None:
    """A caller ID fit for a From user part, or None."""
    if not value:
        return None
    value = value.strip()
    if not value or len(value) > 32 or not _CALLER_ID_CHARS.issuperset(value):
        return None
    return value


CALLER_HEADER = "X-PBX-Caller"
CALLER_NAME_HEADER = "X-PBX-Caller-Name"
_MAX_NAME = 64


def show_caller(req: Request, host: str) -> Request:
    """An engine INVITE to a phone, its From naming the real caller (the engine's own From
    says only `engine`): `X-PBX-Caller` as the user, `X-PBX-Caller-Name` as the display
    name; the tag is kept, so the dialog is the same one. The X-PBX-* headers go."""
    number = clean_caller_id(req.header(CALLER_HEADER))
    if number is not None:
        name = " ".join((req.header(CALLER_NAME_HEADER) or "").split())[:_MAX_NAME] or None
        tag = req.from_.tag
        uri = f"sip:{number}@{host}"
        value = f"{quote(name)} {_with_tag(uri, tag)}" if name else _with_tag(uri, tag)
        req = req.with_header("From", [value])
    return strip_private(req)


def _with_tag(uri: str, tag: str | None) -> str:
    return f"<{uri}>;tag={tag}" if tag else f"<{uri}>"


def outbound_invite(req: Request, *, request_uri: str, to_uri: str, from_uri: str,
                    route: str | None) -> Request:
    """The engine's INVITE as the provider must see it (no Via of ours yet)."""
    tag = req.from_.tag
    out = strip_private(req).with_header("From", [_with_tag(from_uri, tag)]) \
        .with_header("To", [f"<{to_uri}>"])
    if route:
        out = out.prepend_header("Route", route)
    return _with_uri(out, request_uri)


def _with_uri(req: Request, uri: str) -> Request:
    return Request(method=req.method, uri=parse_uri(uri), headers=req.headers, body=req.body,
                   version=req.version)


def to_trunk(req: Request, call: TrunkCall) -> Request:
    """An in-dialog request of the engine's, as the trunk knows the dialog."""
    out = strip_private(req)
    cseq = req.cseq
    if call.cseq_offset:
        out = out.with_header("CSeq", [f"{cseq.number + call.cseq_offset} {cseq.method}"])
    if call.trunk_from:
        out = out.with_header("From", [_with_tag(call.trunk_from, req.from_.tag)]) \
            .with_header("To", [_with_tag(call.trunk_to, req.to.tag)])
    return out


def to_engine(resp: Response, call: TrunkCall) -> Response:
    """A response from the trunk for the engine: its CSeq and party names restored."""
    out = resp
    if call.cseq_offset:
        cseq = resp.cseq
        out = out.with_header("CSeq", [f"{max(1, cseq.number - call.cseq_offset)} "
                                       f"{cseq.method}"])
    if call.engine_from:
        to_tag = resp.to.tag
        out = out.with_header("From", [call.engine_from]).with_header(
            "To", [f"{call.engine_to};tag={to_tag}" if to_tag else call.engine_to])
    return out


def _copy(sent: Request, names: tuple[str, ...]) -> list[Header]:
    return [h for h in sent.headers if h.name.lower() in names]


def ack_for(sent: Request, to_value: str) -> Request:
    """The ACK for a non-2xx final answer to `sent` (RFC 3261 §17.1.1.3): same branch."""
    via = sent.header_values("Via")[0]
    headers = [Header("Via", via), Header("Max-Forwards", "70"),
               *_copy(sent, ("route",)), *_copy(sent, ("from",)), Header("To", to_value),
               *_copy(sent, ("call-id",)),
               Header("CSeq", f"{sent.cseq.number} ACK"), Header("Content-Length", "0")]
    return Request(method="ACK", uri=sent.uri, headers=tuple(headers))


def cancel_for(sent: Request) -> Request:
    """The CANCEL of `sent` (RFC 3261 §9.1): the same Vias, so its 200 reaches the engine."""
    headers = [*_copy(sent, ("via",)), Header("Max-Forwards", "70"), *_copy(sent, ("route",)),
               *_copy(sent, ("from",)), *_copy(sent, ("to",)), *_copy(sent, ("call-id",)),
               Header("CSeq", f"{sent.cseq.number} CANCEL"), Header("Content-Length", "0")]
    return Request(method="CANCEL", uri=sent.uri, headers=tuple(headers))


def with_credentials(sent: Request, challenge: Challenge, *, branch: str, username: str,
                     password: str, cnonce: str) -> Request:
    """`sent` again for a challenge: a new branch on our Via, CSeq + 1, credentials."""
    ours = sent.vias[0]
    out = sent.with_top_via(replace(ours, params=set_param(ours.params, "branch", branch)))
    out = out.with_header("CSeq", [f"{sent.cseq.number + 1} {sent.cseq.method}"])
    uri = str(sent.uri)
    out = out.without_header(challenge.header).append_header(challenge.header, authorization(
        challenge, username=username, password=password, method=sent.method, uri=uri,
        nc=1, cnonce=cnonce))
    return out


def target_user(req: Request) -> str | None:
    """The number the engine dials: the user part of its Request-URI."""
    uri = req.uri
    if isinstance(uri, SipUri) and uri.user:
        return uri.user
    return None


def gateway_uri(contact: str, user: str) -> str | None:
    """A registered gateway's Contact with the dialled number as its user part."""
    try:
        uri = parse_uri(contact)
    except SipParseError:
        return None
    if not isinstance(uri, SipUri):
        return None
    host = uri.host
    port = f":{uri.port}" if uri.port else ""
    transport = uri.param("transport")
    tail = f";transport={transport}" if transport else ""
    return f"sip:{user}@{host}{port}{tail}"
