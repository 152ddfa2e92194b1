"""The box registering to a SIP provider (or an FXO gateway): a pure state machine.

One `Registration` per account. It decides everything on an injected clock and
returns actions (`Send` a request, a `RegChange` of state) that the I/O layer
(`edge/trunks.py`) carries out; nothing here touches a socket or sleeps, so unit
tests drive expiry, refresh and backoff with a fake clock.

* States: UNREGISTERED (not started, stopped, or un-registered), REGISTERING (the first
  REGISTER, or the next try after a failure, is in flight), REGISTERED (the provider
  holds our Contact; a refresh in flight does not change this), FAILED (the last try
  failed; `next_attempt` says when the next one goes).
* One Call-ID and From-tag per registration, CSeq increasing, a fresh branch per
  transaction (RFC 3261 §10.2.4). Over UDP a request is retransmitted after T1, 2*T1 ...
  capped at T2 (Timer E); no final answer within Timer F (32 s) is a failure (408).
* 401/407: answered with Digest credentials (SHA-256 or MD5, qop=auth) once per new
  nonce; a challenge to a request that already carried credentials for that nonce, without
  stale=true, is a wrong password and fails. Later refreshes send credentials for the last
  nonce up front (nc counting up), so a provider that accepts them costs one round trip.
* 423: the request is repeated at once with the provider's Min-Expires.
* 2xx: the granted expiry is our Contact's `expires` in the answer, else its Expires
  header, else what we asked; the refresh goes `REFRESH_MARGIN_S` before it runs out (at
  half of it for short expiries).
* A failure retries after a backoff that doubles from `retry_base_s` to `retry_max_s`
  (with +-20 % jitter from the injected random source, so a provider that restarts is not
  hit by every box at once).
"""

from __future__ import annotations

import enum
import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ..sip import Header, Request, Response, SipParseError, SipUri, parse_uri
from ..sip.digest_client import Challenge, authorization, pick_challenge
from ..sip.headers import Via

BRANCH_PREFIX = "z9hG4bKtr-"
REFRESH_MARGIN_S = 30.0
MAX_AUTH_ROUNDS = 2  # challenges answered per attempt before it counts as a failure
MAX_INTERVAL_ROUNDS = 2  # 423 answers per attempt


class RegState(enum.Enum):
    """Where one outbound registration is."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


@dataclass(frozen=True)
class RegAccount:
    """What a registration needs to know about the account it registers."""

    key: str  # the line key, for logs and the control API
    registrar: str  # Request-URI of REGISTER: sip:host[:port]
    aor: str  # From and To: sip:user@domain
    contact_user: str  # the user part of our Contact (providers send calls to it)
    username: str  # for digest authentication
    password: str
    transport: str = "UDP"  # "UDP" or "TCP"
    expires: int = 600
    route: str | None = None  # the outbound proxy as a Route value (<sip:proxy;lr>)


@dataclass(frozen=True)
class RegTimers:
    """Retransmission, timeout and backoff timings (seconds)."""

    t1_s: float = 0.5
    t2_s: float = 4.0
    timeout_s: float = 32.0  # Timer F: no final answer by then is a failure
    retry_base_s: float = 5.0
    retry_max_s: float = 300.0


@dataclass(frozen=True)
class Send:
    """Send this request to the account's registrar (or outbound proxy)."""

    request: Request
    retransmission: bool = False


@dataclass(frozen=True)
class RegChange:
    """The registration's state changed (the I/O layer logs it and tells listeners)."""

    key: str
    before: RegState
    after: RegState
    code: int
    reason: str


Action = Send | RegChange


@dataclass(frozen=True)
class RegStatus:
    """A snapshot for the control API."""

    state: RegState
    last_code: int | None
    last_reason: str
    expires_at: float | None  # when the provider forgets us, if registered
    next_attempt: float | None  # the next REGISTER (refresh or retry), if one is planned
    failures: int  # in a row, since the last success
    successes: int = 0  # 2xx answers to REGISTER (the first and every refresh)


