"""Property tests of the SIP parser: only SipParseError escapes, and what parses round-trips.

PBX_FUZZ_EXAMPLES=5000 for a long run (the default keeps the whole SIP suite under 30 s).
Every example has a deadline, so a slow path (backtracking, quadratic scans) fails the test.
"""

from __future__ import annotations

import contextlib
import os
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.sip import (
    Header,
    NameAddr,
    Request,
    Response,
    SipFramer,
    SipParseError,
    SipUri,
    Via,
    error_response,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    torture_response,
)

EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=1000, database=None,
                suppress_health_check=[HealthCheck.too_slow])

TORTURE = Path("/work/shared/torture")
for candidate in (Path(__file__).resolve().parents[2] / "shared" / "torture", TORTURE):
    if candidate.is_dir():
        TORTURE = candidate
        break
CORPUS = sorted(p.read_bytes() for p in TORTURE.glob("**/*.dat")) or [
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1"
    b"\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"]

LAZY = ("content_type", "accept", "authorization", "proxy_authorization", "supported",
        "expires", "content_length")
SPECIAL = [b'"', b"<", b">", b";", b",", b":", b"\r\n", b"\r\n ", b"\n", b"\r", b" ", b"\t",
           b"%", b"%0", b"[", b"]", b"=", b"\\", b"\x00", b"\xff", b"\xc3", b"@", b"/", b"?",
           b"SIP/2.0", b"sip:", b"Content-Length: 99999\r\n", b"l: -1\r\n", b"v: x\r\n",
           b";branch=", b"*", b"0" * 30, b"\r\n\r\n"]


def check_parsed(msg: Request | Response) -> None:
    """What must hold for anything the parser accepts."""
    _ = (msg.vias, msg.from_, msg.to, msg.call_id, msg.cseq, msg.contacts, msg.max_forwards,
         msg.routes, msg.record_routes, msg.require, msg.proxy_require)
    for name in LAZY:
        with contextlib.suppress(SipParseError):
            getattr(msg, name)
    torture_response(msg)
    torture_response(msg, role="uas") if isinstance(msg, Request) else None
    again = parse_message(msg.to_bytes(), max_size=1 << 20)
    assert again.without_header("Content-Length") == msg.without_header("Content-Length")


def check_bytes(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as err:
        assert err.status in (400, 505, 513) and err.reason.isascii()
        response = error_response(err)
        assert (response is None) == (not err.can_respond)
        if response is not None:
            response.to_bytes()
        assert torture_response(err) in (None, 400, 505, 513)
        return
    check_parsed(msg)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    check_bytes(data)


@FUZZ
@given(st.sampled_from(CORPUS), st.lists(st.tuples(
    st.sampled_from(["replace", "insert", "delete", "duplicate"]),
    st.floats(0, 1), st.floats(0, 1), st.sampled_from(SPECIAL), st.integers(0, 255)),
    min_size=1, max_size=6))
def test_mutated_torture_messages(seed: bytes, mutations: list[tuple[str, float, float, bytes,
                                                                           int]]) -> None:
    data = bytearray(seed)
    for kind, where, length, token, byte in mutations:
        pos = int(where * len(data))
        span = int(length * 40)
        if kind == "replace" and data:
            data[min(pos, len(data) - 1)] = byte
        elif kind == "insert":
            data[pos:pos] = token
        elif kind == "delete":
            del data[pos:pos + span]
        else:
            data[pos:pos] = data[pos:pos + span]
    check_bytes(bytes(data))
    framer = SipFramer()
    for i in range(0, len(data), 97):
        framer.feed(bytes(data[i:i + 97]))


# ----- generated valid messages ----------------------------------------------------------

TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1,
                max_size=10)
LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
HOSTNAME = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
HOST = st.one_of(HOSTNAME, st.ip_addresses(v=4).map(str),
                 st.ip_addresses(v=6).map(lambda a: f"[{a}]"))
ESCAPE = st.integers(0, 255).map(lambda b: f"%{b:02X}")
USER = st.lists(st.one_of(st.sampled_from(list(string.ascii_letters + string.digits
                                               + "-_.!~*'()&=+$,;?/")), ESCAPE),
                min_size=1, max_size=12).map("".join)
PARAM_TEXT = st.lists(st.one_of(st.sampled_from(list(string.ascii_letters + string.digits
                                                     + "-_.!~*'()[]/:&+$")), ESCAPE),
                      min_size=1, max_size=8).map("".join)
URI_PARAMS = st.lists(st.tuples(PARAM_TEXT, st.none() | PARAM_TEXT), max_size=3).map(tuple)
PORT = st.none() | st.integers(0, 65535)
SIP_URI = st.builds(SipUri, host=HOST, scheme=st.sampled_from(["sip", "sips"]),
                    user=st.none() | USER, port=PORT, params=URI_PARAMS)
TEXT_CHAR = st.characters(codec="utf-8", exclude_characters="\r\n")
DISPLAY = st.none() | st.text(TEXT_CHAR, max_size=20)
QUOTED = st.text(st.characters(codec="utf-8", exclude_characters='\r\n"\\'),
                 max_size=10).map(lambda t: f'"{t}"')
