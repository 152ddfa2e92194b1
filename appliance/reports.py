"""Call history and reports: pure SQL over a sqlite3 connection, no Flask.

Timestamps in the call tables are ISO-8601 UTC text with either "Z" or "+00:00" after the
milliseconds; both sort the same up to the seconds, so ranges compare against bare
"YYYY-MM-DDTHH:MM:SS" bounds (start inclusive, end exclusive) and keep the started_at
indexes usable. Days are the box's local days: each day of a range gets
its UTC bounds from the time zone (DST days included), and rows are counted with one index
seek per day, so a day is the office's day.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DIRECTIONS = ("inbound", "outbound", "internal")
DISPOSITIONS = ("answered", "busy", "no_answer", "failed", "cancelled", "interrupted")
# Filters beyond the stored dispositions: calls with a missed_calls / blocked_calls row.
OUTCOMES = (*DISPOSITIONS, "missed", "blocked")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Filters:
    """What the history shows: a UTC range, a number substring, an employee, kinds of call.

    `viewer_employee_id`/`viewer_extension` restrict it to one user's own calls (a user who is
    not an administrator); both None means everything.
    """

    start: datetime | None = None  # aware; inclusive
    end: datetime | None = None  # aware; exclusive
    number: str = ""
    employee_id: int | None = None
    direction: str | None = None
    outcome: str | None = None
    viewer_employee_id: int | None = None
    viewer_extension: str | None = None
    restricted: bool = False  # True: only the viewer's calls (nothing if the viewer is nobody)


@dataclass(frozen=True)
class Page:
    """One page of history rows and how many rows match in all."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


@dataclass
class DayCounts:
    """Calls of one local day by direction and by outcome."""

    day: date
    by_direction: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)


@dataclass
class EmployeePlan:
    """One employee's outgoing calls per local day, against their daily plan."""

    employee_id: int
    extension: str
    name: str
    plan: int | None
    per_day: dict[date, int]

    @property
    def total(self) -> int:
        """Outgoing calls over the whole range."""
        return sum(self.per_day.values())

    def days_met(self) -> int:
        """Days on which the plan was reached (0 without a plan)."""
        if not self.plan:
            return 0
        return sum(1 for n in self.per_day.values() if n >= self.plan)


def bound(when: datetime) -> str:
    """An aware datetime as the bare UTC text the timestamp columns compare against."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of a local day, as an aware datetime."""
    return datetime.combine(day, time(0), tz)


def day_range(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the box's time zone."""
    return local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)


def day_bounds(first: date, last: date, tz: ZoneInfo) -> str:
    """Every local day of [first, last] with its UTC bounds, as the JSON array the day
    queries read: [["2025-01-31", "2025-01-30T21:00:00", "2025-01-31T21:00:00"], ...].
    The bounds come from the time zone, so a DST day is 23 or 25 hours long as it should be."""
    out = []
    day = first
    while day <= last:
        start, end = day_range(day, day, tz)
        out.append([day.isoformat(), bound(start), bound(end)])
        day += timedelta(days=1)
    return json.dumps(out)


