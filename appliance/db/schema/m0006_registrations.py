"""Migration 6: the SIP edge's location table (where each registered device is).

Kept so a restart of the box keeps phones registered: the edge loads the bindings that
have not expired. The in-memory table is the truth while running; the edge writes
changes here in batches.
"""

from __future__ import annotations

import sqlite_utils

from . import flag, run_statements, timestamp

STATEMENTS = [
    f"""
CREATE TABLE registrations (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  contact TEXT NOT NULL CHECK (length(contact) BETWEEN 5 AND 1024),
  -- Where the REGISTER really came from (NAT): requests to the device go there.
  transport TEXT NOT NULL CHECK (transport IN ('UDP', 'TCP')),
  source_host TEXT NOT NULL,
  source_port INTEGER NOT NULL CHECK (source_port BETWEEN 1 AND 65535),
  call_id TEXT NOT NULL,
  cseq INTEGER NOT NULL CHECK (cseq >= 0),
  {timestamp("expires_at")} ,
  user_agent TEXT,
  {timestamp("registered_at", now=True)},
  {flag("reachable", 1)},
  UNIQUE (device_id, contact),
  CHECK (expires_at IS NOT NULL)
)""",
    "CREATE INDEX registrations_expires ON registrations(expires_at)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the location table."""
    run_statements(db, STATEMENTS)
