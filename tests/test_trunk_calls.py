"""Calls through trunks and gateways in the edge: DIDs, channels, rewrites, INVITE digest.

The pure parts (E.164 normalisation, the channel table on a fake clock) and the edge's
wiring, driven message by message with the edge's sends captured (as in
test_edge_units.py). The same paths run against real SIPp peers in test_trunk_sipp.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config.yamlio import import_yaml
from appliance.db import Database
from appliance.edge import Edge, EdgeConfig
from appliance.edge.transport import Source
from appliance.edge.trunkcalls import CallState, CallTable, TimerLimits, clean_caller_id
from appliance.edge.trunkconf import load_trunks, to_e164
from appliance.sip import (
    AuthOutcome,
    Header,
    NonceManager,
    Request,
    Response,
    challenge,
    client_authorization,
    ha1,
    make_response,
    verify,
)

FUZZ = settings(max_examples=int(os.environ.get("PBX_FUZZ_EXAMPLES", "150")), deadline=1000,
                database=None)
SECRET = b"0123456789abcdef0123456789abcdef"
PROVIDER = Source("UDP", "192.0.2.50", 5060)
STRANGER = Source("UDP", "192.0.2.99", 5060)
GATEWAY = Source("UDP", "192.168.1.77", 5062)
TRUNK_SECRET = "Tr-secret-42"
OFFICE = f"""\
version: 1
box: {{country: RU}}
employees:
  - extension: "101"
    name: Anna
    devices: [{{username: "101", password: "Kx7-desk-alpha"}}]
lines:
  - key: prov
    kind: sip_trunk
    host: 192.0.2.50
    username: "74951112233"
    secret: "{TRUNK_SECRET}"
    registration: false
    channels: 1
  - key: reg
    kind: sip_trunk
    host: 192.0.2.60
    username: regacct
    secret: "{TRUNK_SECRET}"
    channels: 4
  - key: fxo
    kind: fxo_gateway
    username: fxo1
    secret: "Fxo-secret-77"
    channels: 2
flows:
  - key: to-anna
    branches: [{{to: {{employee: "101"}}}}]
  - key: to-sales
    branches: [{{to: hangup}}]
numbers:
  - {{number: "+7 495 111-22-33", line: prov, flow: to-anna}}
  - {{number: "+7 495 111-22-34", line: prov, flow: to-sales}}
  - {{number: "+7 495 444-55-66", line: fxo, flow: to-anna}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# --- pure ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "e164"), [
    ("+74951112233", "+74951112233"),
    ("84951112233", "+74951112233"),  # the national prefix
    ("74951112233", "+74951112233"),  # the country code without '+'
    ("4951112233", "+74951112233"),  # ten digits: a Russian number
    ("+7-495-111-22-33", "+74951112233"),
    ("%2B74951112233", "+74951112233"),  # escaped '+'
    ("+442071838750", "+442071838750"),
    ("101", None),  # an extension is no DID
    ("trunk1", None),
    ("+7495111223x", None),
    ("", None),
])
def test_dids_are_normalised_to_e164_with_the_box_country(user: str, e164: str | None) -> None:
    assert to_e164(user, "RU") == e164


@FUZZ
@given(st.text(max_size=40), st.sampled_from(["RU", "DE", "US", "ZZ"]))
def test_e164_normalisation_never_raises(user: str, country: str) -> None:
    out = to_e164(user, country)
    assert out is None or (out.startswith("+") and out[1:].isdigit())


def test_caller_ids_are_cleaned() -> None:
    assert clean_caller_id(" +74951112233 ") == "+74951112233"
    assert clean_caller_id("anonymous") == "anonymous"
    assert clean_caller_id("a@b") is None
    assert clean_caller_id("<sip:x>") is None
    assert clean_caller_id("1" * 40) is None
    assert clean_caller_id(None) is None


