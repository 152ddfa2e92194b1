"""Busy lamps and voicemail lamps: the pure parts on a fake clock, and the edge without sockets.

Body builders (RFC 4235 dialog-info, RFC 3842 message-summary), the switchboard's line
states, the subscription table (expiry, refresh, Timer E, coalescing, bounds) and
hostile or malformed SUBSCRIBEs through `Edge` with a fake transport.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.db import Database
from appliance.edge import Edge, EdgeConfig
from appliance.edge.registrar import Device
from appliance.edge.subscriptions import (
    BRANCH_PREFIX,
    Subscription,
    SubscriptionConfig,
    SubscriptionTable,
    parse_expires,
)
from appliance.edge.transport import Source
from appliance.presence import MAX_CALLS, DialogState, LineStates, MessageSummary
from appliance.sip import (
    Request,
    Response,
    SipParseError,
    client_authorization,
    ha1,
    make_response,
    parse_message,
)
from appliance.sip.events import (
    DialogEntry,
    dialog_info,
    message_summary,
    parse_event,
    subscription_state,
)
from tests.test_edge_units import SECRET, add_devices

pytestmark = pytest.mark.timeout(30)

NS = "{urn:ietf:params:xml:ns:dialog-info}"
PHONE = Source("UDP", "192.168.1.50", 5062)
DEVICE = Device(1, "101", "101", "office-pbx", None, None)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def subscribe(*, event: str | None = "dialog", user: str = "102", expires: int | str | None = 600,
              cseq: int = 1, to_tag: str = "", call_id: str = "sub-1", branch: str = "b1",
              accept: str | None = None, auth: str = "", contact: str | None = None,
              method: str = "SUBSCRIBE") -> Request:
    lines = [
        f"{method} sip:{user}@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 192.168.1.50:5062;branch=z9hG4bK-{branch};rport",
        "Max-Forwards: 70",
        "From: <sip:101@127.0.0.1>;tag=phone1",
        f"To: <sip:{user}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: {contact or '<sip:101@192.168.1.50:5062>'}",
    ]
    if event is not None:
        lines.append(f"Event: {event}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if accept is not None:
        lines.append(f"Accept: {accept}")
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def answer(req: Request, code: int = 200) -> Response:
    return make_response(req, code)


def root(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def states_of(body: bytes) -> list[str]:
    return [d.findtext(f"{NS}state") or "" for d in root(body).iter(f"{NS}dialog")]


# --- body builders ---------------------------------------------------------------------

def test_parse_event() -> None:
    assert parse_event("dialog").package == "dialog"
    assert parse_event("Message-Summary ; id=7").id == "7"
    assert parse_event("dialog;call-id=x;from-tag=y").id is None
    for bad in ("", ";id=1", "dia log", "dialog;", "dialog;id=", "dialog;id=\"x"):
        with pytest.raises(SipParseError):
            parse_event(bad)


def test_dialog_info_is_well_formed_and_escapes_everything() -> None:
    body = dialog_info('sip:102@box"><x a="&', 3, [
        DialogEntry("d1", "early", "recipient"), DialogEntry('"<&>', "confirmed")])
    doc = root(body)
    assert doc.tag == f"{NS}dialog-info"
    assert doc.get("version") == "3" and doc.get("state") == "full"
    assert doc.get("entity") == 'sip:102@box"><x a="&'
    dialogs = list(doc.iter(f"{NS}dialog"))
    assert [(d.get("id"), d.get("direction")) for d in dialogs] == [
        ("d1", "recipient"), ('"<&>', None)]
    assert states_of(body) == ["early", "confirmed"]
    assert root(dialog_info("sip:1@b", 0, [], full=False)).get("state") == "partial"
    with pytest.raises(ValueError):
        DialogEntry("x", "ringing")
    with pytest.raises(ValueError):
        DialogEntry("x", "early", "sideways")
    with pytest.raises(ValueError):
        dialog_info("sip:1@b", -1, [])


def test_message_summary() -> None:
    assert message_summary(0, 0, account="sip:101@box") == (
        b"Messages-Waiting: no\r\nMessage-Account: sip:101@box\r\nVoice-Message: 0/0\r\n")
    assert message_summary(2, 5, urgent_new=1) == (
        b"Messages-Waiting: yes\r\nVoice-Message: 2/5 (1/0)\r\n")
    with pytest.raises(ValueError):
        message_summary(-1, 0)
    with pytest.raises(ValueError):
        message_summary(0, 0, account="sip:x\r\nEvil: 1")


def test_subscription_state() -> None:
    assert subscription_state("active", expires=120) == "active;expires=120"
    assert subscription_state("terminated", reason="timeout") == "terminated;reason=timeout"
    with pytest.raises(ValueError):
        subscription_state("ended")


# --- line states -----------------------------------------------------------------------

def lines() -> tuple[LineStates, list[str]]:
    changes: list[str] = []
    owners = {"101": "101", "soft-101": "101", "102": "102", "103": "103"}
    return LineStates(owners.get, changes.append), changes


def test_a_call_rings_is_answered_and_ends() -> None:
    table, changes = lines()
    table.ringing("c1", "102", "soft-101")
    assert changes == ["102", "101"]
    assert [(d.state, d.direction) for d in table.dialogs("102")] == [
        (DialogState.EARLY, "recipient")]
    assert [(d.state, d.direction) for d in table.dialogs("101")] == [
        (DialogState.EARLY, "initiator")]
    table.answered("c1", "102")
    assert [d.state for d in table.dialogs("102") + table.dialogs("101")] == [
        DialogState.CONFIRMED, DialogState.CONFIRMED]
    changes.clear()
    table.ended("c1")
    assert sorted(changes) == ["101", "102"]
    assert table.dialogs("101") == table.dialogs("102") == [] and len(table) == 0


def test_a_pickup_moves_the_call_and_late_reports_are_ignored() -> None:
    table, changes = lines()
    table.ringing("c1", "102")  # from a trunk or a transfer: no calling device
    table.ringing("c2", "103", "101")
    table.answered("c2", "102")  # 102 picked up the call ringing 103
    assert table.dialogs("103") == []
    assert [d.call_id for d in table.dialogs("102")] == ["c1", "c2"]  # ringing first
    changes.clear()
    table.ended("c2")
    table.answered("c2", "102")  # the answer raced the hangup: nothing comes back
    table.ended("c2")
    assert table.dialogs("101") == [] and [d.call_id for d in table.dialogs("102")] == ["c1"]
    assert sorted(changes) == ["101", "102"]


def test_forgotten_calls_are_bounded() -> None:
    table, _changes = lines()
    for n in range(MAX_CALLS + 10):
        table.ringing(f"c{n}", "102")
    assert len(table) == MAX_CALLS
    assert table.dialogs("102")[0].call_id == "c10"


# --- the subscription table ------------------------------------------------------------

class Harness:
    """A table on a fake clock whose bodies name the subscription's version and a state."""

    def __init__(self, **config: int) -> None:
        self.clock = Clock()
        self.state = "terminated"
        counter = itertools.count(1)
        tags = itertools.count(1)
        self.table = SubscriptionTable(
            SubscriptionConfig(**config), self.clock, self.body, 5060,
            branches=lambda: f"{BRANCH_PREFIX}{next(counter)}", tags=lambda: f"t{next(tags)}")

    def body(self, sub: Subscription) -> tuple[str, bytes]:
        return "application/dialog-info+xml", dialog_info(
            sub.entity, sub.version, [DialogEntry("x", self.state)])

    def subscribe(self, source: Source = PHONE, **kw: object) -> Response:
        return self.table.subscribe(subscribe(**kw), source, DEVICE,  # type: ignore[arg-type]
                                    {"101", "102"}, "192.168.1.1")

    def until(self, t: float) -> list[float]:
        """Advance the clock to t, running timers; the times at which requests went out."""
        sent: list[float] = []
        while True:
            wake = self.table.next_wakeup()
            if wake is None or wake > t:
                break
            self.clock.now = max(self.clock.now, wake)
            sent += [self.clock.now] * (len(self.table.run()) + len(self.table.flush()))
        self.clock.now = t
        return sent


