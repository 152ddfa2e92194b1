"""Migration 8: "press 1 to accept" for calls forwarded to an employee's mobiles.

A mobile's own voicemail answers a forwarded call like a person would; with
`confirm_mobile` the box asks the answering side to press 1 before it gets the call.
"""

from __future__ import annotations

import sqlite_utils

from . import flag, run_statements

STATEMENTS = [
    f"ALTER TABLE employees ADD COLUMN {flag('confirm_mobile', 0)}",
]


def apply(db: sqlite_utils.Database) -> None:
    """Add employees.confirm_mobile."""
    run_statements(db, STATEMENTS)