def test_the_channel_table_counts_and_expires_on_a_fake_clock() -> None:
    clock = Clock()
    table = CallTable(clock, TimerLimits(trying_s=32, ringing_s=300, max_call_s=3600))
    assert table.admit("a", "prov", 2, outbound=True) is not None
    assert table.admit("a", "prov", 2, outbound=True) is table.get("a")  # not counted twice
    assert table.admit("b", "prov", 2, outbound=False) is not None
    assert table.admit("c", "prov", 2, outbound=True) is None
    assert table.count("prov") == 2
    change = table.progress("a", 180)
    assert change is not None and change.after is CallState.EARLY
    assert table.progress("a", 183) is None  # already early
    change = table.progress("a", 200)
    assert change is not None and change.after is CallState.CONFIRMED
    clock.now += 32
    [expired] = table.expire()  # b never heard anything
    assert (expired.call_id, expired.before, expired.after) == ("b", CallState.TRYING,
                                                               CallState.ENDED)
    assert table.count("prov") == 1 and table.lookup("b") is not None  # kept briefly
    clock.now += 32
    table.expire()
    assert table.lookup("b") is None
    clock.now += 3600
    assert [c.call_id for c in table.expire()] == ["a"]
    assert table.count("prov") == 0 and table.next_deadline() is None
    assert table.admit("d", "prov", 2, outbound=True) is not None
    change = table.progress("d", 486)
    assert change is not None and change.after is CallState.ENDED and table.count("prov") == 0


# --- the edge's wiring --------------------------------------------------------------------

class Wire:
    """The edge with its sends captured."""

    def __init__(self, db: Database) -> None:
        self.clock = Clock()
        self.edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080), db,
                         clock=self.clock, secret=SECRET, monotonic=self.clock)
        self.sent: list[tuple[Request | Response, Source]] = []
        self.edge.transports.send = (  # type: ignore[method-assign]
            lambda msg, dest: self.sent.append((msg, dest)))

    def take(self) -> list[tuple[Request | Response, Source]]:
        out, self.sent = self.sent, []
        return out

    def feed(self, text: str, source: Source) -> list[tuple[Request | Response, Source]]:
        raw = text.replace("\n", "\r\n")
        if "\r\n\r\n" not in raw:
            raw += "\r\nContent-Length: 0\r\n\r\n"
        self.edge.transports.received(raw.encode(), source)
        return self.take()

    def answer(self, msg: Request | Response, code: int, source: Source,
               **kw: object) -> list[tuple[Request | Response, Source]]:
        assert isinstance(msg, Request)
        reply = make_response(msg, code, **kw)  # type: ignore[arg-type]
        self.edge.transports.received(reply.to_bytes(), source)
        return self.take()


@pytest.fixture
async def wire(tmp_path: Path) -> Wire:
    db = Database.open(tmp_path / "pbx.db")
    import_yaml(db, OFFICE)
    w = Wire(db)
    await w.edge.trunks.reload(w.edge.trunkset)  # resolve hosts, start registrations
    w.take()
    return w


def invite_from(source: Source, ruri: str, *, to: str | None = None, call_id: str = "in-1",
                extra: str = "") -> str:
    return (f"INVITE {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bK-{call_id};rport\n"
            "Max-Forwards: 70\nFrom: <sip:+79161234567@192.0.2.50>;tag=prov1\n"
            f"To: <{to or ruri}>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n"
            f"Contact: <sip:+79161234567@{source.host}:{source.port}>\n{extra}").rstrip("\n")


def test_a_trunk_call_to_a_did_reaches_the_engine_with_the_line_headers(wire: Wire) -> None:
    out = wire.feed(invite_from(PROVIDER, "sip:84951112233@127.0.0.1",
                                extra="X-PBX-Device: 101\nX-PBX-Line: fxo\n"), PROVIDER)
    [(msg, dest)] = out
    assert dest == wire.edge.engine and isinstance(msg, Request)
    assert msg.header_values("X-PBX-Line") == ("prov",)  # the forged one is gone
    assert msg.header("X-PBX-Number") == "+74951112233"
    assert msg.header("X-PBX-Device") is None
    assert str(msg.uri) == "sip:84951112233@127.0.0.1"  # routing reads X-PBX-Number
    assert msg.header("Record-Route") is not None
    # The other DID is named in To only, as some providers do.
    wire.feed("BYE sip:x@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKb1"
              "\nMax-Forwards: 70\nFrom: <sip:a@b>;tag=prov1\nTo: <sip:c@d>;tag=e1\n"
              "Call-ID: in-1\nCSeq: 2 BYE", PROVIDER)
    [(msg, _)] = wire.feed(invite_from(PROVIDER, "sip:account@127.0.0.1",
                                       to="sip:+74951112234@127.0.0.1", call_id="in-2"),
                           PROVIDER)
    assert isinstance(msg, Request) and msg.header("X-PBX-Number") == "+74951112234"
    assert str(msg.uri) == "sip:account@127.0.0.1"
    assert wire.edge.trunks.stats["trunk_calls_in"] == 2


