"""Factory reset: the box goes back to its first-run wizard, for a new owner.

One writer transaction, then files. What goes:
* every web user, web session and API token (the wizard shows again: no administrator);
* the configuration: an empty BoxConfig is written over it (box settings back to defaults,
  the day/night switch too);
* the history: call records and legs, missed and blocked calls, SMS, USSD, the CRM cache and
  outbox, registrations, failed web logins, the audit log (the old owner's), and the admin's
  own prompt files
  (greetings in the old owner's voice);
* recordings and voicemail (rows and files) unless they are kept: the setting
  `factory_reset_keep_recordings` (default: kept; they are the only thing a reset cannot
  give back), overridden by `pbx factory-reset --wipe-recordings` / `--keep-recordings`.
Kept recordings stay as files under recordings/ and voicemail/ with their rows, but without
the call records that pointed at them.

What stays: the database schema, the box's TLS certificate and anything else under the data
directory that is the box's own rather than the owner's. One audit_log row records the reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from .config.model import BoxConfig
from .config.write import replace_config
from .control import BadRequest, ControlServer, Request

if TYPE_CHECKING:
    from .box import Box
    from .db import Database

log = logging.getLogger(__name__)

# Children before parents; a table a migration has not made yet is skipped. The web UI's
# sessions live in `web_sessions` (migration 11): deleting them logs every browser out.
ACCESS_TABLES = ("web_sessions", "api_tokens", "web_users")
HISTORY_TABLES = ("call_legs", "missed_calls", "blocked_calls", "call_records", "sms_parts",
                  "sms", "ussd_history", "event_outbox", "crm_contact_phones", "crm_contacts",
                  "crm_user_map", "registrations", "login_failures", "audit_log")
RECORDING_TABLES = ("voicemail_messages", "recordings")
# Folders under the data directory: always the owner's prompts; recordings unless kept.
PROMPT_DIRS = ("prompts",)
RECORDING_DIRS = ("recordings", "voicemail")


@dataclass(frozen=True)
class ResetReport:
    """What a reset removed (rows per table, files) and whether recordings were kept."""

    keep_recordings: bool
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for the control API and the CLI."""
        return asdict(self)


def _tables(conn: sqlite_utils.Database) -> set[str]:
    return set(conn.table_names())


def reset_database(conn: sqlite_utils.Database, *, keep_recordings: bool,
                   actor: str) -> ResetReport:
    """Empty configuration, access and history inside the caller's transaction."""
    raw = conn.conn
    present = _tables(conn)
    wipe = [*ACCESS_TABLES, *HISTORY_TABLES,
            *(() if keep_recordings else RECORDING_TABLES)]
    rows: dict[str, int] = {}
    for table in wipe:
        if table in present:
            rows[table] = raw.execute(f"DELETE FROM [{table}]").rowcount
    # Keys the wizard or the switches added (day_night) go too; defaults are written back.
    raw.execute("DELETE FROM box_settings")
    changes = replace_config(conn, BoxConfig(version=1)).changes
    for table, counted in changes.items():
        if counted.deleted:
            rows[table] = rows.get(table, 0) + counted.deleted
    raw.execute(
        "INSERT INTO audit_log (actor, area, action, object, after) VALUES (?, ?, ?, ?, ?)",
        (actor, "box", "factory_reset", None,
         json.dumps({"keep_recordings": keep_recordings, "rows": rows})))
    return ResetReport(keep_recordings=keep_recordings, rows=rows)


def _empty(folder: Path) -> int:
    """Remove everything inside folder (not the folder); how many files went."""
    if not folder.is_dir() or folder.is_symlink():
        return 0
    removed = 0
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and not entry.is_symlink():
                removed += sum(1 for p in entry.rglob("*") if not p.is_dir())
                shutil.rmtree(entry)
            else:
                entry.unlink()
                removed += 1
        except OSError as exc:  # one stubborn file must not stop the rest
            log.error("factory reset: %s not removed: %s", entry, exc)
    return removed


def remove_files(data_dir: Path, *, keep_recordings: bool) -> int:
    """Delete the owner's files under data_dir; how many went."""
    folders = [*PROMPT_DIRS, *(() if keep_recordings else RECORDING_DIRS)]
    return sum(_empty(data_dir / name) for name in folders)


def factory_reset(db: Database, data_dir: Path, *, keep_recordings: bool,
                  actor: str) -> ResetReport:
    """Reset the database (one transaction), then remove files. Blocking: not on the loop."""
    report = db.write(lambda c: reset_database(c, keep_recordings=keep_recordings,
                                               actor=actor))
    files = remove_files(data_dir, keep_recordings=keep_recordings)
    log.warning("factory reset by %s: %d rows, %d files removed, recordings %s", actor,
                sum(report.rows.values()), files, "kept" if keep_recordings else "wiped")
    return ResetReport(keep_recordings, report.rows, files)


async def reset_box(box: Box, *, keep_recordings: bool, actor: str) -> ResetReport:
    """Reset a running engine: hang up, reset, then reload (lines, phones, trunks let go)."""
    assert box.db is not None
    if box.switchboard is not None:
        # Calls in progress end first, so their records are complete before they are wiped.
        await box.switchboard.shutdown()
        box.switchboard.accepting = True
    if box.calllog is not None:
        await box.calllog.flush()
    db, data_dir = box.db, box.settings.data_dir
    report = await asyncio.get_running_loop().run_in_executor(
        None, lambda: factory_reset(db, data_dir, keep_recordings=keep_recordings,
                                    actor=actor))
    await box.reload()
    return report


def keep_recordings_of(body: Any, default: bool) -> bool:
    """The body of POST /factory-reset: nothing, or {"keep_recordings": bool}. Pure."""
    if body is None:
        return default
    if not isinstance(body, dict) or set(body) - {"keep_recordings"}:
        raise BadRequest('POST /factory-reset takes {"keep_recordings": true|false}')
    keep = body.get("keep_recordings", default)
    if not isinstance(keep, bool):
        raise BadRequest("'keep_recordings' must be true or false")
    return keep


def register(control: ControlServer, box: Box) -> None:
    """POST /factory-reset {"keep_recordings": bool?}: reset the running box."""

    async def handle(req: Request) -> dict[str, Any]:
        keep = keep_recordings_of(req.body, box.settings.factory_reset_keep_recordings)
        report = await reset_box(box, keep_recordings=keep, actor="control-api")
        return report.as_dict()

    control.route("POST", "/factory-reset", handle)
