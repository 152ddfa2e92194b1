"""Routing decisions of the edge's stateless, record-routing proxy (pure).

Everything from the outside (phones, later trunks) goes to the engine on
loopback; everything from the engine goes outside. The edge inserts itself
in every dialog with a Record-Route whose user part is a signed *flow token*
naming the outside peer's real address (transport, host, port), so in-dialog
requests from the engine reach a phone behind NAT without any per-dialog
state here (RFC 5626 style). Branches are derived from the incoming branch,
so retransmissions and CANCEL map to the same transaction downstream
(RFC 3261 §16.11).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, replace

from ..sip import Request, Response, SipUri
from ..sip.headers import NameAddr, Via
from ..sip.uri import set_param
from .transport import Source

MAGIC = "z9hG4bK"
TOKEN_PREFIX = "f-"


@dataclass(frozen=True)
class FlowTokens:
    """Signs and reads flow tokens (the outside peer's address inside a Record-Route)."""

    secret: bytes

    def encode(self, peer: Source) -> str:
        """A token that names peer and cannot be forged without the box's secret."""
        raw = f"{peer.transport}|{peer.host}|{peer.port}".encode()
        mac = hmac.new(self.secret, raw, hashlib.sha256).digest()[:8]
        return TOKEN_PREFIX + base64.b32encode(raw + mac).decode().rstrip("=").lower()

    def decode(self, token: str) -> Source | None:
        """The peer a token names, or None if it is not one of ours."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        body = token[len(TOKEN_PREFIX):].upper()
        try:
            blob = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError:
            return None
        raw, mac = blob[:-8], blob[-8:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, raw, hashlib.sha256).digest()[:8]):
            return None
        try:
            transport, host, port = raw.decode().split("|")
            return Source(transport, host, int(port))
        except ValueError:
            return None


def branch_for(incoming_branch: str, secret: bytes) -> str:
    """Our Via branch for a forwarded request: stable across retransmissions and CANCEL."""
    digest = hashlib.sha256(secret + incoming_branch.encode()).hexdigest()[:24]
    return f"{MAGIC}{digest}"


def received_via(via: Via, source: Source) -> Via:
    """Stamp the top Via with where the request really came from (RFC 3261 §18.2.1, 3581)."""
    rport = via.rport_requested
    params = via.params
    if via.host != source.host or rport:
        params = set_param(params, "received", source.host)
    if rport:
        params = set_param(params, "rport", str(source.port))
    # Unchanged (already stamped, or nothing to stamp): the same Via, not a copy.
    return via if params == via.params else replace(via, params=params)


def response_destination(via: Via) -> Source:
    """Where a response goes: the Via's received/rport, else its sent-by (RFC 3261 §18.2.2)."""
    host = via.received or via.host
    rport = via.param("rport")
    port = int(rport) if rport and rport.isdigit() else (via.port or 5060)
    return Source(via.transport.upper(), host.strip("[]"), port)


def own_route(route: NameAddr, local_hosts: set[str], port: int) -> bool:
    """True if a Route entry points at this edge (so it is popped, RFC 3261 §16.4)."""
    uri = route.uri
    if not isinstance(uri, SipUri):
        return False
    return uri.host.strip("[]").lower() in local_hosts and (uri.port or 5060) == port


def record_route(host: str, port: int, token: str, transport: str) -> str:
    """A Record-Route value for this edge carrying a flow token."""
    params = ";transport=tcp" if transport == "TCP" else ""
    return f"<sip:{token}@{host}:{port}{params};lr>"


def decrement_max_forwards(req: Request) -> Request | None:
    """The request with Max-Forwards - 1, or None when it has run out (-> 483)."""
    mf = req.max_forwards
    if mf is None:
        mf = 70
    if mf <= 0:
        return None
    return req.with_header("Max-Forwards", [str(mf - 1)])


def is_response(msg: Request | Response) -> bool:
    """True for responses."""
    return isinstance(msg, Response)
