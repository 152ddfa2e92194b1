"""The box as a SIP client: digest answers (fuzzed) and trunk registration on a fake clock.

Every Authorization the client builds is checked by the box's own server-side `verify`,
so a wrong hash, uri or nc cannot pass unnoticed.
"""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.edge.trunkreg import (
    BRANCH_PREFIX,
    RegAccount,
    RegChange,
    Registration,
    RegState,
    RegTimers,
    Send,
)
from appliance.sip import (
    AuthOutcome,
    Header,
    NonceManager,
    Request,
    Response,
    SipParseError,
    challenge,
    make_response,
    parse_credentials,
    parse_message,
    verify,
)
from appliance.sip.digest_client import (
    Challenge,
    authorization,
    parse_challenge,
    pick_challenge,
)

FUZZ = settings(max_examples=int(os.environ.get("PBX_FUZZ_EXAMPLES", "150")), deadline=1000,
                database=None)
REALM = "sip.provider.example"
PASSWORD = "Tr-secret-42"
SECRET = b"provider-secret-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- digest client ------------------------------------------------------------------------

def test_a_sha256_challenge_is_preferred_and_answered_correctly() -> None:
    nonces = NonceManager(SECRET)
    nonce = nonces.issue("198.51.100.1")
    picked = pick_challenge([challenge(REALM, nonce, "MD5"), challenge(REALM, nonce, "SHA-256")])
    assert picked is not None and picked.algorithm == "SHA-256" and picked.qop == "auth"
    value = authorization(picked, username="trunk1", password=PASSWORD, method="REGISTER",
                          uri="sip:sip.provider.example", nc=1, cnonce="c0ffee")
    params = parse_credentials(value).as_dict()
    result = verify(params, "REGISTER", _lookup, nonces, realm=REALM, client_ip="198.51.100.1")
    assert result.outcome is AuthOutcome.OK and result.algorithm == "SHA-256"
    # A wrong password is refused by the same check.
    bad = authorization(picked, username="trunk1", password="wrong", method="REGISTER",
                        uri="sip:sip.provider.example", nc=2, cnonce="c0ffee")
    assert verify(parse_credentials(bad).as_dict(), "REGISTER", _lookup, nonces, realm=REALM,
                  client_ip="198.51.100.1").outcome is AuthOutcome.BAD


def _lookup(username: str, realm: str, algorithm: str) -> str | None:
    from appliance.sip import ha1

    return ha1(username, realm, PASSWORD, algorithm) if username == "trunk1" else None


@pytest.mark.parametrize(("value", "expected"), [
    ('Digest realm="a", nonce="n1", algorithm=MD5, qop="auth"', ("MD5", "auth")),
    ('Digest realm="a", nonce="n1", qop="auth-int,auth"', ("MD5", "auth")),
    ('Digest realm="a", nonce="n1"', ("MD5", None)),  # RFC 2069: no qop
    ('Digest realm="a", nonce="n1", algorithm="SHA-256", qop="auth"', ("SHA-256", "auth")),
    ('Digest realm="a", nonce="n1", qop="auth-int"', None),  # would need body hashing
    ('Digest realm="a", nonce="n1", algorithm=MD5-sess, qop="auth"', None),
    ('Digest realm="a", algorithm=MD5', None),  # no nonce
    ('Basic realm="a"', None),
])
def test_challenges_we_can_and_cannot_answer(value: str,
                                              expected: tuple[str, str | None] | None) -> None:
    found = parse_challenge(value)
    assert (None if found is None else (found.algorithm, found.qop)) == expected


