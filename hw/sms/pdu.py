"""SMS TPDUs in PDU mode: SMS-DELIVER and SMS-STATUS-REPORT decoding, SMS-SUBMIT encoding.

`decode_pdu` raises only `PduError` (whatever the input). Field values that are merely odd
(unknown PID, an impossible time stamp, a reserved DCS, a UDL longer than the data) are kept
or decoded leniently, so a message is never dropped for them (the chan_dongle lesson).
"""

from __future__ import annotations

import binascii
import datetime as dt
from dataclasses import dataclass, field

from .address import (
    Address,
    decode_address,
    decode_smsc,
    decode_timestamp,
    encode_address,
    encode_smsc,
    encode_timestamp,
)
from .errors import PduError
from .userdata import (
    Alphabet,
    Concat,
    UserData,
    dcs_for,
    decode_user_data,
    encode_user_data,
)

MTI_DELIVER = 0
MTI_SUBMIT = 1
MTI_STATUS_REPORT = 2
MAX_PDU_OCTETS = 200


@dataclass(frozen=True)
class SmsDeliver:
    """A received message (or one part of a multipart message)."""

    sender: Address
    text: str
    timestamp: dt.datetime | None
    user_data: UserData
    smsc: Address | None = None
    pid: int = 0
    dcs: int = 0
    status_report_indication: bool = False
    more_messages: bool = False

    @property
    def concat(self) -> Concat | None:
        """The concatenation element when this is one part of several."""
        return self.user_data.concat


@dataclass(frozen=True)
class SmsStatusReport:
    """A delivery report for a message we sent, matched to it by message_ref."""

    message_ref: int
    recipient: Address
    timestamp: dt.datetime | None
    discharge_time: dt.datetime | None
    status: int
    smsc: Address | None = None

    @property
    def delivered(self) -> bool:
        """True when the SMSC says the message reached the recipient (TP-ST 0x00-0x1F)."""
        return self.status < 0x20

    @property
    def final(self) -> bool:
        """False while the SMSC is still trying (TP-ST 0x20-0x3F: temporary error, retrying)."""
        return not 0x20 <= self.status < 0x40


@dataclass(frozen=True)
class SmsSubmit:
    """A message to send (decoded from an SMS-SUBMIT, or as built by encode_submit)."""

    recipient: Address
    text: str
    user_data: UserData
    message_ref: int = 0
    request_report: bool = False
    validity: dt.timedelta | None = None
    dcs: int = 0
    smsc: Address | None = None


@dataclass(frozen=True)
class SubmitPdu:
    """What AT+CMGS needs: the hex PDU and the TPDU length in octets (SMSC excluded)."""

    hex: str
    tpdu_length: int
    concat: Concat | None = field(default=None)


def from_hex(text: str) -> bytes:
    """Octets from a hex string (spaces and case tolerated); PduError on anything else."""
    cleaned = "".join(text.split())
    if len(cleaned) % 2:
        raise PduError("odd number of hex digits")
    try:
        data = binascii.unhexlify(cleaned)
    except (binascii.Error, ValueError):
        raise PduError("not hex") from None
    if len(data) > MAX_PDU_OCTETS:
        raise PduError(f"PDU of {len(data)} octets is too long")
    return data


def _octet(data: bytes, pos: int, what: str) -> int:
    if pos >= len(data):
        raise PduError(f"PDU ends before {what}")
    return data[pos]


def decode_pdu(
    pdu: str | bytes, *, has_smsc: bool = True
) -> SmsDeliver | SmsStatusReport | SmsSubmit:
    """Decode a PDU as the modem shows it (+CMGR, +CMT, +CDS: with the SMSC prefix by default)."""
    data = from_hex(pdu) if isinstance(pdu, str) else bytes(pdu)
    smsc: Address | None = None
    pos = 0
    if has_smsc:
        smsc, pos = decode_smsc(data)
    first = _octet(data, pos, "the first octet")
    mti = first & 0x03
    pos += 1
    if mti == MTI_DELIVER:
        return _decode_deliver(data, pos, first, smsc)
    if mti == MTI_STATUS_REPORT:
        return _decode_status_report(data, pos, smsc)
    if mti == MTI_SUBMIT:
        return _decode_submit(data, pos, first, smsc)
    raise PduError(f"reserved message type in first octet {first:#04x}")


def _decode_deliver(data: bytes, pos: int, first: int, smsc: Address | None) -> SmsDeliver:
    sender, pos = decode_address(data, pos)
    pid = _octet(data, pos, "TP-PID")
    dcs = _octet(data, pos + 1, "TP-DCS")
    timestamp, pos = decode_timestamp(data, pos + 2)
    udl = _octet(data, pos, "TP-UDL")
    user_data = decode_user_data(data, pos + 1, udl, dcs, bool(first & 0x40))
    return SmsDeliver(
        sender=sender, text=user_data.text, timestamp=timestamp, user_data=user_data, smsc=smsc,
        pid=pid, dcs=dcs, status_report_indication=bool(first & 0x20),
        more_messages=not first & 0x04,
    )


