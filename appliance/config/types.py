"""Field types and normalisers shared by the configuration models (and usable on their own)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zoneinfo
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_EXTENSION = re.compile(r"[0-9]{2,6}", re.ASCII)
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}", re.ASCII)
_PHONE_JUNK = re.compile(r"[\s\-().\u00a0]")
_PERIOD = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})", re.ASCII)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_SIP_URI = re.compile(r"sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,252})|\[[0-9A-Fa-f:.]+\]", re.ASCII)
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?", re.ASCII)
_SIP_USER = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_TZ = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}", re.ASCII)
_REL_PATH = re.compile(r"[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*", re.ASCII)
_DIAL_ATOM = re.compile(r"[0-9*#XNZ]|\[[0-9\-]+\]", re.ASCII)

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigModel(BaseModel):
    """Base for configuration models: unknown fields are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def int_keys_to_text(value: object) -> object:
    """Turn integer mapping keys (YAML reads `1:` as 1) into text."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
                for k, v in value.items()}
    return value


def as_text(value: object, what: str) -> str:
    """Accept text (stripped) or a YAML integer; refuse anything else with a clear message."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be text, not true/false")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise ValueError(f"{what} must be text")


def normalize_extension(value: object) -> str:
    """An internal number: 2-6 digits ('101'; YAML integers are accepted)."""
    text = as_text(value, "an extension")
    if not _EXTENSION.fullmatch(text):
        raise ValueError(f"an extension is 2-6 digits, got {text!r}")
    return text


def normalize_key(value: object) -> str:
    """An entity key: lower-case latin letters, digits, '-' and '_' (e.g. 'sales', 'sim-1')."""
    text = as_text(value, "a key")
    if not _KEY.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a valid key: use 1-40 lower-case latin letters, digits, '-' "
            f"or '_', starting with a letter or digit (e.g. 'sales')"
        )
    return text


def normalize_phone(value: object) -> str:
    """A phone number in E.164 form ('+79161234567').

    Accepts the usual ways of writing it: '+7 (916) 123-45-67', '8 916 123 45 67',
    '89161234567', '9161234567' (ten digits: a Russian number without the 8), '00...' or
    '810...' (international prefixes).
    """
    text = as_text(value, "a phone number")
    compact = _PHONE_JUNK.sub("", text)
    international = True
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    elif compact.startswith("810") and len(compact) > 11:
        digits = compact[3:]
    else:
        digits = compact
        international = False
    hint = "write it as +7XXXXXXXXXX, 8XXXXXXXXXX or +<country code><number>"
    if not digits or not _ASCII_DIGITS.fullmatch(digits):
        raise ValueError(f"{text!r} is not a phone number ({hint})")
    if not international:
        if len(digits) == 11 and digits[0] in "78":
            digits = "7" + digits[1:]
        elif len(digits) == 10:
            digits = "7" + digits
        else:
            raise ValueError(f"{text!r} is not a full phone number ({hint})")
    if digits[0] == "0" or not 7 <= len(digits) <= 15:
        raise ValueError(f"{text!r} is not a phone number ({hint})")
    if digits[0] == "7" and len(digits) != 11:
        raise ValueError(f"{text!r}: numbers in +7 have 10 digits after the 7")
    return "+" + digits


def normalize_period(value: object) -> str:
    """Opening hours 'HH:MM-HH:MM'; closing before opening means the period crosses midnight."""
    if not isinstance(value, str):
        raise ValueError("hours are written as quoted text, e.g. '09:00-18:00'")
    match = _PERIOD.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value!r}: hours are written as 'HH:MM-HH:MM', e.g. '09:00-18:00'")
    oh, om, ch, cm = (int(g) for g in match.groups())
    if oh > 23 or om > 59 or cm > 59 or ch > 24 or (ch == 24 and cm != 0):
        raise ValueError(f"{value!r}: not a valid time of day")
    if (oh, om) == (ch, cm):
        raise ValueError(f"{value!r}: opens and closes at the same time")
    return f"{oh:02d}:{om:02d}-{ch:02d}:{cm:02d}"