HEADER_PARAMS = st.lists(st.tuples(TOKEN.filter(lambda t: t.lower() not in ("rport",
                                                                              "received")),
                                   st.none() | TOKEN | QUOTED), max_size=3).map(tuple)
NAME_ADDR = st.builds(NameAddr, uri=SIP_URI, display_name=DISPLAY, params=HEADER_PARAMS)
VIA = st.builds(Via, host=HOST, transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]),
                port=PORT, params=st.tuples(st.tuples(st.just("branch"),
                                                      TOKEN.map("z9hG4bK".__add__))))
CALL_ID = st.text(alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~()<>:\\\"/[]?{}",
                  min_size=1, max_size=20)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "BYE", "X-CUSTOM"]) | TOKEN)
    vias = draw(st.lists(VIA, min_size=1, max_size=3))
    headers = [Header("Via", str(v)) for v in vias]
    headers += [Header("From", str(draw(NAME_ADDR))), Header("To", str(draw(NAME_ADDR))),
                Header("Call-ID", draw(CALL_ID)),
                Header("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
                Header("Max-Forwards", str(draw(st.integers(0, 255))))]
    headers += [Header("Contact", str(c)) for c in draw(st.lists(NAME_ADDR, max_size=2))]
    note = draw(st.text(TEXT_CHAR, max_size=30)).strip(" \t")
    headers += [Header("X-Note", note)]
    return Request(method=method, uri=draw(SIP_URI), headers=tuple(headers),
                   body=draw(st.binary(max_size=200)))


@FUZZ
@given(requests())
def test_generated_requests_round_trip(request: Request) -> None:
    parsed = parse_message(request.to_bytes(), max_size=1 << 20)
    assert isinstance(parsed, Request)
    assert parsed.without_header("Content-Length") == request
    assert parsed.content_length == len(request.body)
    assert (parsed.method, parsed.uri, parsed.body) == (request.method, request.uri,
                                                        request.body)
    assert [str(v) for v in parsed.vias] == list(request.header_values("Via"))
    assert str(parsed.from_) == request.header("From")
    assert parsed.cseq.method == request.method


@FUZZ
@given(SIP_URI)
def test_uri_round_trip(uri: SipUri) -> None:
    again = parse_uri(str(uri))
    assert again == uri and again.matches(uri)


@FUZZ
@given(NAME_ADDR)
def test_name_addr_round_trip(na: NameAddr) -> None:
    assert parse_name_addr(str(na)) == na


@FUZZ
@given(VIA)
def test_via_round_trip(via: Via) -> None:
    assert parse_via(str(via)) == via


@FUZZ
@given(st.text(max_size=200))
def test_header_value_parsers_raise_only_parse_errors(text: str) -> None:
    for parser in (parse_uri, parse_name_addr, parse_via):
        with contextlib.suppress(SipParseError):
            parser(text)


ACCESSORS = ("vias", "from_", "to", "call_id", "cseq", "contact_is_star", "contacts",
             "max_forwards", "expires", "content_length", "routes", "record_routes", "require",
             "proxy_require", "supported", "authorization", "proxy_authorization", "user_agent")
EDITS = st.lists(st.sampled_from([
    ("with_top_via", None), ("without_top_via", None), ("max_forwards", None),
    ("without_header", "X-Note"), ("without_header", "Contact"), ("without_header", "Via"),
    ("prepend_header", "Via"), ("prepend_header", "Record-Route"), ("append_header", "Route"),
    ("with_header", "Route"), ("with_header", "Contact"), ("with_header", "v"),
]), max_size=6)


def _answers(msg: Request) -> list[object]:
    out: list[object] = [msg.header_values(n) for n in ("Via", "v", "Contact", "Route", "X-Note",
                                                       "Max-Forwards", "Record-Route")]
    for name in ACCESSORS:
        try:
            out.append(getattr(msg, name))
        except SipParseError as err:
            out.append(err.reason)
    return out


@FUZZ
@given(requests(), EDITS)
def test_edited_copies_answer_like_fresh_messages(request: Request,
                                                  edits: list[tuple[str, str | None]]) -> None:
    msg = parse_message(request.to_bytes(), max_size=1 << 20)
    assert isinstance(msg, Request)
    _answers(msg)  # every accessor cached before the edits, as in the edge
    for kind, name in edits:
        if kind == "with_top_via":
            if msg.top_via is not None:
                msg = msg.with_top_via(msg.top_via.with_param("received", "192.0.2.1"))
        elif kind == "without_top_via":
            msg = msg.without_top_via()
        elif kind == "max_forwards":
            msg = msg.with_header("Max-Forwards", ["69"])
        elif kind == "without_header":
            msg = msg.without_header(name or "")
        elif kind == "prepend_header":
            value = ("SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKe" if name == "Via"
                     else "<sip:192.0.2.9;lr>")
            msg = msg.prepend_header(name or "", value)
        elif kind == "append_header":
            msg = msg.append_header(name or "", "<sip:192.0.2.8;lr>")
        else:
            value = "SIP/2.0/TCP 192.0.2.7;branch=z9hG4bKw" if name == "v" else "<sip:a@b>"
            msg = msg.with_header(name or "", [value, value])
        fresh = Request(method=msg.method, uri=msg.uri, headers=msg.headers, body=msg.body)
        assert _answers(msg) == _answers(fresh)
