"""Migration 7: which digest algorithms a device is challenged with.

RFC 8760 has the client use the topmost challenge it supports, so the box offers
SHA-256 first and MD5 second ('sha256'). Many deployed phones (and SIPp) read only the
first challenge, and some (baresip 1.0) fail on an algorithm they do not know instead of
skipping it: those devices are offered MD5 alone ('md5').
"""

from __future__ import annotations

import sqlite_utils

from . import run_statements

STATEMENTS = [
    "ALTER TABLE devices ADD COLUMN auth TEXT NOT NULL DEFAULT 'sha256'"
    " CHECK (auth IN ('sha256', 'md5'))",
]


def apply(db: sqlite_utils.Database) -> None:
    """Add devices.auth."""
    run_statements(db, STATEMENTS)
