"""Migration 11: web UI sessions kept on the box, and failed logins per address.

* web_sessions: the browser's cookie carries a random token; only its SHA-256 is stored.
  Logging in always makes a new one (no session fixation); logging out, a password change
  or a disabled account deletes them, which a signed-cookie-only session could not do.
* login_failures: failed logins per client address, for throttling guessers who try many
  user names (web_users.failed_logins counts per account).
"""

from __future__ import annotations

import sqlite_utils

from . import run_statements, timestamp

STATEMENTS = [
    f"""
CREATE TABLE web_sessions (
  id TEXT PRIMARY KEY CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),
  user_id INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,
  {timestamp("created_at", now=True)},
  {timestamp("last_seen_at", now=True)},
  address TEXT NOT NULL DEFAULT '' CHECK (length(address) <= 64),
  user_agent TEXT NOT NULL DEFAULT '' CHECK (length(user_agent) <= 300)
)""",
    "CREATE INDEX web_sessions_user ON web_sessions(user_id)",
    f"""
CREATE TABLE login_failures (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL CHECK (length(address) <= 64),
  username TEXT NOT NULL DEFAULT '' CHECK (length(username) <= 64),
  {timestamp("at", now=True)}
)""",
    "CREATE INDEX login_failures_address ON login_failures(address, at)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the web session and login failure tables."""
    run_statements(db, STATEMENTS)