@pytest.mark.parametrize(("source", "ruri"), [
    (STRANGER, "sip:84951112233@127.0.0.1"),  # the DID, from an address that is no trunk
    (PROVIDER, "sip:101@127.0.0.1"),  # the trunk, but not a DID: an extension
    (PROVIDER, "sip:84954445566@127.0.0.1"),  # the gateway's DID, not this trunk's
    (PROVIDER, "sip:+79001234567@127.0.0.1"),  # an outside number: toll fraud
])
def test_anything_else_is_challenged_like_any_stranger(wire: Wire, source: Source,
                                                       ruri: str) -> None:
    [(msg, dest)] = wire.feed(invite_from(source, ruri), source)
    assert isinstance(msg, Response) and msg.status == 407 and dest.host == source.host


def test_a_full_trunk_answers_503_until_a_channel_is_free(wire: Wire) -> None:
    wire.feed(invite_from(PROVIDER, "sip:84951112233@127.0.0.1"), PROVIDER)
    [(msg, dest)] = wire.feed(invite_from(PROVIDER, "sip:84951112233@127.0.0.1",
                                          call_id="in-2"), PROVIDER)
    assert isinstance(msg, Response) and msg.status == 503 and dest.host == PROVIDER.host
    # A retransmission of the first call is the same call, not a second channel.
    [(msg, dest)] = wire.feed(invite_from(PROVIDER, "sip:84951112233@127.0.0.1"), PROVIDER)
    assert dest == wire.edge.engine
    # The engine refuses the first call: the channel is free again.
    forwarded = msg
    assert isinstance(forwarded, Request)
    wire.answer(forwarded, 486, wire.edge.engine)
    [(msg, dest)] = wire.feed(invite_from(PROVIDER, "sip:84951112233@127.0.0.1",
                                          call_id="in-3"), PROVIDER)
    assert dest == wire.edge.engine


def engine_invite(line: str = "prov", number: str = "+79001234567", call_id: str = "out-1",
                  branch: str = "z9hG4bKeng1", extra: str = "X-PBX-Caller-Id: +74951112233\n"
                  ) -> str:
    return (f"INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;rport;branch={branch}\n"
            "Max-Forwards: 70\nRoute: <sip:127.0.0.1:5060;lr>\n"
            "From: <sip:engine@127.0.0.1>;tag=eng1\n"
            f"To: <sip:{number}@127.0.0.1:5060>\nCall-ID: {call_id}\nCSeq: 10 INVITE\n"
            f"Contact: <sip:engine@127.0.0.1:5080>\nX-PBX-Line: {line}\n{extra}").rstrip("\n")


def provider_check(req: Request, nonces: NonceManager) -> AuthOutcome:
    creds = req.credentials("Proxy-Authorization")
    assert creds
    return verify(creds[0].as_dict(), req.method,
                  lambda u, r, a: ha1(u, r, TRUNK_SECRET, a) if u == "74951112233" else None,
                  nonces, realm="provider", client_ip="127.0.0.1").outcome


