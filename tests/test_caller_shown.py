"""What a ringing desk phone shows: the edge puts the caller the switchboard names
(X-PBX-Caller, X-PBX-Caller-Name) into the From of the engine's INVITE, keeping its tag,
and no X-PBX-* header leaves the box."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.edge.trunkcalls import show_caller
from appliance.sip import Request, parse_message


def invite(*extra: str) -> Request:
    lines = ["INVITE sip:101@127.0.0.1:5062 SIP/2.0",
             "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKabc",
             "From: <sip:engine@127.0.0.1>;tag=xyz", "To: <sip:101@127.0.0.1>",
             "Call-ID: a1", "CSeq: 1 INVITE", "Max-Forwards: 70", *extra,
             "Content-Length: 0", "", ""]
    msg = parse_message("\r\n".join(lines).encode())
    assert isinstance(msg, Request)
    return msg


def test_the_caller_number_and_name_replace_the_engine_in_from() -> None:
    out = show_caller(invite("X-PBX-Caller: 102", "X-PBX-Caller-Name: Анна \\ \"Q\""),
                      "192.168.1.10")
    assert out.from_.tag == "xyz"
    assert str(out.from_.uri) == "sip:102@192.168.1.10"
    assert out.from_.display_name == 'Анна \\ "Q"'
    assert not [h for h in out.headers if h.name.lower().startswith("x-pbx-")]


def test_without_a_usable_caller_the_from_stays() -> None:
    for extra in ((), ("X-PBX-Caller: <sip:evil>",), ("X-PBX-Caller: " + "9" * 40,)):
        out = show_caller(invite(*extra), "10.0.0.1")
        assert str(out.from_.uri) == "sip:engine@127.0.0.1" and out.from_.tag == "xyz"


@given(number=st.text(max_size=40), name=st.text(max_size=200))
def test_any_header_values_give_a_parseable_invite(number: str, name: str) -> None:
    clean = [v.replace("\r", " ").replace("\n", " ") for v in (number, name)]
    msg = invite(f"X-PBX-Caller: {clean[0]}", f"X-PBX-Caller-Name: {clean[1]}")
    out = show_caller(msg, "10.0.0.1")
    again = parse_message(out.to_bytes())
    assert isinstance(again, Request)
    assert again.from_.tag == "xyz"
