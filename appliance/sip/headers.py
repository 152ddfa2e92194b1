"""Header fields of RFC 3261 §7.3/§20/§25: names, list splitting and the structured values.

Every parser here is a single forward scan (`_Scanner`) over one unfolded header value:
no regular expressions, no recursion, so hostile input costs linear time.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .errors import SipParseError
from .uri import (
    DIGITS,
    HOST_CHARS,
    Params,
    SipUri,
    Uri,
    drop_param,
    find_param,
    format_params,
    parse_uri,
    set_param,
    split_hostport,
)

TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
WS = frozenset(" \t")
# A generic-param value is a token, a host (IPv6 colons and brackets) or a quoted string.
_VALUE_CHARS = TOKEN_CHARS | frozenset(":[]")
# Call-ID words (RFC 3261 §25.1 `word`).
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')
# Auth-param values outside quotes: tokens, plus '/' and ':' that some phones send unquoted.
_AUTH_VALUE_CHARS = TOKEN_CHARS | frozenset("/:=")
_RECEIVED_CHARS = frozenset(string.hexdigits + ":.[]")
# Parameters written plainly (no whitespace, no quotes) are split with str methods; anything
# else, errors included, is left to the scanner, so both give the same answer.
_PLAIN_PARAM_CHARS = _VALUE_CHARS | frozenset(";=")
_URI_END = frozenset("; \t")
_HOST_END = frozenset(":; \t")

COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events",
    "v": "Via", "x": "Session-Expires", "y": "Identity",
}

KNOWN_NAMES = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event", "Expires", "From",
    "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires",
    "Min-SE", "MIME-Version", "Organization", "P-Asserted-Identity", "P-Preferred-Identity",
    "Path", "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By",
    "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require", "Retry-After",
    "Route", "RSeq", "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match",
    "Subject", "Subscription-State", "Supported", "Timestamp", "To", "Unsupported",
    "User-Agent", "Via", "Warning", "WWW-Authenticate",
)
_CANONICAL = {name.lower(): name for name in KNOWN_NAMES}

# Headers whose grammar is a comma-separated list: stored one value per Header.
LIST_HEADERS = frozenset({
    "Accept", "Accept-Encoding", "Accept-Language", "Allow", "Allow-Events", "Contact",
    "Content-Encoding", "Content-Language", "P-Asserted-Identity", "P-Preferred-Identity",
    "Path", "Proxy-Require", "Record-Route", "Require", "Route", "Service-Route", "Supported",
    "Unsupported", "Via",
})
# List headers where an empty element is an error rather than noise to skip.
STRICT_LIST_HEADERS = frozenset({
    "Contact", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Record-Route", "Route",
    "Service-Route", "Via",
})


def canonical_name(name: str) -> str:
    """The full, conventionally cased name of a header (compact forms expanded)."""
    lower = name.lower()
    if len(lower) == 1:
        return COMPACT_FORMS.get(lower, name)
    return _CANONICAL.get(lower, name)


def is_token(text: str) -> bool:
    """True for a non-empty RFC 3261 token."""
    return bool(text) and TOKEN_CHARS.issuperset(text)


@dataclass(frozen=True)
class Header:
    """One header field value; the name is canonical (see `canonical_name`)."""

    name: str
    value: str

    def __post_init__(self) -> None:
        # A CR or LF in a value would let a caller inject header lines when serialising.
        if not is_token(self.name) or "\r" in self.value or "\n" in self.value:
            raise ValueError(f"invalid header {self.name!r}")

    @classmethod
    def trusted(cls, name: str, value: str) -> Header:
        """A Header whose name is known to be a token and value to hold no CR or LF.

        For the parser, which has checked both: it makes a dozen per message.
        """
        header = object.__new__(cls)
        header.__dict__.update(name=name, value=value)
        return header


def quote(text: str) -> str:
    """A quoted-string for `text` (backslash-escaping; CR/LF, which cannot be quoted, -> SP)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape (control characters are not printable)
    out = ['"']
    for c in text:
        if c in "\r\n":
            out.append(" ")
        elif c in '"\\' or ord(c) < 0x20 or c == "\x7f":
            out.append("\\" + c)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


