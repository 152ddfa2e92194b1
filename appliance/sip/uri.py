"""SIP and other URIs (RFC 3261 §19.1, §25.1): parse, print and compare.

Values are kept exactly as received (still %-escaped) so a proxy forwards what it got;
`unescape` and `SipUri.matches` give the RFC 3261 §19.1.4 view when comparing. The parser is
a hand-written left-to-right scan over character classes: no regular expressions, no
recursion, linear in the input.
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass, replace

from .errors import SipParseError

Params = tuple[tuple[str, str | None], ...]

ALPHANUM = frozenset(string.ascii_letters + string.digits)
HEXDIG = frozenset(string.hexdigits)
DIGITS = frozenset(string.digits)
UNRESERVED = ALPHANUM | frozenset("-_.!~*'()")
USER_CHARS = UNRESERVED | frozenset("&=+$,;?/")
PASSWORD_CHARS = UNRESERVED | frozenset("&=+$,")
PARAM_CHARS = UNRESERVED | frozenset("[]/:&+$")
HNAME_CHARS = UNRESERVED | frozenset("[]/?:+$")
SCHEME_CHARS = ALPHANUM | frozenset("+-.")
# Underscore is not in the RFC 1035 hostname grammar but real LANs use it (Windows names);
# accepting it costs nothing because hosts are never interpreted beyond lookup.
HOST_CHARS = ALPHANUM | frozenset("-._")
IPV6_CHARS = HEXDIG | frozenset(":.")
# absoluteURI (RFC 3261 §25.1 uric): printable ASCII minus SP and the characters that
# delimit a URI inside a header field.
OTHER_URI_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('"<>\\^`{|}')

# Parameters whose presence in only one URI makes two URIs differ (RFC 3261 §19.1.4).
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def _bad(what: str) -> SipParseError:
    return SipParseError(f"Bad {what}")


def _escaped_run_ok(text: str, allowed: frozenset[str]) -> bool:
    """True if every character is allowed or part of a valid %HH escape."""
    if "%" not in text:
        return allowed.issuperset(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "%":
            if i + 2 >= n or text[i + 1] not in HEXDIG or text[i + 2] not in HEXDIG:
                return False
            i += 3
            continue
        if c not in allowed:
            return False
        i += 1
    return True


def unescape_bytes(text: str) -> bytes:
    """Decode %HH escapes to bytes (invalid escapes are kept literally)."""
    raw = text.encode("utf-8", "replace")
    if b"%" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 2 < n and chr(raw[i + 1]) in HEXDIG and chr(raw[i + 2]) in HEXDIG:
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
            continue
        out.append(b)
        i += 1
    return bytes(out)


def unescape(text: str) -> str:
    """Decode %HH escapes; bytes that are not UTF-8 become U+FFFD (never a string end)."""
    return unescape_bytes(text).decode("utf-8", "replace")


def _check_port(text: str) -> int:
    # Leading zeros are legal (1*DIGIT); the length cap keeps int() cheap.
    if not text or len(text) > 10 or not DIGITS.issuperset(text):
        raise _bad("port")
    port = int(text)
    if port > 65535:
        raise _bad("port")
    return port


def ipv6_address(text: str) -> ipaddress.IPv6Address:
    """The address of an IPv6 literal (no brackets), tolerating RFC 5118 §4.10's ':::' bug."""
    if not text or len(text) > 45 or not IPV6_CHARS.issuperset(text) or ":" not in text:
        raise _bad("IPv6 address")
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        pass
    # RFC 3261's ABNF wrongly allowed "2001:db8:::192.0.2.1"; RFC 5118 §4.10 asks for
    # robustness, and the sender plainly meant "::". Anything else stays an error.
    if text.count(":::") == 1 and "::::" not in text:
        try:
            return ipaddress.IPv6Address(text.replace(":::", "::"))
        except ValueError:
            pass
    raise _bad("IPv6 address")


