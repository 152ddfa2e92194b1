"""Just enough SDP (RFC 4566) to read where media goes: origin, connections, media lines.

The edge does not rewrite SDP (the engine anchors media); this is for inspection, logging
and tests (IPv6 and mixed-family bodies of RFC 5118). Unknown lines are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SipParseError
from .uri import DIGITS

MAX_SDP_LINES = 1000


@dataclass(frozen=True)
class Connection:
    """A c= line: network type, address type (IP4/IP6) and address."""

    addr_type: str
    address: str
    net_type: str = "IN"


@dataclass(frozen=True)
class Media:
    """An m= section with its own c= line, if any, and its a= lines."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionDescription:
    """The parts of an SDP body the PBX looks at."""

    origin: tuple[str, ...]
    connection: Connection | None
    media: tuple[Media, ...]
    attributes: tuple[str, ...] = ()

    def media_connection(self, media: Media) -> Connection | None:
        """The connection that applies to a media section (its own, else the session's)."""
        return media.connection or self.connection


def _connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SipParseError("Bad SDP connection")
    return Connection(net_type=parts[0], addr_type=parts[1].upper(), address=parts[2])


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SipParseError("Bad SDP media")
    port_text = parts[1].split("/", 1)[0]
    if not port_text or len(port_text) > 5 or not DIGITS.issuperset(port_text):
        raise SipParseError("Bad SDP media")
    port = int(port_text)
    if port > 65535:
        raise SipParseError("Bad SDP media")
    return Media(kind=parts[0], port=port, proto=parts[2], formats=tuple(parts[3:]))


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body; raise `SipParseError` if it is not SDP."""
    lines = [line.rstrip("\r") for line in body.decode("utf-8", "replace").split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0].strip() != "v=0" or len(lines) > MAX_SDP_LINES:
        raise SipParseError("Bad SDP")
    origin: tuple[str, ...] = ()
    connection: Connection | None = None
    attributes: list[str] = []
    media: list[Media] = []
    media_attrs: list[str] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise SipParseError("Bad SDP line")
        kind, value = line[0], line[2:]
        if kind == "m":
            if media:
                media[-1] = replace(media[-1], attributes=tuple(media_attrs))
                media_attrs = []
            media.append(_media(value))
        elif kind == "c":
            conn = _connection(value)
            if media:
                media[-1] = replace(media[-1], connection=conn)
            else:
                connection = conn
        elif kind == "o":
            origin = tuple(value.split())
            if len(origin) != 6:
                raise SipParseError("Bad SDP origin")
        elif kind == "a":
            (media_attrs if media else attributes).append(value)
    if media:
        media[-1] = replace(media[-1], attributes=tuple(media_attrs))
    return SessionDescription(origin=origin, connection=connection, media=tuple(media),
                              attributes=tuple(attributes))

