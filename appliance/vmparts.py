"""The pure parts of voicemail: WAV lengths, file names, PINs, addresses and the e-mail text.

Nothing here does I/O or reads a clock; `voicemail.py` feeds it bytes, rows and instants.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import struct
import unicodedata
import urllib.parse
from datetime import datetime, tzinfo

from .config.types import normalize_email

#: A recording with less audio than this is a caller who hung up at the beep.
MIN_AUDIO_S = 1.0
#: Bytes of a WAV file read to find its header (pjsua2 writes a 44-byte one).
WAV_HEAD_BYTES = 4096
#: PBKDF2 rounds for PINs: check_pin runs on the event loop, and a Raspberry Pi does
#: about a million SHA-256 rounds a second, so this costs it ~20 ms.
PIN_ITERATIONS = 20_000
PIN_RE = re.compile(r"[0-9]{4,12}")
BOX_KEY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
LANGUAGES = ("ru", "en")

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
# Characters that have a meaning in an address header: never let them through from config.
_ADDRESS_SPECIALS = set('<>,;:"()[]\\')


def wav_seconds(head: bytes, file_size: int) -> float | None:
    """Seconds of audio in a WAV file from its first bytes and its size; None if not a WAV.

    A recorder that was killed leaves the data chunk's size at 0 (or 0xFFFFFFFF): then the
    audio is whatever follows the header, as far as the file goes.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or file_size < 12:
        return None
    pos = 12
    byte_rate = 0
    while pos + 8 <= len(head):
        chunk_id = head[pos:pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(head):
                return None
            _fmt, channels, rate, byte_rate, _align, _bits = struct.unpack_from(
                "<HHIIHH", head, body)
            if channels == 0 or rate == 0:
                return None
        elif chunk_id == b"data":
            if byte_rate <= 0:
                return None  # no (usable) fmt chunk before the data
            available = max(0, file_size - body)
            data = available if size in (0, 0xFFFFFFFF) else min(size, available)
            return data / byte_rate
        pos = body + size + (size & 1)  # chunks are padded to an even length
    return None


def safe_name(text: str) -> str:
    """A file name stem made of [A-Za-z0-9._-] only, from a call id (never '..', never empty)."""
    name = _UNSAFE_NAME.sub("_", text)[:64].lstrip(".")
    return name or "message"


def valid_box_key(key: str) -> bool:
    """Whether `key` is a voicemail box key (the config's key syntax), safe in a path."""
    return BOX_KEY_RE.fullmatch(key) is not None


def valid_address(text: str) -> bool:
    """Whether `text` is one plain e-mail address safe to put in a header."""
    if any(unicodedata.category(c)[0] == "C" or c in _ADDRESS_SPECIALS for c in text):
        return False
    try:
        normalize_email(text)
    except ValueError:
        return False
    return True


def parse_emails(raw: str | None) -> list[str]:
    """The addresses of a box's `notify_emails` JSON: the valid ones, each once, in order."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    if not isinstance(value, list):
        return []
    found = [v.strip() for v in value if isinstance(v, str)]
    return list(dict.fromkeys(v for v in found if valid_address(v)))


def valid_pin(pin: str) -> bool:
    """Whether `pin` is acceptable as a PIN: 4-12 digits (what a phone keypad can enter)."""
    return PIN_RE.fullmatch(pin) is not None


def hash_pin(pin: str, salt: bytes | None = None, iterations: int = PIN_ITERATIONS) -> str:
    """The stored form of a PIN: `pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`."""
    if not valid_pin(pin):
        raise ValueError("a PIN is 4-12 digits")
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str | None) -> bool:
    """Whether `pin` matches a stored hash (constant-time compare; garbage never matches)."""
    if stored is None or not valid_pin(pin):
        return False
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2_sha256" or not parts[1].isdigit():
        return False
    iterations = int(parts[1])
    # Bounds: a corrupted row must not make one check take minutes.
    if not 1 <= iterations <= 1_000_000:
        return False
    try:
        salt, expected = bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        return False
    if not salt or len(expected) != 32:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def header_text(text: str, limit: int = 80) -> str:
    """Text from a caller or the config made fit for a mail header: one line, no controls."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(cleaned.split())[:limit].rstrip()


def caller_label(caller: str) -> str:
    """How a caller is shown in a mail: the number of a SIP/tel URI, with its display name.

    `"Ivan" <sip:+79161234567@trunk;user=phone>` -> `Ivan (+79161234567)`; anything that is
    not a URI is shown as it is (cleaned to one line).
    """
    text = caller.strip()
    name = ""
    if "<" in text and ">" in text[text.index("<"):]:
        start = text.index("<")
        name = text[:start].strip().strip('"').strip()
        text = text[start + 1:text.index(">", start)]
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0].split("?", 1)[0]
        text = urllib.parse.unquote(text, errors="replace")
    user, name = header_text(text), header_text(name)
    if name and user and name != user:
        return header_text(f"{name} ({user})")
    return user or name


def format_duration(seconds: float) -> str:
    """A message length as m:ss (rounded to the second)."""
    total = max(0, round(seconds))
    return f"{total // 60}:{total % 60:02d}"


_TEXT = {
    "ru": {
        "subject": "Голосовое сообщение от {caller} ({box})",
        "unknown": "номер не определён",
        "intro": "В голосовом ящике «{box}» новое сообщение.",
        "from": "От",
        "when": "Когда",
        "length": "Длительность",
        "attached": "Запись во вложении.",
        "too_large": "Запись слишком велика для письма: прослушайте её в веб-интерфейсе.",
        "not_attached": "Прослушать запись можно в веб-интерфейсе или с телефона.",
        "date": "%d.%m.%Y %H:%M",
    },
    "en": {
        "subject": "Voicemail from {caller} ({box})",
        "unknown": "unknown number",
        "intro": "There is a new message in the voicemail box \"{box}\".",
        "from": "From",
        "when": "Received",
        "length": "Length",
        "attached": "The recording is attached.",
        "too_large": "The recording is too large for e-mail: listen to it in the web UI.",
        "not_attached": "Listen to it in the web UI or from a phone.",
        "date": "%Y-%m-%d %H:%M",
    },
}


def compose(language: str, box_name: str, caller: str, received: datetime, zone: tzinfo,
            seconds: float, attachment: str) -> tuple[str, str]:
    """The subject and body of a new-message e-mail.

    `received` is an aware instant shown in `zone`; `attachment` is "attached",
    "too_large" or "not_attached".
    """
    text = _TEXT.get(language, _TEXT["ru"])
    who = caller_label(caller) or text["unknown"]
    box = header_text(box_name) or "-"
    local = received.astimezone(zone)
    zone_name = getattr(zone, "key", None) or local.tzname() or ""
    subject = text["subject"].format(caller=who, box=box)
    body = "\n".join([
        text["intro"].format(box=box),
        "",
        f"{text['from']}: {who}",
        f"{text['when']}: {local.strftime(text['date'])} ({zone_name})",
        f"{text['length']}: {format_duration(seconds)}",
        "",
        text[attachment],
        "",
    ])
    return subject, body
