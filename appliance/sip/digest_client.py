"""Digest authentication, client side: answering a provider's 401/407 (RFC 3261 §22.2).

The box is the client when it registers to a SIP trunk or places a call through one.
`parse_challenge` reads one WWW-Authenticate / Proxy-Authenticate value into a
`Challenge` we can answer (or None: another scheme, an algorithm we lack such as
MD5-sess, a qop list without `auth`); `pick_challenge` chooses among the challenges of
one response, strongest first (SHA-256 over MD5, RFC 8760), skipping values that do not
parse, so a provider's odd extra challenge never stops a good one from being answered.
`authorization` builds the Authorization value. Pure: no I/O, no clock; cnonce and nc
come from the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .digest import MD5, SHA256, client_authorization, ha1, normalize_algorithm
from .errors import SipParseError
from .headers import parse_credentials

# Preference when a response offers several challenges (RFC 8760 §2.4: strongest first).
_STRENGTH = {SHA256: 2, MD5: 1}


@dataclass(frozen=True)
class Challenge:
    """One Digest challenge the box can answer."""

    realm: str
    nonce: str
    algorithm: str  # "MD5" or "SHA-256"
    qop: str | None  # "auth" when offered, None for an RFC 2069 challenge without qop
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False  # from Proxy-Authenticate (407): answered in Proxy-Authorization

    @property
    def header(self) -> str:
        """The header that carries the answer."""
        return "Proxy-Authorization" if self.proxy else "Authorization"


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge | None:
    """The Digest challenge in one header value, or None if we cannot answer it.

    Raises SipParseError only when the value is not auth-param syntax at all.
    """
    cred = parse_credentials(value)
    if not cred.is_digest:
        return None
    realm, nonce = cred.get("realm"), cred.get("nonce")
    if realm is None or not nonce:
        return None
    algorithm = normalize_algorithm(cred.get("algorithm"))
    if algorithm is None:
        return None  # MD5-sess, SHA-512-256...: not ours to answer
    qop_text = cred.get("qop")
    if qop_text is None:
        qop = None
    else:
        offered = {item.strip().lower() for item in qop_text.split(",")}
        if "auth" not in offered:
            return None  # auth-int only: we would have to hash bodies
        qop = "auth"
    stale = (cred.get("stale") or "").lower() == "true"
    return Challenge(realm, nonce, algorithm, qop, cred.get("opaque"), stale, proxy)


def pick_challenge(www_authenticate: Iterable[str] = (),
                   proxy_authenticate: Iterable[str] = ()) -> Challenge | None:
    """The strongest answerable challenge of a 401/407 (None when there is none)."""
    best: Challenge | None = None
    for values, proxy in ((proxy_authenticate, True), (www_authenticate, False)):
        for value in values:
            try:
                found = parse_challenge(value, proxy=proxy)
            except SipParseError:
                continue
            if found is None:
                continue
            if best is None or _STRENGTH[found.algorithm] > _STRENGTH[best.algorithm]:
                best = found
    return best


def authorization(challenge: Challenge, *, username: str, password: str, method: str,
                  uri: str, nc: int = 1, cnonce: str = "") -> str:
    """The Authorization / Proxy-Authorization value answering `challenge`."""
    if challenge.qop is not None and not cnonce:
        raise ValueError("qop=auth needs a cnonce")
    return client_authorization(
        username=username, realm=challenge.realm, nonce=challenge.nonce, uri=uri,
        method=method, ha1_hex=ha1(username, challenge.realm, password, challenge.algorithm),
        algorithm=challenge.algorithm, cnonce=cnonce or "0", nc=nc, qop=challenge.qop,
        opaque=challenge.opaque)