def check_host(host: str) -> str:
    """Validate a host (hostname, IPv4 or bracketed IPv6 reference) and return it unchanged."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise _bad("host")
        ipv6_address(host[1:-1])
        return host
    if not host or len(host) > 255 or not HOST_CHARS.issuperset(host):
        raise _bad("host")
    return host


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split `host[:port]` (IPv6 in brackets) into a validated host and port."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _bad("host")
        host, rest = text[:end + 1], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise _bad("host")
        port = _check_port(rest[1:]) if rest else None
        return check_host(host), port
    host, sep, port_text = text.partition(":")
    return check_host(host), (_check_port(port_text) if sep else None)


def host_key(host: str) -> str:
    """A comparison key for a host: IP addresses normalised (RFC 5954), names lowercased."""
    try:
        if host.startswith("["):
            return "[" + ipv6_address(host[1:-1]).compressed + "]"
        if host and host[0] in DIGITS and host.count(".") == 3:
            return str(ipaddress.IPv4Address(host))
    except (SipParseError, ValueError):
        pass
    return host.lower()


def _parse_params(text: str) -> Params:
    """`;name[=value]` URI parameters (text starts after the first ';')."""
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name or not _escaped_run_ok(name, PARAM_CHARS):
            raise _bad("URI parameter")
        if eq:
            if not value or not _escaped_run_ok(value, PARAM_CHARS):
                raise _bad("URI parameter")
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


def _parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if (not eq or not name or not _escaped_run_ok(name, HNAME_CHARS)
                or not _escaped_run_ok(value, HNAME_CHARS)):
            raise _bad("URI header")
        headers.append((name, value))
    return tuple(headers)


def format_params(params: Params) -> str:
    """Render parameters as `;name` / `;name=value`."""
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def find_param(params: Params, name: str) -> tuple[bool, str | None]:
    """(present, value) of the first parameter called `name` (case-insensitive)."""
    lname = name.lower()
    for n, v in params:
        if n.lower() == lname:
            return True, v
    return False, None


def set_param(params: Params, name: str, value: str | None) -> Params:
    """Parameters with `name` set to `value` (replacing the first match, else appended)."""
    lname = name.lower()
    out: list[tuple[str, str | None]] = []
    done = False
    for n, v in params:
        if n.lower() == lname:
            if not done:
                out.append((n, value))
                done = True
            continue
        out.append((n, v))
    if not done:
        out.append((name, value))
    return tuple(out)


def drop_param(params: Params, name: str) -> Params:
    """Parameters without any called `name` (case-insensitive)."""
    lname = name.lower()
    return tuple((n, v) for n, v in params if n.lower() != lname)


@dataclass(frozen=True)
class SipUri:
    """A sip: or sips: URI; user, password, params and headers are kept %-escaped."""

    host: str
    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user
            if self.password is not None:
                userinfo += ":" + self.password
            userinfo += "@"
        port = "" if self.port is None else f":{self.port}"
        headers = ""
        if self.headers:
            headers = "?" + "&".join(f"{n}={v}" for n, v in self.headers)
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"

    def param(self, name: str) -> str | None:
        """Value of a URI parameter (None if absent or valueless)."""
        return find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        """True if the URI carries the parameter, with or without a value."""
        return find_param(self.params, name)[0]

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with the parameter set."""
        return replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> SipUri:
        """A copy without the parameter."""
        return replace(self, params=drop_param(self.params, name))

    def without_headers(self) -> SipUri:
        """A copy without the `?header=value` part (never let a stored contact inject headers)."""
        return replace(self, headers=())

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %-escapes decoded."""
        return None if self.user is None else unescape(self.user)

    @property
    def transport(self) -> str | None:
        """The transport parameter, lowercased."""
        value = self.param("transport")
        return None if value is None else value.lower()

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def aor(self) -> str:
        """The address-of-record key: scheme, unescaped user and lowercased host, no port/params."""
        user = "" if self.user is None else unescape(self.user) + "@"
        return f"{self.scheme}:{user}{host_key(self.host)}"

    def matches(self, other: object) -> bool:
        """URI equivalence per RFC 3261 §19.1.4 (escapes decoded, host case-insensitive)."""
        if not isinstance(other, SipUri) or self.scheme != other.scheme:
            return False
        for a, b in ((self.user, other.user), (self.password, other.password)):
            if (a is None) != (b is None):
                return False
            if a is not None and b is not None and unescape_bytes(a) != unescape_bytes(b):
                return False
        if host_key(self.host) != host_key(other.host) or self.port != other.port:
            return False
        mine = {n.lower(): v for n, v in self.params}
        theirs = {n.lower(): v for n, v in other.params}
        for name in set(mine) | set(theirs):
            if name not in mine or name not in theirs:
                if name in _STRICT_PARAMS:
                    return False
                continue
            a, b = mine[name], theirs[name]
            if (a is None) != (b is None):
                return False
            if a is not None and b is not None and unescape(a).lower() != unescape(b).lower():
                return False

        def header_set(h: tuple[tuple[str, str], ...]) -> set[tuple[str, bytes]]:
            return {(unescape(n).lower(), unescape_bytes(v)) for n, v in h}

        return header_set(self.headers) == header_set(other.headers)


@dataclass(frozen=True)
class OtherUri:
    """A URI of a scheme other than sip/sips (tel:, http:, urn:...), kept opaque."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def matches(self, other: object) -> bool:
        """Scheme case-insensitive, the rest compared after unescaping."""
        return (isinstance(other, OtherUri) and self.scheme.lower() == other.scheme.lower()
                and unescape_bytes(self.rest) == unescape_bytes(other.rest))


Uri = SipUri | OtherUri


def parse_sip_uri(scheme: str, rest: str) -> SipUri:
    """Parse the part of a sip:/sips: URI after the colon."""
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1:]
        user, colon, pw = userinfo.partition(":")
        if not user or not _escaped_run_ok(user, USER_CHARS):
            raise _bad("URI user")
        if colon:
            if not _escaped_run_ok(pw, PASSWORD_CHARS):
                raise _bad("URI password")
            password = pw
    # The host part ends at the first ';' (params) or '?' (headers), brackets aside.
    start = rest.find("]") + 1 if rest.startswith("[") else 0
    if rest.startswith("[") and start == 0:
        raise _bad("host")
    end = len(rest)
    for stop in ";?":
        found = rest.find(stop, start, end)
        if found >= 0:
            end = found
    host, port = split_hostport(rest[:end])
    tail = rest[end:]
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    qmark = tail.find("?")
    param_text, header_text = (tail, "") if qmark < 0 else (tail[:qmark], tail[qmark + 1:])
    if param_text:
        params = _parse_params(param_text[1:])
    if qmark >= 0:
        headers = _parse_headers(header_text)
    return SipUri(host=host, scheme=scheme, user=user, password=password, port=port,
                  params=params, headers=headers)


def parse_uri(text: str) -> Uri:
    """Parse a URI: sip/sips fully, any other scheme as an opaque `OtherUri`."""
    colon = text.find(":")
    scheme = text[:colon] if colon > 0 else ""
    if (not scheme or scheme[0] not in string.ascii_letters
            or not SCHEME_CHARS.issuperset(scheme)):
        raise _bad("URI")
    rest = text[colon + 1:]
    lower = scheme.lower()
    if lower in ("sip", "sips"):
        return parse_sip_uri(lower, rest)
    if not rest or not OTHER_URI_CHARS.issuperset(rest):
        raise _bad("URI")
    return OtherUri(scheme=scheme, rest=rest)
