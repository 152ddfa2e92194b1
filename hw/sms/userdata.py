"""TP-DCS alphabets, the user data header (concatenation) and TP-UD encoding and decoding."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from . import gsm7
from .errors import PduError

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08


class Alphabet(enum.Enum):
    """The character set of a message body."""

    GSM7 = "gsm7"
    DATA8 = "8bit"
    UCS2 = "ucs2"


def alphabet_of(dcs: int) -> Alphabet:
    """The alphabet a TP-DCS octet selects (23.038 section 4); reserved codings read as GSM7."""
    group = dcs >> 4
    if group <= 0x7:
        # General data coding (0x0-0x3) and automatic deletion (0x4-0x7): bits 3-2.
        bits = (dcs >> 2) & 0x3
        return {0: Alphabet.GSM7, 1: Alphabet.DATA8, 2: Alphabet.UCS2}.get(bits, Alphabet.GSM7)
    if group == 0xE:
        return Alphabet.UCS2
    if group == 0xF:
        return Alphabet.DATA8 if dcs & 0x04 else Alphabet.GSM7
    # 0xC/0xD message waiting indication groups use GSM7; 0x8-0xB are reserved: the spec
    # says to assume GSM7 rather than drop the message.
    return Alphabet.GSM7


def dcs_for(alphabet: Alphabet) -> int:
    """The plain TP-DCS octet for an alphabet (no class, not compressed)."""
    return {Alphabet.GSM7: 0x00, Alphabet.DATA8: 0x04, Alphabet.UCS2: 0x08}[alphabet]


@dataclass(frozen=True)
class Concat:
    """A concatenated-message information element: this part's place in the whole."""

    reference: int
    total: int
    seq: int
    ref_bits: int = 8

    def element(self) -> bytes:
        """The information element (IEI, length, data) for this part."""
        if self.ref_bits == 16:
            return bytes((IEI_CONCAT_16, 4, self.reference >> 8 & 0xFF, self.reference & 0xFF,
                          self.total, self.seq))
        return bytes((IEI_CONCAT_8, 3, self.reference & 0xFF, self.total, self.seq))


def parse_udh(header: bytes) -> tuple[tuple[tuple[int, bytes], ...], Concat | None]:
    """The information elements of a UDH (without its length octet) and the concatenation, if any.

    Elements we don't use (national language shifts 0x24/0x25, ports, ...) are kept but ignored;
    a truncated element ends the list rather than failing the message.
    """
    elements: list[tuple[int, bytes]] = []
    concat: Concat | None = None
    pos = 0
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        data = header[pos + 2:pos + 2 + length]
        if len(data) < length:
            break
        elements.append((iei, data))
        pos += 2 + length
        candidate: Concat | None = None
        if iei == IEI_CONCAT_8 and length == 3:
            candidate = Concat(data[0], data[1], data[2], 8)
        elif iei == IEI_CONCAT_16 and length == 4:
            candidate = Concat(data[0] << 8 | data[1], data[2], data[3], 16)
        # 23.040: a concatenation element with total 0 or seq out of range is ignored.
        if candidate and 1 <= candidate.seq <= candidate.total:
            concat = candidate
    return tuple(elements), concat


@dataclass(frozen=True)
class UserData:
    """A decoded TP-UD: the header elements, the body as text and as raw payload."""

    text: str
    alphabet: Alphabet
    payload: bytes
    elements: tuple[tuple[int, bytes], ...] = ()
    concat: Concat | None = None
    truncated: bool = False


def decode_ucs2(payload: bytes) -> str:
    """UTF-16BE text; an odd trailing byte is dropped and a lone surrogate shown as U+FFFD."""
    return payload[: len(payload) // 2 * 2].decode("utf-16-be", errors="replace")


def decode_user_data(data: bytes, pos: int, udl: int, dcs: int, udhi: bool) -> UserData:
    """Decode the TP-UD starting at pos; tolerant of a TP-UDL longer than the data that came."""
    alphabet = alphabet_of(dcs)
    body = data[pos:]
    header = b""
    if udhi:
        if not body:
            raise PduError("UDH indicated but user data is empty")
        udhl = body[0]
        if 1 + udhl > len(body):
            raise PduError("user data header cut short")
        header = body[1:1 + udhl]
    elements, concat = parse_udh(header)
    header_octets = 1 + len(header) if udhi else 0
    if alphabet is Alphabet.GSM7:
        # UDL counts septets, the header included; the body starts on a septet boundary.
        header_septets = (header_octets * 8 + 6) // 7
        pad_bits = header_septets * 7 - header_octets * 8
        wanted = max(0, udl - header_septets)
        septets = gsm7.unpack(body[header_octets:], wanted, pad_bits)
        truncated = len(septets) < wanted
        payload = bytes(septets)
        return UserData(gsm7.decode(septets), alphabet, payload, elements, concat, truncated)
    wanted_octets = max(0, udl - header_octets)
    payload = body[header_octets:header_octets + wanted_octets]
    truncated = len(payload) < wanted_octets
    # 8-bit data has no character set; latin-1 keeps every byte visible and reversible.
    text = decode_ucs2(payload) if alphabet is Alphabet.UCS2 else payload.decode("latin-1")
    return UserData(text, alphabet, payload, elements, concat, truncated)


def encode_user_data(text: str, alphabet: Alphabet, header: bytes = b"") -> tuple[int, bytes]:
    """TP-UDL and TP-UD for text with an optional UDH (the elements, without the length octet)."""
    udh = bytes((len(header),)) + header if header else b""
    if alphabet is Alphabet.GSM7:
        try:
            septets = gsm7.encode(text)
        except gsm7.Gsm7Error as err:
            raise PduError(str(err)) from None
        header_septets = (len(udh) * 8 + 6) // 7
        pad_bits = header_septets * 7 - len(udh) * 8
        udl = header_septets + len(septets)
        if udl > 160:
            raise PduError(f"{udl} septets do not fit one message")
        return udl, udh + gsm7.pack(septets, pad_bits)
    if alphabet is Alphabet.UCS2:
        body = text.encode("utf-16-be", errors="surrogatepass")
    else:
        body = text.encode("latin-1", errors="replace")
    ud = udh + body
    if len(ud) > 140:
        raise PduError(f"{len(ud)} octets do not fit one message")
    return len(ud), ud
