"""The GSM 03.38 default alphabet: characters to septets, septet packing and UCS2 hex.

The simulator's own codec, written from 3GPP TS 23.038 and deliberately independent of
the product's (tests cross-check both against gsmmodem.pdu).
"""

from __future__ import annotations

# 3GPP TS 23.038 section 6.2.1: the default alphabet, indexed by septet value.
# 0x1B is the escape to the extension table and never stands for a character itself.
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
# Section 6.2.1.1: the extension table (each costs two septets: ESC + code).
EXTENSION = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}

_BASIC_INDEX = {ch: i for i, ch in enumerate(BASIC) if i != ESCAPE}
_EXTENSION_BY_CODE = {code: ch for ch, code in EXTENSION.items()}


class EncodingError(ValueError):
    """Text or data that the GSM 7-bit alphabet cannot carry."""


def fits(text: str) -> bool:
    """True if every character of text is in the default alphabet or its extension."""
    return all(ch in _BASIC_INDEX or ch in EXTENSION for ch in text)


def char_septets(ch: str) -> list[int]:
    """The septets of one character (two for extension characters)."""
    if ch in _BASIC_INDEX:
        return [_BASIC_INDEX[ch]]
    if ch in EXTENSION:
        return [ESCAPE, EXTENSION[ch]]
    raise EncodingError(f"{ch!r} is not in the GSM 7-bit alphabet")


def encode(text: str) -> list[int]:
    """Text as septet values (unpacked)."""
    out: list[int] = []
    for ch in text:
        out.extend(char_septets(ch))
    return out


def decode(septets: list[int]) -> str:
    """Septet values back to text; an unknown escape code reads as a space (23.038)."""
    out: list[str] = []
    escaped = False
    for s in septets:
        if escaped:
            out.append(_EXTENSION_BY_CODE.get(s, " "))
            escaped = False
        elif s == ESCAPE:
            escaped = True
        else:
            out.append(BASIC[s & 0x7F])
    return "".join(out)


def pack(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack septets LSB first into octets, after fill_bits zero bits (UDH alignment)."""
    acc = 0
    nbits = fill_bits
    out = bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Read count septets from packed octets, skipping fill_bits leading bits."""
    value = int.from_bytes(data, "little")
    available = (len(data) * 8 - fill_bits) // 7
    if count > available:
        raise EncodingError(f"{count} septets asked, {available} present")
    return [(value >> (fill_bits + 7 * i)) & 0x7F for i in range(count)]


def ussd_pack_hex(text: str) -> str:
    """USSD string as packed GSM7 hex; 7 spare bits are filled with CR (23.038 6.1.2.3.1)."""
    septets = encode(text)
    if len(septets) % 8 == 7:
        septets.append(0x0D)
    return pack(septets).hex().upper()


def ussd_unpack_hex(payload: str) -> str:
    """Packed GSM7 hex (a USSD string) back to text; the CR filler is dropped."""
    data = bytes.fromhex(payload)
    septets = unpack(data, len(data) * 8 // 7)
    if len(data) % 7 == 0 and septets and septets[-1] == 0x0D:
        septets.pop()
    return decode(septets)


def ucs2_hex(text: str) -> str:
    """Text as UCS2 (UTF-16BE) hex, as modems show it with CSCS="UCS2"."""
    return text.encode("utf-16-be").hex().upper()


def from_ucs2_hex(payload: str) -> str:
    """UCS2 hex back to text; raises ValueError if it is not hex of whole code units."""
    data = bytes.fromhex(payload)
    if len(data) % 2:
        raise ValueError("UCS2 hex must hold whole 16-bit units")
    return data.decode("utf-16-be")


def is_hex(text: str) -> bool:
    """True for a non-empty string of an even number of hex digits."""
    if not text or len(text) % 2:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