class _Scanner:
    """A cursor over one header value."""

    __slots__ = ("i", "n", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0
        self.n = len(s)

    def at_end(self) -> bool:
        return self.i >= self.n

    def peek(self) -> str:
        return self.s[self.i] if self.i < self.n else ""

    def skip_ws(self) -> int:
        start = self.i
        while self.i < self.n and self.s[self.i] in WS:
            self.i += 1
        return self.i - start

    def take(self, chars: frozenset[str]) -> str:
        start = self.i
        while self.i < self.n and self.s[self.i] in chars:
            self.i += 1
        return self.s[start:self.i]

    def take_until(self, stops: frozenset[str]) -> str:
        start = self.i
        while self.i < self.n and self.s[self.i] not in stops:
            self.i += 1
        return self.s[start:self.i]

    def take_until_char(self, stop: str) -> str:
        """Up to (not including) the next `stop`, or the rest: `take_until` for one char."""
        start = self.i
        end = self.s.find(stop, start)
        self.i = self.n if end < 0 else end
        return self.s[start:self.i]

    def token(self, what: str) -> str:
        tok = self.take(TOKEN_CHARS)
        if not tok:
            raise SipParseError(f"Bad {what}")
        return tok

    def expect(self, ch: str, what: str) -> None:
        if self.peek() != ch:
            raise SipParseError(f"Bad {what}")
        self.i += 1

    def quoted(self, what: str) -> tuple[str, str]:
        """(unescaped content, raw text with quotes) of the quoted-string at the cursor."""
        start = self.i
        self.expect('"', what)
        # Most quoted strings have no backslash before their end: one slice, not a loop.
        end = self.s.find('"', self.i)
        if end >= 0 and "\\" not in self.s[self.i:end]:
            text = self.s[self.i:end]
            self.i = end + 1
            return text, self.s[start:self.i]
        out: list[str] = []
        while self.i < self.n:
            c = self.s[self.i]
            if c == "\\":
                if self.i + 1 >= self.n:
                    break
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            self.i += 1
            if c == '"':
                return "".join(out), self.s[start:self.i]
            out.append(c)
        raise SipParseError(f"Unterminated quoted string in {what}")


def split_list(value: str, what: str = "header") -> list[str]:
    """Split a list header value at commas outside quoted strings and <...>; items stripped."""
    if '"' not in value:
        # Without quotes nothing is escaped, and without '<' every comma separates.
        if "," not in value:
            return [value.strip(" \t")]
        if "<" not in value:
            return [item.strip(" \t") for item in value.split(",")]
    items: list[str] = []
    start = 0
    in_quote = in_angle = False
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == "," and not in_angle:
            items.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError(f"Unterminated quoted string in {what}")
    items.append(value[start:].strip(" \t"))
    return items


def _plain_params(text: str) -> Params | None:
    """`;name[=value]` parameters written plainly, or None to let the scanner read them."""
    if not text:
        return ()
    if text[0] != ";" or not _PLAIN_PARAM_CHARS.issuperset(text):
        return None
    params: list[tuple[str, str | None]] = []
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        if not name or not TOKEN_CHARS.issuperset(name):
            return None
        if eq:
            if not value or not _VALUE_CHARS.issuperset(value):
                return None
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


def _parse_params(sc: _Scanner, what: str) -> Params:
    """Generic `;name[=value]` parameters up to the end of the value (SWS allowed around)."""
    plain = _plain_params(sc.s[sc.i:])
    if plain is not None:
        sc.i = sc.n
        return plain
    params: list[tuple[str, str | None]] = []
    while True:
        sc.skip_ws()
        if sc.at_end():
            return tuple(params)
        sc.expect(";", what)
        sc.skip_ws()
        name = sc.token(what)
        sc.skip_ws()
        if sc.peek() != "=":
            params.append((name, None))
            continue
        sc.i += 1
        sc.skip_ws()
        if sc.peek() == '"':
            value = sc.quoted(what)[1]
        else:
            value = sc.take(_VALUE_CHARS)
            if not value:
                raise SipParseError(f"Bad {what}")
        params.append((name, value))


def param_int(value: str | None, default: int, limit: int = 2**32 - 1) -> int:
    """A delta-seconds style integer; malformed or overflowing -> `default` (RFC 3261 §20.19)."""
    if value is None or not value or len(value) > 10 or not DIGITS.issuperset(value):
        return default
    number = int(value)
    return default if number > limit else number


@dataclass(frozen=True)
class NameAddr:
    """A name-addr or addr-spec with its header parameters (From, To, Contact, Route...)."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        display = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        """Value of a header parameter (None if absent or valueless)."""
        return find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        """True if the header parameter is present."""
        return find_param(self.params, name)[0]

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        """A copy with the header parameter set."""
        return replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> NameAddr:
        """A copy without the header parameter."""
        return replace(self, params=drop_param(self.params, name))

    @property
    def tag(self) -> str | None:
        """The tag parameter (From/To)."""
        return self.param("tag")

    @property
    def expires(self) -> int | None:
        """The Contact expires parameter; malformed or overflowing values read as 3600."""
        present, value = find_param(self.params, "expires")
        return param_int(value, 3600) if present else None

    @property
    def q(self) -> float | None:
        """The Contact q parameter (0..1), None if absent or malformed."""
        value = self.param("q")
        if value is None or len(value) > 5 or not all(c in DIGITS or c == "." for c in value):
            return None
        try:
            q = float(value)
        except ValueError:
            return None
        return q if 0.0 <= q <= 1.0 else None

    @property
    def sip_uri(self) -> SipUri | None:
        """The URI if it is a sip:/sips: URI."""
        return self.uri if isinstance(self.uri, SipUri) else None


def parse_name_addr(value: str, *, what: str = "address", require_brackets: bool = False
                    ) -> NameAddr:
    """Parse `[display] <uri> *(;param)` or `addr-spec *(;param)` (RFC 3261 §20.10 rules)."""
    if value[:1] == "<":
        # The common `<uri>;params` without display name or spaces, read with str methods;
        # anything else, errors included, goes through the scanner below.
        end = value.find(">")
        params = _plain_params(value[end + 1:]) if end > 0 else None
        if params is not None:
            try:
                uri = parse_uri(value[1:end])
            except SipParseError:
                raise SipParseError(f"Bad {what} URI") from None
            return NameAddr(uri=uri, display_name=None, params=params)
    sc = _Scanner(value)
    sc.skip_ws()
    display: str | None = None
    bracketed = True
    if sc.peek() == '"':
        display = sc.quoted(what)[0]
        sc.skip_ws()
    elif sc.peek() != "<":
        start = sc.i
        sc.take(TOKEN_CHARS)
        if sc.peek() == ":":
            # A scheme: this is an addr-spec without angle brackets.
            sc.i = start
            bracketed = False
        else:
            sc.i = start
            words: list[str] = []
            while sc.peek() != "<":
                words.append(sc.token(what))
                if sc.skip_ws() == 0 and sc.peek() != "<":
                    raise SipParseError(f"Bad {what}")
            display = " ".join(words)
    if bracketed:
        sc.expect("<", what)
        uri_text = sc.take_until_char(">")
        sc.expect(">", what)
    elif require_brackets:
        raise SipParseError(f"Bad {what}")
    else:
        # RFC 3261 §20: without <>, the URI ends at the first ';' (the rest are header params)
        # and may not carry headers: '?' there is an error, never a Route to obey.
        uri_text = sc.take_until(_URI_END)
    try:
        uri = parse_uri(uri_text)
    except SipParseError:
        raise SipParseError(f"Bad {what} URI") from None
    if not bracketed and isinstance(uri, SipUri) and uri.headers:
        raise SipParseError(f"Bad {what}")
    params = _parse_params(sc, what)
    return NameAddr(uri=uri, display_name=display, params=params)


@dataclass(frozen=True)
class Via:
    """One Via value: sent-protocol, sent-by and parameters (RFC 3261 §20.42)."""

    host: str
    transport: str = "UDP"
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        """Value of a Via parameter (None if absent or valueless)."""
        return find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        """True if the parameter is present."""
        return find_param(self.params, name)[0]

    def with_param(self, name: str, value: str | None = None) -> Via:
        """A copy with the parameter set (e.g. received, rport on the top Via)."""
        return replace(self, params=set_param(self.params, name, value))

    @property
    def branch(self) -> str | None:
        """The branch parameter."""
        return self.param("branch")

    @property
    def received(self) -> str | None:
        """The received parameter (brackets, if any, removed)."""
        value = self.param("received")
        return value.strip("[]") if value is not None else None

    @property
    def rport_requested(self) -> bool:
        """True if the rport parameter is present (RFC 3581)."""
        return self.has_param("rport")

    @property
    def rport(self) -> int | None:
        """The rport value if one was filled in."""
        value = self.param("rport")
        if not value or len(value) > 5 or not DIGITS.issuperset(value):
            return None
        return int(value)

    @property
    def is_rfc3261_branch(self) -> bool:
        """True if the branch carries the RFC 3261 magic cookie and something after it."""
        branch = self.branch
        return branch is not None and branch.startswith("z9hG4bK") and len(branch) > 7


def parse_via(value: str) -> Via:
    """Parse one Via value: `SIP / 2.0 / UDP host[:port] *(;param)`."""
    plain = _plain_via(value)
    if plain is not None:
        return plain
    what = "Via"
    sc = _Scanner(value)
    sc.skip_ws()
    name = sc.token(what)
    sc.skip_ws()
    sc.expect("/", what)
    sc.skip_ws()
    version = sc.token(what)
    sc.skip_ws()
    sc.expect("/", what)
    sc.skip_ws()
    transport = sc.token(what)
    if sc.skip_ws() == 0:
        raise SipParseError("Bad Via")
    if sc.peek() == "[":
        host_text = sc.take_until_char("]") + "]"
        sc.expect("]", what)
    else:
        host_text = sc.take_until(_HOST_END)
    sc.skip_ws()
    if sc.peek() == ":":
        sc.i += 1
        sc.skip_ws()
        host_text += ":" + sc.take(DIGITS)
    host, port = split_hostport(host_text)
    params = _parse_params(sc, what)
    return _via(name, version, transport, host, port, params)


def _via(name: str, version: str, transport: str, host: str, port: int | None,
         params: Params) -> Via:
    """The Via of parsed parts, once its received and rport parameters are checked."""
    found, received = find_param(params, "received")
    if found and (not received or not _RECEIVED_CHARS.issuperset(received)):
        raise SipParseError("Bad Via received")
    found, rport = find_param(params, "rport")
    if found and rport is not None and (len(rport) > 5 or not DIGITS.issuperset(rport)
                                        or int(rport) > 65535):
        raise SipParseError("Bad Via rport")
    return Via(host=host, transport=transport.upper(), port=port, params=params,
               protocol=f"{name.upper()}/{version}")


def _plain_via(value: str) -> Via | None:
    """A Via written plainly (`SIP/2.0/UDP host[:port];params`, one space, no IPv6), else None.

    None sends the value through the scanner of `parse_via`, which also gives the errors:
    whatever this accepts, the scanner reads the same way.
    """
    sent, space, rest = value.partition(" ")
    parts = sent.split("/")
    if (not space or len(parts) != 3 or rest[:1] in ("", " ", "\t", "[")
            or not all(p and TOKEN_CHARS.issuperset(p) for p in parts)):
        return None
    semi = rest.find(";")
    hostport = rest if semi < 0 else rest[:semi]
    host, colon, port_text = hostport.partition(":")
    params = _plain_params(rest[semi:]) if semi >= 0 else ()
    if (params is None or not host or not HOST_CHARS.issuperset(host)
            or (colon and not (port_text and DIGITS.issuperset(port_text)))):
        return None
    try:
        host, port = split_hostport(hostport)
        return _via(parts[0], parts[1], parts[2], host, port, params)
    except SipParseError:
        return None


@dataclass(frozen=True)
class CSeq:
    """The CSeq header: sequence number and method."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """Parse `number method`; numbers must be below 2**31 (RFC 3261 §8.1.1.5)."""
    sc = _Scanner(value)
    sc.skip_ws()
    digits = sc.take(DIGITS)
    if not digits or sc.skip_ws() == 0:
        raise SipParseError("Bad CSeq")
    method = sc.token("CSeq")
    sc.skip_ws()
    if not sc.at_end():
        raise SipParseError("Bad CSeq")
    digits = digits.lstrip("0") or "0"
    if len(digits) > 10 or int(digits) >= 2**31:
        raise SipParseError("Bad CSeq")
    return CSeq(int(digits), method)


def parse_call_id(value: str) -> str:
    """Validate a Call-ID (`word ["@" word]`) and return it."""
    local, at, host = value.partition("@")
    if not local or not WORD_CHARS.issuperset(local) or (
            at and (not host or not WORD_CHARS.issuperset(host))):
        raise SipParseError("Bad Call-ID")
    return value


def parse_token_list(values: Iterable[str], what: str) -> tuple[str, ...]:
    """Option tags or methods of an already split list header (empty values skipped)."""
    out: list[str] = []
    for value in values:
        if not value:
            continue
        if not is_token(value):
            raise SipParseError(f"Bad {what}")
        out.append(value)
    return tuple(out)


def parse_media_type(value: str) -> tuple[str, Params]:
    """(lowercased type/subtype, params) of a Content-Type or Accept value."""
    sc = _Scanner(value)
    sc.skip_ws()
    kind = sc.token("media type")
    sc.skip_ws()
    sc.expect("/", "media type")
    sc.skip_ws()
    sub = sc.token("media type")
    return f"{kind}/{sub}".lower(), _parse_params(sc, "media type")


@dataclass(frozen=True)
class Credentials:
    """An Authorization-style value: scheme and auth-params (names lowercased, unquoted)."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        """The value of an auth-param."""
        lname = name.lower()
        for n, v in self.params:
            if n == lname:
                return v
        return None

    def as_dict(self) -> dict[str, str]:
        """The auth-params as a dict."""
        return dict(self.params)

    @property
    def is_digest(self) -> bool:
        """True for the Digest scheme."""
        return self.scheme.lower() == "digest"


def parse_credentials(value: str) -> Credentials:
    """Parse `scheme name=value, name="quoted"...` (Authorization, WWW-Authenticate...)."""
    plain = _plain_credentials(value)
    if plain is not None:
        return plain
    what = "Authorization"
    sc = _Scanner(value)
    sc.skip_ws()
    scheme = sc.token(what)
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    if sc.skip_ws() == 0 and not sc.at_end():
        raise SipParseError(f"Bad {what}")
    while not sc.at_end():
        name = sc.token(what).lower()
        sc.skip_ws()
        sc.expect("=", what)
        sc.skip_ws()
        if sc.peek() == '"':
            param_value = sc.quoted(what)[0]
        else:
            param_value = sc.take(_AUTH_VALUE_CHARS)
            if not param_value:
                raise SipParseError(f"Bad {what}")
        if name in seen:
            raise SipParseError(f"Duplicate {what} parameter")
        seen.add(name)
        params.append((name, param_value))
        sc.skip_ws()
        if sc.at_end():
            break
        sc.expect(",", what)
        sc.skip_ws()
    return Credentials(scheme=scheme, params=tuple(params))


def _plain_credentials(value: str) -> Credentials | None:
    """Credentials written plainly (one space after the scheme, none around '=' or before
    ',', no backslash in quotes), read with str methods; else None for the scanner."""
    scheme, space, rest = value.partition(" ")
    if not space or not scheme or not TOKEN_CHARS.issuperset(scheme) or rest[:1] in ("", " ",
                                                                                     "\t"):
        return None
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    pos, n = 0, len(rest)
    while True:
        eq = rest.find("=", pos)
        name = rest[pos:eq]
        if eq < 0 or not name or not TOKEN_CHARS.issuperset(name):
            return None
        name = name.lower()
        if rest[eq + 1:eq + 2] == '"':
            end = rest.find('"', eq + 2)
            param_value = rest[eq + 2:end]
            if end < 0 or "\\" in param_value:
                return None
            pos = end + 1
        else:
            end = rest.find(",", eq + 1)
            pos = n if end < 0 else end
            param_value = rest[eq + 1:pos]
            if not param_value or not _AUTH_VALUE_CHARS.issuperset(param_value):
                return None
        if name in seen:
            return None
        seen.add(name)
        params.append((name, param_value))
        if pos == n:
            return Credentials(scheme=scheme, params=tuple(params))
        if rest[pos] != ",":
            return None
        pos += 1
        while pos < n and rest[pos] in WS:
            pos += 1
        if pos == n:
            return None


def format_credentials(scheme: str, params: Iterable[tuple[str, str]],
                       unquoted: Iterable[str] = ("algorithm", "nc", "qop", "stale")) -> str:
    """Render auth-params, quoting every value except the names listed in `unquoted`."""
    bare = {n.lower() for n in unquoted}
    parts = [f"{n}={v}" if n.lower() in bare and is_token(v) else f"{n}={quote(v)}"
             for n, v in params]
    return f"{scheme} " + ", ".join(parts)
