"""SIP messages: bytes <-> `Request` / `Response` (RFC 3261 §7), and responses to requests.

`parse_message` takes one datagram (or one message framed by `stream.SipFramer`): the body is
Content-Length bytes (extra bytes are discarded, RFC 3261 §18.3), or the rest of the datagram
when there is no Content-Length (RFC 2543 peers). Header values are stored unfolded and
trimmed, one `Header` per list element, under their canonical names; the typed accessors parse
them on first use and cache the result. The accessors that a stateless edge needs on every
message (Via, From, To, Call-ID, CSeq, Contact, Max-Forwards, Route, Record-Route, Require,
Proxy-Require, Content-Length) are checked while parsing, so they cannot fail later on a parsed
message; the others (Authorization, Content-Type, Accept...) raise `SipParseError` on access if
their value is malformed, so a broken optional header never makes a message unreadable.

Header bytes are decoded as UTF-8; invalid sequences become U+FFFD, so every value is a str
that can be logged or stored without a second thought. The body stays bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Self, TypeVar, overload

from .errors import SipParseError
from .headers import (
    COMPACT_FORMS,
    KNOWN_NAMES,
    LIST_HEADERS,
    STRICT_LIST_HEADERS,
    TOKEN_CHARS,
    Credentials,
    CSeq,
    Header,
    NameAddr,
    Via,
    canonical_name,
    is_token,
    param_int,
    parse_call_id,
    parse_credentials,
    parse_cseq,
    parse_media_type,
    parse_name_addr,
    parse_token_list,
    parse_via,
    split_list,
)
from .uri import DIGITS, SipUri, Uri, parse_uri

MAX_MESSAGE_SIZE = 16 * 1024
MAX_HEADERS = 128
MAX_HEADER_VALUES = 512

KNOWN_METHODS = frozenset({
    "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK",
    "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
})

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Expires")
# Index keys of the compact forms; any other name's key is its lower case (see _lookup_key).
_COMPACT_KEYS = {short: full.lower() for short, full in COMPACT_FORMS.items()}
# The keys of names as the parser and the accessors write them, found without lower().
_NAME_KEYS = {name: name.lower() for name in KNOWN_NAMES} | {
    short: full.lower() for short, full in COMPACT_FORMS.items()} | {
    short.upper(): full.lower() for short, full in COMPACT_FORMS.items()}

T = TypeVar("T")


def _lookup_key(name: str) -> str:
    """The index key of a header name: `canonical_name(name).lower()`, in one dict lookup."""
    key = _NAME_KEYS.get(name)
    if key is None:
        key = name.lower()
        key = _COMPACT_KEYS.get(key, key)
    return key


class _cached(Generic[T]):
    """`functools.cached_property` without its lock.

    Python 3.11's takes a lock shared by every instance on each first access, which costs
    more than most of the parsers it caches. A message is parsed and read on one thread;
    two threads racing on a first access would both compute the same pure value.
    """

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | Self:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


# The cached accessors that read each header (by index key): a copy that changes one header
# keeps every other parsed value instead of parsing it again (the edge edits each request).
# Every cached accessor but _index must be listed here (a test checks).
_READERS = {
    "via": ("vias",), "from": ("from_",), "to": ("to",), "call-id": ("call_id",),
    "cseq": ("cseq",), "contact": ("contact_is_star", "contacts"),
    "max-forwards": ("max_forwards",), "expires": ("expires",),
    "content-length": ("content_length",), "content-type": ("content_type",),
    "accept": ("accept",), "route": ("routes",), "record-route": ("record_routes",),
    "supported": ("supported",), "require": ("require",), "proxy-require": ("proxy_require",),
    "authorization": ("authorization",), "proxy-authorization": ("proxy_authorization",),
}


@dataclass(frozen=True, kw_only=True)
class Message:
    """What requests and responses share: ordered headers, body and typed accessors."""

    headers: tuple[Header, ...] = ()
    body: bytes = b""

    # ----- raw access -------------------------------------------------------------------
    @_cached
    def _index(self) -> dict[str, tuple[str, ...]]:
        # Built once per message: every accessor below is then a dict lookup.
        index: dict[str, list[str]] = {}
        for h in self.headers:
            key = _NAME_KEYS.get(h.name) or _lookup_key(h.name)
            index.setdefault(key, []).append(h.value)
        return {key: tuple(values) for key, values in index.items()}

    def header_values(self, name: str) -> tuple[str, ...]:
        """All values of a header (any spelling or compact form of the name), in order."""
        return self._index.get(_lookup_key(name), ())

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def _single(self, name: str) -> str | None:
        values = self.header_values(name)
        if len(values) > 1:
            raise SipParseError(f"Multiple {name} headers")
        return values[0] if values else None

    def _required(self, name: str) -> str:
        value = self._single(name)
        if value is None:
            raise SipParseError(f"Missing {name}")
        return value

    # ----- typed accessors ------------------------------------------------------------
    @_cached
    def vias(self) -> tuple[Via, ...]:
        """The Via list, topmost first."""
        return tuple(parse_via(v) for v in self.header_values("Via"))

    @property
    def top_via(self) -> Via | None:
        """The topmost Via."""
        return self.vias[0] if self.vias else None

    @_cached
    def from_(self) -> NameAddr:
        """The From header."""
        return parse_name_addr(self._required("From"), what="From")

    @_cached
    def to(self) -> NameAddr:
        """The To header."""
        return parse_name_addr(self._required("To"), what="To")

    @_cached
    def call_id(self) -> str:
        """The Call-ID."""
        return parse_call_id(self._required("Call-ID"))

    @_cached
    def cseq(self) -> CSeq:
        """The CSeq (number and method)."""
        return parse_cseq(self._required("CSeq"))

    @_cached
    def contact_is_star(self) -> bool:
        """True for `Contact: *` (remove all bindings)."""
        values = self.header_values("Contact")
        if "*" in values and len(values) > 1:
            raise SipParseError("Bad Contact")
        return values == ("*",)

    @_cached
    def contacts(self) -> tuple[NameAddr, ...]:
        """The Contact list (empty for `*`; see `contact_is_star`)."""
        if self.contact_is_star:
            return ()
        return tuple(parse_name_addr(v, what="Contact") for v in self.header_values("Contact"))

    @_cached
    def max_forwards(self) -> int | None:
        """Max-Forwards; None if absent or above 255 (RFC 4475 §3.1.2.4: treat as absent)."""
        value = self._single("Max-Forwards")
        if value is None:
            return None
        if not value or not DIGITS.issuperset(value):
            raise SipParseError("Bad Max-Forwards")
        value = value.lstrip("0") or "0"
        return int(value) if len(value) <= 3 and int(value) <= 255 else None

    @_cached
    def expires(self) -> int | None:
        """The Expires header in seconds; malformed or overflowing values read as 3600."""
        value = self._single("Expires")
        return None if value is None else param_int(value, 3600)

    @_cached
    def content_length(self) -> int | None:
        """The Content-Length header value, or None if absent."""
        value = self._single("Content-Length")
        return None if value is None else _content_length(value)

    @_cached
    def content_type(self) -> str | None:
        """The media type of the body, lowercased, without parameters."""
        value = self._single("Content-Type")
        return None if value is None else parse_media_type(value)[0]

    @_cached
    def accept(self) -> tuple[str, ...]:
        """The media types of Accept, lowercased (empty if absent)."""
        return tuple(parse_media_type(v)[0] for v in self.header_values("Accept") if v)

    def addresses(self, name: str) -> tuple[NameAddr, ...]:
        """A list of name-addr values in angle brackets (Route, Record-Route, Path...)."""
        return tuple(parse_name_addr(v, what=name, require_brackets=True)
                     for v in self.header_values(name))

    @_cached
    def routes(self) -> tuple[NameAddr, ...]:
        """The Route set, topmost first."""
        return self.addresses("Route")

    @_cached
    def record_routes(self) -> tuple[NameAddr, ...]:
        """The Record-Route list, topmost first."""
        return self.addresses("Record-Route")

    def option_tags(self, name: str) -> tuple[str, ...]:
        """The tokens of a list header (Supported, Require, Proxy-Require, Allow...)."""
        return parse_token_list(self.header_values(name), name)

    @_cached
    def supported(self) -> tuple[str, ...]:
        """Supported option tags."""
        return self.option_tags("Supported")

    @_cached
    def require(self) -> tuple[str, ...]:
        """Require option tags."""
        return self.option_tags("Require")

    @_cached
    def proxy_require(self) -> tuple[str, ...]:
        """Proxy-Require option tags."""
        return self.option_tags("Proxy-Require")

    @property
    def user_agent(self) -> str | None:
        """The User-Agent header (Server for responses is `header("Server")`)."""
        return self.header("User-Agent")

    def credentials(self, name: str) -> tuple[Credentials, ...]:
        """Parsed values of an auth header (Authorization, WWW-Authenticate...)."""
        return tuple(parse_credentials(v) for v in self.header_values(name))

    @_cached
    def authorization(self) -> tuple[Credentials, ...]:
        """Parsed Authorization headers."""
        return self.credentials("Authorization")

    @_cached
    def proxy_authorization(self) -> tuple[Credentials, ...]:
        """Parsed Proxy-Authorization headers."""
        return self.credentials("Proxy-Authorization")

    # ----- building -------------------------------------------------------------------
    def start_line(self) -> str:
        """The request or status line (without CRLF); Request and Response define it."""
        raise NotImplementedError  # abstract: only Request and Response are ever built

    def to_bytes(self) -> bytes:
        """Serialise with CRLF line ends, full header names and a correct Content-Length."""
        start = self.start_line()
        if "\r" in start or "\n" in start:
            raise ValueError("CR/LF in start line")
        lines = [start]
        length = f"Content-Length: {len(self.body)}"
        for h in self.headers:
            if (_NAME_KEYS.get(h.name) or _lookup_key(h.name)) == "content-length":
                if length:
                    lines.append(length)
                    length = ""
                continue
            lines.append(f"{h.name}: {h.value}")
        if length:
            lines.append(length)
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "replace") + self.body

    def with_headers(self, headers: Iterable[Header]) -> Self:
        """A copy with these headers."""
        return replace(self, headers=tuple(headers))

    def _derive(self, headers: Iterable[Header], changed: str,
                values: Callable[[tuple[str, ...]], tuple[str, ...]]) -> Self:
        """A copy with these headers, which differ from ours in header `changed` only.

        `values` maps the old values of that header to the new ones, to update the index.
        """
        # A shallow copy of the instance state (fields and cached values) rather than
        # dataclasses.replace: only the headers change, and they are already validated.
        msg = object.__new__(type(self))
        state = msg.__dict__
        state.update(self.__dict__)
        state["headers"] = tuple(headers)
        for attr in _READERS.get(changed, ()):
            state.pop(attr, None)
        index = state.pop("_index", None)
        if index is not None:
            index = dict(index)
            new = values(index.pop(changed, ()))
            if new:
                index[changed] = new
            state["_index"] = index
        return msg

    def with_body(self, body: bytes, content_type: str | None = None) -> Self:
        """A copy with this body (and Content-Type, if given)."""
        msg = replace(self, body=body)
        return msg.with_header("Content-Type", [content_type]) if content_type else msg

    def without_header(self, name: str) -> Self:
        """A copy with every value of the header removed."""
        key = _lookup_key(name)
        if key not in self._index:
            return self
        return self._derive((h for h in self.headers if _lookup_key(h.name) != key), key,
                            lambda old: ())

    def with_header(self, name: str, values: Sequence[str]) -> Self:
        """A copy where the header has exactly these values, at its first position (else last)."""
        key = _lookup_key(name)
        full = canonical_name(name)
        out: list[Header] = []
        placed = False
        for h in self.headers:
            if _lookup_key(h.name) == key:
                if not placed:
                    out.extend(Header(full, v) for v in values)
                    placed = True
                continue
            out.append(h)
        if not placed:
            out.extend(Header(full, v) for v in values)
        return self._derive(out, key, lambda old: tuple(values))

    def prepend_header(self, name: str, value: str) -> Self:
        """A copy with a value added before the header's first value (a new top Via...)."""
        key = _lookup_key(name)
        new = Header(canonical_name(name), value)
        out = list(self.headers)
        for i, h in enumerate(out):
            if _lookup_key(h.name) == key:
                out.insert(i, new)
                break
        else:
            out.insert(0, new)
        return self._derive(out, key, lambda old: (value, *old))

    def append_header(self, name: str, value: str) -> Self:
        """A copy with a value added after all others."""
        new = Header(canonical_name(name), value)
        return self._derive((*self.headers, new), _lookup_key(new.name),
                            lambda old: (*old, value))

    def with_top_via(self, via: Via) -> Self:
        """A copy whose topmost Via is replaced (e.g. with received/rport filled in)."""
        msg = self._replace_first("Via", str(via))
        vias = self.__dict__.get("vias")
        if vias:
            # `via` is what its text parses to (the Via round trip is a tested property):
            # the copy need not parse it back.
            msg.__dict__["vias"] = (via, *vias[1:])
        return msg

    def without_top_via(self) -> Self:
        """A copy without the topmost Via (a proxy forwarding a response)."""
        return self._replace_first("Via", None)

    def _replace_first(self, name: str, value: str | None) -> Self:
        key = _lookup_key(name)
        out = list(self.headers)
        for i, h in enumerate(out):
            if _lookup_key(h.name) == key:
                if value is None:
                    del out[i]
                else:
                    out[i] = Header(h.name, value)
                break
        first = () if value is None else (value,)
        return self._derive(out, key, lambda old: (*first, *old[1:]) if old else old)


