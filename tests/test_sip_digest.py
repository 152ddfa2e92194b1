"""Digest authentication (RFC 7616 / RFC 8760 for SIP): vectors, nonces, replay, policy."""

from __future__ import annotations

import contextlib
import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.sip import (
    AuthOutcome,
    NonceManager,
    NonceState,
    SipParseError,
    challenge,
    challenges,
    client_authorization,
    digest_response,
    ha1,
    parse_credentials,
    parse_message,
    select_credentials,
    verify,
)
from appliance.sip.headers import format_credentials

SECRET = b"box-secret-0123456789abcdef"
REALM = "pbx.example.com"
URI = "sip:pbx.example.com"
IP = "192.0.2.7"
PASSWORDS = {"101": "correct horse", "102": "battery staple"}
FUZZ = settings(max_examples=int(os.environ.get("PBX_FUZZ_EXAMPLES", "150")), deadline=1000,
                database=None)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    """What the registrar does: ha1_md5 / ha1_sha256 of the devices table."""
    password = PASSWORDS.get(username)
    return None if password is None or realm != REALM else ha1(username, realm, password,
                                                                  algorithm)


def creds(nonce: str, *, username: str = "101", password: str | None = None,
          algorithm: str = "SHA-256", nc: int = 1, uri: str = URI, method: str = "REGISTER",
          realm: str = REALM, qop: str | None = "auth") -> dict[str, str]:
    """Authorization params as the edge gets them: built like a phone, then parsed."""
    secret = PASSWORDS.get(username, "x") if password is None else password
    value = client_authorization(username=username, realm=realm, nonce=nonce, uri=uri,
                                 method=method, ha1_hex=ha1(username, realm, secret, algorithm),
                                 algorithm=algorithm, nc=nc, qop=qop)
    return parse_credentials(value).as_dict()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def nonces(clock: FakeClock) -> NonceManager:
    return NonceManager(SECRET, ttl_s=60, clock=clock)


def check(params: dict[str, str], nonces: NonceManager, *, method: str = "REGISTER",
          request_uri: str | None = None, allow_no_qop: bool = False) -> AuthOutcome:
    return verify(params, method, lookup, nonces, realm=REALM, client_ip=IP,
                  request_uri=request_uri, allow_no_qop=allow_no_qop).outcome


# ----- hashes and the RFC vector --------------------------------------------------------

def test_ha1_matches_hashlib() -> None:
    text = f"101:{REALM}:correct horse".encode()
    assert ha1("101", REALM, "correct horse", "MD5") == hashlib.md5(text).hexdigest()
    assert ha1("101", REALM, "correct horse", "SHA-256") == hashlib.sha256(text).hexdigest()
    assert ha1("101", REALM, "correct horse", "sha-256") == hashlib.sha256(text).hexdigest()
    with pytest.raises(ValueError):
        ha1("101", REALM, "x", "SHA-512-256")


def test_rfc7616_section_3_9_1_vector() -> None:
    nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    expected = {"MD5": "8ca523f5e9506fed4657c9700eebdbec",
                "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"}
    for alg, hash_name in (("MD5", "md5"), ("SHA-256", "sha256")):
        def h(text: str, hash_name: str = hash_name) -> str:
            return hashlib.new(hash_name, text.encode()).hexdigest()

        a1 = h("Mufasa:http-auth@example.org:Circle of Life")
        by_hand = h(f"{a1}:{nonce}:00000001:{cnonce}:auth:{h('GET:/dir/index.html')}")
        assert by_hand == expected[alg]
        assert ha1("Mufasa", "http-auth@example.org", "Circle of Life", alg) == a1
        assert digest_response(a1, nonce, "GET", "/dir/index.html", alg, qop="auth",
                               nc="00000001", cnonce=cnonce) == expected[alg]


def test_rfc2069_style_response() -> None:
    a1 = ha1("u", "r", "p")
    h2 = hashlib.md5(b"INVITE:sip:x@y").hexdigest()
    assert digest_response(a1, "n", "INVITE", "sip:x@y") == hashlib.md5(
        f"{a1}:n:{h2}".encode()).hexdigest()


# ----- challenges ------------------------------------------------------------------------

def test_challenges_offer_sha256_then_md5() -> None:
    values = challenges('pbx "main"', "abc", stale=True)
    parsed = [parse_credentials(v) for v in values]
    assert [c.get("algorithm") for c in parsed] == ["SHA-256", "MD5"]
    for c in parsed:
        assert c.is_digest and c.get("realm") == 'pbx "main"' and c.get("nonce") == "abc"
        assert c.get("qop") == "auth" and c.get("stale") == "true"
    assert 'qop="auth"' in values[0] and "algorithm=SHA-256" in values[0]
    assert "stale" not in challenge(REALM, "abc", "MD5")


