"""Long messages: splitting text into SMS-SUBMIT parts, and reassembling received parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from . import gsm7
from .errors import PduError
from .pdu import SmsDeliver, SubmitPdu, encode_submit_pdu
from .userdata import Alphabet, Concat, decode_ucs2

# Per part with a concatenation header: 8-bit reference (050003..), 16-bit (060804..).
GSM7_SINGLE, UCS2_SINGLE = 160, 70
GSM7_PART = {8: 153, 16: 152}
UCS2_PART = {8: 67, 16: 66}
MAX_PARTS = 255
# Marks where a missing part would have been in a message delivered incomplete.
GAP = "[…]"


def choose_alphabet(text: str) -> Alphabet:
    """GSM7 when every character fits it, else UCS2 (Cyrillic is always UCS2)."""
    return Alphabet.GSM7 if gsm7.fits(text) else Alphabet.UCS2


def _utf16_length(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def split_text(text: str, *, ref_bits: int = 8) -> tuple[Alphabet, list[str]]:
    """The alphabet and the parts text is sent as; never cuts an escape pair or a code point."""
    alphabet = choose_alphabet(text)
    size: Callable[[str], int]
    if alphabet is Alphabet.GSM7:
        size, single, limit = gsm7.septet_count, GSM7_SINGLE, GSM7_PART[ref_bits]
    else:
        size, single, limit = _utf16_length, UCS2_SINGLE, UCS2_PART[ref_bits]
    if size(text) <= single:
        return alphabet, [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = size(ch)
        if used + cost > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    if current:
        parts.append("".join(current))
    if len(parts) > MAX_PARTS:
        raise PduError(f"text needs {len(parts)} parts, more than {MAX_PARTS}")
    return alphabet, parts


def encode_submit(
    recipient: str,
    text: str,
    *,
    reference: int = 0,
    ref_bits: int = 8,
    request_report: bool = False,
    validity: dt.timedelta | None = None,
    smsc: str | None = None,
) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for text: one, or several with a concatenation header sharing reference."""
    if ref_bits not in (8, 16):
        raise PduError("ref_bits must be 8 or 16")
    alphabet, parts = split_text(text, ref_bits=ref_bits)
    total = len(parts)
    reference &= 0xFF if ref_bits == 8 else 0xFFFF
    return [
        encode_submit_pdu(
            recipient, part, alphabet=alphabet,
            concat=Concat(reference, total, seq, ref_bits) if total > 1 else None,
            request_report=request_report, validity=validity, smsc=smsc,
        )
        for seq, part in enumerate(parts, start=1)
    ]


@dataclass(frozen=True)
class Message:
    """A whole received message, or what arrived of one when its time limit ran out."""

    sender: str
    text: str
    timestamp: dt.datetime | None
    parts_total: int = 1
    parts_received: tuple[int, ...] = (1,)
    missing: tuple[int, ...] = ()
    reference: int | None = None
    owner: str = ""

    @property
    def complete(self) -> bool:
        """False for a partial message delivered after the time limit."""
        return not self.missing


def _join(parts: list[SmsDeliver]) -> str:
    alphabets = {p.user_data.alphabet for p in parts}
    if alphabets == {Alphabet.GSM7}:
        # Joined septets first, so an escape pair a sender cut between parts still reads right.
        return gsm7.decode(b"".join(p.user_data.payload for p in parts))
    if alphabets == {Alphabet.UCS2}:
        # Likewise a surrogate pair cut between parts (chan_dongle splits on UTF-16 units).
        return decode_ucs2(b"".join(p.user_data.payload for p in parts))
    return "".join(p.text for p in parts)


@dataclass
class _Group:
    first_seen: float
    total: int
    reference: int
    parts: dict[int, SmsDeliver] = field(default_factory=dict)


class Reassembler:
    """Collects parts of concatenated messages; no clock of its own: callers pass `now`.

    Parts may come in any order and more than once; a group still incomplete `limit_s`
    seconds after its first part is handed out by `expire` as a partial message.
    """

    def __init__(self, limit_s: float = 600.0, max_groups: int = 256) -> None:
        self.limit_s = limit_s
        self.max_groups = max_groups
        self._groups: dict[tuple[str, str, int, int, int], _Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, part: SmsDeliver, now: float, *, owner: str = "") -> list[Message]:
        """Take one received PDU; returns the messages it completes (or that had to give way)."""
        concat = part.concat
        sender = str(part.sender)
        if concat is None or concat.total == 1:
            return [Message(sender, part.text, part.timestamp, owner=owner)]
        key = (owner, sender, concat.reference, concat.total, concat.ref_bits)
        out: list[Message] = []
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                # Bounded memory: the oldest incomplete message goes out as partial.
                oldest = min(self._groups, key=lambda k: self._groups[k].first_seen)
                out.append(self._finish(oldest))
            group = self._groups[key] = _Group(now, concat.total, concat.reference)
        group.parts.setdefault(concat.seq, part)
        if len(group.parts) == group.total:
            out.append(self._finish(key))
        return out

    def expire(self, now: float) -> list[Message]:
        """Partial messages whose time limit has passed by now."""
        due = [k for k, g in self._groups.items() if now - g.first_seen >= self.limit_s]
        return [self._finish(k) for k in due]

    def next_deadline(self) -> float | None:
        """When the next partial message falls due (None when nothing is pending)."""
        if not self._groups:
            return None
        return min(g.first_seen for g in self._groups.values()) + self.limit_s

    def _finish(self, key: tuple[str, str, int, int, int]) -> Message:
        group = self._groups.pop(key)
        owner, sender = key[0], key[1]
        seqs = sorted(group.parts)
        missing = tuple(s for s in range(1, group.total + 1) if s not in group.parts)
        if not missing:
            text = _join([group.parts[s] for s in seqs])
        else:
            pieces: list[str] = []
            for seq in range(1, group.total + 1):
                got = group.parts.get(seq)
                pieces.append(_join([got]) if got else GAP)
            text = "".join(pieces)
        first = group.parts[seqs[0]]
        return Message(sender, text, first.timestamp, group.total, tuple(seqs), missing,
                       group.reference, owner)