@dataclass(frozen=True)
class Request(Message):
    """A SIP request."""

    method: str
    uri: Uri
    version: str = "SIP/2.0"

    def __post_init__(self) -> None:
        if not is_token(self.method):
            raise ValueError("invalid method")

    def start_line(self) -> str:
        """`METHOD uri SIP/2.0`."""
        return f"{self.method} {self.uri} {self.version}"


@dataclass(frozen=True)
class Response(Message):
    """A SIP response."""

    status: int
    reason: str = ""
    version: str = "SIP/2.0"

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 699 or "\r" in self.reason or "\n" in self.reason:
            raise ValueError("invalid status line")

    def start_line(self) -> str:
        """`SIP/2.0 code reason`."""
        return f"{self.version} {self.status} {self.reason}"


# ----- parsing --------------------------------------------------------------------------

def _content_length(value: str) -> int:
    # No sign, no spaces inside; the length cap keeps int() cheap (sizes are capped anyway).
    if not value or len(value) > 10 or not DIGITS.issuperset(value):
        raise SipParseError("Bad Content-Length")
    return int(value)


def _version(text: str) -> str:
    """'SIP/2.0' for version 2.0; 505 for another well-formed version; else 400."""
    if text[:4].upper() != "SIP/":
        raise SipParseError("Bad SIP version")
    major, dot, minor = text[4:].partition(".")
    if (not dot or not major or not minor or len(major) > 5 or len(minor) > 5
            or not DIGITS.issuperset(major + minor)):
        raise SipParseError("Bad SIP version")
    if (int(major), int(minor)) != (2, 0):
        raise SipParseError("Version Not Supported", status=505)
    return "SIP/2.0"


