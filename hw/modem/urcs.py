"""Telling unsolicited result codes from command responses, and parsing every known line. Pure.

`parse_line(text)` turns any line into a dataclass (`UnknownLine` when nothing fits); it never
raises. `LineRouter` decides, line by line, whether a line answers the command in flight or is
unsolicited, and joins the two-line URCs (+CMT/+CDS and their PDU) and a +CUSD whose text runs
over several lines.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from . import calls, messages, network
from .calls import Urc
from .results import FinalResult, parse_final

Parser = Callable[[str], Urc | None]


@dataclass(frozen=True)
class UnknownLine(Urc):
    """A line no parser claims (or one too malformed to parse), kept for the logs."""

    text: str
    prefix: str = ""


def _no_args(factory: Callable[[], Urc]) -> Parser:
    return lambda rest: factory()


def _ccinfo_or_qind(rest: str) -> Urc | None:
    name, _, tail = rest.partition(",")
    if name.strip().strip('"').lower() == "ccinfo":
        return calls.parse_clcc(tail, source="+QIND")
    return network.parse_qind(rest)


PARSERS: dict[str, Parser] = {
    "RING": _no_args(calls.Ring),
    "+CRING": calls.parse_ring,
    "+CLIP": calls.parse_clip,
    "+CLCC": calls.parse_clcc,
    "^DSCI": calls.parse_dsci,
    "^ORIG": calls.parse_orig,
    "^CONF": calls.parse_conf,
    "^CONN": calls.parse_conn,
    "^CEND": calls.parse_cend,
    "VOICE CALL": calls.parse_voice_call,
    "MISSED_CALL": calls.parse_missed_call,
    "+QTONEDET": calls.parse_qtonedet,
    "+RXDTMF": calls.parse_rxdtmf,
    "^DTMF": calls.parse_huawei_dtmf,
    "+CPCMREG": calls.parse_cpcmreg,
    "+CREG": partial(network.parse_registration, domain="+CREG"),
    "+CEREG": partial(network.parse_registration, domain="+CEREG"),
    "+CGREG": partial(network.parse_registration, domain="+CGREG"),
    "+CSQ": network.parse_csq,
    "^RSSI": network.parse_rssi,
    "+COPS": network.parse_cops,
    "+CPIN": network.parse_cpin,
    "^BOOT": lambda rest: network.Boot("^BOOT", rest.strip()),
    "RDY": _no_args(lambda: network.Boot("RDY")),
    "+QIND": _ccinfo_or_qind,
    "+CNUM": network.parse_cnum,
    "+CMTI": messages.parse_cmti,
    "+CDSI": partial(messages.parse_cmti, report=True),
    "+CMT": messages.parse_cmt,
    "+CDS": partial(messages.parse_cmt, report=True),
    "+CMGR": messages.parse_cmgr,
    "+CMGL": messages.parse_cmgl,
    "+CMGS": messages.parse_cmgs,
    "^SMMEMFULL": messages.parse_smmemfull,
    "+CUSD": messages.parse_cusd,
}

# Never an answer to a command, even when one is in flight (a +CUSD can beat the OK of
# AT+CUSD; RING can land between any two lines).
ALWAYS_UNSOLICITED = frozenset({
    "RING", "+CRING", "+CLIP", "^DSCI", "^ORIG", "^CONF", "^CONN", "^CEND", "VOICE CALL",
    "MISSED_CALL", "+QTONEDET", "+RXDTMF", "^DTMF", "^RSSI", "^BOOT", "RDY", "+QIND", "+CMTI",
    "+CDSI", "+CMT", "+CDS", "^SMMEMFULL", "+CUSD", "+CCWA", "+CSSI", "+CSSU", "+CUSATP",
})
# Plain words (no '+' or '^') that start an unsolicited line.
_WORDS = ("RING", "RDY", "VOICE CALL", "MISSED_CALL")
_PDU_FOLLOWS = frozenset({"+CMT", "+CDS"})
_HEX = frozenset(string.hexdigits)
MAX_CONTINUATION_LINES = 8


def line_prefix(text: str) -> str:
    """'+CSQ' for '+CSQ: 20,99', 'RING' for RING, '' for a line without a known head."""
    if text[:1] in ("+", "^"):
        head, sep, _ = text.partition(":")
        head = head.strip().upper()
        if sep and head and " " not in head:
            return head
        # '+CRING' without a colon, 'RDY'-style bare words with a sign.
        bare = text.strip().upper()
        return bare if " " not in bare else ""
    upper = text.upper()
    for word in _WORDS:
        if upper == word or upper.startswith(word + ":"):
            return word
    return ""


def parse_line(text: str) -> Urc:
    """The dataclass for one line; UnknownLine when no parser fits or it is malformed."""
    prefix = line_prefix(text)
    parser = PARSERS.get(prefix)
    if parser is None:
        final = parse_final(text) if not prefix else None
        if final is not None and final.is_call_result:
            return calls.CallResult(final.kind)
        return UnknownLine(text, prefix)
    _, _, rest = text.partition(":")
    if prefix in ("RING", "RDY") and ":" not in text:
        rest = ""
    parsed = parser(rest)
    return parsed if parsed is not None else UnknownLine(text, prefix)


def is_unsolicited(prefix: str, expected: frozenset[str] | None) -> bool:
    """Whether a line with this prefix is a URC, given the prefixes the command in flight expects.

    With no command in flight (expected None) every line is. Otherwise: the always-unsolicited
    ones; any other known prefix or Huawei '^' line the command does not expect (E3372 puts
    ^RSSI/^HCSQ inside the +CSQ answer, wdoekes#143); lines without a prefix answer the command.
    """
    if expected is None:
        return True
    if not prefix:
        return False
    if prefix in ALWAYS_UNSOLICITED:
        return True
    if prefix in expected:
        return False
    return prefix in PARSERS or prefix.startswith("^")


@dataclass(frozen=True)
class ResponseLine:
    """A line that belongs to the answer of the command in flight."""

    text: str


def _is_hex(text: str) -> bool:
    return bool(text) and all(ch in _HEX for ch in text)


class LineRouter:
    """Routes lines to the command in flight or out as URCs; holds multi-line URCs together."""

    def __init__(self) -> None:
        self._pending: messages.MessagePushed | None = None
        self._cusd: list[str] = []

    def route(
        self, text: str, expected: frozenset[str] | None, *, call: bool = False
    ) -> list[ResponseLine | FinalResult | Urc]:
        """What this line completes: response lines, the final result and URCs, in order.

        expected is None when no command is in flight (then every line is unsolicited);
        call says the command is ATD/ATA, the only ones NO CARRIER and BUSY can end.
        """
        out: list[ResponseLine | FinalResult | Urc] = []
        if self._cusd:
            if parse_final(text) is None and len(self._cusd) < MAX_CONTINUATION_LINES:
                self._cusd.append(text)
                if "\n".join(self._cusd).count('"') % 2 == 0:
                    out.append(self._finish_cusd())
                return out
            # A final result (or too many lines) ends a +CUSD whose closing quote never came.
            out.append(self._finish_cusd())
        if self._pending is not None:
            header, self._pending = self._pending, None
            if _is_hex(text.replace(" ", "")):
                out.append(messages.with_pdu(header, text))
                return out
            out.append(header)
        final = parse_final(text)
        if final is not None:
            if expected is not None and (call or not final.is_call_result):
                out.append(final)
            else:
                out.append(parse_line(text))
            return out
        prefix = line_prefix(text)
        if prefix == "+CUSD" and text.count('"') % 2 == 1:
            self._cusd = [text]
            return out
        if not is_unsolicited(prefix, expected):
            out.append(ResponseLine(text))
            return out
        parsed = parse_line(text)
        if prefix in _PDU_FOLLOWS and isinstance(parsed, messages.MessagePushed):
            self._pending = parsed
            return out
        out.append(parsed)
        return out

    def flush(self) -> list[Urc]:
        """Whatever is held back (when the port closes)."""
        out: list[Urc] = []
        if self._cusd:
            out.append(self._finish_cusd())
        if self._pending is not None:
            out.append(self._pending)
            self._pending = None
        return out

    def _finish_cusd(self) -> Urc:
        text = "\n".join(self._cusd)
        self._cusd = []
        return parse_line(text)
