"""USSD requests and replies: the three ways modems carry the text, and the reply's DCS. Pure.

* Huawei wants the request as packed GSM7 in hex (`*100#` is `AA180C3602`) and answers dcs 15
  in packed hex too (plain text only after AT^USSDMODE=0).
* Quectel and SIMCom with AT+CSCS="GSM" take and give plain text; with AT+CSCS="UCS2",
  UCS2 hex both ways.
* dcs 72 (0x48) replies are UCS2 hex whatever the character set (Cyrillic operator texts).

Decoding never raises: anything that isn't what the DCS promises passes through as text.
"""

from __future__ import annotations

import binascii
import enum

from hw.sms import gsm7

from .messages import UssdReply

DCS_GSM7 = 15
DCS_UCS2 = 72


class UssdEncoding(enum.Enum):
    """How a modem family carries USSD strings over AT."""

    PACKED_HEX = "packed-hex"
    TEXT = "text"
    UCS2_HEX = "ucs2-hex"


class UssdAlphabet(enum.Enum):
    """The alphabet a USSD (CBS) data coding scheme selects."""

    GSM7 = "gsm7"
    DATA8 = "8bit"
    UCS2 = "ucs2"


def alphabet_of(dcs: int | None) -> UssdAlphabet:
    """The alphabet of a USSD DCS (23.038 section 5); unknown groups read as GSM7."""
    if dcs is None:
        return UssdAlphabet.GSM7
    if dcs == 0x11:
        return UssdAlphabet.UCS2
    group = dcs >> 4
    if group in (0x4, 0x5, 0x6, 0x7, 0x9):
        bits = (dcs >> 2) & 0x3
        return {1: UssdAlphabet.DATA8, 2: UssdAlphabet.UCS2}.get(bits, UssdAlphabet.GSM7)
    if group == 0xF:
        return UssdAlphabet.DATA8 if dcs & 0x04 else UssdAlphabet.GSM7
    return UssdAlphabet.GSM7


def _hex_bytes(text: str) -> bytes | None:
    cleaned = "".join(text.split())
    if not cleaned or len(cleaned) % 2:
        return None
    try:
        return binascii.unhexlify(cleaned)
    except (binascii.Error, ValueError):
        return None


def encode_request(code: str, encoding: UssdEncoding) -> tuple[str, int]:
    """The string and DCS for AT+CUSD=1,"<string>",<dcs>; ValueError for what can't be sent."""
    if encoding is UssdEncoding.PACKED_HEX:
        try:
            return gsm7.pack_ussd(code).hex().upper(), DCS_GSM7
        except gsm7.Gsm7Error as err:
            raise ValueError(str(err)) from None
    if encoding is UssdEncoding.UCS2_HEX:
        return code.encode("utf-16-be").hex().upper(), DCS_GSM7
    # Plain text goes inside the quotes of the command line as it is.
    if '"' in code or "\r" in code or "\n" in code:
        raise ValueError(f"not a USSD string: {code!r}")
    if not gsm7.fits(code):
        raise ValueError(f"USSD text outside the GSM alphabet: {code!r}")
    return code, DCS_GSM7


def request_command(code: str, encoding: UssdEncoding) -> str:
    """The whole AT+CUSD command for a request (or the answer in an open session)."""
    payload, dcs = encode_request(code, encoding)
    return f'AT+CUSD=1,"{payload}",{dcs}'


CANCEL_COMMAND = "AT+CUSD=2"


def _ucs2(data: bytes) -> str:
    return data[: len(data) // 2 * 2].decode("utf-16-be", errors="replace")


def decode_text(payload: str, dcs: int | None, encoding: UssdEncoding) -> str:
    """The reply's text, by its DCS and how the modem family carries strings."""
    alphabet = alphabet_of(dcs)
    data = _hex_bytes(payload)
    if alphabet is UssdAlphabet.UCS2:
        if data is not None and len(data) % 2 == 0:
            return _ucs2(data)
        return payload
    if alphabet is UssdAlphabet.DATA8:
        return data.decode("latin-1") if data is not None else payload
    if encoding is UssdEncoding.PACKED_HEX and data is not None:
        return gsm7.unpack_ussd(data)
    if encoding is UssdEncoding.UCS2_HEX and data is not None and len(data) % 2 == 0:
        return _ucs2(data)
    # Plain text (CSCS="GSM"): a reply of digits only must not be read as hex.
    return payload


def decode_reply(reply: UssdReply, encoding: UssdEncoding) -> str:
    """The text of a +CUSD reply ('' when it carries none)."""
    if reply.payload is None:
        return ""
    return decode_text(reply.payload, reply.dcs, encoding)