def _head_lines(data: bytes) -> tuple[list[str], int]:
    """Decoded physical lines of the head (start line first) and the offset of the body.

    Leading CRLFs are skipped (RFC 3261 §7.5). Bare LF line ends are accepted. A head that
    runs to the end of the data without an empty line is accepted too (the body is empty):
    RFC 5118's archived messages end that way and nothing is lost by reading them.
    """
    n = len(data)
    pos = 0
    while pos < n and data[pos] in (0x0D, 0x0A):
        pos += 1
    # The head ends at the first empty line: an LF followed by LF or CRLF. The head is then
    # decoded once and split (LF is never part of a UTF-8 sequence, so this decodes each
    # line exactly as decoding it alone would).
    ends = [i for i in (data.find(b"\n\r\n", pos), data.find(b"\n\n", pos)) if i >= 0]
    if ends:
        end = min(ends)
        body_start = end + (3 if data[end + 1] == 0x0D else 2)
    else:
        end = body_start = n
    if pos >= end:
        return [], body_start
    lines = data[pos:end].decode("utf-8", "replace").split("\n")
    # Without an empty line, the last piece has no line end: kept as it is (unless empty).
    last = lines.pop() if not ends else ""
    for i, line in enumerate(lines):
        if line[-1:] == "\r":
            lines[i] = line[:-1]
    if last:
        lines.append(last)
    return lines, body_start