def _decode_status_report(data: bytes, pos: int, smsc: Address | None) -> SmsStatusReport:
    ref = _octet(data, pos, "TP-MR")
    recipient, pos = decode_address(data, pos + 1)
    timestamp, pos = decode_timestamp(data, pos)
    discharge, pos = decode_timestamp(data, pos)
    status = _octet(data, pos, "TP-ST")
    return SmsStatusReport(ref, recipient, timestamp, discharge, status, smsc)


def decode_validity(vpf: int, data: bytes, pos: int) -> tuple[dt.timedelta | None, int]:
    """TP-VP by its format (0 none, 2 relative, 1 enhanced and 3 absolute are skipped)."""
    if vpf == 0:
        return None, pos
    if vpf == 2:
        return relative_validity(_octet(data, pos, "TP-VP")), pos + 1
    if pos + 7 > len(data):
        raise PduError("TP-VP cut short")
    return None, pos + 7


def _decode_submit(data: bytes, pos: int, first: int, smsc: Address | None) -> SmsSubmit:
    ref = _octet(data, pos, "TP-MR")
    recipient, pos = decode_address(data, pos + 1)
    _octet(data, pos, "TP-PID")
    dcs = _octet(data, pos + 1, "TP-DCS")
    validity, pos = decode_validity(first >> 3 & 0x3, data, pos + 2)
    udl = _octet(data, pos, "TP-UDL")
    user_data = decode_user_data(data, pos + 1, udl, dcs, bool(first & 0x40))
    return SmsSubmit(recipient, user_data.text, user_data, ref, bool(first & 0x20), validity, dcs,
                     smsc)


def relative_validity(vp: int) -> dt.timedelta:
    """The duration a relative TP-VP octet stands for (23.040 9.2.3.12.1)."""
    if vp <= 143:
        return dt.timedelta(minutes=(vp + 1) * 5)
    if vp <= 167:
        return dt.timedelta(hours=12, minutes=(vp - 143) * 30)
    if vp <= 196:
        return dt.timedelta(days=vp - 166)
    return dt.timedelta(weeks=vp - 192)


def validity_octet(period: dt.timedelta) -> int:
    """The smallest relative TP-VP at least as long as period (capped at 63 weeks)."""
    minutes = max(0.0, period.total_seconds() / 60)
    if minutes <= 720:
        return max(0, -(-int(minutes) // 5) - 1)
    if minutes <= 1440:
        return 143 + -(-int(minutes - 720) // 30)
    days = -(-int(minutes) // 1440)
    if days <= 30:
        return 166 + days
    return min(255, 192 + -(-days // 7))


def encode_submit_pdu(
    recipient: str | Address,
    text: str,
    *,
    alphabet: Alphabet,
    concat: Concat | None = None,
    request_report: bool = False,
    validity: dt.timedelta | None = None,
    smsc: str | None = None,
    message_ref: int = 0,
) -> SubmitPdu:
    """One SMS-SUBMIT TPDU for text that fits one message (see multipart.encode_submit)."""
    address = recipient if isinstance(recipient, Address) else Address.parse(recipient)
    if address.alphanumeric:
        raise PduError(f"cannot send to a non-numeric address: {address.number!r}")
    header = concat.element() if concat else b""
    udl, ud = encode_user_data(text, alphabet, header)
    first = MTI_SUBMIT
    if validity is not None:
        first |= 0x10  # TP-VPF = relative
    if request_report:
        first |= 0x20
    if header:
        first |= 0x40
    tpdu = bytearray((first, message_ref & 0xFF))
    tpdu += encode_address(address)
    tpdu += bytes((0x00, dcs_for(alphabet)))
    if validity is not None:
        tpdu.append(validity_octet(validity))
    tpdu.append(udl)
    tpdu += ud
    whole = encode_smsc(smsc) + bytes(tpdu)
    return SubmitPdu(whole.hex().upper(), len(tpdu), concat)


def encode_deliver_pdu(
    sender: str | Address,
    text: str,
    *,
    alphabet: Alphabet,
    timestamp: dt.datetime,
    concat: Concat | None = None,
    smsc: str | None = None,
    status_report_indication: bool = False,
) -> str:
    """An SMS-DELIVER PDU as a modem would show it (for tests and the round trip)."""
    address = sender if isinstance(sender, Address) else Address.parse(sender)
    header = concat.element() if concat else b""
    udl, ud = encode_user_data(text, alphabet, header)
    first = MTI_DELIVER | 0x04  # TP-MMS set: no more messages waiting
    if status_report_indication:
        first |= 0x20
    if header:
        first |= 0x40
    tpdu = bytes((first,)) + encode_address(address) + bytes((0x00, dcs_for(alphabet)))
    tpdu += encode_timestamp(timestamp) + bytes((udl,)) + ud
    return (encode_smsc(smsc) + tpdu).hex().upper()


def encode_status_report_pdu(
    message_ref: int,
    recipient: str,
    *,
    status: int,
    timestamp: dt.datetime,
    discharge_time: dt.datetime,
    smsc: str | None = None,
) -> str:
    """An SMS-STATUS-REPORT PDU (for tests and the round trip)."""
    tpdu = bytes((MTI_STATUS_REPORT, message_ref & 0xFF)) + encode_address(Address.parse(recipient))
    tpdu += encode_timestamp(timestamp) + encode_timestamp(discharge_time) + bytes((status,))
    return (encode_smsc(smsc) + tpdu).hex().upper()