def only(out: list[tuple[Request, Source]]) -> Request:
    assert len(out) == 1, out
    req, dest = out[0]
    assert dest == PHONE
    return req


def test_subscribe_then_notify_full_state_with_increasing_versions() -> None:
    h = Harness()
    reply = h.subscribe(expires=600)
    assert reply.status == 200 and reply.to.tag == "t1"
    assert reply.header("Expires") == "600"
    assert reply.header("Contact") == "<sip:102@192.168.1.1:5060>"
    notify = only(h.table.flush())
    assert notify.method == "NOTIFY" and str(notify.uri) == "sip:101@192.168.1.50:5062"
    assert notify.from_.tag == "t1" and notify.to.tag == "phone1"
    assert notify.call_id == "sub-1" and notify.cseq.number == 1
    assert notify.header("Event") == "dialog"
    assert notify.header("Subscription-State") == "active;expires=600"
    assert notify.header("Content-Type") == "application/dialog-info+xml"
    assert root(notify.body).get("version") == "0"
    assert root(notify.body).get("entity") == "sip:102@127.0.0.1"
    assert h.table.flush() == []  # nothing new to say
    assert h.table.response(answer(notify))
    h.clock.now += 10
    h.state = "early"
    assert h.table.mark("dialog", "102")
    assert not h.table.mark("dialog", "101")  # nobody watches 101
    second = only(h.table.flush())
    assert second.cseq.number == 2 and root(second.body).get("version") == "1"
    assert second.header("Subscription-State") == "active;expires=590"
    assert states_of(second.body) == ["early"]