def test_a_call_out_answers_the_providers_challenge_and_keeps_cseqs_straight(
        wire: Wire) -> None:
    engine = wire.edge.engine
    [(sent, dest)] = wire.feed(engine_invite(), engine)
    assert dest == PROVIDER and isinstance(sent, Request)
    assert str(sent.uri) == "sip:+79001234567@192.0.2.50"
    assert sent.header("To") == "<sip:+79001234567@192.0.2.50>"
    assert sent.header("From") == "<sip:+74951112233@192.0.2.50>;tag=eng1"
    assert not [h for h in sent.headers if h.name.lower().startswith("x-pbx")]
    assert sent.header("Route") is None and sent.header("Record-Route") is not None
    assert len(sent.vias) == 2 and sent.cseq.number == 10

    nonces = NonceManager(b"provider-secret-0123456789")
    challenge_407 = make_response(sent, 407, headers=[Header("Proxy-Authenticate", challenge(
        "provider", nonces.issue("127.0.0.1"), "MD5"))], to_tag="p407")
    wire.edge.transports.received(challenge_407.to_bytes(), PROVIDER)
    (ack, d1), (again, d2) = wire.take()  # nothing reaches the engine
    assert isinstance(ack, Request) and ack.method == "ACK" and d1 == PROVIDER
    assert ack.top_via.branch == sent.top_via.branch and len(ack.vias) == 1  # type: ignore[union-attr]
    assert str(ack.cseq) == "10 ACK" and ack.to.tag == "p407"
    assert isinstance(again, Request) and d2 == PROVIDER and again.cseq.number == 11
    assert again.call_id == sent.call_id and again.top_via.branch != sent.top_via.branch  # type: ignore[union-attr]
    assert provider_check(again, nonces) is AuthOutcome.OK

    [(ringing, dest)] = wire.answer(again, 180, PROVIDER, to_tag="p1")
    assert dest == engine and isinstance(ringing, Response)
    assert str(ringing.cseq) == "10 INVITE"  # the engine's own numbering
    assert ringing.header("From") == "<sip:engine@127.0.0.1>;tag=eng1"
    assert ringing.header("To") == "<sip:+79001234567@127.0.0.1:5060>;tag=p1"
    # A UAS copies Record-Route into its 2xx (RFC 3261 §12.1.1).
    [(ok, dest)] = wire.answer(again, 200, PROVIDER, to_tag="p1", headers=[
        Header("Record-Route", again.header("Record-Route") or ""),
        Header("Contact", "<sip:callee@192.0.2.50>")])
    assert isinstance(ok, Response) and ok.status == 200 and str(ok.cseq) == "10 INVITE"
    record_route = ok.header("Record-Route")
    assert record_route is not None
    assert wire.edge.trunks.calls.get("out-1").state is CallState.CONFIRMED  # type: ignore[union-attr]

    def in_dialog(method: str, cseq: int, branch: str) -> str:
        return (f"{method} sip:callee@192.0.2.50 SIP/2.0\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:5080;rport;branch={branch}\nMax-Forwards: 70\n"
                f"Route: {record_route}\nFrom: <sip:engine@127.0.0.1>;tag=eng1\n"
                "To: <sip:+79001234567@127.0.0.1:5060>;tag=p1\nCall-ID: out-1\n"
                f"CSeq: {cseq} {method}")

    [(ack2, dest)] = wire.feed(in_dialog("ACK", 10, "z9hG4bKack2"), engine)
    assert isinstance(ack2, Request) and dest == PROVIDER and str(ack2.cseq) == "11 ACK"
    assert ack2.header("From") == "<sip:+74951112233@192.0.2.50>;tag=eng1"
    [(bye, dest)] = wire.feed(in_dialog("BYE", 11, "z9hG4bKbye"), engine)
    assert isinstance(bye, Request) and dest == PROVIDER and str(bye.cseq) == "12 BYE"
    assert wire.edge.trunks.calls.count("prov") == 0
    [(done, dest)] = wire.answer(bye, 200, PROVIDER)
    assert dest == engine and isinstance(done, Response) and str(done.cseq) == "11 BYE"


def test_cancel_and_the_failure_ack_follow_the_retried_invite(wire: Wire) -> None:
    engine = wire.edge.engine
    [(sent, _)] = wire.feed(engine_invite(), engine)
    nonces = NonceManager(b"provider-secret-0123456789")
    wire.answer(sent, 407, PROVIDER, to_tag="p407", headers=[Header(
        "Proxy-Authenticate", challenge("provider", nonces.issue("127.0.0.1"), "SHA-256"))])
    # The engine retransmits its INVITE: the edge resends the authenticated one.
    [(again, _)] = wire.feed(engine_invite(), engine)
    assert isinstance(again, Request) and again.cseq.number == 11
    assert provider_check(again, nonces) is AuthOutcome.OK
    cancel_text = engine_invite().replace("INVITE sip", "CANCEL sip").replace(
        "CSeq: 10 INVITE", "CSeq: 10 CANCEL")
    [(cancel, dest)] = wire.feed(cancel_text, engine)
    assert isinstance(cancel, Request) and dest == PROVIDER and str(cancel.cseq) == "11 CANCEL"
    assert cancel.top_via.branch == again.top_via.branch and str(cancel.uri) == str(again.uri)  # type: ignore[union-attr]
    [(ok, dest)] = wire.answer(cancel, 200, PROVIDER)
    assert dest == engine and isinstance(ok, Response) and str(ok.cseq) == "10 CANCEL"
    [(terminated, dest)] = wire.answer(again, 487, PROVIDER, to_tag="p2")
    assert dest == engine and isinstance(terminated, Response)
    assert str(terminated.cseq) == "10 INVITE"
    assert wire.edge.trunks.calls.count("prov") == 0
    ack_text = (engine_invite().replace("INVITE sip", "ACK sip")
                .replace("CSeq: 10 INVITE", "CSeq: 10 ACK")
                .replace("To: <sip:+79001234567@127.0.0.1:5060>",
                         "To: <sip:+79001234567@127.0.0.1:5060>;tag=p2"))
    [(ack, dest)] = wire.feed(ack_text, engine)
    assert isinstance(ack, Request) and dest == PROVIDER and str(ack.cseq) == "11 ACK"
    assert ack.top_via.branch == again.top_via.branch and ack.to.tag == "p2"  # type: ignore[union-attr]


