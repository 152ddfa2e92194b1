"""Voicemail around the recorded file: storage, the outbox event, e-mail and the lamps.

The switchboard records the caller into `message_path()` and then calls `deliver()`; the
edge asks `counts()` for every message-summary NOTIFY, so the counts live in memory (loaded
by `start()`, refreshed by `reload()`, kept up to date by every change made here). Each
change to a box's messages calls `on_change` (the edge's `mailbox_changed`) for every
extension whose lamp that box lights: the box's own extension and its owner's.

Files live under <data_dir>/voicemail/<box>/<YYYY>/<MM>/<call id>.wav; rows keep the path
relative to the data directory, so a restored backup in another place still finds them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from . import vmparts
from .db import Database
from .mailer import Mailer
from .presence import MessageSummary

log = logging.getLogger(__name__)

#: Larger recordings are not attached (mail servers refuse big mails); the mail says so.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
#: Wrong PINs in a row that lock a box against listening from a phone, and for how long.
PIN_TRIES = 5
PIN_LOCKOUT = timedelta(minutes=15)
#: Seconds stop() gives mails in flight before it cancels them.
STOP_GRACE_S = 1.0


class VoicemailError(Exception):
    """A voicemail request that cannot be done (unknown box or message, bad PIN format)."""


@dataclass(frozen=True)
class BoxInfo:
    """A voicemail box as delivery and the lamps need it."""

    key: str
    id: int
    name: str
    extension: str | None
    owner_extension: str | None
    owner_email: str | None
    emails: tuple[str, ...]
    attach_audio: bool
    language: str  # of its e-mails: the box's own, else the box settings', else ru

    @property
    def lamps(self) -> frozenset[str]:
        """The extensions whose message-waiting lamp shows this box."""
        return frozenset(e for e in (self.extension, self.owner_extension) if e)

    @property
    def recipients(self) -> list[str]:
        """Who gets its e-mails: its own list, else its owner."""
        if self.emails:
            return list(self.emails)
        owner = self.owner_email
        return [owner] if owner and vmparts.valid_address(owner) else []


@dataclass(frozen=True)
class VoicemailMessage:
    """One stored (not deleted) message."""

    id: int
    box: str
    caller: str
    path: Path  # absolute
    duration_s: float | None
    created_at: str  # ISO-8601 UTC
    is_read: bool
    call_uuid: str | None


def _stamp(when: datetime) -> str:
    """An instant as the ISO-8601 UTC text of the timestamp columns."""
    utc = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _setting(conn: Any, key: str) -> Any:
    row = conn.execute("SELECT value FROM box_settings WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    try:
        return json.loads(row[0])
    except ValueError:
        return None


def _zone(conn: Any) -> tzinfo:
    name = _setting(conn, "time_zone")
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("Europe/Moscow")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def load_boxes(conn: Any) -> dict[str, BoxInfo]:
    """Every voicemail box, read in one go (a sqlite3 connection)."""
    default = _setting(conn, "language")
    default = default if default in vmparts.LANGUAGES else "ru"
    rows = conn.execute(
        "SELECT b.key, b.id, b.name, b.extension, e.extension, e.email, b.notify_emails, "
        "b.attach_audio, b.language FROM voicemail_boxes b "
        "LEFT JOIN employees e ON e.id = b.employee_id").fetchall()
    return {key: BoxInfo(key=key, id=box_id, name=name or key, extension=ext,
                         owner_extension=owner, owner_email=owner_email,
                         emails=tuple(vmparts.parse_emails(emails)),
                         attach_audio=bool(attach), language=language or default)
            for key, box_id, name, ext, owner, owner_email, emails, attach, language in rows}


def load_counts(conn: Any) -> dict[str, tuple[int, int]]:
    """Each box's (new, old) messages, not deleted, by box key."""
    counts: dict[str, list[int]] = {}
    for key, is_read, n in conn.execute(
            "SELECT box_key, is_read, count(*) FROM voicemail_messages "
            "WHERE deleted_at IS NULL AND box_key IS NOT NULL GROUP BY box_key, is_read"):
        counts.setdefault(key, [0, 0])[1 if is_read else 0] += n
    return {k: (v[0], v[1]) for k, v in counts.items()}