def test_changes_while_a_notify_is_in_flight_coalesce_into_one() -> None:
    h = Harness()
    h.subscribe()
    first = only(h.table.flush())
    for state in ("early", "confirmed", "terminated", "confirmed"):
        h.state = state
        h.table.mark("dialog", "102")
        assert h.table.flush() == []  # one NOTIFY in flight at a time
    assert h.table.response(answer(first))
    latest = only(h.table.flush())
    assert states_of(latest.body) == ["confirmed"] and root(latest.body).get("version") == "1"
    assert h.table.flush() == []


def test_udp_notify_is_retransmitted_per_timer_e_then_the_subscription_ends() -> None:
    h = Harness()
    h.subscribe()
    start = h.clock.now
    first = only(h.table.flush())
    sent = [round(t - start, 3) for t in h.until(start + 40)]
    assert sent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert len(h.table) == 0
    assert h.table.ended[-1][1] == "NOTIFY unanswered for 32 s"
    assert h.table.response(answer(first))  # ours, but too late to matter
    assert len(h.table) == 0


def test_no_retransmissions_over_tcp_and_a_provisional_answer_slows_them() -> None:
    h = Harness()
    tcp = Source("TCP", "192.168.1.50", 40000)
    h.subscribe(source=tcp)
    [(notify, dest)] = h.table.flush()
    assert dest == tcp and notify.top_via.transport == "TCP"  # type: ignore[union-attr]
    assert notify.header("Contact") == "<sip:102@192.168.1.1:5060;transport=tcp>"
    start = h.clock.now
    assert h.until(start + 31) == []
    h2 = Harness()
    h2.subscribe(call_id="sub-2")
    first = only(h2.table.flush())
    start = h2.clock.now
    assert h2.table.response(answer(first, 100))
    assert [round(t - start, 3) for t in h2.until(start + 9)] == [0.5, 4.5, 8.5]


@pytest.mark.parametrize("code", [481, 408, 404, 500])
def test_an_error_answer_ends_the_subscription(code: int) -> None:
    h = Harness()
    h.subscribe()
    assert h.table.response(answer(only(h.table.flush()), code))
    assert len(h.table) == 0 and h.table.flush() == []