def test_credentials_refused_twice_tell_the_engine_503(wire: Wire) -> None:
    engine = wire.edge.engine
    [(sent, _)] = wire.feed(engine_invite(), engine)
    value = challenge("provider", "fixed-nonce", "MD5")
    [_, (again, _)] = wire.answer(sent, 407, PROVIDER, to_tag="a",
                                  headers=[Header("Proxy-Authenticate", value)])
    assert isinstance(again, Request) and again.cseq.number == 11
    # The provider challenges the answer with the same nonce: the password is wrong.
    out = wire.answer(again, 407, PROVIDER, to_tag="b",
                      headers=[Header("Proxy-Authenticate", value)])
    (ack, d1), (failed, d2) = out
    assert isinstance(ack, Request) and ack.method == "ACK" and d1 == PROVIDER
    assert isinstance(failed, Response) and failed.status == 503 and d2 == engine
    assert str(failed.cseq) == "10 INVITE" and failed.header("Proxy-Authenticate") is None
    assert wire.edge.trunks.calls.count("prov") == 0
    ack_text = (engine_invite().replace("INVITE sip", "ACK sip")
                .replace("CSeq: 10 INVITE", "CSeq: 10 ACK"))
    assert wire.feed(ack_text, engine) == []  # the provider has had its ACK


@pytest.mark.parametrize(("line", "code"), [
    ("nosuch", 404),  # not a trunk
    ("reg", 503),  # registering, not registered yet
])
def test_calls_out_through_unusable_lines_are_answered_at_once(wire: Wire, line: str,
                                                               code: int) -> None:
    [(msg, dest)] = wire.feed(engine_invite(line=line), wire.edge.engine)
    assert isinstance(msg, Response) and msg.status == code and dest == wire.edge.engine


def test_the_channel_limit_holds_for_calls_out(wire: Wire) -> None:
    engine = wire.edge.engine
    [(first, dest)] = wire.feed(engine_invite(), engine)
    assert dest == PROVIDER
    [(busy, dest)] = wire.feed(engine_invite(call_id="out-2", branch="z9hG4bKeng2"), engine)
    assert isinstance(busy, Response) and busy.status == 503 and dest == engine
    assert busy.reason == "All Channels Busy"
    wire.answer(first, 486, PROVIDER, to_tag="x")
    [(_, dest)] = wire.feed(engine_invite(call_id="out-3", branch="z9hG4bKeng3"), engine)
    assert dest == PROVIDER