class Voicemail:
    """Voicemail messages of every box: files, rows, e-mail and lamps."""

    def __init__(self, db: Database, data_dir: Path, mailer: Mailer,
                 now: Callable[[], datetime]) -> None:
        """Nothing is read until `start()`; `now` is the clock (aware, or naive UTC)."""
        self.db = db
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "voicemail"
        self.mailer = mailer
        self.now = now
        self._boxes: dict[str, BoxInfo] = {}
        self._counts: dict[str, tuple[int, int]] = {}
        self._by_extension: dict[str, frozenset[str]] = {}
        self._on_change: Callable[[str], None] = lambda _extension: None
        self._mails: set[asyncio.Task[None]] = set()
        self._pin_failures: dict[str, list[datetime]] = {}

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the boxes and every box's counts (before the edge asks for any).

        Messages stored before their call record existed are linked to it now.
        """
        linked = await self.db.awrite(lambda c: link_calls(c.conn))
        if linked:
            log.info("voicemail: %d message(s) linked to their call records", linked)
        boxes, counts = await self._read(lambda c: (load_boxes(c), load_counts(c)))
        self._boxes, self._counts = boxes, counts
        self._index()

    async def reload(self) -> None:
        """Re-read the boxes and counts after a configuration change; relight changed lamps."""
        before = {ext: self.counts(ext) for ext in self._by_extension}
        await self.start()
        after = {ext: self.counts(ext) for ext in self._by_extension}
        for ext in sorted(before.keys() | after.keys()):
            if before.get(ext, MessageSummary()) != after.get(ext, MessageSummary()):
                self._notify(ext)

    def attach(self, on_change: Callable[[str], None]) -> None:
        """Call `on_change(extension)` whenever that extension's lamp may have changed."""
        self._on_change = on_change

    async def drain(self) -> None:
        """Wait until every e-mail in flight is sent or given up."""
        while self._mails:
            await asyncio.gather(*list(self._mails), return_exceptions=True)

    async def stop(self) -> None:
        """Give mails in flight a moment, then cancel them (they are logged as not sent)."""
        if not self._mails:
            return
        _done, pending = await asyncio.wait(list(self._mails), timeout=STOP_GRACE_S)
        for task in pending:
            log.warning("voicemail: shutting down with an e-mail not sent yet")
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # --- recording -----------------------------------------------------------------------
    def message_path(self, box: str, call_id: str) -> Path:
        """Where to record a new message: an absolute path, its directories created.

        data_dir/voicemail/<box>/<YYYY>/<MM>/<call_id>.wav (month of `now`, UTC); a second
        message of the same call gets `-2`, `-3`... VoicemailError for a malformed box key.
        """
        if not vmparts.valid_box_key(box):
            raise VoicemailError(f"not a voicemail box key: {box!r}")
        when = self.now()
        when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        folder = self.root / box / f"{when.year:04d}" / f"{when.month:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = vmparts.safe_name(call_id)
        path = folder / f"{stem}.wav"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.wav"
        return path

    async def deliver(self, box: str, caller: str, call_id: str, path: Path,
                      duration_s: float) -> int | None:
        """Store a finished recording as a new message; its id, or None if it was dropped.

        Less than MIN_AUDIO_S of audio (the caller hung up at the beep) or a missing file:
        nothing is stored (the file is deleted). Otherwise one transaction writes the
        message row and a `voicemail.new` event_outbox row, the lamps are updated, and the
        e-mail goes out in the background (retried; it never raises into the call).
        `call_id` is the call record's uuid; the row links to it when it already exists.
        `path` must be under the data directory (ValueError otherwise); database errors
        propagate.
        """
        path = Path(path)
        relative = self._relative(path)
        measured = await asyncio.get_running_loop().run_in_executor(None, _measure, path)
        if measured is None:
            log.warning("voicemail: %s for box %s from %s is missing, nothing stored",
                        path, box, caller or "?")
            return None
        wav_s, size = measured
        seconds = wav_s if wav_s is not None else max(0.0, float(duration_s))
        if seconds < vmparts.MIN_AUDIO_S:
            await asyncio.get_running_loop().run_in_executor(None, _unlink, path)
            log.info("voicemail: %.1f s from %s for box %s is too short to keep (hung up at "
                     "the beep)", seconds, caller or "?", box)
            return None
        now = self.now()
        created = _stamp(now)

        def store(c: sqlite_utils.Database
                  ) -> tuple[int, dict[str, BoxInfo], tzinfo]:
            boxes = load_boxes(c.conn)
            info = boxes.get(box)
            found = c.conn.execute("SELECT id FROM call_records WHERE uuid = ?",
                                   (call_id,)).fetchone()
            call_row = found[0] if found else None
            message_id = int(c.conn.execute(
                "INSERT INTO voicemail_messages (box_id, box_key, call_id, call_uuid, caller, "
                "path, duration_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (info.id if info else None, box, call_row, call_id[:64] or None, caller,
                 relative, round(seconds, 2), created)).lastrowid or 0)
            payload = {"box": box, "caller": caller, "duration_s": round(seconds, 2),
                       "message_id": message_id, "call_uuid": call_id,
                       "path": relative, "created_at": created}
            c.conn.execute(
                "INSERT INTO event_outbox (created_at, kind, call_id, payload, next_attempt_at)"
                " VALUES (?, 'voicemail.new', ?, ?, ?)",
                (created, call_row, json.dumps(payload, ensure_ascii=False), created))
            return message_id, boxes, _zone(c.conn)

        message_id, boxes, zone = await self.db.awrite(store)
        # The freshest view of the boxes, read in the same transaction.
        self._boxes = boxes
        self._index()
        info = boxes.get(box)
        log.info("voicemail: message %d in box %s from %s, %.1f s (%d bytes)", message_id, box,
                 caller or "?", seconds, size)
        self._change(box, new=+1)
        if info is None:
            log.warning("voicemail: box %s is not configured (removed?): message %d kept, "
                        "not e-mailed", box, message_id)
        else:
            task = asyncio.get_running_loop().create_task(
                self._mail(message_id, info, caller, now, zone, seconds, path))
            self._mails.add(task)
            task.add_done_callback(self._mails.discard)
        return message_id

    # --- lamps ---------------------------------------------------------------------------
    def counts(self, extension: str) -> MessageSummary:
        """New and old messages for the extension's lamp, from memory (no I/O)."""
        new = old = 0
        for key in self._by_extension.get(extension, ()):
            n, o = self._counts.get(key, (0, 0))
            new += n
            old += o
        return MessageSummary(new=new, old=old)

    # --- listening -----------------------------------------------------------------------
    def messages(self, box: str) -> list[VoicemailMessage]:
        """The box's messages that are not deleted: unread first, then oldest first."""
        rows = self.db.read().conn.execute(
            "SELECT id, box_key, caller, path, duration_s, created_at, is_read, call_uuid "
            "FROM voicemail_messages WHERE box_key = ? AND deleted_at IS NULL "
            "ORDER BY is_read, created_at, id", (box,)).fetchall()
        return [VoicemailMessage(id=r[0], box=r[1], caller=r[2], path=self.data_dir / r[3],
                                 duration_s=r[4], created_at=r[5], is_read=bool(r[6]),
                                 call_uuid=r[7]) for r in rows]

    async def mark_read(self, message_id: int) -> None:
        """Mark a message heard (no-op if it already was); VoicemailError if it is gone."""
        read_at = _stamp(self.now())

        def mark(c: sqlite_utils.Database) -> tuple[str | None, bool]:
            row = self._live_row(c, message_id)
            if not row[1]:
                c.conn.execute("UPDATE voicemail_messages SET is_read = 1, read_at = ? "
                               "WHERE id = ?", (read_at, message_id))
            return row[0], bool(row[1])

        key, was_read = await self.db.awrite(mark)
        if key is not None and not was_read:
            self._change(key, new=-1, old=+1)

    async def delete(self, message_id: int) -> None:
        """Delete a message: the row keeps deleted_at, the file is removed."""
        deleted_at = _stamp(self.now())

        def remove(c: sqlite_utils.Database) -> tuple[str | None, bool, str]:
            key, is_read, path = self._live_row(c, message_id)
            c.conn.execute("UPDATE voicemail_messages SET deleted_at = ? WHERE id = ?",
                           (deleted_at, message_id))
            return key, bool(is_read), path

        key, was_read, relative = await self.db.awrite(remove)
        await asyncio.get_running_loop().run_in_executor(
            None, _unlink, self.data_dir / relative)
        log.info("voicemail: message %d deleted", message_id)
        if key is not None and was_read:
            self._change(key, old=-1)
        elif key is not None:
            self._change(key, new=-1)

    def check_pin(self, box: str, pin: str) -> bool:
        """Whether `pin` opens the box for listening from a phone (constant-time compare).

        A box without a PIN never opens this way: then only the owner's own desk phone
        may listen, without a PIN, and the switchboard decides that from the device.
        After PIN_TRIES wrong PINs in a row the box stays shut for PIN_LOCKOUT.
        """
        now = self.now()
        recent = [t for t in self._pin_failures.get(box, []) if now - t < PIN_LOCKOUT]
        if len(recent) >= PIN_TRIES:
            log.warning("voicemail: box %s is locked after %d wrong PINs", box, len(recent))
            return False
        row = self.db.read().conn.execute(
            "SELECT pin_hash FROM voicemail_boxes WHERE key = ?", (box,)).fetchone()
        if row is not None and vmparts.verify_pin(pin, row[0]):
            self._pin_failures.pop(box, None)
            return True
        self._pin_failures[box] = [*recent, now]
        return False

    def has_pin(self, box: str) -> bool:
        """Whether the box has a PIN (without one, only the owner's desk phone may listen)."""
        row = self.db.read().conn.execute(
            "SELECT pin_hash IS NOT NULL FROM voicemail_boxes WHERE key = ?", (box,)).fetchone()
        return bool(row and row[0])

    async def set_pin(self, box: str, pin: str | None) -> None:
        """Set (or with None remove) a box's PIN; VoicemailError for a bad PIN or box."""
        if pin is not None and not vmparts.valid_pin(pin):
            raise VoicemailError("a PIN is 4-12 digits")
        await self.db.awrite(lambda c: set_pin(c, box, pin))
        self._pin_failures.pop(box, None)

    # --- internals -----------------------------------------------------------------------
    async def _read(self, fn: Callable[[Any], Any]) -> Any:
        db = self.db
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: fn(db.read().conn))

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.data_dir.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"{path} is not under the data directory {self.data_dir}") from None

    @staticmethod
    def _live_row(c: sqlite_utils.Database, message_id: int) -> tuple[str | None, int, str]:
        row = c.conn.execute("SELECT box_key, is_read, path FROM voicemail_messages "
                             "WHERE id = ? AND deleted_at IS NULL", (message_id,)).fetchone()
        if row is None:
            raise VoicemailError(f"no voicemail message {message_id}")
        return row[0], int(row[1]), row[2]

    def _index(self) -> None:
        by_ext: dict[str, set[str]] = {}
        for info in self._boxes.values():
            for ext in info.lamps:
                by_ext.setdefault(ext, set()).add(info.key)
        self._by_extension = {ext: frozenset(keys) for ext, keys in by_ext.items()}

    def _change(self, box: str, new: int = 0, old: int = 0) -> None:
        n, o = self._counts.get(box, (0, 0))
        self._counts[box] = (max(0, n + new), max(0, o + old))
        info = self._boxes.get(box)
        for ext in sorted(info.lamps if info else ()):
            self._notify(ext)

    def _notify(self, extension: str) -> None:
        try:
            self._on_change(extension)
        except Exception:  # a lamp must never break storing a message
            log.exception("voicemail: lamp update for %s failed", extension)

    async def _mail(self, message_id: int, info: BoxInfo, caller: str, received: datetime,
                    zone: tzinfo, seconds: float, path: Path) -> None:
        what = f"voicemail message {message_id} (box {info.key})"
        try:
            to = info.recipients
            if not to:
                log.info("%s not e-mailed: the box has no e-mail address", what)
                return
            attachments: list[tuple[str, bytes, str]] = []
            attachment = "not_attached"
            if info.attach_audio:
                data = await asyncio.get_running_loop().run_in_executor(None, _slurp, path)
                if data is None:
                    attachment = "too_large"
                elif data:
                    attachments.append((f"voicemail-{message_id}.wav", data, "audio/wav"))
                    attachment = "attached"
            aware = received if received.tzinfo else received.replace(tzinfo=UTC)
            subject, body = vmparts.compose(info.language, info.name, caller, aware, zone,
                                            seconds, attachment)
            if await self.mailer.send_with_retries(to, subject, body, attachments, what=what):
                stamp = _stamp(self.now())
                await self.db.awrite(lambda c: c.conn.execute(
                    "UPDATE voicemail_messages SET notified_at = ? WHERE id = ?",
                    (stamp, message_id)))
        except asyncio.CancelledError:
            raise
        except Exception:  # the e-mail is a side effect of a stored message: log, go on
            log.exception("%s: e-mail failed", what)


