"""SMS in PDU mode: the GSM7/UCS2 codec, TPDUs, multipart split and reassembly. Pure, no I/O.

* `decode_pdu(hex)` -> `SmsDeliver | SmsStatusReport | SmsSubmit`; raises only `PduError`.
* `encode_submit(number, text, ...)` -> `SubmitPdu` parts for AT+CMGS (hex, tpdu_length).
* `Reassembler` joins concatenated parts (any order, duplicates) with a time limit.
* `gsm7` packs and unpacks septets (also used for USSD).
"""

from __future__ import annotations

from . import gsm7
from .address import Address
from .errors import PduError
from .multipart import GAP, Message, Reassembler, choose_alphabet, encode_submit, split_text
from .pdu import (
    SmsDeliver,
    SmsStatusReport,
    SmsSubmit,
    SubmitPdu,
    decode_pdu,
    encode_deliver_pdu,
    encode_status_report_pdu,
    encode_submit_pdu,
)
from .userdata import Alphabet, Concat

__all__ = [
    "GAP", "Address", "Alphabet", "Concat", "Message", "PduError", "Reassembler", "SmsDeliver",
    "SmsStatusReport", "SmsSubmit", "SubmitPdu", "choose_alphabet", "decode_pdu",
    "encode_deliver_pdu", "encode_status_report_pdu", "encode_submit", "encode_submit_pdu",
    "gsm7", "split_text",
]
