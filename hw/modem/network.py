"""Network, signal, SIM and boot result lines (+CREG/+CEREG, +CSQ, +COPS, +CPIN, ...). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from .calls import Urc
from .fields import arg, is_quoted, split_args, to_int

# <stat> values that mean "registered": home, roaming, and the SMS-only/CSFB variants of both.
REGISTERED = frozenset({1, 5, 6, 7, 9, 10})


@dataclass(frozen=True)
class Registration(Urc):
    """+CREG/+CEREG/+CGREG: registration status; mode (n) only in answers to the query."""

    domain: str
    status: int
    mode: int | None = None
    lac: str | None = None
    ci: str | None = None
    act: int | None = None

    @property
    def registered(self) -> bool:
        """True when registered at home or roaming."""
        return self.status in REGISTERED

    @property
    def roaming(self) -> bool:
        """True when registered on a visited network."""
        return self.status in (5, 7, 10)


@dataclass(frozen=True)
class SignalQuality(Urc):
    """Signal strength: +CSQ, Huawei ^RSSI or Quectel +QIND "csq"; rssi None means unknown."""

    rssi: int | None
    ber: int | None = None
    source: str = "+CSQ"

    @property
    def dbm(self) -> int | None:
        """The RSSI in dBm (27.007: 0 = -113 dBm or less, 31 = -51 dBm or more)."""
        return None if self.rssi is None else -113 + 2 * self.rssi


@dataclass(frozen=True)
class OperatorInfo(Urc):
    """+COPS: <mode>[,<format>,"<operator>"[,<act>]]."""

    mode: int
    format: int | None = None
    name: str | None = None
    act: int | None = None


@dataclass(frozen=True)
class SimStatus(Urc):
    """+CPIN: READY, SIM PIN, SIM PUK, NOT INSERTED, ..."""

    code: str

    @property
    def ready(self) -> bool:
        """True when the SIM needs no PIN."""
        return self.code == "READY"

    @property
    def needs_pin(self) -> bool:
        """True when the SIM waits for its PIN."""
        return self.code in ("SIM PIN", "SIM PIN2")

    @property
    def needs_puk(self) -> bool:
        """True when the SIM is blocked and waits for its PUK (never guess it)."""
        return self.code in ("SIM PUK", "SIM PUK2")

    @property
    def absent(self) -> bool:
        """True when there is no SIM in the modem."""
        return self.code in ("NOT INSERTED", "SIM NOT INSERTED", "NOT READY", "SIM REMOVED")


@dataclass(frozen=True)
class Boot(Urc):
    """The modem (re)started: Quectel RDY, Huawei ^BOOT."""

    source: str
    detail: str = ""


@dataclass(frozen=True)
class Indication(Urc):
    """Quectel +QIND: "<name>",...; 'SMS DONE' and 'PB DONE' come without quotes."""

    name: str
    args: tuple[str, ...] = ()

    @property
    def sms_ready(self) -> bool:
        """True for +QIND: SMS DONE (the SMS storage can be used)."""
        return self.name.upper() == "SMS DONE"


@dataclass(frozen=True)
class OwnNumber(Urc):
    """+CNUM: [<alpha>],"<number>",<type>."""

    number: str
    ton: int | None = None
    alpha: str | None = None


def rssi_value(value: int | None) -> int | None:
    """The 0-31 RSSI, None for 99 (unknown) or anything out of range."""
    return value if value is not None and 0 <= value <= 31 else None


def parse_registration(rest: str, domain: str = "+CREG") -> Registration | None:
    """Both forms: the URC '<stat>[,"lac","ci"[,act]]' and the answer '<n>,<stat>[,...]'."""
    fields = split_args(rest)
    first = to_int(arg(fields, 0))
    if first is None:
        return None
    if len(fields) == 1:
        return Registration(domain, first)
    second = fields[1]
    if is_quoted(second) or to_int(second) is None:
        # A quoted LAC second: this is the n=2 URC, '<stat>,"lac","ci"[,<act>]'.
        return Registration(domain, first, None, arg(fields, 1), arg(fields, 2),
                            to_int(arg(fields, 3)))
    status = to_int(second)
    assert status is not None
    return Registration(domain, status, first, arg(fields, 2), arg(fields, 3),
                        to_int(arg(fields, 4)))


def parse_csq(rest: str) -> SignalQuality | None:
    """+CSQ: <rssi>,<ber>."""
    fields = split_args(rest)
    rssi = to_int(arg(fields, 0))
    if rssi is None:
        return None
    ber = to_int(arg(fields, 1))
    return SignalQuality(rssi_value(rssi), None if ber == 99 else ber, "+CSQ")


def parse_rssi(rest: str) -> SignalQuality | None:
    """Huawei ^RSSI:<rssi>."""
    rssi = to_int(arg(split_args(rest), 0))
    return None if rssi is None else SignalQuality(rssi_value(rssi), None, "^RSSI")


def parse_cops(rest: str) -> OperatorInfo | None:
    """+COPS: <mode>[,<format>,"<operator>"[,<act>]]; the list form (AT+COPS=?) is not parsed."""
    if rest.lstrip().startswith("("):
        return None
    fields = split_args(rest)
    mode = to_int(arg(fields, 0))
    if mode is None:
        return None
    return OperatorInfo(mode, to_int(arg(fields, 1)), arg(fields, 2), to_int(arg(fields, 3)))


def parse_cpin(rest: str) -> SimStatus | None:
    """+CPIN: <code>."""
    code = " ".join(rest.strip().strip('"').upper().split())
    return SimStatus(code) if code else None


def parse_qind(rest: str) -> Indication | SignalQuality | None:
    """Quectel +QIND: "csq",<rssi>,<ber> becomes SignalQuality; anything else an Indication."""
    fields = split_args(rest)
    name = arg(fields, 0)
    if not name:
        return None
    if name.lower() == "csq":
        rssi = to_int(arg(fields, 1))
        if rssi is None:
            return None
        ber = to_int(arg(fields, 2))
        return SignalQuality(rssi_value(rssi), None if ber == 99 else ber, "+QIND")
    return Indication(name, tuple(arg(fields, i) or "" for i in range(1, len(fields))))


def parse_cnum(rest: str) -> OwnNumber | None:
    """+CNUM: [<alpha>],"<number>",<type>."""
    fields = split_args(rest)
    number = arg(fields, 1)
    if not number:
        return None
    return OwnNumber(number, to_int(arg(fields, 2)), arg(fields, 0))
