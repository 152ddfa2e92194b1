"""Unit tests of the SIP message layer: parsing rules, accessors, serialisation, responses."""

from __future__ import annotations

import contextlib
import time

import pytest

from appliance.sip import (
    Header,
    NameAddr,
    OtherUri,
    Request,
    Response,
    SipParseError,
    SipUri,
    Via,
    canonical_name,
    error_response,
    is_unsafe_destination,
    make_response,
    parse_message,
    parse_name_addr,
    parse_request,
    parse_sdp,
    parse_uri,
    parse_via,
    torture_response,
)
from appliance.sip.headers import parse_credentials, quote, split_list

BASIC = (
    "REGISTER sip:pbx.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK776;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: \"Desk 101\" <sip:101@pbx.example.com>;tag=a73kszlfl\r\n"
    "To: <sip:101@pbx.example.com>\r\n"
    "Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.7\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:101@192.0.2.7:5062;transport=udp>;expires=3600;q=0.7\r\n"
    "User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
    "Supported: path, outbound\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


CONTACT = "Contact: <sip:101@192.0.2.7:5062;transport=udp>;expires=3600;q=0.7"


def basic() -> Request:
    return parse_request(BASIC.encode())


def with_line(old: str, new: str) -> bytes:
    assert old in BASIC
    return BASIC.replace(old, new).encode()


def rejects(data: bytes) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    return info.value


# ----- header names and values ---------------------------------------------------------

def test_compact_forms_and_canonical_names() -> None:
    pairs = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l":
             "Content-Length", "c": "Content-Type", "k": "Supported", "s": "Subject",
             "e": "Content-Encoding", "o": "Event", "u": "Allow-Events", "r": "Refer-To",
             "b": "Referred-By", "CSEQ": "CSeq", "call-id": "Call-ID", "X-Custom": "X-Custom",
             "www-authenticate": "WWW-Authenticate"}
    for name, full in pairs.items():
        assert canonical_name(name) == full


def test_accessors_of_a_register() -> None:
    m = basic()
    assert (m.method, str(m.uri), m.version) == ("REGISTER", "sip:pbx.example.com", "SIP/2.0")
    via = m.top_via
    assert via is not None and (via.host, via.port, via.transport) == ("192.0.2.7", 5062, "UDP")
    assert via.branch == "z9hG4bK776" and via.rport_requested and via.rport is None
    assert m.from_.display_name == "Desk 101" and m.from_.tag == "a73kszlfl"
    assert m.to.tag is None and m.to.sip_uri is not None and m.to.sip_uri.aor() == (
        "sip:101@pbx.example.com")
    assert m.call_id == "1j9FpLxk3uxtm8tn@192.0.2.7"
    assert (m.cseq.number, m.cseq.method) == (1, "REGISTER")
    (contact,) = m.contacts
    assert contact.expires == 3600 and contact.q == pytest.approx(0.7)
    assert contact.sip_uri is not None and contact.sip_uri.transport == "udp"
    assert m.max_forwards == 70 and m.expires is None and m.content_length == 0
    assert m.supported == ("path", "outbound") and m.require == () and m.proxy_require == ()
    assert m.user_agent == "Yealink SIP-T46S 66.86.0.15"
    assert m.authorization == () and not m.contact_is_star


def test_folding_compact_names_and_whitespace() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\n"
        b"v: SIP / 2.0 / UDP\r\n   h1.example ; branch = z9hG4bKa1 , SIP/2.0/TCP [::1]:5070\r\n"
        b"f:\r\n <sip:x@y>\r\n\t;tag=1\r\n"
        b"t: sip:a@b\r\ni: c1\r\nCSeq: 2\r\n OPTIONS\r\nMax-Forwards: 1\r\nl: 0\r\n\r\n"
    )
    m = parse_request(data)
    assert [(v.transport, v.host, v.port) for v in m.vias] == [("UDP", "h1.example", None),
                                                              ("TCP", "[::1]", 5070)]
    assert m.from_.tag == "1" and m.call_id == "c1" and m.cseq.number == 2
    assert [h.name for h in m.headers][:3] == ["Via", "Via", "From"]