def test_refresh_extends_and_notifies_and_unsubscribe_terminates() -> None:
    h = Harness()
    h.subscribe(expires=600)
    h.table.response(answer(only(h.table.flush())))
    h.clock.now += 500
    refresh = subscribe(expires=600, cseq=2, to_tag="t1")
    assert h.table.owns(refresh)
    reply = h.table.in_dialog(refresh, PHONE)
    assert reply is not None and reply.status == 200 and reply.header("Expires") == "600"
    again = only(h.table.flush())
    assert again.header("Subscription-State") == "active;expires=600"
    assert h.table.in_dialog(refresh, PHONE) == reply  # a retransmission: the same answer
    assert h.table.in_dialog(subscribe(cseq=1, to_tag="t1"), PHONE).status == 500  # type: ignore[union-attr]
    bloated = subscribe(cseq=9, to_tag="t1", contact="<sip:x@y;p=" + "z" * 5000 + ">")
    assert h.table.in_dialog(bloated, PHONE).status == 413  # type: ignore[union-attr]
    h.table.response(answer(again))
    h.clock.now += 599  # 1099 s after the start: the first expiry has long passed
    assert len(h.table) == 1
    bye = h.table.in_dialog(subscribe(expires=0, cseq=3, to_tag="t1"), PHONE)
    assert bye is not None and bye.status == 200 and bye.header("Expires") == "0"
    assert h.table.in_dialog(subscribe(expires=0, cseq=3, to_tag="t1"), PHONE) == bye
    last = only(h.table.flush())
    assert last.header("Subscription-State") == "terminated;reason=timeout"
    assert last.cseq.number == 3 and root(last.body).get("version") == "2"
    # Ending: no more refreshes; the subscription goes with the answer to the last NOTIFY.
    assert h.table.in_dialog(subscribe(cseq=4, to_tag="t1"), PHONE).status == 481  # type: ignore[union-attr]
    h.table.response(answer(last))
    assert len(h.table) == 0
    assert not h.table.owns(subscribe(cseq=5, to_tag="t1"))


def test_a_subscription_that_is_not_refreshed_expires() -> None:
    h = Harness()
    h.subscribe(expires=60)
    h.table.response(answer(only(h.table.flush())))
    start = h.clock.now
    assert h.until(start + 59.9) == []
    h.clock.now = start + 60
    assert h.table.run() == []
    last = only(h.table.flush())
    assert last.header("Subscription-State") == "terminated;reason=timeout"
    h.table.response(answer(last))
    assert len(h.table) == 0


def test_refusals_and_retransmissions_of_the_initial_subscribe() -> None:
    h = Harness(max_per_source=2, max_total=3)
    assert h.subscribe(expires=30).status == 423
    assert h.subscribe(expires=30).header("Min-Expires") == "60"
    assert h.subscribe(expires="soon").status == 400
    assert h.subscribe(user="999").status == 404
    assert h.subscribe(accept="text/plain").status == 406
    assert h.subscribe(accept="application/dialog-info+xml, */*").status == 200
    first = h.subscribe(call_id="sub-2", expires=None)
    assert first.header("Expires") == "3600"
    assert h.subscribe(call_id="sub-2", expires=None) == first  # retransmission: same answer
    # ... only to its own flow: anyone else must authenticate to learn our tag.
    assert h.table.retransmission(subscribe(call_id="sub-2"), Source("UDP", "10.9.9.9", 5060)) \
        is None
    assert len(h.table) == 2
    assert h.subscribe(call_id="sub-3", expires=99999).status == 503  # per source
    other = Source("UDP", "192.168.1.51", 5062)
    assert h.subscribe(other, call_id="sub-4", expires=99999).header("Expires") == "3600"
    assert h.subscribe(Source("UDP", "192.168.1.52", 5062), call_id="sub-5").status == 503
    huge = h.subscribe(Source("UDP", "192.168.1.60", 5062), call_id="big",
                       contact="<sip:101@192.168.1.60:5062;x=" + "a" * 5000 + ">")
    assert huge.status == 413
    # Message waiting: only the device's own mailbox.
    assert h.subscribe(other, event="message-summary", user="102", call_id="m1").status == 403


def test_a_fetch_gets_one_terminated_notify() -> None:
    h = Harness()
    assert h.subscribe(expires=0).status == 200
    notify = only(h.table.flush())
    assert notify.header("Subscription-State") == "terminated;reason=timeout"
    h.table.response(answer(notify))
    assert len(h.table) == 0


