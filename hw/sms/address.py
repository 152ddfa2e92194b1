"""TP addresses (numbers and alphanumeric senders), semi-octets and service-centre time stamps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import gsm7
from .errors import PduError

TON_UNKNOWN = 0
TON_INTERNATIONAL = 1
TON_NATIONAL = 2
TON_ALPHANUMERIC = 5
NPI_ISDN = 1
# Semi-octet digits beyond 0-9 (23.040 9.1.2.3); F is the filler of an odd-length number.
_DIGITS = "0123456789*#abc"
_FROM_DIGIT = {ch: i for i, ch in enumerate(_DIGITS)}


@dataclass(frozen=True)
class Address:
    """An originating or destination address: digits (or text) and the type of address."""

    number: str
    ton: int = TON_UNKNOWN
    npi: int = NPI_ISDN

    @classmethod
    def parse(cls, text: str) -> Address:
        """'+7900...' is international, plain digits of unknown type, anything else text."""
        if text.startswith("+") and len(text) > 1 and text[1:].isdigit():
            return cls(text[1:], TON_INTERNATIONAL, NPI_ISDN)
        if text and all(ch in "0123456789*#" for ch in text):
            return cls(text, TON_UNKNOWN, NPI_ISDN)
        return cls(text, TON_ALPHANUMERIC, 0)

    @property
    def alphanumeric(self) -> bool:
        """True for a text sender such as 'Bank'."""
        return self.ton == TON_ALPHANUMERIC

    def __str__(self) -> str:
        if self.ton == TON_INTERNATIONAL and self.number:
            return "+" + self.number
        return self.number


def encode_semi_octets(digits: str) -> bytes:
    """Swap-nibble BCD for digits (an odd count gets the F filler)."""
    try:
        values = [_FROM_DIGIT[ch] for ch in digits.lower()]
    except KeyError as err:
        raise PduError(f"not a phone number digit: {err.args[0]!r}") from None
    if len(values) % 2:
        values.append(0xF)
    return bytes(values[i] | (values[i + 1] << 4) for i in range(0, len(values), 2))


def decode_semi_octets(data: bytes, count: int | None = None) -> str:
    """Digits from swap-nibble BCD; stops at the F filler or after count digits."""
    out: list[str] = []
    for octet in data:
        for nibble in (octet & 0xF, octet >> 4):
            if nibble == 0xF or (count is not None and len(out) >= count):
                return "".join(out)
            out.append(_DIGITS[nibble])
    return "".join(out)


def encode_address(address: Address) -> bytes:
    """The TP-DA/TP-OA field: length in semi-octets, type of address, value."""
    toa = 0x80 | (address.ton & 0x7) << 4 | (address.npi & 0xF)
    if address.alphanumeric:
        try:
            value = gsm7.pack(gsm7.encode(address.number))
        except gsm7.Gsm7Error as err:
            raise PduError(str(err)) from None
        # The length counts the semi-octets actually used by the packed septets.
        length = (len(gsm7.encode(address.number)) * 7 + 3) // 4
        if length > 20:
            raise PduError("alphanumeric address longer than 11 characters")
        return bytes((length, toa)) + value
    if len(address.number) > 20:
        raise PduError("address longer than 20 digits")
    return bytes((len(address.number), toa)) + encode_semi_octets(address.number)


def decode_address(data: bytes, pos: int) -> tuple[Address, int]:
    """Decode a TP-OA/TP-DA/TP-RA at pos; returns the address and the position after it."""
    if pos + 2 > len(data):
        raise PduError("address field cut short")
    length, toa = data[pos], data[pos + 1]
    if length > 20:
        raise PduError(f"address length {length} semi-octets is over 20")
    octets = (length + 1) // 2
    end = pos + 2 + octets
    if end > len(data):
        raise PduError("address value cut short")
    value = data[pos + 2:end]
    ton, npi = (toa >> 4) & 0x7, toa & 0xF
    if ton == TON_ALPHANUMERIC:
        text = gsm7.decode(gsm7.unpack(value, length * 4 // 7))
        return Address(text, ton, npi), end
    return Address(decode_semi_octets(value, length), ton, npi), end


def encode_smsc(smsc: str | None) -> bytes:
    """The SMSC prefix of a PDU for AT+CMGS; '00' lets the modem use its own SMSC."""
    if not smsc:
        return b"\x00"
    address = Address.parse(smsc)
    if address.alphanumeric:
        raise PduError(f"not an SMSC number: {smsc!r}")
    toa = 0x80 | address.ton << 4 | address.npi
    value = encode_semi_octets(address.number)
    return bytes((len(value) + 1, toa)) + value


def decode_smsc(data: bytes) -> tuple[Address | None, int]:
    """The SMSC prefix: its address (None when empty) and where the TPDU starts."""
    if not data:
        raise PduError("empty PDU")
    length = data[0]
    if length == 0:
        return None, 1
    if length > 12 or 1 + length > len(data):
        raise PduError(f"bad SMSC length {length}")
    toa = data[1]
    digits = decode_semi_octets(data[2:1 + length])
    return Address(digits, (toa >> 4) & 0x7, toa & 0xF), 1 + length


def _swapped(octet: int) -> int | None:
    low, high = octet & 0xF, octet >> 4
    if low > 9 or high > 9:
        return None
    return low * 10 + high


def decode_timestamp(data: bytes, pos: int) -> tuple[dt.datetime | None, int]:
    """A 7-octet TP-SCTS at pos: the time (None if the digits make no date) and the next pos."""
    end = pos + 7
    if end > len(data):
        raise PduError("time stamp cut short")
    raw = data[pos:end]
    fields = [_swapped(octet) for octet in raw[:6]]
    tz_octet = raw[6]
    # The sign is bit 3 of the first (low) nibble; the rest is quarter hours in swapped BCD.
    tz_value = _swapped(tz_octet & 0xF7)
    if any(value is None for value in fields) or tz_value is None:
        return None, end
    year, month, day, hour, minute, second = (int(value or 0) for value in fields)
    quarters = -tz_value if tz_octet & 0x08 else tz_value
    try:
        zone = dt.timezone(dt.timedelta(minutes=15 * quarters))
        stamp = dt.datetime(2000 + year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None, end
    return stamp, end


def encode_timestamp(stamp: dt.datetime) -> bytes:
    """A 7-octet TP-SCTS for stamp (naive times are taken as UTC)."""
    offset = stamp.utcoffset() or dt.timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    values = (stamp.year % 100, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = bytearray((v % 10) << 4 | v // 10 for v in values)
    tz = abs(quarters)
    tz_octet = (tz % 10) << 4 | tz // 10
    if quarters < 0:
        tz_octet |= 0x08
    out.append(tz_octet)
    return bytes(out)