def test_stale_opaque_and_proxy_challenges() -> None:
    found = pick_challenge(
        ['Digest realm="a", nonce="n", opaque="op", stale=TRUE'],
        ['Digest realm="p", nonce="m", algorithm=SHA-256, qop="auth"'])
    assert found is not None and found.proxy and found.realm == "p"
    assert found.header == "Proxy-Authorization"
    www = pick_challenge(['Digest realm="a", nonce="n", opaque="op", stale=TRUE'])
    assert www == Challenge("a", "n", "MD5", None, "op", True, False)
    value = authorization(www, username="u", password="p", method="INVITE", uri="sip:x@a")
    assert 'opaque="op"' in value and "qop" not in value
    with pytest.raises(ValueError, match="cnonce"):
        authorization(Challenge("a", "n", "MD5", "auth"), username="u", password="p",
                      method="INVITE", uri="sip:x@a")


def test_an_unparseable_challenge_does_not_hide_a_good_one() -> None:
    picked = pick_challenge(['Digest realm="a", nonce=', 'Digest realm="b", nonce="x"'])
    assert picked is not None and picked.realm == "b"


@FUZZ
@given(st.text(max_size=300))
def test_challenge_parsing_raises_nothing_but_parse_errors(text: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_challenge(text)
    picked = pick_challenge([text], [text])  # never raises
    assert picked is None or picked.algorithm in ("MD5", "SHA-256")


@FUZZ
@given(realm=st.text(min_size=1, max_size=30).filter(lambda t: t.isprintable()),
       nonce=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                     max_size=40),
       algorithm=st.sampled_from(["MD5", "SHA-256", "md5", "sha-256"]),
       qop=st.sampled_from([None, "auth", "auth,auth-int"]),
       opaque=st.one_of(st.none(), st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                           max_size=20)))
def test_every_challenge_the_server_side_writes_is_read_back(
        realm: str, nonce: str, algorithm: str, qop: str | None, opaque: str | None) -> None:
    from appliance.sip.headers import format_credentials

    params = [("realm", realm), ("nonce", nonce), ("algorithm", algorithm)]
    if qop:
        params.append(("qop", qop))
    if opaque is not None:
        params.append(("opaque", opaque))
    found = parse_challenge(format_credentials("Digest", params, unquoted=("algorithm",)))
    assert found is not None
    assert (found.realm, found.nonce, found.algorithm.upper(), found.opaque) == (
        realm, nonce, algorithm.upper(), opaque)
    assert found.qop == ("auth" if qop else None)


# --- registration ------------------------------------------------------------------------

ACCOUNT = RegAccount(key="trunk1", registrar="sip:sip.provider.example",
                     aor="sip:trunk1@sip.provider.example", contact_user="trunk1",
                     username="trunk1", password=PASSWORD, expires=600)


class Provider:
    """A registrar's side of the conversation, built with the box's own server code."""

    def __init__(self, clock: Clock) -> None:
        self.nonces = NonceManager(SECRET, clock=clock)

    def challenge(self, req: Request, *, algorithm: str = "SHA-256", stale: bool = False,
                  code: int = 401) -> Response:
        name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
        return make_response(req, code, headers=[Header(name, challenge(
            REALM, self.nonces.issue("192.0.2.10"), algorithm, stale))])

    def check(self, req: Request, code: int = 401) -> AuthOutcome:
        name = "Authorization" if code == 401 else "Proxy-Authorization"
        creds = req.credentials(name)
        assert creds, f"no {name} in {req.to_bytes()!r}"
        return verify(creds[0].as_dict(), req.method, _lookup, self.nonces, realm=REALM,
                      client_ip="192.0.2.10").outcome

    @staticmethod
    def ok(req: Request, contact_expires: int | None = None) -> Response:
        contact = req.header("Contact") or ""
        value = contact + (f";expires={contact_expires}" if contact_expires is not None else "")
        return make_response(req, 200, headers=[Header("Contact", value)])


def sends(actions: list[Send | RegChange]) -> list[Request]:
    return [a.request for a in actions if isinstance(a, Send)]


def changes(actions: list[Send | RegChange]) -> list[tuple[RegState, RegState, int]]:
    return [(a.before, a.after, a.code) for a in actions if isinstance(a, RegChange)]