# ----- the whole exchange ----------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_register_exchange(nonces: NonceManager, algorithm: str) -> None:
    nonce = nonces.issue(IP)
    assert nonces.check(nonce, IP) is NonceState.VALID
    result = verify(creds(nonce, algorithm=algorithm), "REGISTER", lookup, nonces,
                    realm=REALM, client_ip=IP, request_uri=URI)
    assert result.ok and result.username == "101" and result.algorithm == algorithm
    # The phone reuses the nonce with the next nonce-count.
    assert check(creds(nonce, algorithm=algorithm, nc=2), nonces) is AuthOutcome.OK


def test_authorization_header_from_a_message(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    header = client_authorization(username="102", realm=REALM, nonce=nonce, uri=URI,
                                  method="REGISTER", ha1_hex=ha1("102", REALM, "battery staple"))
    data = (f"REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP {IP};branch=z9hG4bK1\r\n"
            f"From: <sip:102@{REALM}>;tag=1\r\nTo: <sip:102@{REALM}>\r\nCall-ID: c\r\n"
            f"CSeq: 2 REGISTER\r\nAuthorization: Digest realm=\"other\", nonce=\"n\", "
            f"username=\"102\", uri=\"{URI}\", response=\"00\"\r\n"
            f"Authorization: {header}\r\nContent-Length: 0\r\n\r\n").encode()
    message = parse_message(data)
    params = select_credentials(message.authorization, REALM)
    assert params is not None and params["username"] == "102"
    assert verify(params, "REGISTER", lookup, nonces, realm=REALM, client_ip=IP,
                  request_uri=URI).ok


def test_replayed_nonce_count_is_stale(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    assert check(creds(nonce, nc=5), nonces) is AuthOutcome.OK
    assert check(creds(nonce, nc=5), nonces) is AuthOutcome.STALE
    assert check(creds(nonce, nc=3), nonces) is AuthOutcome.STALE
    assert check(creds(nonce, nc=6), nonces) is AuthOutcome.OK


def test_wrong_password_and_unknown_user_look_the_same(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    wrong = verify(creds(nonce, password="guess"), "REGISTER", lookup, nonces, realm=REALM,
                   client_ip=IP)
    unknown = verify(creds(nonce, username="999"), "REGISTER", lookup, nonces, realm=REALM,
                     client_ip=IP)
    assert wrong.outcome is unknown.outcome is AuthOutcome.BAD
    assert (wrong.reason, wrong.algorithm) == (unknown.reason, unknown.algorithm)
    # A failed attempt does not burn the nonce-count of the real phone.
    assert check(creds(nonce, nc=1), nonces) is AuthOutcome.OK


def test_wrong_password_with_stale_nonce_is_bad(clock: FakeClock,
                                                 nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    clock.now += 3600
    assert check(creds(nonce, password="guess"), nonces) is AuthOutcome.BAD
    assert check(creds(nonce), nonces) is AuthOutcome.STALE


def test_nonce_expiry(clock: FakeClock, nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    clock.now += 59.9
    assert nonces.check(nonce, IP) is NonceState.VALID
    clock.now += 0.2
    assert nonces.check(nonce, IP) is NonceState.STALE
    result = verify(creds(nonce), "REGISTER", lookup, nonces, realm=REALM, client_ip=IP)
    assert result.stale and not result.ok


def test_nonce_bound_to_box_and_client(clock: FakeClock, nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    other_box = NonceManager(b"another-box-secret-xyz", ttl_s=60, clock=clock)
    assert other_box.check(nonce, IP) is NonceState.INVALID
    # A correct digest over a nonce we never issued: re-challenge with stale=true.
    assert verify(creds(nonce), "REGISTER", lookup, other_box, realm=REALM,
                  client_ip=IP).outcome is AuthOutcome.STALE
    assert nonces.check(nonce, "198.51.100.1") is NonceState.STALE
    loose = NonceManager(SECRET, ttl_s=60, clock=clock, bind_client_ip=False)
    assert loose.check(loose.issue("10.0.0.1"), "10.0.0.2") is NonceState.VALID
    tampered = nonce[:-3] + ("AAA" if not nonce.endswith("AAA") else "BBB")
    assert nonces.check(tampered, IP) in (NonceState.INVALID, NonceState.STALE)
    for junk in ("", "abc", "é" * 46, "=" * 46, nonce + "A", nonce[1:]):
        assert nonces.check(junk, IP) is NonceState.INVALID
        assert not nonces.use(junk, 1)


def test_nonces_from_before_a_restart_or_the_future(clock: FakeClock,
                                                    nonces: NonceManager) -> None:
    old = nonces.issue(IP)
    clock.now += 10
    restarted = NonceManager(SECRET, ttl_s=60, clock=clock)
    assert restarted.check(old, IP) is NonceState.STALE
    assert restarted.check(restarted.issue(IP), IP) is NonceState.VALID
    future = restarted.issue(IP)
    clock.now -= 30  # the wall clock stepped back
    assert restarted.check(future, IP) is NonceState.STALE


def test_nonces_are_unique_and_memory_is_bounded(clock: FakeClock) -> None:
    small = NonceManager(SECRET, ttl_s=60, clock=clock, max_tracked=3)
    issued = [small.issue(IP) for _ in range(10)]
    assert len(set(issued)) == 10
    for nonce in issued:
        assert small.use(nonce, 1)
    assert small.tracked == 3
    # An evicted nonce may have been used: refuse it rather than forget its count.
    assert not small.use(issued[0], 2)
    assert small.use(issued[-1], 2)
    assert small.use(small.issue(IP), 1)


def test_policy_rejections(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    good = creds(nonce)
    cases: list[dict[str, str]] = [
        {**good, "realm": "other.example.com"},
        {k: v for k, v in good.items() if k != "response"},
        {k: v for k, v in good.items() if k != "uri"},
        {**good, "qop": "auth-int"},
        {**good, "nc": "1"},
        {**good, "nc": "0000000g"},
        {**good, "nc": "00000000"},
        {k: v for k, v in good.items() if k != "cnonce"},
        {**good, "algorithm": "SHA-512-256"},
        {**good, "userhash": "true"},
        creds(nonce, qop=None),
    ]
    for params in cases:
        assert check(params, nonces) is AuthOutcome.MALFORMED, params
    assert check(good, nonces, request_uri="sip:elsewhere.example.com") is AuthOutcome.MALFORMED
    assert check(good, nonces, request_uri="sip:PBX.example.com") is AuthOutcome.OK


def test_legacy_no_qop_only_when_allowed_and_single_use(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    legacy = creds(nonce, qop=None, algorithm="MD5")
    assert check(legacy, nonces) is AuthOutcome.MALFORMED
    assert check(legacy, nonces, allow_no_qop=True) is AuthOutcome.OK
    assert check(legacy, nonces, allow_no_qop=True) is AuthOutcome.STALE


def test_method_is_part_of_the_digest(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    assert check(creds(nonce, method="INVITE"), nonces) is AuthOutcome.BAD
    assert check(creds(nonce, method="INVITE", nc=2), nonces,
                 method="INVITE") is AuthOutcome.OK


def test_bad_stored_ha1_is_bad(nonces: NonceManager) -> None:
    nonce = nonces.issue(IP)
    for stored in ("", "zz" * 16, "ab" * 20):
        def broken(username: str, realm: str, algorithm: str, stored: str = stored) -> str:
            return stored

        result = verify(creds(nonce), "REGISTER", broken, nonces, realm=REALM, client_ip=IP)
        assert result.outcome is AuthOutcome.BAD


def test_nonce_manager_rejects_short_secret() -> None:
    with pytest.raises(ValueError):
        NonceManager(b"short")


# ----- fuzz ------------------------------------------------------------------------------

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._!%*+`'~", min_size=1,
                max_size=12)
VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"),
                max_size=40)


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_credentials_parser_raises_only_parse_errors(text: str) -> None:
    try:
        cred = parse_credentials(text)
    except SipParseError:
        return
    assert cred.scheme and all(name == name.lower() for name, _ in cred.params)


@FUZZ
@given(st.sampled_from(["Digest ", "Digest username=", 'Digest realm="', "x "]),
       st.text(alphabet=' ,="\\=abc\t', max_size=60))
def test_fuzz_credentials_parser_near_misses(prefix: str, tail: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_credentials(prefix + tail)


@FUZZ
@given(st.lists(st.tuples(TOKEN, VALUE), max_size=8, unique_by=lambda p: p[0]))
def test_fuzz_credentials_round_trip(params: list[tuple[str, str]]) -> None:
    text = format_credentials("Digest", params)
    assert parse_credentials(text).params == tuple(params)


@FUZZ
@given(st.dictionaries(st.sampled_from(["username", "realm", "nonce", "uri", "response",
                                        "qop", "nc", "cnonce", "algorithm", "userhash"]),
                       VALUE, max_size=10))
def test_fuzz_verify_never_raises(params: dict[str, str]) -> None:
    manager = NonceManager(SECRET, ttl_s=60, clock=FakeClock())
    result = verify(params, "REGISTER", lookup, manager, realm=REALM, client_ip=IP,
                    request_uri=URI)
    assert result.outcome is not AuthOutcome.OK
