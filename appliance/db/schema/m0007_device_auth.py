"""Migration 7: which digest algorithm a device is challenged with first.

RFC 8760 has the client use the topmost challenge it supports, so the box offers
SHA-256 first. Many deployed phones (and SIPp) read only the first challenge and know
only MD5: for them the order is turned around, per device.
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