def roundtrip(req: Request) -> Request:
    """The request as it goes over the wire: serialised and parsed again."""
    parsed = parse_message(req.to_bytes())
    assert isinstance(parsed, Request)
    return parsed


def registration(clock: Clock, transport: str = "UDP", **kw: object) -> Registration:
    account = RegAccount(**{**ACCOUNT.__dict__, "transport": transport, **kw})  # type: ignore[arg-type]
    return Registration(account, ("192.0.2.10", 5060), clock, RegTimers(),
                        jitter=lambda: 0.5)


def test_register_answers_the_challenge_and_refreshes_before_expiry() -> None:
    clock = Clock()
    provider = Provider(clock)
    reg = registration(clock)
    actions = reg.start()
    assert changes(actions) == [(RegState.UNREGISTERED, RegState.REGISTERING, 0)]
    first = roundtrip(sends(actions)[0])
    assert first.method == "REGISTER" and str(first.uri) == "sip:sip.provider.example"
    assert first.header("Expires") == "600" and first.cseq.number == 1
    assert first.header("Contact") == "<sip:trunk1@192.0.2.10:5060>"
    assert first.top_via.branch.startswith(BRANCH_PREFIX)  # type: ignore[union-attr]
    assert first.header("Authorization") is None

    second = roundtrip(sends(reg.response(provider.challenge(first)))[0])
    assert second.call_id == first.call_id and second.cseq.number == 2
    assert second.top_via.branch != first.top_via.branch  # type: ignore[union-attr]
    assert provider.check(second) is AuthOutcome.OK
    actions = reg.response(provider.ok(second, contact_expires=120))
    assert changes(actions) == [(RegState.REGISTERING, RegState.REGISTERED, 200)]
    status = reg.status()
    assert status.expires_at == clock.now + 120
    assert status.next_attempt == clock.now + 90  # 30 s before the granted expiry
    assert reg.usable()

    clock.now += 89.9
    assert sends(reg.run()) == []
    clock.now += 0.1
    refresh = roundtrip(sends(reg.run())[0])
    # Credentials for the last nonce go up front, nc counting up; state stays REGISTERED.
    assert refresh.cseq.number == 3 and provider.check(refresh) is AuthOutcome.OK
    assert 'nc=00000002' in (refresh.header("Authorization") or "")
    assert reg.state is RegState.REGISTERED
    assert changes(reg.response(provider.ok(refresh))) == []
    assert reg.status().expires_at == clock.now + 600  # no Contact expires: what we asked


def test_a_refused_password_fails_and_retries_with_backoff() -> None:
    clock = Clock()
    provider = Provider(clock)
    reg = registration(clock, password="not-the-password")
    first = sends(reg.start())[0]
    second = sends(reg.response(provider.challenge(first)))[0]
    assert provider.check(second) is AuthOutcome.BAD
    # The provider challenges again with the nonce we just used: a wrong password.
    again = make_response(second, 401, headers=[Header("WWW-Authenticate", challenge(
        REALM, second.credentials("Authorization")[0].get("nonce") or "", "SHA-256"))])
    actions = reg.response(again)
    assert sends(actions) == []
    assert changes(actions) == [(RegState.REGISTERING, RegState.FAILED, 401)]
    assert reg.status().last_reason == "credentials refused"
    assert not reg.usable()
    gaps = []
    for _ in range(8):
        due = reg.status().next_attempt
        assert due is not None
        gaps.append(round(due - clock.now, 3))
        clock.now = due
        last = reg.last_code
        retry = reg.run()
        assert changes(retry) == [(RegState.FAILED, RegState.REGISTERING, last)]
        req = sends(retry)[0]
        reg.response(make_response(req, 403))
        assert reg.state is RegState.FAILED and reg.last_code == 403
    assert gaps == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]


