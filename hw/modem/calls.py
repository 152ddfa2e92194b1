"""Call-related result lines: RING, caller ID, call lists and the vendors' call-state URCs. Pure.

Every parser takes the text after the prefix and returns a dataclass, or None when the line
is malformed (the caller then keeps it as an unparsed line; nothing here raises).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .fields import arg, is_quoted, split_args, to_int
from .results import FinalKind


class Urc:
    """Base of everything the modem reports: unsolicited codes and informational lines."""

    __slots__ = ()


class CallState(enum.IntEnum):
    """+CLCC <stat> (also used by Quectel ccinfo and ^DSCI); -1 and 6 mean the call is gone."""

    RELEASED = -1
    ACTIVE = 0
    HELD = 1
    DIALING = 2
    ALERTING = 3
    INCOMING = 4
    WAITING = 5
    DISCONNECTED = 6


@dataclass(frozen=True)
class Ring(Urc):
    """RING, or +CRING: <type> (type 'VOICE' with AT+CRC=1)."""

    kind: str = ""


@dataclass(frozen=True)
class CallResult(Urc):
    """NO CARRIER, BUSY, NO ANSWER or NO DIALTONE outside ATD/ATA: a call ended or failed."""

    kind: FinalKind


@dataclass(frozen=True)
class CallerId(Urc):
    """+CLIP: the caller's number; withheld (CLIR) when the number is empty or validity is 1."""

    number: str
    ton: int | None = None
    validity: int | None = None
    alpha: str | None = None

    @property
    def withheld(self) -> bool:
        """True when the caller hid the number (or the network did not give one)."""
        return not self.number or self.validity in (1, 2)


@dataclass(frozen=True)
class CallInfo(Urc):
    """One call as +CLCC lists it (also Quectel +QIND "ccinfo" and ^DSCI)."""

    index: int
    incoming: bool
    state: CallState
    mode: int = 0
    multiparty: bool = False
    number: str = ""
    ton: int | None = None
    source: str = "+CLCC"

    @property
    def ended(self) -> bool:
        """True when the entry reports a released call."""
        return self.state in (CallState.RELEASED, CallState.DISCONNECTED)


@dataclass(frozen=True)
class CallOriginated(Urc):
    """Huawei ^ORIG: our outgoing call is being set up."""

    index: int
    call_type: int | None = None


@dataclass(frozen=True)
class CallAlerting(Urc):
    """Huawei ^CONF: the callee's phone rings (ringback)."""

    index: int


@dataclass(frozen=True)
class CallConnected(Urc):
    """A call is answered: Huawei ^CONN, SIMCom VOICE CALL: BEGIN (no index)."""

    index: int | None = None
    call_type: int | None = None
    source: str = "^CONN"


@dataclass(frozen=True)
class CallEnded(Urc):
    """A call is over: Huawei ^CEND, SIMCom VOICE CALL: END (no index)."""

    index: int | None = None
    duration_s: int | None = None
    end_status: int | None = None
    cause: int | None = None
    source: str = "^CEND"


@dataclass(frozen=True)
class MissedCall(Urc):
    """SIMCom MISSED_CALL: <time> <number>."""

    time: str
    number: str


@dataclass(frozen=True)
class Dtmf(Urc):
    """A key the far end pressed, as detected by the modem (+QTONEDET, +RXDTMF, ^DTMF)."""

    digit: str
    index: int | None = None
    source: str = ""


@dataclass(frozen=True)
class PcmRegistration(Urc):
    """SIMCom +CPCMREG: whether the PCM audio path is on."""

    enabled: bool


DTMF_DIGITS = "0123456789*#ABCD"


def parse_ring(rest: str) -> Ring:
    """+CRING: VOICE (RING itself has no arguments)."""
    return Ring(rest.strip().upper())


def parse_clip(rest: str) -> CallerId | None:
    """+CLIP: "<number>",<type>[,<subaddr>,<satype>,<alpha>,<CLI validity>]."""
    fields = split_args(rest)
    first = fields[0]
    if len(fields) < 2 or not (is_quoted(first) or first == "" or first.lstrip("+").isdigit()):
        return None
    return CallerId(arg(fields, 0) or "", to_int(arg(fields, 1)), to_int(arg(fields, 5)),
                    arg(fields, 4))


def _state(value: int | None) -> CallState | None:
    if value is None:
        return None
    try:
        return CallState(value)
    except ValueError:
        return None