def test_list_splitting_respects_quotes_and_brackets() -> None:
    assert split_list('"a, b" <sip:x@y>, <sip:p,q@r>;x="1,2"') == [
        '"a, b" <sip:x@y>', "<sip:p,q@r>;x=\"1,2\""]
    with pytest.raises(SipParseError):
        split_list('"unterminated, <sip:x@y>')
    m = parse_message(with_line(CONTACT, 'Contact: "Smith, J" <sip:a@b>, <sip:c@d>;expires=0'))
    assert [c.display_name for c in m.contacts] == ["Smith, J", None]
    assert m.contacts[1].expires == 0


def test_contact_star() -> None:
    m = parse_message(with_line(CONTACT, "Contact: *\r\nExpires: 0"))
    assert m.contact_is_star and m.contacts == () and m.expires == 0
    err = rejects(with_line(CONTACT, "Contact: *, <sip:a@b>"))
    assert err.can_respond


def test_numeric_edge_cases() -> None:
    assert parse_message(with_line("Max-Forwards: 70", "Max-Forwards: 000")).max_forwards == 0
    assert parse_message(with_line("Max-Forwards: 70", "Max-Forwards: 99999999999999999999"
                                   )).max_forwards is None
    rejects(with_line("Max-Forwards: 70", "Max-Forwards: -1"))
    rejects(with_line("Max-Forwards: 70", "Max-Forwards: 7 0"))
    assert parse_message(with_line("CSeq: 1 REGISTER", "CSeq: 2147483647 REGISTER")).cseq.number
    rejects(with_line("CSeq: 1 REGISTER", "CSeq: 2147483648 REGISTER"))
    rejects(with_line("CSeq: 1 REGISTER", "CSeq: 1REGISTER"))
    rejects(with_line("CSeq: 1 REGISTER", "CSeq: " + "9" * 5000 + " REGISTER"))
    m = parse_message(with_line("Content-Length: 0", "Expires: 12x\r\nContent-Length: 0"))
    assert m.expires == 3600
    m = parse_message(with_line("expires=3600", "expires=4294967296"))
    assert m.contacts[0].expires == 3600
    rejects(with_line("Via: SIP/2.0/UDP 192.0.2.7:5062", "Via: SIP/2.0/UDP 192.0.2.7:65536"))
    rejects(with_line(";rport", ";rport=x"))


def test_content_length_rules() -> None:
    body = "v=0\r\n"
    data = with_line("Content-Length: 0\r\n\r\n", f"Content-Length: 5\r\n\r\n{body}trailing")
    assert parse_message(data).body == body.encode()  # extra datagram bytes discarded
    err = rejects(with_line("Content-Length: 0\r\n\r\n", "Content-Length: 50\r\n\r\nshort"))
    assert "Content-Length" in err.reason and err.can_respond
    no_length = BASIC.replace("Content-Length: 0\r\n", "") + "body to the end"
    assert parse_message(no_length.encode()).body == b"body to the end"
    for bad in ("-1", "+1", "1 2", "0x10", "", "99999999999"):
        rejects(with_line("Content-Length: 0", f"Content-Length: {bad}"))
    rejects(with_line("Content-Length: 0", "Content-Length: 0\r\nl: 0"))


def test_line_endings() -> None:
    assert parse_message(BASIC.replace("\r\n", "\n").encode()).call_id
    assert parse_message(b"\r\n\r\n" + BASIC.encode()).call_id  # RFC 3261 §7.5
    assert parse_message(BASIC.encode().replace(b"\r\n\r\n", b"\r\n")).body == b""
    err = rejects(with_line("Max-Forwards: 70", "Max-Forwards: 70\rX-Injected: 1"))
    assert err.can_respond
    # A lone CR in the start line too (found by the mutation fuzzer).
    assert not rejects(b"SIP/2.0 200 O\rK\r\nVia: SIP/2.0/UDP h\r\n\r\n").can_respond
    assert rejects(BASIC.replace("SIP/2.0\r\n", "SIP/2.0\rX\r\n", 1).encode()).can_respond