def test_udp_retransmits_per_timer_e_and_times_out_as_408() -> None:
    clock = Clock()
    reg = registration(clock)
    first = sends(reg.start())[0]
    resent = []
    while reg.state is RegState.REGISTERING:
        wake = reg.next_wakeup()
        assert wake is not None
        clock.now = wake
        for action in reg.run():
            if isinstance(action, Send):
                assert action.retransmission and action.request is first
                resent.append(round(clock.now - 1000.0, 3))
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert reg.state is RegState.FAILED and reg.last_code == 408
    assert clock.now == 1032.0


def test_tcp_sends_once_and_says_so_in_via_and_contact() -> None:
    clock = Clock()
    reg = registration(clock, transport="TCP")
    req = roundtrip(sends(reg.start())[0])
    assert req.top_via.transport == "TCP"  # type: ignore[union-attr]
    assert req.header("Contact") == "<sip:trunk1@192.0.2.10:5060;transport=tcp>"
    assert reg.next_wakeup() == clock.now + 32.0  # only Timer F: streams do not lose


def test_423_raises_the_expiry_and_proxy_challenges_are_answered() -> None:
    clock = Clock()
    provider = Provider(clock)
    reg = registration(clock, route="<sip:proxy.provider.example;lr>")
    first = sends(reg.start())[0]
    assert first.header("Route") == "<sip:proxy.provider.example;lr>"
    brief = make_response(first, 423, headers=[Header("Min-Expires", "1800")])
    second = sends(reg.response(brief))[0]
    assert second.header("Expires") == "1800"
    third = sends(reg.response(provider.challenge(second, code=407)))[0]
    assert provider.check(third, code=407) is AuthOutcome.OK
    reg.response(make_response(third, 200))
    assert reg.state is RegState.REGISTERED and reg.status().expires_at == clock.now + 1800


def test_a_stale_nonce_is_answered_again() -> None:
    clock = Clock()
    provider = Provider(clock)
    reg = registration(clock)
    first = sends(reg.start())[0]
    second = sends(reg.response(provider.challenge(first)))[0]
    reg.response(provider.ok(second, 300))
    clock.now += 270
    refresh = sends(reg.run())[0]
    third = sends(reg.response(provider.challenge(refresh, stale=True, algorithm="MD5")))[0]
    assert provider.check(third) is AuthOutcome.OK
    assert 'algorithm=MD5' in (third.header("Authorization") or "")
    reg.response(provider.ok(third, 300))
    assert reg.state is RegState.REGISTERED


def test_provisional_and_foreign_answers_are_ignored() -> None:
    clock = Clock()
    reg = registration(clock)
    first = sends(reg.start())[0]
    assert reg.response(make_response(first, 100)) == []
    other = parse_message(first.to_bytes().replace(b"branch=z9hG4bKtr-", b"branch=z9hG4bKxx-"))
    assert isinstance(other, Request)
    assert reg.response(make_response(other, 200)) == []
    assert reg.state is RegState.REGISTERING and reg.in_flight


def test_stop_unregisters_only_a_live_registration() -> None:
    clock = Clock()
    provider = Provider(clock)
    reg = registration(clock)
    first = sends(reg.start())[0]
    reg.response(provider.ok(first, 600))
    actions = reg.stop()
    assert changes(actions) == [(RegState.REGISTERED, RegState.UNREGISTERED, 0)]
    bye = sends(actions)[0]
    assert bye.header("Expires") == "0" and bye.call_id == first.call_id
    # The un-REGISTER is challenged too, and answered; nothing more happens after it.
    answered = sends(reg.response(provider.challenge(bye)))[0]
    assert answered.header("Expires") == "0" and provider.check(answered) is AuthOutcome.OK
    assert reg.response(make_response(answered, 200)) == []
    assert reg.state is RegState.UNREGISTERED and not reg.in_flight
    assert reg.stop() == []
    never = registration(clock)
    assert never.stop() == []
    failed = registration(clock)
    failed.start()
    clock.now += 40
    failed.run()
    assert failed.state is RegState.FAILED
    assert sends(failed.stop()) == []  # the provider never held a binding
