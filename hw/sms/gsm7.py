"""The GSM 03.38 default alphabet: characters to septets and back, and septet packing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# The default alphabet, index = septet value (3GPP TS 23.038 section 6.2.1).
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
# The extension table, reached through ESCAPE (section 6.2.1.1).
EXTENSION = {
    0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}

_TO_BASIC = {ch: i for i, ch in enumerate(BASIC) if i != ESCAPE}
_TO_EXTENSION = {ch: code for code, ch in EXTENSION.items()}
CR = 0x0D


class Gsm7Error(ValueError):
    """A character that the GSM 7-bit alphabet cannot carry."""


def char_septets(ch: str) -> tuple[int, ...] | None:
    """The septets for one character (two for the extension table), None if it has none."""
    code = _TO_BASIC.get(ch)
    if code is not None:
        return (code,)
    ext = _TO_EXTENSION.get(ch)
    if ext is not None:
        return (ESCAPE, ext)
    return None


def fits(text: str) -> bool:
    """True if every character of text is in the default alphabet or its extension."""
    return all(ch in _TO_BASIC or ch in _TO_EXTENSION for ch in text)


def septet_count(text: str) -> int:
    """How many septets text takes (extension characters count twice)."""
    return sum(2 if ch in _TO_EXTENSION else 1 for ch in text)


def encode(text: str) -> list[int]:
    """Septets for text; raises Gsm7Error on a character outside the alphabet."""
    out: list[int] = []
    for ch in text:
        septets = char_septets(ch)
        if septets is None:
            raise Gsm7Error(f"not in the GSM 7-bit alphabet: {ch!r}")
        out.extend(septets)
    return out


def decode(septets: Iterable[int]) -> str:
    """Text for septets; never raises (unknown escapes read as the basic character)."""
    out: list[str] = []
    escaped = False
    for value in septets:
        value &= 0x7F
        if escaped:
            escaped = False
            ext = EXTENSION.get(value)
            if ext is not None:
                out.append(ext)
            elif value == ESCAPE:
                # ESC ESC is reserved for a future table: show a space, as the spec asks.
                out.append(" ")
            else:
                # 23.038: an unknown extension code is shown as the default-table character.
                out.append(BASIC[value])
        elif value == ESCAPE:
            escaped = True
        else:
            out.append(BASIC[value])
    return "".join(out)


def pack(septets: Sequence[int], pad_bits: int = 0) -> bytes:
    """Pack septets into octets, least significant bit first, after pad_bits fill bits."""
    acc = 0
    nbits = pad_bits
    out = bytearray()
    for value in septets:
        acc |= (value & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack(data: bytes, count: int | None = None, pad_bits: int = 0) -> list[int]:
    """Unpack septets from octets after pad_bits fill bits; count limits how many (None: all)."""
    available = max(0, (len(data) * 8 - pad_bits) // 7)
    if count is None or count > available:
        count = available
    value = int.from_bytes(data, "little") >> pad_bits
    return [(value >> (7 * i)) & 0x7F for i in range(count)]


def pack_ussd(text: str) -> bytes:
    """USSD packing (23.038 6.1.2.3.1): 7 spare bits at the end are filled with CR, not '@'."""
    septets = encode(text)
    if len(septets) % 8 == 7:
        septets.append(CR)
    return pack(septets)


def unpack_ussd(data: bytes) -> str:
    """Text from packed USSD octets, dropping the CR (or zero) that fills 7 spare bits."""
    septets = unpack(data)
    if septets and len(septets) % 8 == 0 and septets[-1] in (CR, 0):
        septets.pop()
    return decode(septets)