def test_a_gateway_registers_like_a_phone_and_calls_in_and_out(wire: Wire) -> None:
    def register(auth: str = "") -> str:
        return ("REGISTER sip:127.0.0.1 SIP/2.0\n"
                "Via: SIP/2.0/UDP 192.168.1.77:5062;branch=z9hG4bK-r1;rport\nMax-Forwards: 70\n"
                "From: <sip:fxo1@127.0.0.1>;tag=g1\nTo: <sip:fxo1@127.0.0.1>\nCall-ID: gw-reg\n"
                f"CSeq: {2 if auth else 1} REGISTER\nContact: <sip:fxo1@192.168.1.77:5062>\n"
                f"Expires: 300\n{auth}").rstrip("\n")

    def authorization(resp: Response, method: str, uri: str) -> str:
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        nonce = resp.credentials(name)[0].get("nonce") or ""
        return client_authorization(username="fxo1", realm="office-pbx", nonce=nonce,
                                    uri=uri, method=method,
                                    ha1_hex=ha1("fxo1", "office-pbx", "Fxo-secret-77",
                                                "SHA-256"), algorithm="SHA-256")

    [(challenge_401, _)] = wire.feed(register(), GATEWAY)
    assert isinstance(challenge_401, Response) and challenge_401.status == 401
    auth = authorization(challenge_401, "REGISTER", "sip:127.0.0.1")
    [(ok, _)] = wire.feed(register(f"Authorization: {auth}"), GATEWAY)
    assert isinstance(ok, Response) and ok.status == 200
    [status] = [t for t in wire.edge.trunks.snapshot() if t["line"] == "fxo"]
    assert status["state"] == "registered" and status["mode"] == "registers_to_box"

    ruri = "sip:s@127.0.0.1"  # the gateway names no number: its only DID is meant
    [(challenge_407, _)] = wire.feed(invite_from(GATEWAY, ruri, call_id="gw-1"), GATEWAY)
    assert isinstance(challenge_407, Response) and challenge_407.status == 407
    auth = authorization(challenge_407, "INVITE", ruri)
    [(msg, dest)] = wire.feed(invite_from(GATEWAY, ruri, call_id="gw-1",
                                          extra=f"Proxy-Authorization: {auth}\n"), GATEWAY)
    assert dest == wire.edge.engine and isinstance(msg, Request)
    assert msg.header("X-PBX-Line") == "fxo" and msg.header("X-PBX-Number") == "+74954445566"
    assert msg.header("X-PBX-Device") is None and str(msg.uri) == ruri

    [(out, dest)] = wire.feed(engine_invite(line="fxo", call_id="gw-out",
                                            number="84951234567", extra=""), wire.edge.engine)
    assert dest == GATEWAY and isinstance(out, Request)
    assert str(out.uri) == "sip:84951234567@192.168.1.77:5062"
    assert out.header("From") == "<sip:fxo1@localhost>;tag=eng1"


def test_trunks_load_with_secrets_and_dids(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, OFFICE)
        trunks = load_trunks(db)
    prov = trunks.lines["prov"]
    assert (prov.secret, prov.channels, prov.register, prov.transport) == (
        TRUNK_SECRET, 1, False, "UDP")
    assert prov.dids == ("+74951112233", "+74951112234")
    assert trunks.lines["fxo"].gateway_registers


async def test_reload_re_registers_changed_trunks_and_unregisters_removed_ones(
        tmp_path: Path) -> None:
    db = Database.open(tmp_path / "pbx.db")
    import_yaml(db, OFFICE)
    w = Wire(db)
    registrar = Source("UDP", "192.0.2.60", 5060)
    await w.edge.trunks.reload(w.edge.trunkset)
    [(first, dest)] = w.take()
    assert dest == registrar and isinstance(first, Request) and first.method == "REGISTER"
    assert first.header("From", ).startswith("<sip:regacct@192.0.2.60>")  # type: ignore[union-attr]
    w.answer(first, 200, registrar, headers=[Header("Contact", first.header("Contact") or "")])
    [status] = [t for t in w.edge.trunks.snapshot() if t["line"] == "reg"]
    assert (status["state"], status["last_code"], status["mode"]) == ("registered", 200,
                                                                      "register")
    assert status["expires"] == 600 and status["usable"]
    # Outbound calls may use it now.
    [(_, dest)] = w.feed(engine_invite(line="reg", extra=""), w.edge.engine)
    assert dest == registrar

    # A new password: registered again under a new Call-ID, no un-REGISTER that could
    # overtake the new binding.
    changed = OFFICE.replace("username: regacct\n    secret: \"Tr-secret-42\"",
                             "username: regacct\n    secret: \"Tr-secret-43\"")
    assert changed != OFFICE
    import_yaml(db, changed)
    await w.edge.reload_trunks(load_trunks(db))
    [(again, _)] = w.take()
    assert isinstance(again, Request) and again.header("Expires") == "600"
    assert again.call_id != first.call_id
    w.answer(again, 200, registrar)
    # Removed: un-registered (Expires: 0), and no longer listed.
    import_yaml(db, changed.replace("  - key: reg\n    kind: sip_trunk\n    host: 192.0.2.60\n"
                                    "    username: regacct\n    secret: \"Tr-secret-43\"\n"
                                    "    channels: 4\n", ""))
    await w.edge.reload_trunks(load_trunks(db))
    [(bye, _)] = w.take()
    assert isinstance(bye, Request) and bye.header("Expires") == "0"
    assert bye.call_id == again.call_id
    assert [t["line"] for t in w.edge.trunks.snapshot()] == ["fxo", "prov"]
    # The call in progress through it is untouched (its channel count goes with it).
    assert w.edge.trunks.calls.get("out-1") is not None
    db.close()