def test_shutdown_tells_every_subscriber() -> None:
    h = Harness()
    h.subscribe()
    h.subscribe(call_id="sub-2")
    h.table.flush()
    out = h.table.shutdown()
    assert [r.header("Subscription-State") for r, _ in out] == [
        "terminated;reason=deactivated"] * 2
    assert len(h.table) == 0 and h.table.next_wakeup() is None


def test_parse_expires() -> None:
    assert parse_expires(subscribe(expires=None)) is None
    assert parse_expires(subscribe(expires="0")) == 0
    for bad in ("-1", "1e3", "12345678901", "٣"):
        with pytest.raises(SipParseError):
            parse_expires(subscribe(expires=bad))


# --- through the edge, without sockets ---------------------------------------------------

class FakeEdge:
    """An Edge on a fake clock whose transport records what it sends."""

    def __init__(self, db: Database) -> None:
        self.clock = Clock(1_800_000_000.0)
        self.mono = Clock()
        self.edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080), db,
                         clock=self.clock, secret=SECRET, monotonic=self.mono)
        self.sent: list[tuple[Request | Response, Source]] = []
        self.edge.transports.send = (  # type: ignore[method-assign]
            lambda msg, dest: self.sent.append((msg, dest)))

    def receive(self, msg: Request | Response, source: Source = PHONE
                ) -> list[tuple[Request | Response, Source]]:
        self.sent.clear()
        self.edge.transports.received(msg.to_bytes(), source)
        return list(self.sent)

    def authenticated(self, username: str = "101", password: str = "Kx7-desk-alpha",
                      **kw: object) -> list[tuple[Request | Response, Source]]:
        """Send the SUBSCRIBE, take the 407, send it again with credentials."""
        branch = str(kw.pop("branch", "b1"))
        [(challenge, _)] = self.receive(subscribe(branch=branch, **kw))  # type: ignore[arg-type]
        assert isinstance(challenge, Response) and challenge.status == 407
        nonce = challenge.credentials("Proxy-Authenticate")[0].get("nonce")
        assert nonce
        target = f"sip:{kw.get('user', '102')}@127.0.0.1"
        auth = client_authorization(
            username=username, realm="office-pbx", nonce=nonce, uri=target, method="SUBSCRIBE",
            ha1_hex=ha1(username, "office-pbx", password, "SHA-256"), algorithm="SHA-256")
        self.last = subscribe(branch=branch + "a", cseq=2, auth=auth, **kw)  # type: ignore[arg-type]
        return self.receive(self.last)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeEdge]:
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101", "102", password="Kx7-desk-alpha")
        yield FakeEdge(db)


def statuses(out: list[tuple[Request | Response, Source]]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m, _ in out]


@pytest.mark.parametrize("event", [None, "presence", "refer", "dialog;id=", "dia log"])
def test_a_subscribe_for_an_event_we_do_not_serve_gets_489(fake: FakeEdge,
                                                           event: str | None) -> None:
    [(reply, dest)] = fake.receive(subscribe(event=event))
    assert isinstance(reply, Response) and reply.status == 489
    assert reply.header("Allow-Events") == "dialog, message-summary"
    assert dest == PHONE
    assert fake.edge.stats["forwarded"] == 0


def test_an_unauthenticated_subscribe_is_challenged_and_a_wrong_password_counts(
        fake: FakeEdge) -> None:
    [(challenge, _)] = fake.receive(subscribe())
    assert isinstance(challenge, Response) and challenge.status == 407
    out = fake.authenticated(password="guess", branch="g1")
    assert statuses(out) == [407]
    assert fake.edge.stats["auth_failures"] == 1
    assert len(fake.edge.subscriptions.table) == 0