def parse_clcc(rest: str, source: str = "+CLCC") -> CallInfo | None:
    """+CLCC: <idx>,<dir>,<stat>,<mode>,<mpty>[,"<number>",<type>[,<alpha>]]."""
    fields = split_args(rest)
    index, direction = to_int(arg(fields, 0)), to_int(arg(fields, 1))
    state = _state(to_int(arg(fields, 2)))
    if index is None or direction not in (0, 1) or state is None:
        return None
    return CallInfo(index, direction == 1, state, to_int(arg(fields, 3), 0) or 0,
                    to_int(arg(fields, 4)) == 1, arg(fields, 5) or "", to_int(arg(fields, 6)),
                    source)


def parse_dsci(rest: str) -> CallInfo | None:
    """Quectel ^DSCI: <id>,<dir>,<stat>,<type>,<number>,<num_type>[,<tone_info>]."""
    fields = split_args(rest)
    index, direction = to_int(arg(fields, 0)), to_int(arg(fields, 1))
    state = _state(to_int(arg(fields, 2)))
    if index is None or direction not in (0, 1) or state is None:
        return None
    return CallInfo(index, direction == 1, state, to_int(arg(fields, 3), 0) or 0, False,
                    arg(fields, 4) or "", to_int(arg(fields, 5)), "^DSCI")


def parse_orig(rest: str) -> CallOriginated | None:
    """Huawei ^ORIG:<idx>,<type>."""
    fields = split_args(rest)
    index = to_int(arg(fields, 0))
    return None if index is None else CallOriginated(index, to_int(arg(fields, 1)))


def parse_conf(rest: str) -> CallAlerting | None:
    """Huawei ^CONF:<idx>."""
    index = to_int(arg(split_args(rest), 0))
    return None if index is None else CallAlerting(index)


def parse_conn(rest: str) -> CallConnected | None:
    """Huawei ^CONN:<idx>,<type>."""
    fields = split_args(rest)
    index = to_int(arg(fields, 0))
    return None if index is None else CallConnected(index, to_int(arg(fields, 1)), "^CONN")


def parse_cend(rest: str) -> CallEnded | None:
    """Huawei ^CEND:<idx>,<duration>,<end_status>[,<cc_cause>]."""
    fields = split_args(rest)
    index = to_int(arg(fields, 0))
    if index is None:
        return None
    return CallEnded(index, to_int(arg(fields, 1)), to_int(arg(fields, 2)), to_int(arg(fields, 3)),
                     "^CEND")


def parse_voice_call(rest: str) -> CallConnected | CallEnded | None:
    """SIMCom VOICE CALL: BEGIN / VOICE CALL: END: <duration> (hhmmss or seconds)."""
    word, _, tail = rest.strip().partition(":")
    word = word.strip().upper()
    if word == "BEGIN":
        return CallConnected(None, None, "VOICE CALL")
    if word != "END":
        return None
    digits = tail.strip()
    duration: int | None = None
    if len(digits) == 6 and digits.isdigit():
        duration = int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:])
    elif digits.isdigit():
        duration = int(digits)
    return CallEnded(None, duration, None, None, "VOICE CALL")


def parse_missed_call(rest: str) -> MissedCall | None:
    """SIMCom MISSED_CALL: 10:20AM +79001234567."""
    time, _, number = rest.strip().rpartition(" ")
    if not number:
        return None
    return MissedCall(time.strip(), number.strip())


def parse_qtonedet(rest: str) -> Dtmf | None:
    """Quectel +QTONEDET: <ASCII code of the digit> (56 is '8')."""
    code = to_int(rest)
    if code is None or not 0 <= code < 0x110000 or chr(code).upper() not in DTMF_DIGITS:
        return None
    return Dtmf(chr(code).upper(), None, "+QTONEDET")


def parse_rxdtmf(rest: str) -> Dtmf | None:
    """SIMCom +RXDTMF: <digit>."""
    digit = rest.strip().strip('"').upper()
    return Dtmf(digit, None, "+RXDTMF") if len(digit) == 1 and digit in DTMF_DIGITS else None


def parse_huawei_dtmf(rest: str) -> Dtmf | None:
    """Huawei ^DTMF:<idx>,<digit> (or just the digit)."""
    fields = split_args(rest)
    digit = (arg(fields, len(fields) - 1) or "").upper()
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        return None
    return Dtmf(digit, to_int(arg(fields, 0)) if len(fields) > 1 else None, "^DTMF")


def parse_cpcmreg(rest: str) -> PcmRegistration | None:
    """SIMCom +CPCMREG: <0|1>."""
    value = to_int(arg(split_args(rest), 0))
    return None if value not in (0, 1) else PcmRegistration(value == 1)