@pytest.mark.parametrize(("text", "stored"), [
    ("192.0.2.70:5070", "192.0.2.70:5070"),
    ("sip:proxy.provider.example:5070;lr", "proxy.provider.example:5070"),
    ("proxy.provider.example", "proxy.provider.example"),
    ("[2001:db8::7]:5070", "[2001:db8::7]:5070"),
])
def test_outbound_proxies_are_written_as_host_and_port(text: str, stored: str) -> None:
    from appliance.config.types import normalize_host_port

    assert normalize_host_port(text) == stored


@pytest.mark.parametrize("text", ["proxy:0", "proxy:99999", "a b", "proxy:50:60", ""])
def test_bad_outbound_proxies_are_refused(text: str) -> None:
    from appliance.config.types import normalize_host_port

    with pytest.raises(ValueError):
        normalize_host_port(text)


async def test_requests_go_through_the_outbound_proxy(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "pbx.db")
    import_yaml(db, OFFICE.replace("    registration: false\n    channels: 1\n",
                                   "    registration: false\n    channels: 2\n"
                                   "    outbound_proxy: sip:192.0.2.70:5070;lr\n"))
    w = Wire(db)
    await w.edge.trunks.reload(w.edge.trunkset)
    w.take()  # the other trunk's REGISTER
    [(sent, dest)] = w.feed(engine_invite(), w.edge.engine)
    assert dest == Source("UDP", "192.0.2.70", 5070) and isinstance(sent, Request)
    assert str(sent.uri) == "sip:+79001234567@192.0.2.50"  # still addressed to the provider
    assert sent.header("Route") == "<sip:192.0.2.70:5070;lr>"
    # Calls from the proxy's address are the trunk's too.
    [(msg, dest)] = w.feed(invite_from(Source("UDP", "192.0.2.70", 5070),
                                       "sip:84951112233@127.0.0.1", call_id="via-proxy"),
                           Source("UDP", "192.0.2.70", 5070))
    assert dest == w.edge.engine and isinstance(msg, Request)
    assert msg.header("X-PBX-Line") == "prov"
    db.close()


def test_a_gateway_may_not_take_a_phones_user_name() -> None:
    from appliance.config import ConfigError
    from appliance.config.yamlio import parse_yaml

    clash = OFFICE.replace("    username: fxo1\n", "    username: \"101\"\n")
    with pytest.raises(ConfigError, match=r"lines\[2\]\.username.*already used"):
        parse_yaml(clash)


@FUZZ
@given(st.text(max_size=60))
def test_host_and_port_parsing_raises_only_value_errors(text: str) -> None:
    from appliance.config.types import normalize_host_port

    try:
        out = normalize_host_port(text)
    except ValueError:
        return
    assert out and " " not in out


def test_pbx_trunks_without_an_engine_says_so(settings: object) -> None:
    from tests.support.harness import pbx

    for args in (("trunks",), ("trunks", "test", "prov", "+79001234567")):
        result = pbx(settings, *args)  # type: ignore[arg-type]
        assert result.returncode == 3 and "engine" in result.stderr, result.stderr


def test_routing_status_says_which_lines_can_take_a_call(wire: Wire) -> None:
    status = wire.edge.trunks.routing_status()
    assert status["prov"] == {"up": True, "free_channels": 1, "registered": None}
    assert status["reg"] == {"up": False, "free_channels": 4, "registered": False}
    assert status["fxo"]["up"] is False  # the gateway has not registered to the box
    wire.feed(engine_invite(), wire.edge.engine)
    assert wire.edge.trunks.routing_status()["prov"]["free_channels"] == 0
