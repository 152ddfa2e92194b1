"""OPTIONS keepalives: is each registered phone still there, and is its NAT pinhole open?

Every binding gets an out-of-dialog OPTIONS from the edge every `interval_s`, sent
over the binding's flow (the transport, address and port its REGISTER came from,
from the edge's listening socket), so a NAT in between keeps the mapping open and
the box learns whether requests still reach the phone. The request carries the
edge's own Via and branch, so the answer comes back to the edge, which hands it
here. Any answer proves the phone alive, even 404/405/481/501. A probe that gets
no answer within the timeout (over UDP retransmitted per RFC 3261 Timer E: T1,
2*T1, ... capped at T2) marks the binding UNREACHABLE, and unreachable contacts
are not rung; the next answer (or a new REGISTER) brings it back.

`KeepaliveSchedule` makes every decision (when to probe, retransmit, give up, and
which state follows), purely, on an injected monotonic clock; `Keepalive` does the
I/O on the edge's event loop. Probe times are spread over the interval by a hash
of the binding, so 1000 phones restored at start are not all probed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import logging
import math
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..sip import Header, Request, Response, SipParseError, parse_uri
from ..sip.headers import Via
from .location import Binding, LocationTable
from .transport import Source

log = logging.getLogger(__name__)

# Our keepalive branches start with this, so their answers are told apart from
# anything the proxy forwards (those carry a second Via).
BRANCH_PREFIX = "z9hG4bKka-"
# How often the schedule looks for new, refreshed and removed bindings.
SYNC_S = 1.0
# Never wake the loop more often than this (a bad clock must not make it spin).
MIN_SLEEP_S = 0.01

Key = tuple[str, str]  # (device username, contact URI): one binding


class Reachability(enum.Enum):
    """What the keepalives say about one binding."""

    UNKNOWN = "unknown"  # not answered a probe yet since it registered or the box started
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class KeepaliveConfig:
    """How often bindings are probed and how long an answer may take."""

    interval_s: float = 30.0  # 0: no keepalives
    timeout_s: float = 5.0
    t1_s: float = 0.5  # RFC 3261 T1: the first UDP retransmission
    t2_s: float = 4.0  # RFC 3261 T2: the longest gap between retransmissions

    @property
    def enabled(self) -> bool:
        """True if bindings are probed at all."""
        return self.interval_s > 0

    @property
    def deadline_s(self) -> float:
        """How long one probe waits for an answer (never past the next probe)."""
        return min(self.timeout_s, self.interval_s)


@dataclass(frozen=True)
class Probe:
    """Send (or resend) the OPTIONS with this branch to this binding."""

    key: Key
    branch: str
    retransmission: bool = False


@dataclass(frozen=True)
class Change:
    """A binding's state changed."""

    key: Key
    before: Reachability
    after: Reachability
    rtt_ms: float | None
    why: str


@dataclass
class _Peer:
    """The schedule's record of one binding."""

    key: Key
    udp: bool
    flow: Source
    state: Reachability
    next_probe: float
    rtt_ms: float | None = None
    branch: str | None = None  # the probe in flight, if any
    sent_at: float = 0.0
    deadline: float = 0.0
    resend_at: float | None = None
    resend_gap: float = 0.0
    timer: int = 0  # generation of the peer's one live heap entry


def new_branch() -> str:
    """A fresh, unguessable keepalive branch (RFC 3261 magic cookie first)."""
    return BRANCH_PREFIX + secrets.token_hex(8)


