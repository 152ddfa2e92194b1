"""Read-only lists the REST API serves from the database: call history, missed calls, SMS.

The call history and the missed calls are the pages' own queries (`appliance.reports`),
shaped for the API: calls are named by their uuid, employees by their extension. Every list
is a page of indexed rows (no query per row).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance import reports

DIRECTIONS = reports.DIRECTIONS
OUTCOMES = reports.OUTCOMES
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class Page:
    """Which slice of a list: 1-based page number and its size."""

    page: int = 1
    per_page: int = 50

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class CallFilter:
    """Call history filters; None: any. `until` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    number: str | None = None  # part of the caller's or the dialled number
    extension: str | None = None  # the employee who made or answered the call
    direction: str | None = None
    outcome: str | None = None  # a disposition, or "missed" / "blocked"


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _paged(items: list[dict[str, Any]], total: int, page: Page) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page.page, "per_page": page.per_page}


def _call(row: dict[str, Any]) -> dict[str, Any]:
    """A reports row as the API shows a call."""
    return {
        "id": row["uuid"], "direction": row["direction"], "line": row["line_key"],
        "number": row["did"], "caller": row["caller"], "caller_name": row["caller_name"],
        "dialled": row["dialled"], "extension": row["employee_extension"],
        "answered_by_extension": row["answered_extension"], "answered_by": row["answered_by"],
        "started_at": row["started_at"], "answered_at": row["answered_at"],
        "ended_at": row["ended_at"], "disposition": row["disposition"],
        "hangup_side": row["hangup_side"], "sip_cause": row["sip_cause"],
        "wait_s": row["wait_s"], "talk_s": row["talk_s"],
        "missed_reason": row["missed_reason"], "recorded": row["recording_id"] is not None,
    }


def call_history(conn: sqlite3.Connection, flt: CallFilter, page: Page) -> dict[str, Any]:
    """A page of call records, newest first, with the total count for the filters."""
    employee_id: int | None = None
    if flt.extension:
        found = conn.execute("SELECT id FROM employees WHERE extension = ?",
                             (flt.extension,)).fetchone()
        if found is None:
            return _paged([], 0, page)
        employee_id = int(found[0])
    filters = reports.Filters(start=flt.since, end=flt.until, number=flt.number or "",
                              employee_id=employee_id, direction=flt.direction,
                              outcome=flt.outcome)
    result = reports.history(conn, filters, page.page, page.per_page)
    if result.page != page.page:  # past the last page: reports shows the last, the API none
        return _paged([], result.total, page)
    return _paged([_call(r) for r in result.rows], result.total, page)


def missed_calls(conn: sqlite3.Connection, page: Page) -> dict[str, Any]:
    """Missed calls nobody has called back yet, newest first."""
    result = reports.missed_open(conn, page.page, page.per_page)
    if result.page != page.page:
        return _paged([], result.total, page)
    ids = [r["call_id"] for r in result.rows if r["call_id"] is not None]
    marks = ",".join("?" * len(ids))
    uuids = dict(conn.execute(f"SELECT id, uuid FROM call_records WHERE id IN ({marks})",
                              ids).fetchall()) if ids else {}
    items = [{"id": r["id"], "call_id": uuids.get(r["call_id"]), "caller": r["caller"],
              "caller_name": r["caller_name"], "number": r["did"], "line": r["line_key"],
              "reason": r["reason"], "responsible": r["responsible_extension"],
              "created_at": r["created_at"]} for r in result.rows]
    return _paged(items, result.total, page)


def sms_list(conn: sqlite3.Connection, page: Page, *, line: str | None = None) -> dict[str, Any]:
    """Stored text messages, newest first, optionally of one line."""
    clause, args = "", []
    if line:
        clause = " WHERE line_key = ?"  # the key the message came on (indexed with created_at)
        args.append(line)
    total = conn.execute(f"SELECT count(*) FROM sms{clause}", args).fetchone()[0]
    items = _rows(conn.execute(
        "SELECT id, line_key AS line, direction, peer, text, parts, status, partial, error,"
        f" created_at, sent_at, delivered_at FROM sms{clause}"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        [*args, page.per_page, page.offset]))
    for item in items:
        item["partial"] = bool(item["partial"])  # a received message with a part missing
    return _paged(items, total, page)