def period_minutes(period: str) -> tuple[int, int]:
    """('09:00-18:00') -> (540, 1080): minutes since midnight for opening and closing."""
    opens, closes = period.split("-")
    return _minutes(opens), _minutes(closes)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _zone_exists(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def normalize_time_zone(value: object) -> str:
    """An IANA time zone name such as 'Europe/Moscow' (or 'UTC')."""
    text = as_text(value, "a time zone")
    if not _TZ.fullmatch(text) or ("/" not in text and text != "UTC") or ".." in text:
        raise ValueError(f"{text!r} is not a time zone name; use e.g. 'Europe/Moscow'")
    if not _zone_exists(text):
        raise ValueError(f"unknown time zone {text!r}; use e.g. 'Europe/Moscow'")
    return text


def normalize_email(value: object) -> str:
    """An e-mail address (a light check: the mail server has the last word)."""
    text = as_text(value, "an e-mail address")
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise ValueError(f"{text!r} is not an e-mail address")
    return text


def normalize_sip_uri(value: object) -> str:
    """A SIP URI such as 'sip:101@192.168.1.50:5060'."""
    text = as_text(value, "a SIP URI")
    if len(text) > 256 or not _SIP_URI.fullmatch(text):
        raise ValueError(f"{text!r} is not a SIP URI (e.g. 'sip:101@192.168.1.50')")
    return text


def normalize_host(value: object) -> str:
    """A host name or IP address (IPv6 in brackets)."""
    text = as_text(value, "a host")
    if not _HOST.fullmatch(text):
        raise ValueError(f"{text!r} is not a host name or IP address")
    return text


def normalize_host_port(value: object) -> str:
    """A host name or IP address with an optional port ('proxy.example.net:5070').

    A leading 'sip:' and a trailing ';lr' (how providers often write an outbound proxy)
    are dropped.
    """
    text = as_text(value, "a host")
    bare = text[4:] if text.lower().startswith("sip:") else text
    bare = bare.split(";", 1)[0]
    host, port = bare, ""
    if bare.startswith("["):
        end = bare.find("]")
        if end > 0 and bare[end + 1:end + 2] == ":":
            host, port = bare[:end + 1], bare[end + 2:]
    elif bare.count(":") == 1:
        host, port = bare.split(":")
    if not _HOST.fullmatch(host) or (port and not (port.isascii() and port.isdigit()
                                                   and 1 <= int(port) <= 65535)):
        raise ValueError(f"{text!r} is not a host name or IP address with an optional port")
    return f"{host}:{int(port)}" if port else host


def normalize_url(value: object) -> str:
    """An http(s) URL."""
    text = as_text(value, "a URL")
    if len(text) > 2000 or not _URL.fullmatch(text):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def normalize_sip_user(value: object) -> str:
    """A SIP user name: letters, digits, '.', '_' and '-'."""
    text = as_text(value, "a SIP user name")
    if not _SIP_USER.fullmatch(text):
        raise ValueError(f"{text!r}: SIP user names use latin letters, digits, '.', '_', '-'")
    return text


def normalize_relative_path(value: object) -> str:
    """A path relative to the data directory, without '..' or a leading '/'."""
    text = as_text(value, "a file path")
    if not _REL_PATH.fullmatch(text) or any(p in (".", "..") for p in text.split("/")):
        raise ValueError(f"{text!r}: give a path inside the data directory, e.g. prompts/a.wav")
    return text


def normalize_dial_pattern(value: object) -> str:
    """A dial pattern: digits, * and #, X (any digit), N (2-9), Z (1-9), [1-5] sets, then an
    optional trailing '.' (one or more further digits) or '!' (zero or more); may start with +."""
    text = as_text(value, "a dial pattern")
    compile_dial_pattern(text)
    return text


def compile_dial_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a dial pattern (see normalize_dial_pattern) into a regular expression."""
    if not 1 <= len(pattern) <= 64:
        raise ValueError("a dial pattern has 1-64 characters")
    body = pattern
    regex = ""
    if body.startswith("+"):
        regex += r"\+"
        body = body[1:]
    tail = ""
    if body.endswith("."):
        tail, body = "[0-9]+", body[:-1]
    elif body.endswith("!"):
        tail, body = "[0-9]*", body[:-1]
    pos = 0
    while pos < len(body):
        match = _DIAL_ATOM.match(body, pos)
        if match is None:
            raise ValueError(
                f"{pattern!r}: unexpected {body[pos]!r} at position {pos + 1}; patterns use "
                "digits, * #, X N Z, [1-5] and a trailing . or !"
            )
        atom = match.group()
        if atom == "X":
            regex += "[0-9]"
        elif atom == "N":
            regex += "[2-9]"
        elif atom == "Z":
            regex += "[1-9]"
        elif atom.startswith("["):
            regex += _dial_set(pattern, atom)
        else:
            regex += re.escape(atom)
        pos = match.end()
    if not body:
        raise ValueError(f"{pattern!r}: a dial pattern needs at least one digit or X, N, Z")
    return re.compile(regex + tail)


def _dial_set(pattern: str, atom: str) -> str:
    inner = atom[1:-1]
    if not inner or inner.startswith("-") or inner.endswith("-") or "--" in inner:
        raise ValueError(f"{pattern!r}: bad digit set {atom!r}")
    for low, high in re.findall(r"([0-9])-([0-9])", inner):
        if low > high:
            raise ValueError(f"{pattern!r}: bad range {low}-{high} in {atom!r}")
    return "[" + inner + "]"


def normalize_date(value: object) -> str:
    """A calendar date as 'YYYY-MM-DD' (YAML dates and ISO strings are accepted)."""
    if isinstance(value, dt.datetime):
        raise ValueError("give a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2025-12-31")


def sip_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 digest of RFC 7616 (algorithm 'MD5' or 'SHA-256'): H(username:realm:password)."""
    data = f"{username}:{realm}:{password}".encode()
    if algorithm == "MD5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if algorithm == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unknown digest algorithm {algorithm!r}")


