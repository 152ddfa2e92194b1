"""SMS and USSD result lines: +CMTI/+CDSI, +CMT/+CDS, +CMGR/+CMGL, +CMGS, +CUSD. Pure.

+CMT, +CDS, +CMGR and +CMGL are followed by a second line holding the PDU; the header parsers
here read the first line and `with_pdu` completes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .calls import Urc
from .fields import arg, split_args, to_int


@dataclass(frozen=True)
class MessageStored(Urc):
    """+CMTI (a message) or +CDSI (a status report) saved at storage/index; read with AT+CMGR."""

    storage: str
    index: int
    report: bool = False


@dataclass(frozen=True)
class MessagePushed(Urc):
    """+CMT (a message) or +CDS (a status report) pushed with its PDU, not stored."""

    length: int | None
    pdu: str = ""
    report: bool = False
    alpha: str | None = None


@dataclass(frozen=True)
class StoredMessage(Urc):
    """+CMGR (index None) or +CMGL header and its PDU line."""

    index: int | None
    stat: int | None
    length: int | None
    pdu: str = ""
    alpha: str | None = None


@dataclass(frozen=True)
class MessageSent(Urc):
    """+CMGS: <mr>: the SMSC took the message; status reports carry the same reference."""

    reference: int


@dataclass(frozen=True)
class StorageFull(Urc):
    """Huawei ^SMMEMFULL: no more +CMTI until messages are deleted."""

    storage: str


@dataclass(frozen=True)
class UssdReply(Urc):
    """+CUSD: <m>[,"<str>",<dcs>]; m 0 done, 1 more expected, 2 ended, 4 unsupported, 5 timeout."""

    status: int
    payload: str | None = None
    dcs: int | None = None

    @property
    def session_open(self) -> bool:
        """True when the network waits for our answer (AT+CUSD=1,"<answer>")."""
        return self.status == 1


def parse_cmti(rest: str, report: bool = False) -> MessageStored | None:
    """+CMTI: "<mem>",<index> (the index may be -1 on some firmwares: sweep with +CMGL then)."""
    fields = split_args(rest)
    index = to_int(arg(fields, 1))
    if index is None:
        return None
    return MessageStored(arg(fields, 0) or "", index, report)


def parse_cmt(rest: str, report: bool = False) -> MessagePushed | None:
    """+CMT: [<alpha>],<length> / +CDS: <length> (PDU mode; the PDU is the next line)."""
    fields = split_args(rest)
    length = to_int(arg(fields, len(fields) - 1))
    if length is None or length < 0:
        return None
    alpha = arg(fields, 0) if len(fields) > 1 else None
    return MessagePushed(length, "", report, alpha)


def parse_cmgr(rest: str) -> StoredMessage | None:
    """+CMGR: <stat>,[<alpha>],<length> (PDU mode)."""
    fields = split_args(rest)
    stat = to_int(arg(fields, 0))
    length = to_int(arg(fields, len(fields) - 1))
    if stat is None or length is None:
        return None
    return StoredMessage(None, stat, length, "", arg(fields, 1) if len(fields) > 2 else None)


def parse_cmgl(rest: str) -> StoredMessage | None:
    """+CMGL: <index>,<stat>,[<alpha>],<length> (PDU mode)."""
    fields = split_args(rest)
    index, stat = to_int(arg(fields, 0)), to_int(arg(fields, 1))
    length = to_int(arg(fields, len(fields) - 1))
    if index is None or stat is None or length is None or len(fields) < 3:
        return None
    return StoredMessage(index, stat, length, "", arg(fields, 2) if len(fields) > 3 else None)


def parse_cmgs(rest: str) -> MessageSent | None:
    """+CMGS: <mr>."""
    ref = to_int(arg(split_args(rest), 0))
    return None if ref is None else MessageSent(ref)


def parse_smmemfull(rest: str) -> StorageFull:
    """Huawei ^SMMEMFULL: "<mem>"."""
    return StorageFull(arg(split_args(rest), 0) or "")


def parse_cusd(rest: str) -> UssdReply | None:
    """+CUSD: <m>[,"<str>"[,<dcs>]]; the string may hold commas and line breaks."""
    head, _, tail = rest.partition(",")
    status = to_int(head)
    if status is None:
        return None
    tail = tail.strip()
    if not tail:
        return UssdReply(status)
    if tail.startswith('"'):
        end = tail.rfind('"')
        if end <= 0:
            return UssdReply(status, tail[1:], None)
        payload, after = tail[1:end], tail[end + 1:]
        return UssdReply(status, payload, to_int(after.strip().lstrip(",")))
    # Unquoted payload (seen on some firmwares): the last field is the DCS if it is a number.
    fields = split_args(tail)
    dcs = to_int(fields[-1]) if len(fields) > 1 else None
    payload = ",".join(fields[:-1]) if dcs is not None else tail
    return UssdReply(status, payload, dcs)


def with_pdu(header: MessagePushed | StoredMessage, pdu_line: str) -> MessagePushed | StoredMessage:
    """The header completed by the PDU line that follows it."""
    return replace(header, pdu="".join(pdu_line.split()))