def link_calls(conn: Any) -> int:
    """Link messages whose call record was written after them; how many were linked."""
    cur = conn.execute(
        "UPDATE voicemail_messages SET call_id = (SELECT r.id FROM call_records r "
        "WHERE r.uuid = voicemail_messages.call_uuid) WHERE call_id IS NULL "
        "AND call_uuid IS NOT NULL AND EXISTS (SELECT 1 FROM call_records r "
        "WHERE r.uuid = voicemail_messages.call_uuid)")
    return int(cur.rowcount or 0)


def list_messages(conn: Any, box: str | None = None, *,
                  deleted: bool = False) -> list[dict[str, Any]]:
    """Stored messages (of one box, or all), newest first, as plain data (CLI, web UI)."""
    where = ["1 = 1" if deleted else "m.deleted_at IS NULL"]
    params: list[Any] = []
    if box is not None:
        where.append("m.box_key = ?")
        params.append(box)
    rows = conn.execute(
        "SELECT m.id, m.box_key, m.caller, m.duration_s, m.created_at, m.is_read, "
        "m.notified_at, m.deleted_at, m.path, m.call_uuid FROM voicemail_messages m "
        f"WHERE {' AND '.join(where)} ORDER BY m.created_at DESC, m.id DESC", params)
    names = ("id", "box", "caller", "duration_s", "created_at", "read", "emailed_at",
             "deleted_at", "path", "call_uuid")
    return [dict(zip(names, (*r[:5], bool(r[5]), *r[6:]), strict=True)) for r in rows]


def set_pin(c: sqlite_utils.Database, box: str, pin: str | None) -> None:
    """Store a box's PIN hash in a write transaction (the CLI uses it offline too)."""
    stored = vmparts.hash_pin(pin) if pin is not None else None
    cur = c.conn.execute("UPDATE voicemail_boxes SET pin_hash = ? WHERE key = ?", (stored, box))
    if cur.rowcount == 0:
        raise VoicemailError(f"no voicemail box {box!r}")


def _measure(path: Path) -> tuple[float | None, int] | None:
    """(seconds of audio if it is a WAV, size) of a file, None if it is missing."""
    try:
        with path.open("rb") as f:
            head = f.read(vmparts.WAV_HEAD_BYTES)
            size = path.stat().st_size
    except OSError:
        return None
    return vmparts.wav_seconds(head, size), size


def _slurp(path: Path) -> bytes | None:
    """A recording's bytes to attach; None if too large; b'' if it is gone (deleted)."""
    try:
        if path.stat().st_size > MAX_ATTACHMENT_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return b""


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("voicemail: cannot remove %s: %s", path, exc)