def test_hostile_and_malformed_subscribes_after_authentication(fake: FakeEdge) -> None:
    cases = {
        "unknown": ({"user": "999"}, 404),
        "brief": ({"expires": 10}, 423),
        "garbage expires": ({"expires": "later"}, 400),
        "other mailbox": ({"event": "message-summary", "user": "102"}, 403),
        "bad accept": ({"accept": "application/pidf+xml"}, 406),
    }
    for n, (kw, code) in enumerate(cases.values()):
        out = fake.authenticated(branch=f"h{n}", call_id=f"h-{n}", **kw)
        assert statuses(out) == [code], kw
    assert len(fake.edge.subscriptions.table) == 0
    assert fake.edge.stats["forwarded"] == 0 and fake.edge.stats["auth_failures"] == 0


def test_busy_lamp_through_the_edge(fake: FakeEdge) -> None:
    out = fake.authenticated()
    assert statuses(out) == [200, "NOTIFY"]
    (ok, _), (notify, dest) = out
    assert isinstance(ok, Response) and isinstance(notify, Request)
    assert dest == PHONE  # the subscriber's flow, not its Contact
    assert states_of(notify.body) == ["terminated"]
    assert notify.top_via.branch.startswith(BRANCH_PREFIX)  # type: ignore[union-attr]
    # The answer is consumed by the edge, not forwarded to the engine.
    assert fake.receive(answer(notify)) == []
    # A retransmitted SUBSCRIBE gets the same 200, and no second subscription or NOTIFY.
    assert fake.receive(fake.last) == [(ok, PHONE)]
    assert len(fake.edge.subscriptions.table) == 1
    # The switchboard rings 102 from 101's desk phone: one NOTIFY, early.
    presence = fake.edge.subscriptions.lines
    fake.sent.clear()
    presence.ringing("call-1", "102", "101")
    [(early, _)] = fake.sent
    assert isinstance(early, Request) and states_of(early.body) == ["early"]
    assert [d.get("direction") for d in root(early.body).iter(f"{NS}dialog")] == ["recipient"]
    fake.sent.clear()
    presence.answered("call-1", "102")
    assert fake.sent == []  # the early NOTIFY is not answered yet
    fake.receive(answer(early))
    [(confirmed, _)] = fake.sent
    assert states_of(confirmed.body) == ["confirmed"]  # type: ignore[union-attr]
    fake.receive(answer(confirmed))  # type: ignore[arg-type]
    # A refresh in the dialog is the edge's too: 200, then a NOTIFY; nothing to the engine.
    tag = ok.to.tag or ""
    out = fake.receive(subscribe(cseq=3, to_tag=tag, branch="r1"))
    assert statuses(out) == [200, "NOTIFY"]
    fake.receive(answer(out[1][0]))  # type: ignore[arg-type]
    # Another method in the subscription's dialog is refused, not proxied.
    assert statuses(fake.receive(subscribe(method="INFO", cseq=4, to_tag=tag))) == [405]
    fake.sent.clear()
    presence.ended("call-1")
    [(idle, _)] = fake.sent
    assert states_of(idle.body) == ["terminated"]  # type: ignore[union-attr]
    fake.receive(answer(idle))  # type: ignore[arg-type]
    out = fake.receive(subscribe(cseq=5, to_tag=tag, expires=0, branch="u1"))
    assert statuses(out) == [200, "NOTIFY"]
    assert out[1][0].header("Subscription-State") == "terminated;reason=timeout"
    fake.receive(answer(out[1][0]))  # type: ignore[arg-type]
    assert len(fake.edge.subscriptions.table) == 0
    assert fake.edge.stats["forwarded"] == 0


def test_a_subscribe_in_someone_elses_dialog_is_still_proxied(fake: FakeEdge) -> None:
    """REFER's implicit subscription lives in a call dialog: the engine's, not ours."""
    out = fake.receive(subscribe(event="refer", to_tag="engine-tag", cseq=7))
    assert [dest for _m, dest in out] == [fake.edge.engine]


def test_message_waiting_through_the_edge(fake: FakeEdge) -> None:
    out = fake.authenticated(event="message-summary", user="101",
                             accept="application/simple-message-summary")
    assert statuses(out) == [200, "NOTIFY"]
    notify = out[1][0]
    assert notify.header("Content-Type") == "application/simple-message-summary"
    assert notify.body == (b"Messages-Waiting: no\r\nMessage-Account: sip:101@127.0.0.1\r\n"
                           b"Voice-Message: 0/0\r\n")
    fake.receive(answer(notify))  # type: ignore[arg-type]
    subs = fake.edge.subscriptions
    subs.mailbox = lambda ext: MessageSummary(new=2 if ext == "101" else 0, old=1)
    fake.sent.clear()
    subs.mailbox_changed("101")
    [(update, _)] = fake.sent
    assert b"Messages-Waiting: yes" in update.body and b"Voice-Message: 2/1" in update.body  # type: ignore[union-attr]


