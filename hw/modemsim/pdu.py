"""SMS TPDUs (3GPP TS 23.040): the simulator's own builder and parser.

The network side of a modem: it builds SMS-DELIVER and SMS-STATUS-REPORT PDUs for the
product to read and parses the SMS-SUBMIT PDUs the product sends. Hex strings include
the SMSC address field in front of the TPDU, as `AT+CMGR` shows and `AT+CMGS` takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import gsm7

TON_INTERNATIONAL = 0x91
TON_UNKNOWN = 0x81
TON_ALPHANUMERIC = 0xD0

# Single-part and per-part limits (23.040 9.2.3.24.1: a 6-octet concatenation header).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

DCS_GSM7 = 0x00
DCS_8BIT = 0x04
DCS_UCS2 = 0x08


class PduError(ValueError):
    """A PDU that cannot be parsed."""


@dataclass(frozen=True)
class Concat:
    """A concatenated-SMS header: reference, total parts and this part's number (1-based)."""

    ref: int
    total: int
    seq: int


@dataclass
class Submit:
    """A decoded SMS-SUBMIT."""

    number: str
    text: str
    mr: int
    dcs: int
    status_report: bool
    concat: Concat | None
    smsc: str | None
    tpdu_len: int
    pdu: str


@dataclass
class Deliver:
    """A decoded SMS-DELIVER."""

    number: str
    text: str
    dcs: int
    scts: datetime
    concat: Concat | None
    smsc: str | None
    pid: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass
class StatusReport:
    """A decoded SMS-STATUS-REPORT."""

    mr: int
    number: str
    scts: datetime
    discharge: datetime
    status: int


# -- semi-octets, addresses, timestamps ---------------------------------------------------


def _swap_digits(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, len(digits), 2))


def _unswap_digits(data: bytes, count: int) -> str:
    out = []
    for octet in data:
        out.append(f"{octet & 0x0F:X}")
        out.append(f"{octet >> 4:X}")
    return "".join(out)[:count].replace("A", "*").replace("B", "#")