def test_request_line_rules() -> None:
    assert parse_message(BASIC.replace("SIP/2.0\r\n", "sip/2.0\r\n", 1).encode())
    for line in ("REGISTER  sip:pbx.example.com SIP/2.0", "REGISTER sip:pbx.example.com",
                 "REGISTER sip:pbx.example.com SIP/2.0 ", "REGISTER <sip:pbx.example.com> SIP/2.0",
                 "REGISTER sip:p SIP/x.y"):
        err = rejects(with_line("REGISTER sip:pbx.example.com SIP/2.0", line))
        assert err.status == 400 and err.can_respond, line
    # Not even a method: nothing to answer.
    assert not rejects(with_line("REGISTER sip:", "REG:ISTER sip:")).can_respond
    err = rejects(with_line("REGISTER sip:pbx.example.com SIP/2.0",
                            "REGISTER sip:pbx.example.com SIP/3.0"))
    assert err.status == 505


def test_status_line_rules() -> None:
    ok = BASIC.replace("REGISTER sip:pbx.example.com SIP/2.0", "SIP/2.0 200 OK")
    r = parse_message(ok.encode())
    assert isinstance(r, Response) and (r.status, r.reason) == (200, "OK")
    for line in ("SIP/2.0 99 Low", "SIP/2.0 700 High", "SIP/2.0 2000 Long", "SIP/2.0 abc x"):
        err = rejects(ok.replace("SIP/2.0 200 OK", line).encode())
        assert not err.can_respond and err.is_request is False
    assert parse_message(ok.replace("SIP/2.0 200 OK", "SIP/2.0 180").encode())


def test_required_and_single_headers() -> None:
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        lines = [line for line in BASIC.split("\r\n") if not line.startswith(name + ":")]
        err = rejects("\r\n".join(lines).encode())
        assert "Missing" in err.reason or "Via" in err.reason
    for line in ("To: <sip:101@pbx.example.com>", "Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.7",
                 "Max-Forwards: 70"):
        rejects(with_line(line, f"{line}\r\n{line}"))
    # Missing Max-Forwards is tolerated (RFC 2543 peers).
    assert parse_message(with_line("Max-Forwards: 70\r\n", "")).max_forwards is None


def test_size_and_header_limits() -> None:
    big = with_line("Content-Length: 0\r\n\r\n", "Content-Length: 17000\r\n\r\n" + "x" * 17000)
    err = rejects(big)
    assert (err.status, err.can_respond) == (513, True)
    assert parse_message(big, max_size=20000).body == b"x" * 17000
    many = with_line("Content-Length: 0", "X-A: 1\r\n" * 200 + "Content-Length: 0")
    assert "Too many" in rejects(many).reason
    assert parse_message(many, max_headers=300)
    garbage = rejects(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 10)
    assert not garbage.can_respond and error_response(garbage) is None


def test_no_catastrophic_backtracking() -> None:
    nasty = [
        'To: "' + '\\"' * 4000 + "\r\n",
        "To: <" + "sip:" * 3000 + ">\r\n",
        "Via: SIP/2.0/UDP h" + ";a=b" * 3000 + "\r\n",
        "Contact: " + "<sip:a@b>," * 1200 + "<sip:a@b>\r\n",
        "X-Long: " + " \t" * 7000 + "\r\n",
        "To: sip:a@b\r\n" + " ;x\r\n" * 2500,
    ]
    for header in nasty:
        data = BASIC.replace("User-Agent: Yealink SIP-T46S 66.86.0.15\r\n", header).encode()
        start = time.perf_counter()
        with contextlib.suppress(SipParseError):
            parse_message(data)
        assert time.perf_counter() - start < 1.0, header[:20]


def test_lazy_accessors_raise_only_parse_errors() -> None:
    m = parse_message(with_line("Content-Length: 0", "Content-Type: /\r\nAccept: ;\r\n"
                                "Authorization: Digest realm=\r\nContent-Length: 0"))
    for accessor in ("content_type", "accept", "authorization"):
        with pytest.raises(SipParseError):
            getattr(m, accessor)


# ----- URIs and addresses --------------------------------------------------------------