def test_the_edge_retransmits_and_expires_on_its_monotonic_clock(fake: FakeEdge) -> None:
    out = fake.authenticated(expires=60)
    notify = out[1][0]
    subs = fake.edge.subscriptions
    fake.sent.clear()
    fake.mono.now += 0.5
    subs.tick()
    assert [m.to_bytes() for m, _ in fake.sent] == [notify.to_bytes()]  # Timer E
    fake.receive(answer(notify))  # type: ignore[arg-type]
    fake.clock.now += 3600  # the wall clock jumping (NTP) changes nothing
    subs.tick()
    assert fake.sent == []
    fake.mono.now += 60
    subs.tick()
    [(last, dest)] = fake.sent
    assert dest == PHONE
    assert last.header("Subscription-State") == "terminated;reason=timeout"  # type: ignore[union-attr]
    fake.receive(answer(last))  # type: ignore[arg-type]
    assert subs.snapshot() == []


def test_reload_ends_subscriptions_of_removed_devices(fake: FakeEdge) -> None:
    out = fake.authenticated()
    fake.receive(answer(out[1][0]))  # type: ignore[arg-type]
    fake.edge.db.write(lambda c: c.execute("DELETE FROM devices WHERE username = '101'"))
    fake.sent.clear()
    fake.edge.reload()
    [(last, _)] = fake.sent
    assert last.header("Subscription-State") == "terminated;reason=rejected"  # type: ignore[union-attr]


# --- the switchboard's reports ---------------------------------------------------------

class Recorder:
    """A presence that writes down what the switchboard reports."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, ...]] = []

    def ringing(self, call_id: str, extension: str, caller_device: str = "") -> None:
        self.reports.append(("ringing", extension, caller_device))

    def answered(self, call_id: str, extension: str) -> None:
        self.reports.append(("answered", extension))

    def ended(self, call_id: str) -> None:
        self.reports.append(("ended",))


async def test_the_switchboard_reports_ringing_answer_and_end() -> None:
    from appliance.engine import LegEvent, LegInfo, LegState
    from appliance.engine.events import Direction
    from appliance.switchboard import Switchboard
    from tests.test_switchboard import Directory, FakeEngine, Log, settle

    engine, presence = FakeEngine(), Recorder()
    sb = Switchboard(engine, Directory({"200": ["sip:desk", "sip:soft"]}),  # type: ignore[arg-type]
                     Log(), presence=presence)
    sb.attach()
    assert engine.handler is not None
    engine.handler(LegEvent(LegInfo("A1", Direction.INBOUND, LegState.INCOMING, "sip:box",
                                    "sip:far", request_user="200",
                                    headers={"x-pbx-device": "101"})))
    await settle()
    assert presence.reports == [("ringing", "200", "101")]
    engine.emit(engine.legs[1], LegState.CONFIRMED, code=200)
    await settle()
    assert presence.reports[1:] == [("answered", "200")]
    engine.emit("A1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    assert presence.reports[2:] == [("ended",)]
    # Unknown numbers never ring, so they never light a lamp.
    engine.emit("A2", LegState.INCOMING, inbound=True, user="999")
    await settle()
    engine.emit("A2", LegState.DISCONNECTED, code=404, side="local", inbound=True)
    await settle()
    assert presence.reports[3:] == [("ended",)]


def test_an_empty_line_table_is_still_the_switchboards_presence() -> None:
    from appliance.switchboard import Switchboard

    table, _changes = lines()
    assert len(table) == 0  # falsy: the switchboard must not swap in a null presence
    sb = Switchboard(None, None, None, presence=table)  # type: ignore[arg-type]
    assert sb.presence is table