def encode_address(number: str, *, alnum: bool = False) -> bytes:
    """A TP address field (length in useful semi-octets, type, value)."""
    if alnum:
        septets = gsm7.encode(number)
        packed = gsm7.pack(septets)
        return bytes([(len(septets) * 7 + 3) // 4, TON_ALPHANUMERIC]) + packed
    ton = TON_INTERNATIONAL if number.startswith("+") else TON_UNKNOWN
    digits = number.lstrip("+").replace("*", "A").replace("#", "B")
    return bytes([len(digits), ton]) + _swap_digits(digits)


def encode_smsc(number: str | None) -> bytes:
    """The SMSC field in front of a TPDU: length in octets (type included), or 00."""
    if not number:
        return b"\x00"
    ton = TON_INTERNATIONAL if number.startswith("+") else TON_UNKNOWN
    value = _swap_digits(number.lstrip("+"))
    return bytes([len(value) + 1, ton]) + value


def _read_address(data: bytes, pos: int) -> tuple[str, int, int]:
    """(number, type of number, next position) of a TP address at pos."""
    count, ton = data[pos], data[pos + 1]
    nbytes = (count + 1) // 2
    value = data[pos + 2:pos + 2 + nbytes]
    if len(value) < nbytes:
        raise PduError("address runs past the end of the PDU")
    if ton & 0x70 == 0x50:
        text = gsm7.decode(gsm7.unpack(value, count * 4 // 7))
        return text, ton, pos + 2 + nbytes
    digits = _unswap_digits(value, count)
    prefix = "+" if ton & 0x70 == 0x10 else ""
    return prefix + digits, ton, pos + 2 + nbytes


def _read_smsc(data: bytes) -> tuple[str | None, int]:
    length = data[0]
    if length == 0:
        return None, 1
    ton = data[1]
    digits = _unswap_digits(data[2:1 + length], (length - 1) * 2).rstrip("F")
    return ("+" if ton & 0x70 == 0x10 else "") + digits, 1 + length


def encode_timestamp(when: datetime) -> bytes:
    """A 7-octet service-centre timestamp with the time zone in quarter hours."""
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    text = when.strftime("%y%m%d%H%M%S") + f"{abs(quarters):02d}"
    raw = bytearray(_swap_digits(text))
    if quarters < 0:
        raw[6] |= 0x08
    return bytes(raw)


def decode_timestamp(data: bytes) -> datetime:
    """A 7-octet service-centre timestamp back to an aware datetime."""
    if len(data) < 7:
        raise PduError("short timestamp")
    negative = bool(data[6] & 0x08)
    raw = bytes(data[:6]) + bytes([data[6] & ~0x08 & 0xFF])
    digits = _unswap_digits(raw, 14)
    quarters = int(digits[12:14]) * (-1 if negative else 1)
    tz = timezone(timedelta(minutes=15 * quarters))
    return datetime.strptime(digits[:12], "%y%m%d%H%M%S").replace(tzinfo=tz)


# -- user data -------------------------------------------------------------------------


def alphabet_of(dcs: int) -> int:
    """The alphabet a data coding scheme names: DCS_GSM7, DCS_8BIT or DCS_UCS2 (23.038 4)."""
    group = dcs >> 4
    if group <= 0x7:  # general data coding, possibly compressed or auto-deleted
        return {0: DCS_GSM7, 1: DCS_8BIT, 2: DCS_UCS2}.get((dcs >> 2) & 0x03, DCS_GSM7)
    if group == 0xF:
        return DCS_8BIT if dcs & 0x04 else DCS_GSM7
    if group == 0xE:
        return DCS_UCS2
    return DCS_GSM7


def split_text(text: str) -> tuple[int, list[str]]:
    """(dcs, parts): GSM7 when every character fits, else UCS2; parts never split a character."""
    if gsm7.fits(text):
        dcs, single, per_part = DCS_GSM7, GSM7_SINGLE, GSM7_PART
        cost = [len(gsm7.char_septets(ch)) for ch in text]
    else:
        dcs, single, per_part = DCS_UCS2, UCS2_SINGLE, UCS2_PART
        # A character beyond the BMP is a surrogate pair: two units that stay together.
        cost = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    if sum(cost) <= single:
        return dcs, [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch, n in zip(text, cost, strict=True):
        if used + n > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += n
    parts.append("".join(current))
    return dcs, parts


def _user_data(text: str, dcs: int, concat: Concat | None) -> tuple[int, bytes]:
    """(UDL, UD) for text, with a concatenation header when concat is given."""
    udh = b""
    if concat is not None:
        udh = bytes([5, 0x00, 3, concat.ref & 0xFF, concat.total, concat.seq])
    if dcs == DCS_UCS2:
        body = text.encode("utf-16-be")
        return len(udh) + len(body), udh + body
    septets = gsm7.encode(text)
    if not udh:
        return len(septets), gsm7.pack(septets)
    fill = (7 - (len(udh) * 8) % 7) % 7
    header_septets = (len(udh) * 8 + fill) // 7
    return header_septets + len(septets), udh + gsm7.pack(septets, fill)


def _read_user_data(data: bytes, pos: int, dcs: int, udhi: bool) -> tuple[str, Concat | None]:
    udl = data[pos]
    ud = data[pos + 1:]
    concat: Concat | None = None
    header_len = 0
    if udhi:
        if not ud:
            raise PduError("UDHI set but no user data")
        header_len = ud[0] + 1
        i = 1
        while i < header_len:
            iei, ielen = ud[i], ud[i + 1]
            value = ud[i + 2:i + 2 + ielen]
            if iei == 0x00 and ielen == 3:
                concat = Concat(value[0], value[1], value[2])
            elif iei == 0x08 and ielen == 4:
                concat = Concat((value[0] << 8) | value[1], value[2], value[3])
            i += 2 + ielen
    alphabet = alphabet_of(dcs)
    if alphabet == DCS_GSM7:
        header_bits = header_len * 8
        fill = (7 - header_bits % 7) % 7
        header_septets = (header_bits + fill) // 7
        count = udl - header_septets
        septets = gsm7.unpack(ud[header_len:], count, fill) if count > 0 else []
        return gsm7.decode(septets), concat
    body = ud[header_len:udl]
    if len(body) != udl - header_len:
        raise PduError("user data shorter than UDL")
    if alphabet == DCS_UCS2:
        return body.decode("utf-16-be", errors="replace"), concat
    return body.decode("latin-1"), concat


# -- builders ------------------------------------------------------------------------


def build_deliver(sender: str, text: str, dcs: int, scts: datetime, *, smsc: str | None,
                  concat: Concat | None = None, alnum: bool = False,
                  status_report_indication: bool = False) -> str:
    """One SMS-DELIVER as hex (SMSC field + TPDU)."""
    # TP-MMS set (0x04): no more messages waiting, as networks send it.
    first = 0x04 | (0x40 if concat else 0) | (0x20 if status_report_indication else 0)
    udl, ud = _user_data(text, dcs, concat)
    tpdu = (bytes([first]) + encode_address(sender, alnum=alnum) + bytes([0x00, dcs])
            + encode_timestamp(scts) + bytes([udl]) + ud)
    return (encode_smsc(smsc) + tpdu).hex().upper()


def build_delivers(sender: str, text: str, scts: datetime, *, smsc: str | None, ref: int,
                   alnum: bool = False) -> list[str]:
    """The SMS-DELIVER PDUs of a message, in part order (one PDU when it fits)."""
    dcs, parts = split_text(text)
    if len(parts) == 1:
        return [build_deliver(sender, text, dcs, scts, smsc=smsc, alnum=alnum)]
    total = len(parts)
    return [build_deliver(sender, part, dcs, scts, smsc=smsc, alnum=alnum,
                          concat=Concat(ref, total, seq))
            for seq, part in enumerate(parts, start=1)]


def build_submit(number: str, text: str, *, mr: int = 0, status_report: bool = False,
                 concat: Concat | None = None, dcs: int | None = None) -> str:
    """One SMS-SUBMIT as hex with an empty SMSC field (what a product sends with AT+CMGS)."""
    if dcs is None:
        dcs = DCS_GSM7 if gsm7.fits(text) else DCS_UCS2
    # VPF=10 (relative validity, one octet), plus SRR and UDHI as asked.
    first = 0x01 | 0x10 | (0x20 if status_report else 0) | (0x40 if concat else 0)
    udl, ud = _user_data(text, dcs, concat)
    tpdu = (bytes([first, mr & 0xFF]) + encode_address(number) + bytes([0x00, dcs, 0xAA, udl])
            + ud)
    return (b"\x00" + tpdu).hex().upper()


def build_status_report(mr: int, recipient: str, scts: datetime, discharge: datetime, *,
                        smsc: str | None, status: int = 0) -> str:
    """An SMS-STATUS-REPORT as hex (status 0: delivered)."""
    tpdu = (bytes([0x06, mr & 0xFF]) + encode_address(recipient) + encode_timestamp(scts)
            + encode_timestamp(discharge) + bytes([status & 0xFF]))
    return (encode_smsc(smsc) + tpdu).hex().upper()


# -- parsers ---------------------------------------------------------------------------


def tpdu_length(pdu_hex: str) -> int:
    """Octets after the SMSC field: the length AT+CMGS and +CMGR name."""
    data = bytes.fromhex(pdu_hex)
    if not data:
        raise PduError("empty PDU")
    return len(data) - 1 - data[0]


def parse_submit(pdu_hex: str) -> Submit:
    """An SMS-SUBMIT (with its SMSC field) as sent after AT+CMGS."""
    try:
        data = bytes.fromhex(pdu_hex)
        smsc, pos = _read_smsc(data)
        first = data[pos]
        if first & 0x03 != 0x01:
            raise PduError(f"not an SMS-SUBMIT (first octet {first:02X})")
        mr = data[pos + 1]
        number, _ton, pos = _read_address(data, pos + 2)
        dcs = data[pos + 1]
        pos += 2
        vpf = (first >> 3) & 0x03
        pos += {0: 0, 2: 1}.get(vpf, 7)
        text, concat = _read_user_data(data, pos, dcs, bool(first & 0x40))
    except (IndexError, ValueError) as exc:
        raise PduError(str(exc)) from exc
    return Submit(number=number, text=text, mr=mr, dcs=dcs, status_report=bool(first & 0x20),
                  concat=concat, smsc=smsc, tpdu_len=len(data) - (1 + data[0]),
                  pdu=pdu_hex.upper())


def parse_deliver(pdu_hex: str) -> Deliver:
    """An SMS-DELIVER as +CMGR or +CMT shows it."""
    try:
        data = bytes.fromhex(pdu_hex)
        smsc, pos = _read_smsc(data)
        first = data[pos]
        if first & 0x03 != 0x00:
            raise PduError(f"not an SMS-DELIVER (first octet {first:02X})")
        number, _ton, pos = _read_address(data, pos + 1)
        pid, dcs = data[pos], data[pos + 1]
        scts = decode_timestamp(data[pos + 2:pos + 9])
        text, concat = _read_user_data(data, pos + 9, dcs, bool(first & 0x40))
    except (IndexError, ValueError) as exc:
        raise PduError(str(exc)) from exc
    return Deliver(number=number, text=text, dcs=dcs, scts=scts, concat=concat, smsc=smsc,
                   pid=pid)


def parse_status_report(pdu_hex: str) -> StatusReport:
    """An SMS-STATUS-REPORT as +CMGR or +CDS shows it."""
    try:
        data = bytes.fromhex(pdu_hex)
        _smsc, pos = _read_smsc(data)
        if data[pos] & 0x03 != 0x02:
            raise PduError("not an SMS-STATUS-REPORT")
        mr = data[pos + 1]
        number, _ton, pos = _read_address(data, pos + 2)
        scts = decode_timestamp(data[pos:pos + 7])
        discharge = decode_timestamp(data[pos + 7:pos + 14])
        status = data[pos + 14]
    except (IndexError, ValueError) as exc:
        raise PduError(str(exc)) from exc
    return StatusReport(mr=mr, number=number, scts=scts, discharge=discharge, status=status)
