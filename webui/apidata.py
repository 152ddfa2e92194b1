"""Read-only lists the REST API serves from the database: call history, missed calls, SMS.

Each list is one indexed query with LIMIT/OFFSET (no query per row), so a box with 100,000
call records answers a page as fast as one with ten.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

DIRECTIONS = ("inbound", "outbound", "internal")
DISPOSITIONS = ("answered", "busy", "no_answer", "failed", "cancelled", "interrupted")
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
    """Call history filters; None: any. Times are ISO 8601 UTC strings, `until` exclusive."""

    since: str | None = None
    until: str | None = None
    number: str | None = None  # the caller's or the dialled number (exact)
    extension: str | None = None  # the employee's extension who made or answered the call
    direction: str | None = None
    disposition: str | None = None


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


_CALLS_SQL = """
SELECT c.uuid AS id, c.direction, c.line_key AS line, c.caller, c.caller_name, c.dialled,
       e.extension AS extension, a.extension AS answered_by_extension, c.answered_by,
       c.started_at, c.answered_at, c.ended_at, c.disposition, c.hangup_side,
       c.sip_cause, c.recording_id IS NOT NULL AS recorded
FROM call_records c
LEFT JOIN employees e ON e.id = c.employee_id
LEFT JOIN employees a ON a.id = c.answered_by_employee_id
"""


def call_history(conn: sqlite3.Connection, flt: CallFilter, page: Page) -> dict[str, Any]:
    """A page of call records, newest first, with the total count for the filters."""
    where: list[str] = []
    args: list[Any] = []
    if flt.since:
        where.append("c.started_at >= ?")
        args.append(flt.since)
    if flt.until:
        where.append("c.started_at < ?")
        args.append(flt.until)
    if flt.number:
        where.append("(c.caller = ? OR c.dialled = ?)")
        args += [flt.number, flt.number]
    if flt.extension:
        # Made by or answered by the employee (both columns are indexed with started_at).
        where.append("(c.employee_id = (SELECT id FROM employees WHERE extension = ?)"
                     " OR c.answered_by_employee_id = (SELECT id FROM employees"
                     " WHERE extension = ?))")
        args += [flt.extension, flt.extension]
    if flt.direction:
        where.append("c.direction = ?")
        args.append(flt.direction)
    if flt.disposition:
        where.append("c.disposition = ?")
        args.append(flt.disposition)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute(f"SELECT count(*) FROM call_records c{clause}", args).fetchone()[0]
    items = _rows(conn.execute(
        f"{_CALLS_SQL}{clause} ORDER BY c.started_at DESC, c.id DESC LIMIT ? OFFSET ?",
        [*args, page.per_page, page.offset]))
    for item in items:
        item["recorded"] = bool(item["recorded"])
    return {"items": items, "total": total, "page": page.page, "per_page": page.per_page}


def missed_calls(conn: sqlite3.Connection, page: Page, *,
                 open_only: bool = True) -> dict[str, Any]:
    """Missed calls newest first; `open_only`: those nobody has called back yet."""
    clause = " WHERE m.cleared_at IS NULL" if open_only else ""
    total = conn.execute(f"SELECT count(*) FROM missed_calls m{clause}").fetchone()[0]
    items = _rows(conn.execute(
        "SELECT m.id, m.caller, n.number AS number, m.reason, e.extension AS responsible,"
        " m.created_at, m.cleared_at, c.uuid AS call_id FROM missed_calls m"
        " LEFT JOIN numbers n ON n.id = m.number_id"
        " LEFT JOIN employees e ON e.id = m.responsible_employee_id"
        f" LEFT JOIN call_records c ON c.id = m.call_id{clause}"
        " ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?",
        (page.per_page, page.offset)))
    return {"items": items, "total": total, "page": page.page, "per_page": page.per_page}


def sms_list(conn: sqlite3.Connection, page: Page, *, line: str | None = None) -> dict[str, Any]:
    """Stored text messages, newest first, optionally of one line."""
    clause, args = "", []
    if line:
        clause = " WHERE s.line_id = (SELECT id FROM lines WHERE key = ?)"
        args.append(line)
    total = conn.execute(f"SELECT count(*) FROM sms s{clause}", args).fetchone()[0]
    items = _rows(conn.execute(
        "SELECT s.id, l.key AS line, s.direction, s.peer, s.text, s.parts, s.status, s.error,"
        " s.created_at, s.sent_at, s.delivered_at FROM sms s"
        f" LEFT JOIN lines l ON l.id = s.line_id{clause}"
        " ORDER BY s.created_at DESC, s.id DESC LIMIT ? OFFSET ?",
        [*args, page.per_page, page.offset]))
    return {"items": items, "total": total, "page": page.page, "per_page": page.per_page}
