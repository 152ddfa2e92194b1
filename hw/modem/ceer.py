"""The +CEER release report (why the last call failed or ended), in every form we meet. Pure.

27.007 leaves the report's text to the manufacturer, so families differ:

* text only, quoted or not: `+CEER: "No circuit/channel available"` (Quectel),
  `+CEER: No circuit/channel available` (SIMCom, Huawei), squashed `+CEER: userbusy`;
* category, number, text: `+CEER: "CC setup error",34,"No circuit/channel available"`
  (Quectel and Cinterion-derived firmware in numeric mode);
* numbers only: `+CEER: 34`, or location first: `+CEER: 1,34` and `+CEER: 1,34,0`.

The cause is the 3GPP TS 24.008 (Q.850) call-control cause, 1-127. Numbers outside that range
are vendor codes (`288 "MM no service"`): kept in `code`, the text is tried instead.
`parse_ceer` raises `CeerParseError` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .fields import is_quoted, split_args, unquote

PREFIX = "+CEER"
MAX_REPORT = 2048  # 27.007: the report never exceeds 2041 characters

# 3GPP TS 24.008 annex H cause names, as modems print them.
CAUSE_TEXTS: dict[int, str] = {
    1: "Unassigned (unallocated) number", 3: "No route to destination",
    6: "Channel unacceptable", 8: "Operator determined barring",
    16: "Normal call clearing", 17: "User busy", 18: "No user responding",
    19: "User alerting, no answer", 21: "Call rejected", 22: "Number changed",
    25: "Pre-emption", 26: "Non selected user clearing", 27: "Destination out of order",
    28: "Invalid number format (incomplete number)", 29: "Facility rejected",
    30: "Response to STATUS ENQUIRY", 31: "Normal, unspecified",
    34: "No circuit/channel available", 38: "Network out of order",
    41: "Temporary failure", 42: "Switching equipment congestion",
    43: "Access information discarded", 44: "Requested circuit/channel not available",
    47: "Resources unavailable, unspecified", 49: "Quality of service unavailable",
    50: "Requested facility not subscribed", 55: "Incoming calls barred within the CUG",
    57: "Bearer capability not authorized", 58: "Bearer capability not presently available",
    63: "Service or option not available, unspecified",
    65: "Bearer service not implemented", 68: "ACM equal to or greater than ACMmax",
    69: "Requested facility not implemented",
    70: "Only restricted digital information bearer capability is available",
    79: "Service or option not implemented, unspecified",
    81: "Invalid transaction identifier value", 87: "User not member of CUG",
    88: "Incompatible destination", 91: "Invalid transit network selection",
    95: "Semantically incorrect message", 96: "Invalid mandatory information",
    97: "Message type non-existent or not implemented",
    98: "Message type not compatible with protocol state",
    99: "Information element non-existent or not implemented",
    100: "Conditional IE error", 101: "Message not compatible with protocol state",
    102: "Recovery on timer expiry", 111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
}
# Other spellings firmwares use for the same causes.
_ALIASES: dict[str, int] = {
    "unassigned number": 1, "unallocated number": 1, "no answer": 19,
    "user alerting no answer": 19, "invalid number format": 28, "incomplete number": 28,
    "no channel available": 34, "no circuit available": 34, "resources unavailable": 47,
    "congestion": 42, "normal clearing": 16, "normal": 16, "busy": 17, "rejected": 21,
}


def _key(text: str) -> str:
    # Case, spaces, punctuation and underscores differ between firmwares; letters do not.
    return "".join(ch for ch in text.lower() if ch.isalnum())


_BY_KEY: dict[str, int] = {_key(text): cause for cause, text in CAUSE_TEXTS.items()}
_BY_KEY.update({_key(text): cause for text, cause in _ALIASES.items()})


class CeerParseError(ValueError):
    """A +CEER answer that is not a release report."""


@dataclass(frozen=True)
class ReleaseReport:
    """What AT+CEER said: the 24.008 cause (None: none given or none known), its text."""

    cause: int | None
    text: str = ""
    category: str | None = None
    code: int | None = None  # the number as printed, vendor codes included


def cause_for_text(text: str) -> int | None:
    """The 24.008 cause a release text names (None when unknown or 'no cause')."""
    return _BY_KEY.get(_key(text))


def _number(field: str) -> int | None:
    # Only a bare (or quoted) run of digits is a number; '+5', ' 5 ' stripped, '-1' is not.
    value = unquote(field).strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 6 else None


def _valid(cause: int | None) -> int | None:
    return cause if cause is not None and 1 <= cause <= 127 else None


def parse_report(body: str) -> ReleaseReport:
    """The report after '+CEER:' ('"CC setup error",34,"..."', 'User busy', '1,34,0')."""
    body = body.strip()
    if not body:
        raise CeerParseError("empty +CEER report")
    if len(body) > MAX_REPORT:
        raise CeerParseError("+CEER report longer than 27.007 allows")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in body):
        raise CeerParseError("control characters in a +CEER report")
    fields = split_args(body)
    numbers = [_number(f) for f in fields]
    if all(n is not None for n in numbers):
        # 34 | <location>,<cause> | <location>,<cause>,<ss release> (Siemens lineage)
        if len(numbers) > 3:
            raise CeerParseError(f"too many numbers in +CEER: {body!r}")
        code = numbers[0] if len(numbers) == 1 else numbers[1]
        return ReleaseReport(_valid(code), body, None, code)
    at = next((i for i, n in enumerate(numbers) if n is not None and i > 0), None)
    if at is not None and numbers[0] is None:
        category = unquote(fields[0]).strip() or None
        code = numbers[at]
        text = ",".join(unquote(f) for f in fields[at + 1:]).strip()
        cause = _valid(code)
        if cause is None and text:
            cause = cause_for_text(text)
        return ReleaseReport(cause, text, category, code)
    if len(fields) > 1 and all(is_quoted(f) for f in fields):
        # "<category>","<text>": the last field names the cause.
        text = unquote(fields[-1]).strip()
        return ReleaseReport(cause_for_text(text), text, unquote(fields[0]).strip() or None)
    # Plain text, which may itself hold commas ("User alerting, no answer").
    text = unquote(body).strip()
    if not text:
        raise CeerParseError("empty +CEER report")
    return ReleaseReport(cause_for_text(text), text)


def parse_ceer(line: str) -> ReleaseReport:
    """One '+CEER: ...' line as a report; CeerParseError when it is not one."""
    head, sep, rest = line.partition(":")
    if not sep or head.strip().upper() != PREFIX:
        raise CeerParseError(f"not a +CEER line: {line[:60]!r}")
    return parse_report(rest)


def parse_ceer_lines(lines: Iterable[str]) -> ReleaseReport:
    """The report in AT+CEER's answer lines (the first +CEER line that parses)."""
    error: CeerParseError | None = None
    for line in lines:
        if line.lstrip().upper().startswith(PREFIX):
            try:
                return parse_ceer(line.strip())
            except CeerParseError as exc:
                error = exc
    raise error or CeerParseError("no +CEER line in the answer")

