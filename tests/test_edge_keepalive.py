"""OPTIONS keepalives: the pure schedule on a fake clock, and the edge's hooks without sockets."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.db import Database
from appliance.edge import Edge, EdgeConfig
from appliance.edge.keepalive import (
    BRANCH_PREFIX,
    Keepalive,
    KeepaliveConfig,
    KeepaliveSchedule,
    Probe,
    Reachability,
    options_request,
)
from appliance.edge.location import Binding, LocationTable
from appliance.edge.transport import Source
from appliance.settings import SettingsError, load
from appliance.sip import Request, Response, make_response, parse_message
from tests.test_edge_units import SECRET, add_devices

pytestmark = pytest.mark.timeout(30)

PHONE = Source("UDP", "192.168.1.50", 5062)
CONTACT = "sip:101@192.168.1.50:5062"
KEY = ("101", CONTACT)
REACHABLE, UNREACHABLE, UNKNOWN = (Reachability.REACHABLE, Reachability.UNREACHABLE,
                                   Reachability.UNKNOWN)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def binding(user: str = "101", contact: str = CONTACT, source: Source = PHONE,
            reachable: bool = True) -> Binding:
    return Binding(1, user, contact, source, "reg-1", 1, 2_000_000_000.0, "", reachable)


def schedule(clock: Clock, **config: float) -> KeepaliveSchedule:
    counter = itertools.count(1)
    return KeepaliveSchedule(KeepaliveConfig(**config), clock,
                             branches=lambda: f"{BRANCH_PREFIX}{next(counter)}")


def run_until(sched: KeepaliveSchedule, clock: Clock, until: float, step: float = 0.01
              ) -> list[tuple[float, Probe | Reachability]]:
    """Advance the fake clock to `until`, collecting (time, probe or new state)."""
    seen: list[tuple[float, Probe | Reachability]] = []
    while clock.now < until:
        wake = sched.next_wakeup()
        if wake is None or wake > until:
            clock.now = until
        else:
            clock.now = max(clock.now, wake)
        probes, changes = sched.run()
        seen += [(round(clock.now - 1000.0, 3), p) for p in probes]
        seen += [(round(clock.now - 1000.0, 3), c.after) for c in changes]
    return seen


def first_probe(sched: KeepaliveSchedule, clock: Clock) -> Probe:
    wake = sched.next_wakeup()
    assert wake is not None
    clock.now = wake
    probes, changes = sched.run()
    assert len(probes) == 1 and not changes
    return probes[0]


def test_a_new_binding_is_probed_within_one_interval_then_every_interval() -> None:
    clock = Clock()
    sched = schedule(clock, interval_s=30)
    assert sched.sync([binding()]) == []
    assert sched.state(KEY) == (UNKNOWN, None)
    probe = first_probe(sched, clock)
    assert 1000.0 <= clock.now < 1030.0
    assert probe == Probe(KEY, f"{BRANCH_PREFIX}1")
    clock.now += 0.0123
    change = sched.answered(probe.branch)
    assert change is not None and (change.before, change.after) == (UNKNOWN, REACHABLE)
    assert sched.state(KEY) == (REACHABLE, 12.3)
    sent_at = clock.now - 0.0123
    assert sched.next_wakeup() == pytest.approx(sent_at + 30)
    again = first_probe(sched, clock)
    assert again.branch != probe.branch and not again.retransmission
    assert sched.answered(again.branch) is None  # still reachable: no change to report


def test_an_unanswered_udp_probe_is_retransmitted_per_timer_e_then_unreachable() -> None:
    clock = Clock()
    sched = schedule(clock, interval_s=30, timeout_s=5)
    sched.sync([binding()])
    first_probe(sched, clock)
    start = clock.now
    events = run_until(sched, clock, start + 5.5)
    offsets = [(round(t - (start - 1000.0), 3), e) for t, e in events]
    resends = [(t, e) for t, e in offsets if isinstance(e, Probe)]
    # RFC 3261 Timer E: T1, then doubling (0.5, 1.5, 3.5 s) until the 5 s timeout.
    assert [t for t, _ in resends] == [0.5, 1.5, 3.5]
    assert all(p.retransmission and p.branch == f"{BRANCH_PREFIX}1" for _, p in resends)
    assert [(t, e) for t, e in offsets if e is UNREACHABLE] == [(5.0, UNREACHABLE)]
    assert sched.state(KEY) == (UNREACHABLE, None)
    # The answer to the timed-out probe is too late to count.
    assert sched.answered(f"{BRANCH_PREFIX}1") is None
    assert sched.state(KEY) == (UNREACHABLE, None)


def test_over_tcp_there_are_no_retransmissions() -> None:
    clock = Clock()
    sched = schedule(clock, interval_s=30, timeout_s=5)
    sched.sync([binding(source=Source("TCP", "192.168.1.50", 40001))])
    first_probe(sched, clock)
    start = clock.now
    events = run_until(sched, clock, start + 6)
    assert [(round(t - (start - 1000.0), 3), e) for t, e in events] == [(5.0, UNREACHABLE)]


def test_an_unreachable_phone_is_probed_on_and_comes_back_when_it_answers() -> None:
    clock = Clock()
    sched = schedule(clock, interval_s=10, timeout_s=2)
    sched.sync([binding()])
    probe = first_probe(sched, clock)
    start = clock.now
    events = run_until(sched, clock, start + 10.1)
    states = [e for _, e in events if isinstance(e, Reachability)]
    assert states == [UNREACHABLE]
    # Only one state change however many probes go unanswered.
    events = run_until(sched, clock, start + 49.9)
    assert [e for _, e in events if isinstance(e, Reachability)] == []
    fresh = [e for _, e in events if isinstance(e, Probe) and not e.retransmission]
    assert len(fresh) == 3 and all(p.branch != probe.branch for p in fresh)
    # The phone answers the next one (any answer proves it alive).
    nxt = first_probe(sched, clock)
    assert not nxt.retransmission and clock.now == pytest.approx(start + 50)
    clock.now += 0.002
    change = sched.answered(nxt.branch)
    assert change is not None and (change.before, change.after) == (UNREACHABLE, REACHABLE)
    assert change.rtt_ms == 2.0


def test_probes_are_spread_over_the_interval() -> None:
    """1000 phones restored at once are probed about 33 a second, not 1000 at once."""
    clock = Clock()
    sched = schedule(clock, interval_s=30)
    sched.sync([binding(str(n), f"sip:{n}@10.0.{n // 250}.{n % 250}:5060")
                for n in range(1000)])
    per_second: Counter[int] = Counter()
    for t, event in run_until(sched, clock, 1030.0):
        if isinstance(event, Probe) and not event.retransmission:
            per_second[int(t)] += 1
    assert sum(per_second.values()) == 1000
    assert len(per_second) == 30
    assert max(per_second.values()) < 60  # 33 a second on average


def test_sync_follows_the_location_table() -> None:
    clock = Clock()
    sched = schedule(clock, interval_s=30)
    # A binding saved as unreachable before a restart stays so until it answers.
    assert sched.sync([binding(reachable=False)]) == []
    assert sched.state(KEY) == (UNREACHABLE, None)
    # A REGISTER refreshes it (reachable again in the table): rung again, probed at once.
    [change] = sched.sync([binding(reachable=True)])
    assert (change.before, change.after, change.why) == (UNREACHABLE, UNKNOWN,
                                                         "registered again")
    assert sched.next_wakeup() == clock.now
    probe = first_probe(sched, clock)
    # The phone moves to a new flow (NAT rebinding) while a probe is in flight: the old
    # probe's silence says nothing about the new flow, so it is dropped and a new one sent.
    clock.now += 0.1
    assert sched.sync([binding(source=Source("UDP", "192.168.1.50", 6000))]) == []
    assert sched.answered(probe.branch) is None
    moved = first_probe(sched, clock)
    assert moved.branch != probe.branch
    # Removed or expired: forgotten, nothing more is sent.
    assert sched.sync([]) == []
    assert sched.state(KEY) is None and len(sched) == 0
    assert run_until(sched, clock, clock.now + 100) == []


def test_a_short_interval_caps_the_timeout() -> None:
    clock = Clock()
    sched = schedule(clock, interval_s=1, timeout_s=5)
    sched.sync([binding()])
    first_probe(sched, clock)
    start = clock.now
    events = [(round(t - (start - 1000.0), 3), e) for t, e in run_until(sched, clock,
                                                                          start + 1.0)]
    assert events[-1] == (1.0, UNREACHABLE)


def test_the_options_request() -> None:
    req = options_request(CONTACT, "UDP", "192.168.1.1", 5060, f"{BRANCH_PREFIX}0123abcd")
    assert req is not None
    parsed = parse_message(req.to_bytes())
    assert isinstance(parsed, Request) and parsed.method == "OPTIONS"
    assert str(parsed.uri) == CONTACT
    [via] = parsed.vias
    assert (via.host, via.port, via.transport) == ("192.168.1.1", 5060, "UDP")
    assert via.branch == f"{BRANCH_PREFIX}0123abcd" and via.rport_requested
    assert parsed.cseq.method == "OPTIONS" and parsed.max_forwards == 70
    assert parsed.to.uri == parsed.uri and parsed.from_.tag
    # A retransmission is the same message.
    again = options_request(CONTACT, "UDP", "192.168.1.1", 5060, f"{BRANCH_PREFIX}0123abcd")
    assert again is not None and again.to_bytes() == req.to_bytes()
    tcp = options_request("sip:101@10.0.0.9:5062;transport=tcp", "TCP", "10.0.0.1", 5060,
                          f"{BRANCH_PREFIX}1")
    assert tcp is not None and tcp.top_via.transport == "TCP"  # type: ignore[union-attr]
    assert options_request("not a uri", "UDP", "10.0.0.1", 5060, f"{BRANCH_PREFIX}1") is None


def answer(req: Request, code: int) -> Response:
    """What the phone sends back (with received/rport, as a phone does)."""
    return make_response(req, code)


def test_keepalive_sends_over_the_flow_and_marks_the_location_table() -> None:
    clock, mono = Clock(1_800_000_000.0), Clock()
    location = LocationTable(clock)
    location.put(binding())
    sent: list[tuple[Request, Source]] = []
    keepalive = Keepalive(KeepaliveConfig(interval_s=30), location,
                          lambda req, dest: sent.append((req, dest)), lambda _peer: "10.0.0.1",
                          5060, clock=mono)
    wake = keepalive.tick()
    assert sent == [] and wake <= mono.now + 1.0
    mono.now = keepalive.schedule.next_wakeup() or 0.0
    keepalive.tick()
    [(req, dest)] = sent
    assert dest == PHONE  # the REGISTER's own flow
    assert str(req.uri) == CONTACT and req.top_via.host == "10.0.0.1"  # type: ignore[union-attr]
    mono.now += 0.004
    assert keepalive.response(answer(req, 405))
    assert keepalive.state(location.bindings("101")[0]) == (REACHABLE, 4.0)
    assert keepalive.counts() == {"unknown": 0, "reachable": 1, "unreachable": 0}
    assert not keepalive.response(answer(replace(req, headers=tuple(
        h if h.name != "Via" else replace(h, value="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx")
        for h in req.headers)), 200))  # not one of ours

    # The next probe goes unanswered: the table's flag follows, so the phone is not rung.
    mono.now = keepalive.schedule.next_wakeup() or 0.0
    keepalive.tick()
    mono.now += 5.0
    while keepalive.state(location.bindings("101")[0])[0] is REACHABLE:
        mono.now = keepalive.tick()
    [current] = location.bindings("101")
    assert not current.reachable
    assert keepalive.counts()["unreachable"] == 1
    assert location.pending()  # the saved row says so too (reachable = 0)


def test_the_edge_consumes_answers_and_stops_ringing_an_unreachable_phone(
        tmp_path: Path) -> None:
    clock, mono = Clock(1_800_000_000.0), Clock()
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101")
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080,
                               keepalive_s=30), db, clock=clock, secret=SECRET, monotonic=mono)
        sent: list[tuple[object, Source]] = []
        edge.transports.send = lambda msg, dest: sent.append((msg, dest))  # type: ignore[method-assign]
        edge.location.put(replace(binding(), expires_at=clock.now + 600))
        assert edge.contacts_for("101") == [CONTACT]
        edge.keepalive.tick()
        mono.now = edge.keepalive.schedule.next_wakeup() or 0.0
        edge.keepalive.tick()
        [(req, dest)] = sent
        assert isinstance(req, Request) and dest == PHONE
        assert req.top_via.host == "127.0.0.1" and req.top_via.port == 5060  # type: ignore[union-attr]

        # The answer comes in like any message; it is ours, so it is not counted as dropped.
        edge.transports.received(answer(req, 501).to_bytes(), PHONE)
        assert edge.stats["dropped"] == 0
        assert edge.keepalive.state(edge.location.bindings("101")[0])[0] is REACHABLE

        # The phone goes silent: after the next probe's timeout it is no longer rung.
        sent.clear()
        mono.now = edge.keepalive.schedule.next_wakeup() or 0.0
        edge.keepalive.tick()
        first = sent[0][0]
        while edge.contacts_for("101"):
            mono.now = edge.keepalive.tick()
        assert len(sent) == 4  # the probe and three retransmissions
        assert edge.contacts_for("101") == []
        # A late answer to the timed-out probe changes nothing; the next probe's does.
        assert isinstance(first, Request)
        edge.transports.received(answer(first, 200).to_bytes(), PHONE)
        assert edge.contacts_for("101") == []
        sent.clear()
        mono.now = edge.keepalive.schedule.next_wakeup() or 0.0
        edge.keepalive.tick()
        [(again, _)] = sent
        assert isinstance(again, Request)
        edge.transports.received(answer(again, 200).to_bytes(), PHONE)
        assert edge.contacts_for("101") == [CONTACT]


def test_without_keepalives_nobody_is_judged_unreachable(tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0)
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101")
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080, keepalive_s=0),
                    db, clock=clock, secret=SECRET)
        # Saved as unreachable while keepalives were on.
        edge.location.put(replace(binding(reachable=False), expires_at=clock.now + 600))
        assert edge.contacts_for("101") == []
        edge.keepalive.start()  # disabled: starts no task, needs no loop
        assert edge.contacts_for("101") == [CONTACT]


def test_the_keepalive_setting() -> None:
    assert load(environ={}).sip_keepalive_s == 30
    assert load(environ={"PBX_SIP_KEEPALIVE_S": "0"}).sip_keepalive_s == 0
    with pytest.raises(SettingsError, match="sip_keepalive_s"):
        load(environ={"PBX_SIP_KEEPALIVE_S": "-1"})