def _fields(lines: Sequence[str], *, strict: bool) -> list[tuple[str, str]]:
    """Unfold continuation lines and split `name: value`; lenient mode skips bad lines."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if (not colon or not name or line[0] in " \t" or "\r" in line
                or not TOKEN_CHARS.issuperset(name)):
            # Folding or a bad line somewhere: the general pass, which also decides which
            # error a strict parse reports.
            return _folded_fields(lines, strict=strict)
        fields.append((canonical_name(name), value.strip(" \t")))
    return fields


def _folded_fields(lines: Sequence[str], *, strict: bool) -> list[tuple[str, str]]:
    """`_fields` for heads with continuation lines or bad lines."""
    raw: list[list[str]] = []
    for line in lines:
        if "\r" in line:
            if strict:
                raise SipParseError("Bad line ending")
            continue
        if line[0] in " \t":
            if not raw:
                if strict:
                    raise SipParseError("Bad header folding")
                continue
            raw[-1].append(line.strip(" \t"))
        else:
            raw.append([line])
    fields: list[tuple[str, str]] = []
    for parts in raw:
        line = " ".join(parts)
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            if strict:
                raise SipParseError("Bad header line")
            continue
        fields.append((canonical_name(name), value.strip(" \t")))
    return fields


def _parse_start_line(line: str) -> Request | Response:
    """An empty message of the right kind from the start line."""
    if "\r" in line:
        raise SipParseError("Bad line ending")
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        version = _version(version)
        if len(code) != 3 or not DIGITS.issuperset(code) or not 100 <= int(code) <= 699:
            raise SipParseError("Bad status code")
        return Response(status=int(code), reason=reason, version=version)
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("Bad request line")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError("Bad method")
    try:
        uri = parse_uri(uri_text)
    except SipParseError:
        raise SipParseError("Bad Request-URI") from None
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI; obeying an
        # embedded ?Route= would let the sender steer us (RFC 4475 §3.1.2.11).
        raise SipParseError("Headers in Request-URI")
    return Request(method=method, uri=uri, version=_version(version))


def _validate(msg: Request | Response) -> None:
    """Parse the headers every edge needs, so later access cannot fail."""
    if not msg.vias:
        raise SipParseError("Missing Via")
    for name in _SINGLE:
        msg._single(name)
    _ = (msg.from_, msg.to, msg.call_id, msg.contacts, msg.max_forwards, msg.routes,
         msg.record_routes, msg.require, msg.proxy_require)
    if isinstance(msg, Request) and msg.cseq.method != msg.method:
        raise SipParseError("CSeq method mismatch")
    _ = msg.cseq


def _parse(data: bytes, max_headers: int) -> Request | Response:
    lines, body_start = _head_lines(data)
    if not lines:
        raise SipParseError("Empty message")
    empty = _parse_start_line(lines[0])
    fields = _fields(lines[1:], strict=True)
    if len(fields) > max_headers:
        raise SipParseError("Too many headers")
    headers: list[Header] = []
    for name, value in fields:
        # Names are tokens and values hold no CR or LF here: Header's checks are skipped.
        if name in LIST_HEADERS:
            items = split_list(value, name)
            if name in STRICT_LIST_HEADERS:
                if not all(items):
                    raise SipParseError(f"Bad {name}")
            elif len(items) > 1:
                items = [item for item in items if item]
            headers.extend(Header.trusted(name, item) for item in items)
        else:
            headers.append(Header.trusted(name, value))
        if len(headers) > MAX_HEADER_VALUES:
            raise SipParseError("Too many headers")
    lengths = [v for n, v in fields if n == "Content-Length"]
    if len(lengths) > 1:
        raise SipParseError("Multiple Content-Length headers")
    if lengths:
        length = _content_length(lengths[0])
        if body_start + length > len(data):
            raise SipParseError("Content-Length exceeds message")
        body = data[body_start:body_start + length]
    else:
        body = data[body_start:]
    # `empty` was made above and is not shared yet: filled in place, not copied.
    msg = empty
    object.__setattr__(msg, "headers", tuple(headers))
    object.__setattr__(msg, "body", body)
    _validate(msg)
    return msg


def _lenient_via_ok(value: str) -> bool:
    first = value.split(",", 1)[0].split(";", 1)[0]
    try:
        parse_via(first)
    except SipParseError:
        return False
    return True


def _with_context(err: SipParseError, data: bytes, max_size: int) -> SipParseError:
    """The error, plus whether and with which headers a stateless element can answer it."""
    is_request: bool | None = None
    can_respond = False
    copied: list[tuple[str, str]] = []
    try:
        lines, _ = _head_lines(data[:max_size])
        if lines:
            start = lines[0]
            is_request = start[:4].upper() != "SIP/"
            method = start.split(" ", 1)[0]
            fields = _fields(lines[1:], strict=False)[:MAX_HEADERS]
            vias = [v for n, v in fields if n == "Via" and "\x00" not in v]
            # Never answer an ACK (RFC 3261 §17.2.1) nor something that is not a request.
            can_respond = (is_request and method != "ACK" and is_token(method)
                           and bool(vias) and _lenient_via_ok(vias[0]))
            if can_respond:
                copied = [("Via", v) for v in vias]
                for name in ("From", "To", "Call-ID", "CSeq"):
                    value = next((v for n, v in fields if n == name), None)
                    if value is not None and "\x00" not in value:
                        copied.append((name, value))
    except SipParseError:
        can_respond = False
        copied = []
    return SipParseError(err.reason, status=err.status, can_respond=can_respond,
                         is_request=is_request, response_headers=tuple(copied))


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE,
                  max_headers: int = MAX_HEADERS) -> Request | Response:
    """Parse one SIP message; raise `SipParseError` (and nothing else) if it is unacceptable."""
    if len(data) > max_size:
        raise _with_context(SipParseError("Message Too Large", status=513), data, max_size)
    try:
        return _parse(bytes(data), max_headers)
    except SipParseError as err:
        raise _with_context(err, bytes(data), max_size) from None


def parse_request(data: bytes, **limits: int) -> Request:
    """Parse bytes that must be a request."""
    msg = parse_message(data, **limits)
    if not isinstance(msg, Request):
        raise SipParseError("Not a request")
    return msg


# ----- responses ------------------------------------------------------------------------

def stateless_tag(*parts: str) -> str:
    """A To-tag derived from the request, so a retransmission gets the same tag."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()
    return digest[:16]