@dataclass
class _Txn:
    """The REGISTER in flight."""

    request: Request
    branch: str
    sent_at: float
    deadline: float
    resend_at: float | None
    resend_gap: float
    unregister: bool
    credentials: bool  # it carried an Authorization
    nonce: str | None  # ...for this nonce
    auth_rounds: int = 0
    interval_rounds: int = 0


def new_token() -> str:
    """A random token for branches, tags, Call-IDs and cnonces."""
    return secrets.token_hex(8)


@dataclass
class _Auth:
    """The last challenge answered, reused for later requests with nc counting up."""

    challenge: Challenge
    nc: int = 0


def _header_expires(resp: Response) -> int | None:
    try:
        return resp.expires
    except SipParseError:
        return None


class Registration:
    """The registration of one account; every decision pure, on an injected clock."""

    def __init__(self, account: RegAccount, local: tuple[str, int],
                 clock: Callable[[], float], timers: RegTimers | None = None, *,
                 tokens: Callable[[], str] = new_token,
                 jitter: Callable[[], float] = random.random) -> None:
        self.account = account
        self.local = local  # (host, port) of the edge as the registrar sees it
        self.clock = clock
        self.timers = timers or RegTimers()
        self.tokens = tokens
        self.jitter = jitter
        self.state = RegState.UNREGISTERED
        self.last_code: int | None = None
        self.last_reason = ""
        self.expires_at: float | None = None
        self.failures = 0
        self.successes = 0
        self.call_id = f"{tokens()}@pbx"
        self.from_tag = tokens()
        self.cseq = 0
        self.expires = account.expires
        self._txn: _Txn | None = None
        self._next: float | None = None  # refresh or retry
        self._auth: _Auth | None = None
        self._stopped = True

    # --- commands ----------------------------------------------------------------------
    def start(self) -> list[Action]:
        """Begin registering now (no-op if already running)."""
        if not self._stopped:
            return []
        self._stopped = False
        actions: list[Action] = []
        self._set(RegState.REGISTERING, actions, self.last_code or 0, "starting")
        actions.append(self._send(unregister=False))
        return actions

    def stop(self) -> list[Action]:
        """Stop; un-register (Expires: 0) if the provider may hold our Contact."""
        if self._stopped:
            return []
        self._stopped = True
        self._next = None
        was_bound = self.expires_at is not None and self.expires_at > self.clock()
        actions: list[Action] = []
        self._txn = None
        self.expires_at = None
        self._set(RegState.UNREGISTERED, actions, 0, "stopped")
        if was_bound:
            actions.append(self._send(unregister=True))
        return actions

    @property
    def in_flight(self) -> bool:
        """True while a REGISTER awaits its final answer."""
        return self._txn is not None

    def owns(self, branch: str | None) -> bool:
        """Whether a response with this top-Via branch answers our request in flight."""
        return self._txn is not None and branch == self._txn.branch

    # --- time --------------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        """When `run` next has something to do."""
        times = [self._next] if self._next is not None else []
        if self._txn is not None:
            times.append(self._txn.deadline)
            if self._txn.resend_at is not None:
                times.append(self._txn.resend_at)
        return min(times) if times else None

    def run(self) -> list[Action]:
        """What is due now: retransmissions, a timeout, a refresh or a retry."""
        now = self.clock()
        actions: list[Action] = []
        txn = self._txn
        if txn is not None:
            if now >= txn.deadline:
                self._txn = None
                if txn.unregister:
                    return actions
                self._failed(actions, 408, "no answer from the registrar")
            elif txn.resend_at is not None and now >= txn.resend_at:
                txn.resend_gap = min(txn.resend_gap * 2, self.timers.t2_s)
                after = now + txn.resend_gap
                txn.resend_at = after if after < txn.deadline else None
                actions.append(Send(txn.request, retransmission=True))
        if self._txn is None and self._next is not None and now >= self._next \
                and not self._stopped:
            self._next = None
            if self.state is RegState.FAILED:
                self._set(RegState.REGISTERING, actions, self.last_code or 0, "retrying")
            actions.append(self._send(unregister=False))
        return actions

    # --- answers -----------------------------------------------------------------------
    def response(self, resp: Response) -> list[Action]:
        """A response whose top Via carries our branch."""
        txn = self._txn
        via = resp.top_via
        if txn is None or via is None or via.branch != txn.branch or resp.status < 200:
            return []  # provisional (the timers run on), or late and unmatched
        actions: list[Action] = []
        self._txn = None
        code = resp.status
        if code in (401, 407):
            challenge = pick_challenge(resp.header_values("WWW-Authenticate"),
                                       resp.header_values("Proxy-Authenticate"))
            fresh = challenge is not None and (
                not txn.credentials or challenge.stale or challenge.nonce != txn.nonce)
            if challenge is not None and fresh and txn.auth_rounds < MAX_AUTH_ROUNDS:
                self._auth = _Auth(challenge)
                actions.append(self._send(unregister=txn.unregister,
                                          auth_rounds=txn.auth_rounds + 1,
                                          interval_rounds=txn.interval_rounds))
                return actions
            self._auth = None  # a rejected nonce is not offered again
            if not txn.unregister:
                why = "no challenge we can answer" if challenge is None \
                    else "credentials refused"
                self._failed(actions, code, why)
            return actions
        if code == 423 and txn.interval_rounds < MAX_INTERVAL_ROUNDS:
            minimum = resp.header("Min-Expires")
            if minimum and minimum.isdigit() and int(minimum) > self.expires:
                self.expires = int(minimum)
                actions.append(self._send(unregister=txn.unregister,
                                          auth_rounds=txn.auth_rounds,
                                          interval_rounds=txn.interval_rounds + 1))
                return actions
        if txn.unregister:
            return actions  # un-registered (or the provider will forget us at expiry)
        if 200 <= code < 300:
            self._registered(resp, actions)
        else:
            self._failed(actions, code, resp.reason or "refused")
        return actions

    # --- reading -----------------------------------------------------------------------
    def status(self) -> RegStatus:
        """The registration as the control API shows it."""
        nxt = self._next
        return RegStatus(self.state, self.last_code, self.last_reason,
                         self.expires_at if self.state is RegState.REGISTERED else None,
                         nxt, self.failures, self.successes)

    def usable(self) -> bool:
        """Whether calls may go through the account now (its registration is live)."""
        if self.state is RegState.REGISTERED:
            return True
        # A retry after a failed refresh: the provider still holds the old binding.
        return (self.state is RegState.REGISTERING and self.expires_at is not None
                and self.expires_at > self.clock())

    # --- internals ---------------------------------------------------------------------
    def _registered(self, resp: Response, actions: list[Action]) -> None:
        now = self.clock()
        granted = self._granted(resp)
        self.failures = 0
        self.successes += 1
        self.expires_at = now + granted
        margin = REFRESH_MARGIN_S if granted > 2 * REFRESH_MARGIN_S else granted / 2
        self._next = now + max(1.0, granted - margin)
        self._set(RegState.REGISTERED, actions, resp.status, resp.reason or "OK")

    def _granted(self, resp: Response) -> int:
        """The expiry the registrar granted our Contact."""
        ours = self._contact_uri()
        try:
            contacts = resp.contacts
        except SipParseError:
            contacts = ()
        for contact in contacts:
            expires = contact.expires
            if expires is not None and expires > 0 and _same_contact(str(contact.uri), ours):
                return expires
        header = _header_expires(resp)
        if header is not None and header > 0:
            return header
        return self.expires

    def _failed(self, actions: list[Action], code: int, reason: str) -> None:
        self.failures += 1
        delay = min(self.timers.retry_max_s,
                    self.timers.retry_base_s * 2 ** min(self.failures - 1, 20))
        delay *= 0.8 + 0.4 * self.jitter()
        self._next = self.clock() + delay
        self._set(RegState.FAILED, actions, code, reason)

    def _set(self, state: RegState, actions: list[Action], code: int, reason: str) -> None:
        if code:
            self.last_code = code
        self.last_reason = reason
        if state is not self.state:
            actions.append(RegChange(self.account.key, self.state, state, code, reason))
            self.state = state

    def _contact_uri(self) -> str:
        host, port = self.local
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        tcp = ";transport=tcp" if self.account.transport == "TCP" else ""
        return f"sip:{self.account.contact_user}@{host}:{port}{tcp}"

    def _send(self, *, unregister: bool, auth_rounds: int = 0,
              interval_rounds: int = 0) -> Send:
        now = self.clock()
        self.cseq += 1
        branch = BRANCH_PREFIX + self.tokens()
        host, port = self.local
        sent_by = f"[{host}]" if ":" in host and not host.startswith("[") else host
        account = self.account
        via = Via(host=sent_by, transport=account.transport, port=port,
                  params=(("branch", branch), ("rport", None)))
        headers = [
            Header("Via", str(via)),
            Header("Max-Forwards", "70"),
            *([Header("Route", account.route)] if account.route else []),
            Header("From", f"<{account.aor}>;tag={self.from_tag}"),
            Header("To", f"<{account.aor}>"),
            Header("Call-ID", self.call_id),
            Header("CSeq", f"{self.cseq} REGISTER"),
            Header("Contact", f"<{self._contact_uri()}>"),
            Header("Expires", "0" if unregister else str(self.expires)),
            Header("User-Agent", "office-pbx"),
        ]
        nonce = None
        if self._auth is not None:
            self._auth.nc += 1
            challenge = self._auth.challenge
            nonce = challenge.nonce
            headers.append(Header(challenge.header, authorization(
                challenge, username=account.username, password=account.password,
                method="REGISTER", uri=account.registrar, nc=self._auth.nc,
                cnonce=self.tokens())))
        headers.append(Header("Content-Length", "0"))
        request = Request(method="REGISTER", uri=parse_uri(account.registrar),
                          headers=tuple(headers))
        udp = account.transport == "UDP"
        first = now + self.timers.t1_s
        deadline = now + self.timers.timeout_s
        self._txn = _Txn(request, branch, now, deadline,
                         first if udp and first < deadline else None, self.timers.t1_s,
                         unregister, nonce is not None, nonce, auth_rounds, interval_rounds)
        return Send(request)


def _same_contact(a: str, b: str) -> bool:
    """Whether two Contact URIs name the same user at the same address.

    Registrars echo our Contact with parameters added or reordered, so only user, host
    and port are compared.
    """
    try:
        ua, ub = parse_uri(a), parse_uri(b)
    except SipParseError:
        return False
    if not isinstance(ua, SipUri) or not isinstance(ub, SipUri):
        return False
    return (ua.user == ub.user and ua.host.strip("[]").lower() == ub.host.strip("[]").lower()
            and (ua.port or 5060) == (ub.port or 5060))


@dataclass
class RegistrationSet:
    """The registrations of every account, by line key (the I/O layer's bookkeeping)."""

    by_key: dict[str, Registration] = field(default_factory=dict)

    def next_wakeup(self) -> float:
        """The earliest time any registration has something to do (inf: nothing)."""
        times = [t for reg in self.by_key.values() if (t := reg.next_wakeup()) is not None]
        return min(times, default=math.inf)

    def owner(self, branch: str | None) -> Registration | None:
        """The registration whose request in flight carries this branch."""
        if not branch or not branch.startswith(BRANCH_PREFIX):
            return None
        for reg in self.by_key.values():
            if reg.owns(branch):
                return reg
        return None
