"""Migration 13: indexes for the call history and reports pages (bench/web_reports.py).

- call_records_day: (started_at, direction, disposition, employee_id, caller, dialled)
  covers the per-day counts, the per-employee plan counts, today's counters and the history's
  counts with a number filter (a substring: LIKE '%...%' cannot seek, but it scans this
  index instead of the rows).
- call_records_plan: (direction, employee_id, started_at) counts each employee's outgoing
  calls of a day (the call plan report) from the index alone.

The missed-and-not-called-back list needs nothing new: missed_calls_created walks it in time
order and missed_calls_open counts it.
"""

from __future__ import annotations

import sqlite_utils

from . import run_statements

INDEXES: tuple[tuple[str, str], ...] = (
    ("call_records_day",
     "ON call_records(started_at, direction, disposition, employee_id, caller, dialled)"),
    ("call_records_plan", "ON call_records(direction, employee_id, started_at)"),
)
STATEMENTS = [f"CREATE INDEX {name} {sql}" for name, sql in INDEXES]


def apply(db: sqlite_utils.Database) -> None:
    """Create the report indexes."""
    run_statements(db, STATEMENTS)