class KeepaliveSchedule:
    """The keepalive decisions for every binding: pure, on an injected clock."""

    def __init__(self, config: KeepaliveConfig, clock: Callable[[], float],
                 branches: Callable[[], str] = new_branch) -> None:
        self.config = config
        self.clock = clock
        self.branches = branches
        self._peers: dict[Key, _Peer] = {}
        self._inflight: dict[str, Key] = {}
        # One live entry per peer (older ones are skipped by generation), so the loop
        # touches only the bindings that are due instead of scanning them all.
        self._heap: list[tuple[float, int, Key, int]] = []
        self._seq = itertools.count()

    # --- bindings ----------------------------------------------------------------------
    def phase(self, key: Key) -> float:
        """Seconds into the interval at which a new binding is first probed (spread)."""
        digest = zlib.crc32("\0".join(key).encode("utf-8", "replace"))
        return digest / 2**32 * self.config.interval_s

    def sync(self, bindings: Iterable[Binding]) -> list[Change]:
        """Follow the location table: new bindings, refreshed ones, removed ones."""
        now = self.clock()
        changes: list[Change] = []
        seen: set[Key] = set()
        for binding in bindings:
            key = (binding.username, binding.contact)
            seen.add(key)
            udp = binding.source.transport == "UDP"
            peer = self._peers.get(key)
            if peer is None:
                # A binding restored as unreachable stays so until it answers.
                state = Reachability.UNKNOWN if binding.reachable else Reachability.UNREACHABLE
                peer = _Peer(key, udp, binding.source, state,
                             next_probe=now + self.phase(key))
                self._peers[key] = peer
                self._arm(peer)
                continue
            moved = peer.flow != binding.source
            peer.udp, peer.flow = udp, binding.source
            back = binding.reachable and peer.state is Reachability.UNREACHABLE
            if back:
                # Only a REGISTER makes an unreachable binding reachable behind our back:
                # the phone is back, and is rung again until a probe says otherwise.
                changes.append(self._set(peer, Reachability.UNKNOWN, "registered again"))
            if back or moved:
                # A probe in flight went to the old flow: its silence says nothing about
                # the new one. Probe the flow the phone uses now, at once.
                self._cancel(peer)
                peer.next_probe = now
                self._arm(peer)
        for key in [k for k in self._peers if k not in seen]:
            self.forget(key)
        return changes

    def forget(self, key: Key) -> None:
        """Stop probing a binding (it expired or was removed)."""
        peer = self._peers.pop(key, None)
        if peer is not None:
            self._cancel(peer)

    # --- time --------------------------------------------------------------------------
    def run(self) -> tuple[list[Probe], list[Change]]:
        """What is due now: probes to send and the states that changed."""
        now = self.clock()
        probes: list[Probe] = []
        changes: list[Change] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, key, timer = heapq.heappop(self._heap)
            peer = self._peers.get(key)
            if peer is None or peer.timer != timer:
                continue  # removed, or re-armed since
            if peer.branch is not None:
                if now >= peer.deadline:
                    changes.extend(self._missed(peer))
                elif peer.resend_at is not None and now >= peer.resend_at:
                    probes.append(Probe(key, peer.branch, retransmission=True))
                    peer.resend_gap = min(peer.resend_gap * 2, self.config.t2_s)
                    after = now + peer.resend_gap
                    peer.resend_at = after if after < peer.deadline else None
            if peer.branch is None and now >= peer.next_probe:
                probes.append(self._start(peer, now))
            self._arm(peer)
        return probes, changes

    def next_wakeup(self) -> float | None:
        """When `run` next has something to do (None: nothing scheduled)."""
        while self._heap:
            _, _, key, timer = self._heap[0]
            peer = self._peers.get(key)
            if peer is not None and peer.timer == timer:
                return self._heap[0][0]
            heapq.heappop(self._heap)
        return None

    def answered(self, branch: str) -> Change | None:
        """An answer to the probe with this branch arrived (any status proves life)."""
        key = self._inflight.pop(branch, None)
        peer = self._peers.get(key) if key is not None else None
        if peer is None or peer.branch != branch:
            return None  # late: the probe had timed out, or the binding is gone
        now = self.clock()
        # Measured from the first send: an answer to a retransmission reads long, which
        # is the honest figure for a path that lost a packet.
        peer.rtt_ms = round((now - peer.sent_at) * 1000, 1)
        self._cancel(peer)
        self._arm(peer)
        if peer.state is Reachability.REACHABLE:
            return None
        return self._set(peer, Reachability.REACHABLE, "answered OPTIONS")

    # --- reading -----------------------------------------------------------------------
    def state(self, key: Key) -> tuple[Reachability, float | None] | None:
        """A binding's state and last round-trip time, or None if it is not tracked."""
        peer = self._peers.get(key)
        return None if peer is None else (peer.state, peer.rtt_ms)

    def __len__(self) -> int:
        return len(self._peers)

    # --- internals ---------------------------------------------------------------------
    def _start(self, peer: _Peer, now: float) -> Probe:
        branch = self.branches()
        peer.branch = branch
        peer.sent_at = now
        peer.deadline = now + self.config.deadline_s
        # Only UDP loses messages; a stream carries the one copy or fails.
        peer.resend_gap = self.config.t1_s
        first = now + self.config.t1_s
        peer.resend_at = first if peer.udp and first < peer.deadline else None
        peer.next_probe = now + self.config.interval_s
        self._inflight[branch] = peer.key
        return Probe(peer.key, branch)

    def _cancel(self, peer: _Peer) -> None:
        if peer.branch is not None:
            self._inflight.pop(peer.branch, None)
        peer.branch = None
        peer.resend_at = None

    def _missed(self, peer: _Peer) -> list[Change]:
        self._cancel(peer)
        if peer.state is Reachability.UNREACHABLE:
            return []
        why = f"no answer to OPTIONS within {self.config.deadline_s:g} s"
        return [self._set(peer, Reachability.UNREACHABLE, why)]

    def _set(self, peer: _Peer, state: Reachability, why: str) -> Change:
        change = Change(peer.key, peer.state, state, peer.rtt_ms, why)
        peer.state = state
        return change

    def _arm(self, peer: _Peer) -> None:
        if peer.branch is not None:
            when = min(peer.deadline, peer.resend_at if peer.resend_at is not None
                       else math.inf)
        else:
            when = peer.next_probe
        peer.timer += 1
        heapq.heappush(self._heap, (when, next(self._seq), peer.key, peer.timer))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def options_request(contact: str, transport: str, host: str, port: int,
                    branch: str) -> Request | None:
    """The keepalive OPTIONS to a contact, from the edge at host:port (None: bad contact)."""
    try:
        uri = parse_uri(contact)
    except SipParseError:
        return None
    sent_by = _host(host)
    via = Via(host=sent_by, transport=transport, port=port,
              params=(("branch", branch), ("rport", None)))
    # Call-ID and tag follow from the branch, so a retransmission is byte-identical.
    token = branch[len(BRANCH_PREFIX):] if branch.startswith(BRANCH_PREFIX) else branch
    headers = (
        Header("Via", str(via)),
        Header("Max-Forwards", "70"),
        Header("From", f"<sip:keepalive@{sent_by}:{port}>;tag={token[:8]}"),
        Header("To", f"<{contact}>"),
        Header("Call-ID", f"ka-{token}@{sent_by}"),
        Header("CSeq", "1 OPTIONS"),
        Header("Accept", "application/sdp"),
        Header("Content-Length", "0"),
    )
    return Request(method="OPTIONS", uri=uri, headers=headers)


