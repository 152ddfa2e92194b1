"""Digest authentication, server side (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256.

Credentials are stored as HA1 only (devices.ha1_md5 / devices.ha1_sha256), never passwords.
Nonces are stateless: base64url(issue time, counter, HMAC tag, client-IP tag) under the box
secret, so a nonce from another box, another boot or another client address is never
accepted as fresh. Only replay tracking (the highest nonce-count seen per nonce) is kept, in
a bounded LRU.

Policy decisions:
* qop=auth is required. RFC 2069 (no qop) is refused by default because without nc/cnonce a
  captured INVITE can be replayed for the nonce lifetime (toll fraud). `allow_no_qop=True`
  accepts it for old phones, and then each nonce is good for one request only.
* A correct response with an expired, foreign or reused nonce is STALE (answer with a fresh
  nonce and stale=true: the phone retries without asking its user). A wrong response is BAD
  whatever the nonce, and an unknown user is BAD through the same code path as a wrong
  password (no enumeration).
* The digest `uri` must name the Request-URI when the caller passes it (RFC 7616 §3.4.6:
  otherwise 400), compared as URIs, so escaping differences do not matter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from .errors import SipParseError
from .headers import Credentials, format_credentials
from .uri import parse_uri

MD5 = "MD5"
SHA256 = "SHA-256"
# Order of the challenges in a 401/407: strongest first (RFC 8760 §2.4).
ALGORITHMS = (SHA256, MD5)
_HASHES = {MD5: hashlib.md5, SHA256: hashlib.sha256}
_HEX = frozenset("0123456789abcdef")

HA1Lookup = Callable[[str, str, str], str | None]


def normalize_algorithm(name: str | None) -> str | None:
    """'MD5' or 'SHA-256' for a supported algorithm name (absent means MD5), else None."""
    if name is None:
        return MD5
    upper = name.upper()
    return upper if upper in _HASHES else None


def _h(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode("utf-8")).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str = MD5) -> str:
    """H(username:realm:password) as lowercase hex: what the devices table stores."""
    alg = normalize_algorithm(algorithm)
    if alg is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _h(alg, f"{username}:{realm}:{password}")


def digest_response(ha1_hex: str, nonce: str, method: str, uri: str, algorithm: str = MD5, *,
                    qop: str | None = None, nc: str | None = None,
                    cnonce: str | None = None) -> str:
    """The request-digest (RFC 7616 §3.4.1) for qop=auth, or RFC 2069 style without qop."""
    alg = normalize_algorithm(algorithm)
    if alg is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ha2 = _h(alg, f"{method}:{uri}")
    if qop is None:
        return _h(alg, f"{ha1_hex}:{nonce}:{ha2}")
    return _h(alg, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def challenge(realm: str, nonce: str, algorithm: str = SHA256, stale: bool = False,
              opaque: str | None = None) -> str:
    """A WWW-Authenticate / Proxy-Authenticate value offering qop=auth."""
    params = [("realm", realm), ("nonce", nonce)]
    if opaque is not None:
        params.append(("opaque", opaque))
    params += [("algorithm", algorithm), ("qop", "auth")]
    if stale:
        params.append(("stale", "true"))
    return format_credentials("Digest", params, unquoted=("algorithm", "stale"))


def challenges(realm: str, nonce: str, stale: bool = False, *,
               md5_only: bool = False) -> tuple[str, ...]:
    """The challenges of one 401/407, one header each: SHA-256 first, then MD5 (RFC 8760).

    `md5_only` offers MD5 alone, for clients that read only the first challenge or that
    fail on an algorithm they do not know instead of skipping it.
    """
    order = (MD5,) if md5_only else ALGORITHMS
    return tuple(challenge(realm, nonce, alg, stale) for alg in order)


def client_authorization(*, username: str, realm: str, nonce: str, uri: str, method: str,
                         ha1_hex: str, algorithm: str = MD5, cnonce: str = "0a4f113b",
                         nc: int = 1, qop: str | None = "auth",
                         opaque: str | None = None) -> str:
    """An Authorization value as a phone would send it (for tests and the engine's trunks)."""
    nc_text = f"{nc:08x}"
    response = digest_response(ha1_hex, nonce, method, uri, algorithm,
                               qop=qop, nc=nc_text if qop else None,
                               cnonce=cnonce if qop else None)
    params = [("username", username), ("realm", realm), ("nonce", nonce), ("uri", uri),
              ("response", response), ("algorithm", algorithm)]
    if qop:
        params += [("qop", qop), ("nc", nc_text), ("cnonce", cnonce)]
    if opaque is not None:
        params.append(("opaque", opaque))
    return format_credentials("Digest", params)


def select_credentials(credentials: Iterable[Credentials], realm: str) -> dict[str, str] | None:
    """The Digest credentials for `realm` (else the first Digest ones, to be refused), or None."""
    first: dict[str, str] | None = None
    for cred in credentials:
        if not cred.is_digest:
            continue
        if cred.get("realm") == realm:
            return cred.as_dict()
        if first is None:
            first = cred.as_dict()
    return first


class NonceState(Enum):
    """What `NonceManager.check` found."""

    VALID = "valid"
    STALE = "stale"  # ours, but expired, from before this start, or for another client address
    INVALID = "invalid"  # not issued by this box


_BODY = struct.Struct(">QQ")  # issue time (ms), counter
_TAG_LEN = 12
_IP_TAG_LEN = 6
_RAW_LEN = _BODY.size + _TAG_LEN + _IP_TAG_LEN


class NonceManager:
    """Issues and checks nonces bound to the box secret; tracks nonce-counts against replay.

    Not thread-safe: use one instance from the edge's event loop. `clock` is wall-clock
    seconds (a step of the clock only makes outstanding nonces stale).
    """

    def __init__(self, secret: bytes, ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.time, *, max_tracked: int = 16384,
                 bind_client_ip: bool = True, max_skew_s: float = 5.0) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        self._secret = secret
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._max_tracked = max(1, max_tracked)
        self._bind_ip = bind_client_ip
        self._skew_ms = int(max_skew_s * 1000)
        # Nonces issued before this instance existed may have been used already: refuse them
        # (stale) rather than forget their nonce-counts.
        self._started_ms = self._now_ms()
        self._counter = 0
        # nonce -> (counter, issue ms, highest nc); most recently used last.
        self._seen: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        # Highest counter among evicted, unexpired nonces: an untracked nonce at or below it
        # may have been used before, so it is refused.
        self._floor = 0

    @property
    def ttl_s(self) -> float:
        """Lifetime of a nonce in seconds."""
        return self._ttl_ms / 1000

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _tags(self, body: bytes, client_ip: str) -> tuple[bytes, bytes]:
        # hmac.digest: the one-shot form, the same MAC without building HMAC objects.
        tag = hmac.digest(self._secret, b"nonce\x00" + body, "sha256")[:_TAG_LEN]
        ip = client_ip if self._bind_ip else ""
        ip_tag = hmac.digest(self._secret, b"ip\x00" + body + ip.encode("utf-8", "replace"),
                             "sha256")[:_IP_TAG_LEN]
        return tag, ip_tag

    def issue(self, client_ip: str = "") -> str:
        """A fresh nonce for a challenge to `client_ip`."""
        self._counter += 1
        body = _BODY.pack(max(0, self._now_ms()), self._counter)
        tag, ip_tag = self._tags(body, client_ip)
        return base64.urlsafe_b64encode(body + tag + ip_tag).decode("ascii").rstrip("=")

    def _decode(self, nonce: str) -> tuple[bytes, bytes, bytes] | None:
        if len(nonce) != 46:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii") + b"==")
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return None
        if len(raw) != _RAW_LEN:
            return None
        return raw[:_BODY.size], raw[_BODY.size:-_IP_TAG_LEN], raw[-_IP_TAG_LEN:]

    def check(self, nonce: str, client_ip: str = "") -> NonceState:
        """VALID if this box issued it to this client within the TTL; STALE or INVALID."""
        parts = self._decode(nonce)
        if parts is None:
            return NonceState.INVALID
        body, tag, ip_tag = parts
        want_tag, want_ip_tag = self._tags(body, client_ip)
        if not hmac.compare_digest(tag, want_tag):
            return NonceState.INVALID
        issued_ms, _ = _BODY.unpack(body)
        now = self._now_ms()
        if (issued_ms < self._started_ms - self._skew_ms or issued_ms > now + self._skew_ms
                or now - issued_ms > self._ttl_ms):
            return NonceState.STALE
        if not hmac.compare_digest(ip_tag, want_ip_tag):
            return NonceState.STALE
        return NonceState.VALID

    def use(self, nonce: str, nc: int) -> bool:
        """Record nonce-count `nc` for a checked nonce; False if it is not above the last one."""
        parts = self._decode(nonce)
        if parts is None:
            return False
        issued_ms, counter = _BODY.unpack(parts[0])
        seen = self._seen.get(nonce)
        if seen is None:
            if counter <= self._floor:
                return False
        elif nc <= seen[2]:
            return False
        self._seen[nonce] = (counter, issued_ms, nc)
        self._seen.move_to_end(nonce)
        now = self._now_ms()
        while len(self._seen) > self._max_tracked:
            _, (old_counter, old_issued, _) = self._seen.popitem(last=False)
            if now - old_issued <= self._ttl_ms:
                self._floor = max(self._floor, old_counter)
        return True

    @property
    def tracked(self) -> int:
        """How many nonces have their nonce-count remembered."""
        return len(self._seen)


class AuthOutcome(Enum):
    """The verdict of `verify`."""

    OK = "ok"
    BAD = "bad"  # wrong password or unknown user: answer like a fresh challenge, count it
    STALE = "stale"  # right password, unusable nonce: challenge again with stale=true
    MALFORMED = "malformed"  # unusable credentials (missing fields, wrong realm/uri/qop): 400


@dataclass(frozen=True)
class AuthResult:
    """Outcome of a digest check; `username` is for logs, never for the response."""

    outcome: AuthOutcome
    username: str | None = None
    algorithm: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True if authenticated."""
        return self.outcome is AuthOutcome.OK

    @property
    def stale(self) -> bool:
        """True if the next challenge should carry stale=true."""
        return self.outcome is AuthOutcome.STALE


def _same_uri(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return parse_uri(a).matches(parse_uri(b))
    except SipParseError:
        return False


def _malformed(reason: str, username: str | None = None) -> AuthResult:
    return AuthResult(AuthOutcome.MALFORMED, username=username, reason=reason)


def verify(authorization_params: Mapping[str, str], method: str, ha1_lookup: HA1Lookup,
           nonces: NonceManager, *, realm: str, client_ip: str = "",
           request_uri: str | None = None, allow_no_qop: bool = False) -> AuthResult:
    """Check Digest credentials (auth-params as parsed) for a request with this method."""
    p = {k.lower(): v for k, v in authorization_params.items()}
    username, nonce = p.get("username"), p.get("nonce")
    uri, response = p.get("uri"), p.get("response")
    if not username or not nonce or not uri or not response or p.get("realm") is None:
        return _malformed("missing parameter", username)
    if p.get("userhash", "false").lower() != "false":
        return _malformed("userhash not supported", username)
    algorithm = normalize_algorithm(p.get("algorithm"))
    if algorithm is None:
        return _malformed("unsupported algorithm", username)
    if p["realm"] != realm:
        return _malformed("wrong realm", username)
    qop, nc_text, cnonce = p.get("qop"), p.get("nc"), p.get("cnonce")
    if qop is not None:
        if qop.lower() != "auth":
            return _malformed("unsupported qop", username)
        if (nc_text is None or len(nc_text) != 8 or not _HEX.issuperset(nc_text.lower())
                or int(nc_text, 16) == 0 or not cnonce):
            return _malformed("bad nc or cnonce", username)
    elif not allow_no_qop:
        return _malformed("qop=auth required", username)
    if request_uri is not None and not _same_uri(uri, request_uri):
        return _malformed("uri does not match the Request-URI", username)

    stored = ha1_lookup(username, realm, algorithm)
    width = 32 if algorithm == MD5 else 64
    known = (stored is not None and len(stored) == width
             and _HEX.issuperset(stored.lower()))
    # Same work for an unknown user as for a known one: no timing or answer difference.
    ha1_hex = stored.lower() if known and stored is not None else "0" * width
    expected = digest_response(ha1_hex, nonce, method, uri, algorithm,
                               qop=qop, nc=nc_text, cnonce=cnonce)
    match = hmac.compare_digest(expected.encode("ascii"),
                                response.lower().encode("utf-8", "replace"))
    if not (known and match):
        return AuthResult(AuthOutcome.BAD, username=username, algorithm=algorithm,
                          reason="bad credentials")
    if nonces.check(nonce, client_ip) is not NonceState.VALID:
        return AuthResult(AuthOutcome.STALE, username=username, algorithm=algorithm,
                          reason="stale nonce")
    # Replay check last: only a correct response may advance the nonce-count. Without qop the
    # nonce is single-use (nc fixed at 1).
    if not nonces.use(nonce, int(nc_text, 16) if qop and nc_text else 1):
        return AuthResult(AuthOutcome.STALE, username=username, algorithm=algorithm,
                          reason="nonce-count replayed")
    return AuthResult(AuthOutcome.OK, username=username, algorithm=algorithm)