# One index seek per day (on started_at) instead of a date() computed for every row.
_DAYS = ("WITH days(day, s, e) AS (SELECT json_extract(value, '$[0]'),"
         " json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?))")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where(filters: Filters) -> tuple[str, list[object]]:
    """The WHERE clause (over `call_records cr`) and its parameters."""
    parts: list[str] = []
    args: list[object] = []
    if filters.start is not None:
        parts.append("cr.started_at >= ?")
        args.append(bound(filters.start))
    if filters.end is not None:
        parts.append("cr.started_at < ?")
        args.append(bound(filters.end))
    if filters.number:
        parts.append("(cr.caller LIKE ? ESCAPE '\\' OR cr.dialled LIKE ? ESCAPE '\\')")
        args += [_like(filters.number)] * 2
    if filters.employee_id is not None:
        parts.append("(cr.employee_id = ? OR cr.answered_by_employee_id = ?)")
        args += [filters.employee_id] * 2
    if filters.direction is not None:
        parts.append("cr.direction = ?")
        args.append(filters.direction)
    if filters.outcome == "missed":
        parts.append("cr.id IN (SELECT call_id FROM missed_calls)")
    elif filters.outcome == "blocked":
        parts.append("cr.id IN (SELECT call_id FROM blocked_calls WHERE call_id IS NOT NULL)")
    elif filters.outcome is not None:
        parts.append("cr.disposition = ?")
        args.append(filters.outcome)
    if filters.restricted:
        # One user's own calls: theirs by employee, answered by them, or their extension
        # calling or dialled. A UNION of index lookups, not an OR over the whole table.
        parts.append(
            "cr.id IN (SELECT id FROM call_records WHERE employee_id = ?"
            " UNION SELECT id FROM call_records WHERE answered_by_employee_id = ?"
            " UNION SELECT id FROM call_records WHERE caller = ?"
            " UNION SELECT id FROM call_records WHERE dialled = ?)")
        args += [filters.viewer_employee_id if filters.viewer_employee_id is not None else -1,
                 filters.viewer_employee_id if filters.viewer_employee_id is not None else -1,
                 filters.viewer_extension or "\x00", filters.viewer_extension or "\x00"]
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


_COLUMNS = """
  cr.id, cr.uuid, cr.direction, cr.caller, cr.caller_name, cr.dialled, cr.line_key,
  cr.started_at, cr.answered_at, cr.ended_at, cr.disposition, cr.hangup_side, cr.sip_cause,
  cr.recording_id, cr.employee_id, cr.answered_by_employee_id, cr.answered_by,
  e.extension AS employee_extension, e.name AS employee_name,
  a.extension AS answered_extension, a.name AS answered_name,
  n.number AS did,
  CASE WHEN cr.answered_at IS NOT NULL
       THEN round((julianday(cr.answered_at) - julianday(cr.started_at)) * 86400, 1) END
       AS wait_s,
  CASE WHEN cr.answered_at IS NOT NULL AND cr.ended_at IS NOT NULL
       THEN round((julianday(cr.ended_at) - julianday(cr.answered_at)) * 86400, 1) END
       AS talk_s,
  mc.reason AS missed_reason, mc.cleared_at AS missed_cleared_at
"""
_JOINS = """
  LEFT JOIN employees e ON e.id = cr.employee_id
  LEFT JOIN employees a ON a.id = cr.answered_by_employee_id
  LEFT JOIN numbers n ON n.id = cr.number_id
  LEFT JOIN missed_calls mc ON mc.call_id = cr.id
"""


def _dicts(cur: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=True))