def _hex(length: int) -> AfterValidator:
    def check(value: str) -> str:
        value = value.strip().lower()
        if len(value) != length or not re.fullmatch(r"[0-9a-f]+", value):
            raise ValueError(f"expected {length} hexadecimal characters")
        return value

    return AfterValidator(check)


Extension = Annotated[str, BeforeValidator(normalize_extension)]
Key = Annotated[str, BeforeValidator(normalize_key)]
Phone = Annotated[str, BeforeValidator(normalize_phone)]
Period = Annotated[str, BeforeValidator(normalize_period)]
IsoDate = Annotated[str, BeforeValidator(normalize_date)]
TimeZoneName = Annotated[str, BeforeValidator(normalize_time_zone)]
Email = Annotated[str, BeforeValidator(normalize_email)]
SipUri = Annotated[str, BeforeValidator(normalize_sip_uri)]
Host = Annotated[str, BeforeValidator(normalize_host)]
HostPort = Annotated[str, BeforeValidator(normalize_host_port)]
Url = Annotated[str, BeforeValidator(normalize_url)]
SipUser = Annotated[str, BeforeValidator(normalize_sip_user)]
RelativePath = Annotated[str, BeforeValidator(normalize_relative_path)]
DialPattern = Annotated[str, BeforeValidator(normalize_dial_pattern)]
Md5Hex = Annotated[str, _hex(32)]
Sha256Hex = Annotated[str, _hex(64)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
OptionalText = Annotated[str, Field(max_length=500)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Digit = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]
RecordingPolicy = Literal["default", "always", "never"]
RouteClass = Literal[
    "internal", "local", "mobile", "long_distance", "international", "emergency", "service",
    "premium",
]
OptionValue = str | int | float | bool | None
Options = dict[Annotated[str, Field(max_length=64)], OptionValue]