def test_uri_parse_and_print() -> None:
    for text in ("sip:alice@atlanta.com", "sips:alice:secret@[2001:db8::1]:5061;transport=tls",
                 "sip:+1-212-555-1212:1234@gateway.com;user=phone",
                 "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
                 "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                 "sip:192.0.2.4;lr", "tel:+358-555-1234567;postd=pp22"):
        uri = parse_uri(text)
        assert str(uri) == text
    assert isinstance(parse_uri("tel:+1"), OtherUri)
    assert isinstance(parse_uri("SIP:a@b"), SipUri) and parse_uri("SIP:a@b").scheme == "sip"
    for bad in ("sip:", "sip:@host", "sip:a@", "sip:a@host:port", "sip:a@host:99999",
                "sip:a@[::1", "sip:a@[zz::1]", "sip:a b@c", "sip:a%2@b", "sip:a@b;=x",
                "sip:a@b?x", ":x", "1sip:a", "sip:a@b;p=", "http:", "sip:a@host name",
                "sip:a@[2001:db8::1]x"):
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_uri_comparison_rfc3261() -> None:
    def same(a: str, b: str) -> bool:
        return parse_uri(a).matches(parse_uri(b))

    assert same("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp")
    assert same("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5")
    assert same("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
    assert same("sip:a@[2001:db8::1]", "sip:a@[2001:DB8:0::1]")
    assert not same("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP")
    assert not same("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060")
    assert not same("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp")
    assert not same("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off")
    assert not same("sip:a@b", "sips:a@b") and not same("sip:a@b", "tel:a")


def test_name_addr_forms() -> None:
    na = parse_name_addr('"A \\"B\\"" <sip:a@b;lr>;tag=x;foo')
    assert na.display_name == 'A "B"' and na.tag == "x" and na.has_param("foo")
    assert parse_name_addr(str(na)) == na
    spec = parse_name_addr("sip:a@b;tag=7")
    assert spec.tag == "7" and spec.sip_uri is not None and spec.sip_uri.params == ()
    assert parse_name_addr("Alice Smith<sip:a@b>").display_name == "Alice Smith"
    assert parse_name_addr('"" <sip:a@b>').display_name == ""
    for bad in ("<sip:a@b", '"open <sip:a@b>', "Bell, A <sip:a@b>", "< sip:a@b>",
                "sip:a@b?Route=x", "<sip:a@b>;", "<sip:a@b>;tag", "<sip:a@b> junk"):
        if bad == "<sip:a@b>;tag":
            assert parse_name_addr(bad).has_param("tag")
            continue
        with pytest.raises(SipParseError):
            parse_name_addr(bad)
    assert quote("a\r\nb\x01") == '"a  b\\\x01"'


def test_via_values() -> None:
    via = parse_via("SIP/2.0/udp [2001:db8::1]:5060;received=[2001:db8::2];rport=5070;"
                    "branch=z9hG4bKx")
    assert via.transport == "UDP" and via.received == "2001:db8::2" and via.rport == 5070
    assert via.is_rfc3261_branch
    updated = via.with_param("received", "192.0.2.1").with_param("rport", "1234")
    assert parse_via(str(updated)) == updated and updated.rport == 1234
    for bad in ("SIP/2.0/UDP", "SIP/2.0 UDP host", "SIP/2.0/UDPhost", "SIP/2.0/UDP host;;",
                "SIP/2.0/UDP host;received=host.name", "SIP/2.0/UDP host;branch=",
                "SIP/2.0/UDP h:1:2"):
        with pytest.raises(SipParseError):
            parse_via(bad)


def test_credentials_parser() -> None:
    cred = parse_credentials('Digest username="bob", realm="biloxi.com", nonce="a,b\\"c",'
                             " uri=\"sip:bob@biloxi.com\", response=\"1234\", qop=auth,"
                             ' nc=00000001, cnonce="x", algorithm=SHA-256')
    assert cred.is_digest and cred.get("NONCE") == 'a,b"c' and cred.get("qop") == "auth"
    assert cred.as_dict()["algorithm"] == "SHA-256"
    assert parse_credentials("Digest a=b,").get("a") == "b"  # empty list items are allowed
    for bad in ('Digest username="a", username="b"', "Digest username", 'Digest a="b" c="d"',
                'Digest a="unterminated', "Digest a=,", "="):
        with pytest.raises(SipParseError):
            parse_credentials(bad)


# ----- building and serialising --------------------------------------------------------

def test_to_bytes_round_trip_and_content_length() -> None:
    m = basic()
    # One line per list element; otherwise the bytes come back as they were.
    assert m.to_bytes() == BASIC.replace("Supported: path, outbound",
                                         "Supported: path\r\nSupported: outbound").encode()
    again = parse_message(m.to_bytes())
    assert again == m
    with_body = m.with_body(b"hello", "text/plain")
    wire = with_body.to_bytes()
    assert b"Content-Length: 5\r\n" in wire and wire.endswith(b"\r\n\r\nhello")
    assert wire.index(b"Content-Length") < wire.index(b"Content-Type")  # CL kept in place
    assert parse_message(wire).body == b"hello"
    bare = Request(method="OPTIONS", uri=SipUri(host="h"),
                   headers=(Header("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),))
    assert bare.to_bytes().endswith(b"Content-Length: 0\r\n\r\n")


def test_compact_input_serialises_full_names() -> None:
    compact = BASIC.replace("From:", "f:").replace("To:", "t:").replace("Call-ID:", "i:")
    wire = parse_message(compact.encode()).to_bytes()
    assert b"\r\nFrom: " in wire and b"\r\nTo: " in wire and b"\r\nCall-ID: " in wire


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError):
        Header("X-A", "1\r\nVia: evil")
    with pytest.raises(ValueError):
        Header("Bad Name", "1")
    with pytest.raises(ValueError):
        Response(status=200, reason="OK\r\nX: 1")
    with pytest.raises(ValueError):
        Request(method="INVITE", uri=SipUri(host="h\r\nX: y")).to_bytes()


def test_header_editing_helpers() -> None:
    m = basic()
    via = m.top_via
    assert via is not None
    m2 = m.with_top_via(via.with_param("received", "203.0.113.9").with_param("rport", "5062"))
    assert m2.top_via is not None and m2.top_via.received == "203.0.113.9"
    assert m2.top_via.rport == 5062 and m.top_via is not None and m.top_via.received is None
    m3 = m2.prepend_header("Via", str(Via(host="pbx.example.com", params=(("branch",
                                                                            "z9hG4bKp"),))))
    assert [v.host for v in m3.vias] == ["pbx.example.com", "192.0.2.7"]
    assert m3.without_top_via().vias == m2.vias
    m4 = m.with_header("Max-Forwards", ["69"]).append_header("Record-Route", "<sip:pbx;lr>")
    assert m4.max_forwards == 69 and m4.record_routes[0].sip_uri is not None
    assert m4.without_header("record-route").record_routes == ()
    assert m4.header("max-forwards") == "69" and m4.header_values("X-None") == ()


def test_make_response() -> None:
    m = parse_message(with_line("CSeq: 1 REGISTER", "CSeq: 1 REGISTER\r\nTimestamp: 54"))
    assert isinstance(m, Request)
    trying = make_response(m, 100)
    assert trying.reason == "Trying" and trying.to.tag is None and trying.header("Timestamp")
    ok = make_response(m, 200, headers=[Header("Expires", "60")])
    assert ok.to.tag is not None and ok.header("Timestamp") is None
    assert make_response(m, 200).to.tag == ok.to.tag  # retransmissions get the same tag
    assert make_response(m, 486, to_tag="abc").to.tag == "abc"
    assert ok.vias == m.vias and ok.call_id == m.call_id and ok.cseq == m.cseq
    assert ok.from_ == m.from_ and ok.header("Expires") == "60"
    assert ok.header("Contact") is None and ok.header("User-Agent") is None
    again = parse_message(ok.to_bytes())
    assert isinstance(again, Response) and again.status == 200
    assert again.without_header("Content-Length") == ok
    assert make_response(m, 499).reason == "Unknown"


def test_error_response_policy() -> None:
    ack = rejects(with_line("CSeq: 1 REGISTER", "CSeq: 1 ACK").replace(b"REGISTER sip", b"ACK sip")
                  .replace(b"Max-Forwards: 70", b"Max-Forwards: x"))
    assert ack.is_request and not ack.can_respond and error_response(ack) is None
    no_via = rejects(with_line("Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK776;rport\r\n",
                               ""))
    assert not no_via.can_respond
    bad_to = rejects(with_line("To: <sip:101@pbx.example.com>", "To: <sip:101@pbx.example.com"))
    response = error_response(bad_to)
    assert response is not None and response.header("To") == "<sip:101@pbx.example.com"
    assert torture_response(bad_to) == 400


def test_name_addr_str_is_parseable() -> None:
    na = NameAddr(uri=SipUri(host="h", user="u"), display_name='quote " and \\ back',
                  params=(("tag", "1"),))
    assert parse_name_addr(str(na)) == na


def test_more_rejections_and_helpers() -> None:
    err = rejects(BASIC.replace("\r\nVia:", "\r\n continued\r\nVia:", 1).encode())
    assert "folding" in err.reason
    with pytest.raises(SipParseError):
        parse_request(BASIC.replace("REGISTER sip:pbx.example.com SIP/2.0",
                                    "SIP/2.0 200 OK").encode())
    rejects(with_line("Contact: <sip:101@", "Contact: <sip:101:p w@"))
    rejects(with_line("Content-Length: 0", "Route: sip:proxy;lr\r\nContent-Length: 0"))
    for host in ("[::1", "[1:2:3:4:5:6:7:8:9]", "[::1]junk", "[2001:db8::::1]"):
        with pytest.raises(SipParseError):
            parse_uri(f"sip:{host}")
    uri = SipUri(host="h", params=(("lr", None),)).with_param("transport", "TCP")
    assert uri.transport == "tcp" and not uri.without_param("lr").has_param("lr")
    na = parse_name_addr("<sip:a@b>;q=0.5;expires=60")
    assert na.with_param("q", "x").q is None and na.with_param("q", "1.5").q is None
    assert na.without_param("expires").expires is None and na.expires == 60
    assert not parse_uri("tel:+1").matches(parse_uri("sip:a@b"))
    assert parse_uri("tel:+1%32").matches(parse_uri("TEL:+12"))


def test_verdict_branches() -> None:
    m = basic()
    assert torture_response(m) is None  # a REGISTER to the registrar
    invite = parse_request(with_line("CSeq: 1 REGISTER", "CSeq: 1 INVITE").replace(
        b"REGISTER sip:", b"INVITE sip:").replace(b"Content-Length: 0\r\n\r\n",
                                                 b"Content-Type: ;\r\nContent-Length: 1\r\n\r\nx"))
    assert torture_response(invite) is None and torture_response(invite, role="uas") == 400
    ack = parse_request(with_line("CSeq: 1 REGISTER", "CSeq: 1 ACK").replace(
        b"REGISTER sip:", b"ACK sip:").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    assert torture_response(ack) is None
    cancel = parse_request(with_line("CSeq: 1 REGISTER", "CSeq: 1 CANCEL\r\nRequire: x").replace(
        b"REGISTER sip:", b"CANCEL sip:"))
    assert torture_response(cancel, role="uas") is None
    assert is_unsafe_destination("[::ffff:255.255.255.255]") and is_unsafe_destination("0.0.0.0")
    assert is_unsafe_destination("224.0.0.1") and not is_unsafe_destination("pbx.example.com")
    assert not is_unsafe_destination("192.0.2.1") and not is_unsafe_destination("[2001:db8::1]")


def test_sdp_parser() -> None:
    sdp = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                    b"a=sendrecv\r\nm=audio 4000/2 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n")
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.formats) == ("audio", 4000, ("0", "8"))
    assert audio.attributes == ("rtpmap:0 PCMU/8000",) and sdp.attributes == ("sendrecv",)
    assert sdp.media_connection(audio) == sdp.connection
    for bad in (b"", b"x=1", b"v=0\r\nbad", b"v=0\r\nc=IN IP4", b"v=0\r\nm=audio x RTP/AVP 0",
                b"v=0\r\nm=audio 70000 RTP/AVP 0", b"v=0\r\nm=audio", b"v=0\r\no=short"):
        with pytest.raises(SipParseError):
            parse_sdp(bad)


def test_every_cached_accessor_names_the_header_it_reads() -> None:
    # A copy with one header changed keeps the other cached values: an accessor missing from
    # the table would keep a stale value.
    from appliance.sip import message

    cached = {name for name, attr in vars(message.Message).items()
              if isinstance(attr, message._cached)} - {"_index"}
    listed = {name for names in message._READERS.values() for name in names}
    assert cached == listed
