"""Migration 12: employees.daily_call_plan, the outgoing calls a day an employee plans.

The reports set each employee's outgoing calls of a day against it (cold calling).
NULL: no plan.
"""

from __future__ import annotations

import sqlite_utils

from . import run_statements

STATEMENTS = [
    "ALTER TABLE employees ADD COLUMN daily_call_plan INTEGER "
    "CHECK (daily_call_plan IS NULL OR daily_call_plan BETWEEN 1 AND 1000)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Add employees.daily_call_plan."""
    run_statements(db, STATEMENTS)
