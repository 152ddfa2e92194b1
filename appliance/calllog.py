"""Call records in SQLite: a row when the call starts, completed when it ends.

Writes go through the database's single writer without blocking the event
loop; a crash leaves started rows behind, and `close_interrupted` marks them
at the next start so the history never silently loses a call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

from .db import Database
from .switchboard import CallRecord

log = logging.getLogger(__name__)


def _ts(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat(timespec="milliseconds") if when else None


def close_interrupted(conn: sqlite_utils.Database) -> int:
    """Mark call records a crash left open as interrupted; returns how many."""
    now = _ts(datetime.now(UTC))
    cur = conn.execute(
        "UPDATE call_records SET ended_at = max(started_at, ?), disposition = 'interrupted',"
        " hangup_side = 'system' WHERE ended_at IS NULL",
        [now],
    )
    conn.execute(
        "UPDATE call_legs SET ended_at = ?, disposition = 'interrupted'"
        " WHERE ended_at IS NULL AND call_id IN"
        " (SELECT id FROM call_records WHERE disposition = 'interrupted')",
        [now],
    )
    return cur.rowcount


class DbCallLog:
    """The switchboard's CallLog backed by the call_records table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: set[asyncio.Task[None]] = set()

    def _submit(self, what: str, fn: Callable[[sqlite_utils.Database], object]) -> None:
        async def write() -> None:
            try:
                await self.db.awrite(fn)
            except Exception:
                log.exception("writing the call record (%s) failed", what)

        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def started(self, call: CallRecord) -> None:
        """Insert the call's row (ended_at NULL until it ends)."""
        row: dict[str, object] = {
            "uuid": call.call_id,
            "direction": call.direction,
            "caller": call.caller,
            "dialled": call.dialled,
            "started_at": _ts(call.started_at),
        }

        def write(conn: sqlite_utils.Database) -> None:
            if call.line:
                found = conn.execute("SELECT id FROM lines WHERE key = ?",
                                     [call.line]).fetchone()
                row["line_id"] = found[0] if found else None
            conn.table("call_records").insert(row)

        self._submit("start", write)

    def finished(self, call: CallRecord) -> None:
        """Complete the row and write one leg per contact that rang."""
        assert call.disposition is not None
        answered_at = _ts(call.answered_at)
        update: dict[str, object] = {
            "answered_at": answered_at,
            "ended_at": _ts(call.ended_at),
            "disposition": call.disposition.value,
            "hangup_side": call.hangup_side or "system",
            "sip_cause": call.sip_code if 100 <= call.sip_code <= 699 else None,
            "answered_by": call.answered_leg and call.answered_contact,
            "route": json.dumps({"dialled": call.dialled, "rang": call.rang,
                                 **({"transferred_to": call.transferred_to}
                                    if call.transferred_to else {}),
                                 **({"steps": call.plan.explain()} if call.plan else {}),
                                 **({"not_available": call.unavailable}
                                    if call.unavailable else {})}, ensure_ascii=False),
        }
        legs = [
            {
                "position": pos,
                "party_kind": "sip_uri",
                "extension": call.answered_extension
                if call.answered_extension and uri == call.answered_contact else call.dialled,
                "target": uri,
                "rang_at": _ts(call.started_at),
                "answered_at": answered_at if uri == call.answered_contact else None,
                "ended_at": _ts(call.ended_at),
                "disposition": "answered" if uri == call.answered_contact
                else ("cancelled" if call.answered_at else call.disposition.value),
            }
            for pos, uri in enumerate(call.rang)
        ]

        talk_s = ((call.ended_at - call.answered_at).total_seconds()
                  if call.ended_at and call.answered_at else None)

        def write(conn: sqlite_utils.Database) -> None:
            row_id = conn.execute("SELECT id FROM call_records WHERE uuid = ?",
                                  [call.call_id]).fetchone()[0]
            if call.recording:
                # The engine closes the file when the legs are released; its size is read
                # when the recording is listed, the duration is the talk time.
                rec = conn.table("recordings").insert(
                    {"path": call.recording, "format": "wav", "duration_s": talk_s})
                update["recording_id"] = rec.last_pk
            conn.table("call_records").update(row_id, update)
            for leg in legs:
                conn.table("call_legs").insert({**leg, "call_id": row_id})

        self._submit("finish", write)

    async def flush(self) -> None:
        """Wait for every queued write (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
