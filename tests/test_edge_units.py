"""The edge's pure parts: flow tokens, Via handling, the registrar and the location table."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from appliance.db import Database
from appliance.edge.location import Binding, LocationTable
from appliance.edge.proxy import (
    FlowTokens,
    branch_for,
    decrement_max_forwards,
    received_via,
    response_destination,
)
from appliance.edge.registrar import Authenticator, Device, Devices, Registrar
from appliance.edge.transport import Source, _UdpSocket
from appliance.sip import (
    NonceManager,
    Request,
    client_authorization,
    ha1,
    parse_message,
    parse_via,
)

PHONE = Source("UDP", "192.168.1.50", 5062)
SECRET = b"0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def register(user: str = "101", contact: str = "sip:101@192.168.1.50:5062", *,
             expires: int | None = 300, cseq: int = 1, auth: str = "") -> Request:
    lines = [
        "REGISTER sip:pbx.local SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.50:5062;branch=z9hG4bK-1;rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@pbx.local>;tag=a1",
        f"To: <sip:{user}@pbx.local>",
        "Call-ID: reg-1@phone",
        f"CSeq: {cseq} REGISTER",
        f"Contact: {contact}" if contact == "*" else f"Contact: <{contact}>",
    ]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if auth:
        lines.append(f"Authorization: {auth}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def devices() -> Devices:
    return Devices("office-pbx", {
        "101": Device(1, "101", "101", "office-pbx",
                      ha1("101", "office-pbx", "Kx7-desk-alpha", "MD5"),
                      ha1("101", "office-pbx", "Kx7-desk-alpha", "SHA-256")),
    })


def add_devices(db: Database, *users: str, password: str = "") -> None:
    """Employees with one device each (ids 1, 2, ...), HA1s for password in office-pbx."""
    for n, user in enumerate(users, start=1):
        md5 = ha1(user, "office-pbx", password, "MD5") if password else "0" * 32
        sha = ha1(user, "office-pbx", password, "SHA-256") if password else "0" * 64
        db.write(lambda c, n=n, user=user, md5=md5, sha=sha: (
            c.execute("INSERT INTO employees (id, extension, name) VALUES (?, ?, ?)",
                      [n, user, f"User {user}"]),
            c.execute("INSERT INTO devices (id, employee_id, username, realm, ha1_md5,"
                      " ha1_sha256) VALUES (?, ?, ?, 'office-pbx', ?, ?)",
                      [n, n, user, md5, sha])))


def test_flow_tokens_round_trip_and_resist_forgery() -> None:
    tokens = FlowTokens(SECRET)
    token = tokens.encode(PHONE)
    assert tokens.decode(token) == PHONE
    assert FlowTokens(b"another secret, 32 bytes long!!!").decode(token) is None
    assert tokens.decode(token[:-2] + "aa") is None
    assert tokens.decode("101") is None
    assert tokens.decode("f-!!!") is None


def test_branches_are_stable_per_incoming_branch() -> None:
    assert branch_for("z9hG4bK-1", SECRET) == branch_for("z9hG4bK-1", SECRET)
    assert branch_for("z9hG4bK-1", SECRET) != branch_for("z9hG4bK-2", SECRET)
    assert branch_for("z9hG4bK-1", SECRET).startswith("z9hG4bK")


def test_received_and_rport() -> None:
    via = parse_via("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-x;rport")
    stamped = received_via(via, Source("UDP", "203.0.113.7", 40123))
    assert stamped.received == "203.0.113.7"
    assert response_destination(stamped) == Source("UDP", "203.0.113.7", 40123)
    plain = parse_via("SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bK-y")
    assert response_destination(plain) == Source("TCP", "10.0.0.5", 5070)


def test_max_forwards() -> None:
    req = register()
    assert decrement_max_forwards(req).max_forwards == 69  # type: ignore[union-attr]
    exhausted = req.with_header("Max-Forwards", ["0"])
    assert decrement_max_forwards(exhausted) is None


def test_challenge_then_register_then_unregister() -> None:
    clock = Clock()
    nonces = NonceManager(SECRET, ttl_s=300, clock=clock)
    auth = Authenticator(nonces, devices)
    location = LocationTable(clock)
    registrar = Registrar(location, clock)

    first = auth.check(register(), PHONE)
    assert first.device is None and first.reply is not None
    assert first.reply.status == 401
    offered = first.reply.header_values("WWW-Authenticate")
    assert "SHA-256" in offered[0] and "MD5" in offered[1]
    nonce = first.reply.credentials("WWW-Authenticate")[0].get("nonce")
    assert nonce

    def answer(password: str, cseq: int, nc: int = 1) -> Request:
        value = client_authorization(
            username="101", realm="office-pbx", nonce=nonce, uri="sip:pbx.local",
            method="REGISTER", ha1_hex=ha1("101", "office-pbx", password, "SHA-256"),
            algorithm="SHA-256", cnonce="c0ffee", nc=nc)
        return register(cseq=cseq, auth=value)

    wrong = auth.check(answer("guess", 2), PHONE)
    assert wrong.device is None and wrong.failed and wrong.reply.status == 401  # type: ignore[union-attr]
    req = answer("Kx7-desk-alpha", 3, nc=2)
    ok = auth.check(req, PHONE)
    assert ok.device is not None and ok.device.username == "101"
    reply = registrar.register(req, PHONE, ok.device)
    assert reply.status == 200
    assert "expires=300" in reply.header("Contact")  # type: ignore[operator]
    [binding] = location.bindings("101")
    assert binding.source == PHONE
    assert location.find_contact("192.168.1.50", 5062, "101") == binding

    clock.now += 301
    assert location.bindings("101") == []
    assert location.find_contact("192.168.1.50", 5062, "101") is None


def test_registrar_rules() -> None:
    clock = Clock()
    location = LocationTable(clock)
    registrar = Registrar(location, clock)
    device = devices().by_username["101"]
    assert registrar.register(register(expires=10), PHONE, device).status == 423
    assert registrar.register(register(user="102"), PHONE, device).status == 403
    assert registrar.register(register(expires=7200), PHONE, device).status == 200
    assert location.bindings("101")[0].remaining(clock.now) == 3600  # capped
    # An older CSeq of the same Call-ID is a late retransmission: ignored.
    registrar.register(register(expires=0, cseq=0), PHONE, device)
    assert len(location.bindings("101")) == 1
    assert registrar.register(register(contact="*", expires=0, cseq=5), PHONE,
                              device).status == 200
    assert location.bindings("101") == []
    assert registrar.register(register(contact="*", expires=60, cseq=6), PHONE,
                              device).status == 400


def test_registrar_reports_changes_not_refreshes() -> None:
    clock = Clock()
    location = LocationTable(clock)
    changes: list[tuple[str, str]] = []
    registrar = Registrar(location, clock,
                          on_change=lambda what, b: changes.append((what, b.source.host)))
    device = devices().by_username["101"]
    registrar.register(register(cseq=1), PHONE, device)
    registrar.register(register(cseq=2), PHONE, device)  # a refresh: nothing to report
    assert changes == [("new", "192.168.1.50")]
    moved = Source("UDP", "192.168.1.77", 5062)
    registrar.register(register(cseq=3), moved, device)
    registrar.register(register(cseq=4, expires=0), moved, device)
    assert changes[1:] == [("moved", "192.168.1.77"), ("removed", "192.168.1.77")]
    registrar.register(register(cseq=5), PHONE, device)
    registrar.register(register(contact="*", expires=0, cseq=6), PHONE, device)
    assert changes[3:] == [("new", "192.168.1.50"), ("removed", "192.168.1.50")]


def test_bindings_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101")
        table = LocationTable(clock)
        live = Binding(1, "101", "sip:101@192.168.1.50:5062", PHONE, "c", 1, clock.now + 600)
        gone = Binding(1, "101", "sip:101@192.168.1.51:5062", PHONE, "d", 1, clock.now + 30)
        table.put(live)
        table.put(gone)
        db.write(lambda c: LocationTable.write(c, *table.take_changes()))
        assert not table.pending()

        clock.now += 60  # the box was off for a minute
        again = LocationTable(clock)
        assert again.load(db.read()) == 1
        assert again.bindings("101") == [live]
        assert again.find_contact("192.168.1.50", 5062, "101") == live
        # The expired row is cleaned up by the next flush.
        db.write(lambda c: LocationTable.write(c, *again.take_changes()))
        assert db.read().execute("SELECT count(*) FROM registrations").fetchone()[0] == 1


@pytest.mark.parametrize("bad", ["garbage", "f-", "f-" + "a" * 200])
def test_tokens_never_raise(bad: str) -> None:
    assert FlowTokens(SECRET).decode(bad) is None


def test_digest_uri_may_name_the_target_address() -> None:
    """SIPp puts host:port in the digest-uri; user and host must still match."""
    from appliance.edge.registrar import _same_target
    from appliance.sip import parse_uri

    ruri = parse_uri("sip:2000@127.0.0.1")
    assert _same_target("sip:2000@127.0.0.1:5060", ruri)
    assert _same_target("sip:127.0.0.1:5060", ruri)
    assert not _same_target("sip:2001@127.0.0.1", ruri)
    assert not _same_target("sip:2000@198.51.100.1", ruri)
    assert not _same_target("not a uri", ruri)
    assert not _same_target(None, ruri)


def test_md5_only_for_devices_that_need_it() -> None:
    clock = Clock()
    md5_devices = Devices("office-pbx", {"101": Device(
        1, "101", "101", "office-pbx", "0" * 32, "0" * 64, auth="md5")})
    auth = Authenticator(NonceManager(SECRET, clock=clock), lambda: md5_devices)
    reply = auth.check(register(), PHONE).reply
    assert reply is not None
    assert len(reply.header_values("WWW-Authenticate")) == 1
    assert "MD5" in reply.header_values("WWW-Authenticate")[0]
    stranger = auth.check(register(user="999"), PHONE).reply
    assert stranger is not None  # unknown names get the default order
    assert "SHA-256" in stranger.header_values("WWW-Authenticate")[0]


def test_a_retransmitted_authenticated_invite_is_forwarded_again(tmp_path: Path) -> None:
    """Not challenged as a replay: a second 407 would make the phone start a second call."""
    from appliance.edge import Edge, EdgeConfig

    clock = Clock()
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101", password="Kx7-desk-alpha")
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080), db,
                    clock=clock, secret=SECRET)
        sent: list[tuple[object, Source]] = []
        edge.transports.send = lambda msg, dest: sent.append((msg, dest))  # type: ignore[method-assign]

        def invite(auth: str = "") -> bytes:
            lines = ["INVITE sip:102@127.0.0.1 SIP/2.0",
                     "Via: SIP/2.0/UDP 192.168.1.50:5062;branch=z9hG4bK-inv1;rport",
                     "Max-Forwards: 70", "From: <sip:101@127.0.0.1>;tag=x",
                     "To: <sip:102@127.0.0.1>", "Call-ID: call-1", "CSeq: 2 INVITE",
                     "Contact: <sip:101@192.168.1.50:5062>"]
            if auth:
                lines.append(f"Proxy-Authorization: {auth}")
            return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

        edge.transports.received(invite(), PHONE)
        challenge = sent.pop()[0]
        assert challenge.status == 407  # type: ignore[attr-defined]
        nonce = challenge.credentials("Proxy-Authenticate")[0].get("nonce")  # type: ignore[attr-defined]
        auth = client_authorization(
            username="101", realm="office-pbx", nonce=nonce, uri="sip:102@127.0.0.1",
            method="INVITE", ha1_hex=ha1("101", "office-pbx", "Kx7-desk-alpha", "SHA-256"),
            algorithm="SHA-256")
        edge.transports.received(invite(auth), PHONE)
        edge.transports.received(invite(auth), PHONE)  # the retransmission
        assert [dest for _msg, dest in sent] == [edge.engine, edge.engine]
        first, second = (msg for msg, _dest in sent)
        assert first.top_via.branch == second.top_via.branch  # type: ignore[attr-defined]
        assert first.header("X-PBX-Device") == "101"  # type: ignore[attr-defined]


def test_a_removed_device_does_not_sink_the_batch(tmp_path: Path) -> None:
    clock = Clock()
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101")
        table = LocationTable(clock)
        table.put(Binding(1, "101", "sip:101@192.168.1.50", PHONE, "c", 1, clock.now + 600))
        table.put(Binding(99, "199", "sip:199@192.168.1.99", PHONE, "c", 1, clock.now + 600))
        db.write(lambda c: LocationTable.write(c, *table.take_changes()))
        assert db.read().execute("SELECT device_id FROM registrations").fetchall() == [(1,)]


def test_reload_drops_registrations_with_old_credentials(tmp_path: Path) -> None:
    from appliance.edge import Edge, EdgeConfig

    clock = Clock()
    with Database.open(tmp_path / "pbx.db") as db:
        add_devices(db, "101", "102")
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080), db,
                    clock=clock, secret=SECRET)
        for dev, user in ((1, "101"), (2, "102")):
            edge.location.put(Binding(dev, user, f"sip:{user}@192.168.1.5{dev}", PHONE, "c",
                                      1, clock.now + 600))
        db.write(lambda c: c.execute("UPDATE devices SET ha1_md5 = ? WHERE id = 1", ["1" * 32]))
        edge.reload()
        assert edge.contacts_for("101") == []
        assert edge.contacts_for("102") == ["sip:102@192.168.1.52"]
        db.write(lambda c: c.execute("DELETE FROM devices WHERE id = 2"))
        edge.reload()
        assert edge.contacts_for("102") == []


@pytest.mark.parametrize(("uri", "ours"), [
    ("sip:103@127.0.0.1:5060", True),
    ("<sip:103@127.0.0.1>", True),  # 5060 is the edge's port here
    ("sip:103@localhost:5060;user=phone", True),
    ("sip:103@office-pbx", True),  # the realm, as some phones name the box
    ("sip:103@127.0.0.1:5070", False),  # another port: another server
    ("sip:103@203.0.113.7", False),  # somewhere on the internet
    ("sip:103@evil.example", False),
    ("sip:127.0.0.1:5060", False),  # no number
    ("tel:+79001234567", False),
    ("sip:103@[::1]:5060", True),
    ("not a uri", False),
])
def test_transfer_targets_must_be_the_box(tmp_path: Path, uri: str, ours: bool) -> None:
    from appliance.edge import Edge, EdgeConfig

    with Database.open(tmp_path / "pbx.db") as db:
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080), db,
                    clock=Clock(), secret=SECRET)
        assert edge.is_box_uri(uri) is ours


class _FullSocket:
    """A UDP socket whose send buffer is full until told otherwise."""

    def __init__(self) -> None:
        self.real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.full = True
        self.sent: list[bytes] = []

    def fileno(self) -> int:
        return self.real.fileno()

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.full:
            raise BlockingIOError
        if data == b"unreachable":
            raise OSError("Network is unreachable")
        self.sent.append(data)

    def close(self) -> None:
        self.real.close()


async def test_udp_sends_wait_while_the_buffer_is_full() -> None:
    sock = _FullSocket()
    sender = _UdpSocket(sock, asyncio.get_running_loop())  # type: ignore[arg-type]
    for data in (b"one", b"unreachable", b"two"):
        sender.sendto(data, ("192.0.2.1", 5060))
    assert sock.sent == [] and len(sender.queue) == 3
    sock.full = False
    await asyncio.sleep(0.05)  # the socket is writable: the queue drains, in order
    assert sock.sent == [b"one", b"two"] and not sender.queue
    sender.sendto(b"three", ("192.0.2.1", 5060))  # sent at once again
    assert sock.sent[-1] == b"three"
    sender.close()
    sender.sendto(b"late", ("192.0.2.1", 5060))
    assert sock.sent[-1] == b"three"