class Keepalive:
    """Sends the schedule's probes over each binding's flow and applies its verdicts."""

    def __init__(self, config: KeepaliveConfig, location: LocationTable,
                 send: Callable[[Request, Source], None], via_host: Callable[[str], str],
                 port: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.location = location
        self.send = send
        self.via_host = via_host
        self.port = port
        self.clock = clock
        self.schedule = KeepaliveSchedule(config, clock)
        self.stats = {"keepalives_sent": 0, "keepalive_answers": 0}
        # Bindings already reported unreachable (bounded by the location table's size).
        self._reported_down: set[tuple[str, str]] = set()
        self._next_sync = -math.inf
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start probing (on the running loop), unless keepalives are off."""
        if not self.config.enabled:
            # Nothing would ever bring a binding saved as unreachable back before its
            # phone re-registers: without keepalives nobody is judged unreachable.
            for binding in self.location.all():
                self.location.mark(binding, True)
            return
        self._task = asyncio.get_running_loop().create_task(self._loop(),
                                                            name="edge-keepalive")

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                wake = self.tick()
            except Exception:
                log.exception("edge: keepalive round failed")
                wake = self.clock() + SYNC_S
            await asyncio.sleep(max(MIN_SLEEP_S, wake - self.clock()))

    def tick(self) -> float:
        """Do what is due now; returns the clock time at which to call again."""
        now = self.clock()
        changes: list[Change] = []
        if now >= self._next_sync:
            changes.extend(self.schedule.sync(self.location.all()))
            self._next_sync = now + min(SYNC_S, self.config.interval_s)
        probes, timed_out = self.schedule.run()
        changes.extend(timed_out)
        for probe in probes:
            self._send(probe)
        for change in changes:
            self._apply(change)
        wake = self.schedule.next_wakeup()
        return self._next_sync if wake is None else min(wake, self._next_sync)

    def response(self, resp: Response) -> bool:
        """Take an answer to one of our probes; False if it is not one."""
        via = resp.top_via
        branch = via.branch if via is not None else None
        if not branch or not branch.startswith(BRANCH_PREFIX):
            return False
        self.stats["keepalive_answers"] += 1
        change = self.schedule.answered(branch)
        if change is not None:
            self._apply(change)
        return True

    def state(self, binding: Binding) -> tuple[Reachability, float | None]:
        """A binding's reachability and last round-trip time in ms."""
        known = self.schedule.state((binding.username, binding.contact))
        if known is not None:
            return known
        return (Reachability.UNKNOWN if binding.reachable else Reachability.UNREACHABLE, None)

    def counts(self) -> dict[str, int]:
        """How many live bindings are in each state."""
        counted = Counter(self.state(b)[0].value for b in self.location.all())
        return {state.value: counted.get(state.value, 0) for state in Reachability}

    def _binding(self, key: Key) -> Binding | None:
        username, contact = key
        for binding in self.location.bindings(username):
            if binding.contact == contact:
                return binding
        return None

    def _send(self, probe: Probe) -> None:
        # The binding is read now, not at sync: a REGISTER may have moved it to a new flow.
        binding = self._binding(probe.key)
        if binding is None:
            return  # expired since; the next sync forgets it
        source = binding.source
        req = options_request(binding.contact, source.transport, self.via_host(source.host),
                              self.port, probe.branch)
        if req is None:
            return
        self.send(req, source)
        self.stats["keepalives_sent"] += 1

    def _apply(self, change: Change) -> None:
        binding = self._binding(change.key)
        if binding is not None:
            # The location table's flag is what contacts_for and the saved row use.
            self.location.mark(binding, change.after is not Reachability.UNREACHABLE)
        else:
            self._reported_down.discard(change.key)
        username, contact = change.key
        rtt = f", {change.rtt_ms:g} ms" if change.after is Reachability.REACHABLE \
            and change.rtt_ms is not None else ""
        # A phone that never answers OPTIONS but keeps registering goes unreachable ->
        # unknown -> unreachable on every refresh: say it once, not per REGISTER.
        if change.after is Reachability.UNREACHABLE:
            level = logging.DEBUG if change.key in self._reported_down else logging.WARNING
            self._reported_down.add(change.key)
        elif change.after is Reachability.UNKNOWN and change.key in self._reported_down:
            level = logging.DEBUG
        else:
            level = logging.INFO
            self._reported_down.discard(change.key)
        log.log(level, "edge: %s at %s is %s (was %s): %s%s", username, contact,
                change.after.value, change.before.value, change.why, rtt)
