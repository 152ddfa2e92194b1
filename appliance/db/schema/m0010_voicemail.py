"""Migration 10: what voicemail needs beyond the boxes and messages of migrations 1 and 4.

* voicemail_boxes.pin_hash: the PIN for listening from a phone, only as a salted PBKDF2
  hash (`pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`); NULL means no PIN, and then
  only the owner's own desk phone may listen.
* voicemail_boxes.language: the language of the box's e-mails (NULL: the box settings').
* voicemail_messages.call_uuid: the call record's uuid as the switchboard knows it, kept
  even when that call record row did not exist yet when the message was stored.
"""

from __future__ import annotations

import sqlite_utils

from . import run_statements

STATEMENTS = [
    "ALTER TABLE voicemail_boxes ADD COLUMN pin_hash TEXT CHECK (pin_hash IS NULL OR "
    "(pin_hash LIKE 'pbkdf2_sha256$%' AND length(pin_hash) BETWEEN 20 AND 200))",
    "ALTER TABLE voicemail_boxes ADD COLUMN language TEXT "
    "CHECK (language IS NULL OR language IN ('ru', 'en'))",
    "ALTER TABLE voicemail_messages ADD COLUMN call_uuid TEXT "
    "CHECK (call_uuid IS NULL OR length(call_uuid) BETWEEN 1 AND 64)",
    "CREATE INDEX voicemail_messages_call_uuid ON voicemail_messages(call_uuid)",
    # The lamps' counts are loaded per box at start: unread and read, not deleted.
    "CREATE INDEX voicemail_messages_live ON voicemail_messages(box_key, is_read) "
    "WHERE deleted_at IS NULL",
]


def apply(db: sqlite_utils.Database) -> None:
    """Add the voicemail PIN, language and call uuid columns."""
    run_statements(db, STATEMENTS)