def history(conn: sqlite3.Connection, filters: Filters, page: int = 1,
            size: int = PAGE_SIZE) -> Page:
    """One page of the call history, newest first, and the number of matching calls."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    clause, args = where(filters)
    total = int(conn.execute(f"SELECT count(*) FROM call_records cr{clause}", args
                             ).fetchone()[0])
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    # The page's ids first (an index walk on started_at), then the joins for those rows only.
    ids = [r[0] for r in conn.execute(
        f"SELECT cr.id FROM call_records cr{clause}"
        " ORDER BY cr.started_at DESC, cr.id DESC LIMIT ? OFFSET ?",
        [*args, size, (page - 1) * size])]
    rows: list[dict[str, Any]] = []
    if ids:
        marks = ",".join("?" * len(ids))
        rows = list(_dicts(conn.execute(
            f"SELECT {_COLUMNS} FROM call_records cr {_JOINS} WHERE cr.id IN ({marks})"
            " ORDER BY cr.started_at DESC, cr.id DESC", ids)))
    return Page(rows=rows, total=total, page=page, pages=pages)


def export(conn: sqlite3.Connection, filters: Filters) -> Iterator[sqlite3.Row]:
    """Every matching call, newest first, one row at a time (for a streamed CSV); rows are
    sqlite3.Row (by column name), cheaper than a dict for 100 000 of them."""
    clause, args = where(filters)
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    yield from cur.execute(
        f"SELECT {_COLUMNS} FROM call_records cr {_JOINS}{clause}"
        " ORDER BY cr.started_at DESC, cr.id DESC", args)


def call_detail(conn: sqlite3.Connection, call_id: int,
                filters: Filters | None = None) -> dict[str, Any] | None:
    """One call with its route (parsed), legs, recording and blocked reason; None if the
    call does not exist or `filters` (a viewer's restriction) exclude it."""
    clause, args = where(filters or Filters())
    clause = clause + (" AND " if clause else " WHERE ") + "cr.id = ?"
    found = list(_dicts(conn.execute(
        f"SELECT {_COLUMNS}, cr.route, r.path AS recording_path,"
        " r.duration_s AS recording_duration"
        f" FROM call_records cr {_JOINS} LEFT JOIN recordings r ON r.id = cr.recording_id"
        f"{clause}", [*args, call_id])))
    if not found:
        return None
    call = found[0]
    try:
        call["route"] = json.loads(call["route"]) if call["route"] else {}
    except ValueError:
        call["route"] = {}
    if not isinstance(call["route"], dict):
        call["route"] = {}
    call["legs"] = list(_dicts(conn.execute(
        "SELECT l.position, l.party_kind, l.extension, l.target, l.rang_at, l.answered_at,"
        " l.ended_at, l.disposition, l.sip_cause, e.name AS employee_name"
        " FROM call_legs l LEFT JOIN employees e ON e.id = l.employee_id"
        " WHERE l.call_id = ? ORDER BY l.position", [call_id])))
    blocked = conn.execute("SELECT reason FROM blocked_calls WHERE call_id = ?",
                           [call_id]).fetchone()
    call["blocked_reason"] = blocked[0] if blocked else None
    return call


def recording_path(conn: sqlite3.Connection, recording_id: int,
                   filters: Filters | None = None) -> str | None:
    """The stored (data-dir relative) path of a recording the viewer may hear, else None."""
    clause, args = where(filters or Filters())
    clause = clause + (" AND " if clause else " WHERE ") + "cr.recording_id = ?"
    row = conn.execute(
        "SELECT r.path FROM recordings r WHERE r.id = ? AND r.deleted_at IS NULL"
        f" AND EXISTS (SELECT 1 FROM call_records cr{clause})",
        [recording_id, *args, recording_id]).fetchone()
    return str(row[0]) if row else None


def counts_by_day(conn: sqlite3.Connection, first: date, last: date,
                  tz: ZoneInfo) -> list[DayCounts]:
    """Every local day of [first, last] with its calls by direction and by outcome
    (missed: the call has a missed_calls row; answered: answered and not missed; other)."""
    bounds = day_bounds(first, last, tz)
    # One aggregate subquery per day: an index range walk each, no sort of all the rows.
    sums = {text: json.loads(found) for text, found in conn.execute(
        f"{_DAYS} SELECT days.day, (SELECT json_array(count(*),"
        " sum(cr.direction = 'inbound'), sum(cr.direction = 'outbound'),"
        " sum(cr.direction = 'internal'), sum(cr.disposition = 'answered'))"
        " FROM call_records cr WHERE cr.started_at >= days.s AND cr.started_at < days.e)"
        " FROM days", [bounds])}
    missed = {text: (n, n_answered or 0) for text, n, n_answered in conn.execute(
        f"{_DAYS} SELECT days.day, count(*), sum(cr.disposition = 'answered') FROM days"
        " JOIN call_records cr ON cr.started_at >= days.s AND cr.started_at < days.e"
        " AND cr.direction = 'inbound' JOIN missed_calls mc ON mc.call_id = cr.id"
        " GROUP BY 1", [bounds])}
    out = []
    for text, (total, inbound, outbound, internal, answered) in sums.items():
        n_missed, missed_answered = missed.get(text, (0, 0))
        good = (answered or 0) - missed_answered
        out.append(DayCounts(
            date.fromisoformat(text),
            {"inbound": inbound or 0, "outbound": outbound or 0, "internal": internal or 0},
            {"answered": good, "missed": n_missed, "other": total - good - n_missed}))
    return out


def per_employee(conn: sqlite3.Connection, first: date, last: date,
                 tz: ZoneInfo) -> list[EmployeePlan]:
    """Each enabled employee's outgoing calls per local day of [first, last] and their plan;
    employees with a plan first."""
    people = {
        r[0]: EmployeePlan(r[0], r[1], r[2], r[3], {})
        for r in conn.execute("SELECT id, extension, name, daily_call_plan FROM employees"
                              " WHERE enabled = 1 ORDER BY extension")}
    # A count per employee and day: with (direction, employee_id, started_at) indexed each
    # is a seek and a short index walk.
    for employee_id, text, n in conn.execute(
            f"{_DAYS} SELECT e.id, days.day, (SELECT count(*) FROM call_records cr"
            " WHERE cr.direction = 'outbound' AND cr.employee_id = e.id"
            " AND cr.started_at >= days.s AND cr.started_at < days.e)"
            " FROM employees e, days WHERE e.enabled = 1", [day_bounds(first, last, tz)]):
        if n:
            people[employee_id].per_day[date.fromisoformat(text)] = n
    return sorted(people.values(), key=lambda p: (p.plan is None, p.extension))


def missed_open(conn: sqlite3.Connection, page: int = 1,
                size: int = PAGE_SIZE) -> Page:
    """Missed calls nobody has called back yet, newest first: reason, responsible employee,
    when, the DID, the caller's earlier open misses counted."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    total = int(conn.execute("SELECT count(*) FROM missed_calls WHERE cleared_at IS NULL"
                             ).fetchone()[0])
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    rows = list(_dicts(conn.execute(
        "SELECT mc.id, mc.call_id, mc.caller, mc.reason, mc.created_at,"
        " cr.started_at, cr.caller_name, cr.line_key, n.number AS did,"
        " e.extension AS responsible_extension, e.name AS responsible_name"
        " FROM missed_calls mc"
        " LEFT JOIN call_records cr ON cr.id = mc.call_id"
        " LEFT JOIN numbers n ON n.id = mc.number_id"
        " LEFT JOIN employees e ON e.id = mc.responsible_employee_id"
        " WHERE mc.cleared_at IS NULL ORDER BY mc.created_at DESC, mc.id DESC"
        " LIMIT ? OFFSET ?", [size, (page - 1) * size])))
    return Page(rows=rows, total=total, page=page, pages=pages)


def today(conn: sqlite3.Connection, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Today's counters (local day of `now`): calls by direction, answered, missed, average
    wait of answered inbound calls (s), talk minutes."""
    start, end = day_range(now.astimezone(tz).date(), now.astimezone(tz).date(), tz)
    row = conn.execute(
        "SELECT count(*),"
        " sum(cr.direction = 'inbound'), sum(cr.direction = 'outbound'),"
        " sum(cr.direction = 'internal'), sum(cr.disposition = 'answered'),"
        " avg(CASE WHEN cr.direction = 'inbound' AND cr.answered_at IS NOT NULL"
        "     THEN (julianday(cr.answered_at) - julianday(cr.started_at)) * 86400 END),"
        " sum(CASE WHEN cr.answered_at IS NOT NULL AND cr.ended_at IS NOT NULL"
        "     THEN (julianday(cr.ended_at) - julianday(cr.answered_at)) * 1440 END),"
        " sum(cr.ended_at IS NULL)"
        " FROM call_records cr WHERE cr.started_at >= ? AND cr.started_at < ?",
        [bound(start), bound(end)]).fetchone()
    missed = conn.execute(
        "SELECT count(*), sum(cleared_at IS NULL) FROM missed_calls"
        " WHERE created_at >= ? AND created_at < ?", [bound(start), bound(end)]).fetchone()
    return {"total": row[0] or 0, "inbound": row[1] or 0, "outbound": row[2] or 0,
            "internal": row[3] or 0, "answered": row[4] or 0,
            "avg_wait_s": round(row[5], 1) if row[5] is not None else None,
            "talk_min": round(row[6] or 0.0, 1), "in_progress": row[7] or 0,
            "missed": missed[0] or 0, "missed_open": missed[1] or 0}
