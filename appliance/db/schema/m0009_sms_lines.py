"""Migration 8: what the SIM line manager keeps about SMS and USSD.

* sms: the line's key (history keeps it when the line is removed), partial messages (parts
  that never came, listed), the TP-MR of every part sent and which parts were reported
  delivered, so status reports match the stored row.
* sms_parts: every received PDU is written here before it is deleted from the SIM; a part
  waiting for the rest of its message survives a restart (sms_id NULL until joined).
"""

from __future__ import annotations

import sqlite_utils

from . import flag, json_check, run_statements, timestamp

STATEMENTS = [
    "ALTER TABLE sms ADD COLUMN line_key TEXT",
    f"ALTER TABLE sms ADD COLUMN {flag('partial', 0)}",
    f"ALTER TABLE sms ADD COLUMN missing_parts TEXT {json_check('missing_parts')}",
    f"ALTER TABLE sms ADD COLUMN part_refs TEXT {json_check('part_refs')}",
    f"ALTER TABLE sms ADD COLUMN delivered_parts TEXT {json_check('delivered_parts')}",
    "CREATE INDEX sms_line_key ON sms(line_key, created_at)",
    "ALTER TABLE ussd_history ADD COLUMN line_key TEXT",
    f"""
CREATE TABLE sms_parts (
  id INTEGER PRIMARY KEY,
  line_key TEXT NOT NULL,
  pdu TEXT NOT NULL CHECK (length(pdu) BETWEEN 2 AND 600 AND pdu NOT GLOB '*[^0-9A-F]*'),
  {timestamp("received_at", now=True)},
  sms_id INTEGER REFERENCES sms(id) ON DELETE CASCADE
)""",
    "CREATE INDEX sms_parts_waiting ON sms_parts(line_key) WHERE sms_id IS NULL",
]


def apply(db: sqlite_utils.Database) -> None:
    """Add the SMS bookkeeping columns and the received-parts table."""
    run_statements(db, STATEMENTS)
