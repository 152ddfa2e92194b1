"""What a stateless edge answers before any deeper processing (RFC 3261 §8.2 and §16.3).

`torture_response(parse result)` gives the status code to send, or None to go on (or to drop
silently: a response, an ACK, a message too broken to answer). The edge acts as the registrar
(UAS) for REGISTER and as a proxy for everything else unless told otherwise (`role=`).
Checks, in RFC order:

| check                                                     | code | torture examples           |
|-----------------------------------------------------------|------|----------------------------|
| parse error, answerable request                           | 400  | badinv01, quotbal, ncl ... |
| SIP version other than 2.0                                | 505  | badvers                    |
| message over the size limit                               | 513  | (none in the corpus)       |
| parse error on a response, an ACK or unanswerable junk    | drop | bigcode, scalarlg          |
| any response                                              | None | bcast, unreason, noreason  |
| UAS: unknown method                                       | 501  | intmeth, esc02 (role=uas)  |
| Request-URI scheme not sip/sips                           | 416  | unkscm, novelsc            |
| top Via branch is the bare magic cookie `z9hG4bK`         | 400  | badbranch                  |
| proxy: Max-Forwards 0                                     | 483  | zeromf                     |
| registrar: REGISTER whose To is not a sip/sips AOR        | 400  | unksm2                     |
| unsupported Proxy-Require (proxy) / Require (UAS) tags    | 420  | bext01                     |
| UAS INVITE: body not SDP                                  | 415  | invut (role=uas)           |
| UAS INVITE: Accept present without application/sdp        | 406  | sdp01 (role=uas)           |

Not here, because they need state or configuration: authentication (regaut01 gets the
registrar's 401), loop detection (482), and never sending a response to a broadcast address
(bcast: see `is_unsafe_destination`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

from .errors import SipParseError
from .message import KNOWN_METHODS, Request, Response
from .uri import SipUri

Role = Literal["proxy", "uas"]

MAGIC_COOKIE = "z9hG4bK"
# Media types a UAS INVITE may carry: SDP, or SDP inside a multipart body.
SESSION_TYPES = frozenset({"application/sdp", "multipart/mixed", "multipart/alternative"})
_SDP_ACCEPT = frozenset({"application/sdp", "application/*", "*/*"})


def default_role(request: Request) -> Role:
    """The edge is the registrar for REGISTER and a proxy for everything else."""
    return "uas" if request.method == "REGISTER" else "proxy"


def unsupported_options(request: Request, *, role: Role | None = None,
                        supported: Iterable[str] = ()) -> tuple[str, ...]:
    """Option tags to list in Unsupported: Proxy-Require for a proxy, Require for a UAS."""
    role = role or default_role(request)
    if request.method in ("ACK", "CANCEL"):
        return ()  # RFC 3261 §8.2.2.3: Require is not checked on these
    known = {tag.lower() for tag in supported}
    tags = request.proxy_require if role == "proxy" else request.require
    return tuple(tag for tag in tags if tag.lower() not in known)


def torture_response(item: Request | Response | SipParseError, *, role: Role | None = None,
                     supported: Iterable[str] = ()) -> int | None:
    """The status code a stateless edge sends for this parse result, or None (go on / drop)."""
    if isinstance(item, SipParseError):
        return item.status if item.can_respond else None
    if isinstance(item, Response):
        return None
    request = item
    role = role or default_role(request)
    if request.method == "ACK":
        return None
    if role == "uas" and request.method not in KNOWN_METHODS:
        return 501
    if request.uri.scheme.lower() not in ("sip", "sips"):
        return 416
    top = request.top_via
    if top is not None and top.branch == MAGIC_COOKIE:
        # A branch that is only the cookie claims RFC 3261 matching but has no identifier
        # (RFC 4475 §3.2.1); rejecting is simpler and safer than guessing.
        return 400
    if role == "proxy" and request.max_forwards == 0:
        return 483
    if role == "uas" and request.method == "REGISTER" and not isinstance(request.to.uri, SipUri):
        return 400
    if unsupported_options(request, role=role, supported=supported):
        return 420
    if role == "uas" and request.method == "INVITE":
        try:
            content_type = request.content_type
            accept = request.accept
        except SipParseError:
            return 400
        if request.body and content_type not in SESSION_TYPES:
            return 415
        if request.header_values("Accept") and not _SDP_ACCEPT.intersection(accept):
            return 406
    return None


def is_unsafe_destination(host: str) -> bool:
    """True for addresses nothing may be sent to: broadcast, multicast, unspecified, reserved."""
    text = host[1:-1] if host.startswith("[") else host
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (addr.is_multicast or addr.is_unspecified or addr.is_reserved
            or addr == ipaddress.IPv4Address("255.255.255.255"))