def make_response(request: Request, code: int, reason: str | None = None, *,
                  headers: Iterable[Header] = (), body: bytes = b"",
                  to_tag: str | None = None) -> Response:
    """A response to `request`: Via, From, To (+tag), Call-ID, CSeq copied (RFC 3261 §8.2.6)."""
    copied: list[Header] = []
    for h in request.headers:
        key = _NAME_KEYS.get(h.name) or _lookup_key(h.name)
        if key in ("via", "from", "call-id", "cseq") or (key == "timestamp" and code == 100):
            copied.append(h)
        elif key == "to":
            value = h.value
            if code != 100 and request.to.tag is None:
                tag = to_tag or stateless_tag(request.call_id, request.from_.tag or "",
                                              str(request.cseq), request.header("Via") or "")
                value = f"{value};tag={tag}"
            copied.append(Header("To", value))
    copied.extend(headers)
    return Response(status=code, reason=REASONS.get(code, "Unknown") if reason is None else reason,
                    headers=tuple(copied), body=body)


def error_response(err: SipParseError) -> Response | None:
    """The stateless response to a rejected message (400/505/513), or None to drop it."""
    if not err.can_respond:
        return None
    headers: list[Header] = []
    for name, value in err.response_headers:
        if name == "To":
            try:
                has_tag = parse_name_addr(value).tag is not None
            except SipParseError:
                has_tag = True  # leave a value we cannot read untouched
            if not has_tag:
                value = f"{value};tag={stateless_tag(*(v for _, v in err.response_headers))}"
        headers.append(Header(name, value))
    return Response(status=err.status, reason=err.reason, headers=tuple(headers))
