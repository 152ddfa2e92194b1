"""Migration 4: call records and legs, recordings, voicemail messages, blocked and missed
calls, SMS and USSD history.

History keeps text snapshots (caller, extension, line key) next to its foreign keys, which are
ON DELETE SET NULL: removing an employee or a line from the configuration never rewrites or
loses history.
"""

from __future__ import annotations

import sqlite_utils

from . import flag, json_check, run_statements, timestamp

CALL_DISPOSITIONS = "('answered', 'busy', 'no_answer', 'failed', 'cancelled', 'interrupted')"

STATEMENTS = [
    f"""
CREATE TABLE recordings (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE CHECK (length(path) > 0 AND substr(path, 1, 1) != '/'),
  format TEXT NOT NULL DEFAULT 'wav',
  duration_s REAL CHECK (duration_s IS NULL OR duration_s >= 0),
  size_bytes INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
  {timestamp("created_at", now=True)},
  {timestamp("deleted_at")}
)""",
    # Written when the call starts (ended_at/disposition NULL) and completed when it ends, so
    # a crash leaves a row to be marked 'interrupted' at the next start, not silence.
    f"""
CREATE TABLE call_records (
  id INTEGER PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE CHECK (length(uuid) BETWEEN 8 AND 64),
  direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
  line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL,
  line_key TEXT,
  number_id INTEGER REFERENCES numbers(id) ON DELETE SET NULL,
  caller TEXT NOT NULL DEFAULT '',
  caller_name TEXT,
  dialled TEXT NOT NULL DEFAULT '',
  employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  answered_by_employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  answered_by TEXT,
  {timestamp("started_at", now=True)},
  {timestamp("answered_at")},
  {timestamp("ended_at")},
  disposition TEXT CHECK (disposition IS NULL OR disposition IN {CALL_DISPOSITIONS}),
  hangup_side TEXT CHECK (hangup_side IS NULL OR hangup_side IN ('caller', 'callee', 'system')),
  sip_cause INTEGER CHECK (sip_cause IS NULL OR sip_cause BETWEEN 100 AND 699),
  route TEXT {json_check("route")},
  recording_id INTEGER REFERENCES recordings(id) ON DELETE SET NULL,
  CHECK ((ended_at IS NULL) = (disposition IS NULL)),
  CHECK (answered_at IS NULL OR answered_at >= started_at)
)""",
    "CREATE INDEX call_records_started ON call_records(started_at)",
    "CREATE INDEX call_records_caller ON call_records(caller, started_at)",
    "CREATE INDEX call_records_dialled ON call_records(dialled, started_at)",
    "CREATE INDEX call_records_line ON call_records(line_id, started_at)",
    "CREATE INDEX call_records_number ON call_records(number_id, started_at)",
    "CREATE INDEX call_records_employee ON call_records(employee_id, started_at)",
    "CREATE INDEX call_records_answered_by ON call_records(answered_by_employee_id, started_at)",
    "CREATE INDEX call_records_open ON call_records(started_at) WHERE ended_at IS NULL",
    "CREATE INDEX call_records_recording ON call_records(recording_id)",
    # One row per party that was rung or connected during the call.
    f"""
CREATE TABLE call_legs (
  id INTEGER PRIMARY KEY,
  call_id INTEGER NOT NULL REFERENCES call_records(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  party_kind TEXT NOT NULL CHECK (party_kind IN ('employee', 'device', 'external', 'sip_uri',
                                                 'queue', 'voice_menu', 'voicemail', 'line')),
  employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL,
  extension TEXT,
  target TEXT,
  {timestamp("rang_at")},
  {timestamp("answered_at")},
  {timestamp("ended_at")},
  disposition TEXT CHECK (disposition IS NULL OR disposition IN
    ('answered', 'busy', 'no_answer', 'failed', 'cancelled', 'rejected', 'interrupted')),
  sip_cause INTEGER CHECK (sip_cause IS NULL OR sip_cause BETWEEN 100 AND 699),
  recording_id INTEGER REFERENCES recordings(id) ON DELETE SET NULL,
  UNIQUE (call_id, position)
)""",
    "CREATE INDEX call_legs_employee ON call_legs(employee_id, rang_at)",
    "CREATE INDEX call_legs_device ON call_legs(device_id)",
    "CREATE INDEX call_legs_recording ON call_legs(recording_id)",
    f"""
CREATE TABLE voicemail_messages (
  id INTEGER PRIMARY KEY,
  box_id INTEGER REFERENCES voicemail_boxes(id) ON DELETE SET NULL,
  box_key TEXT,
  call_id INTEGER REFERENCES call_records(id) ON DELETE SET NULL,
  caller TEXT NOT NULL DEFAULT '',
  path TEXT NOT NULL CHECK (length(path) > 0 AND substr(path, 1, 1) != '/'),
  duration_s REAL CHECK (duration_s IS NULL OR duration_s >= 0),
  {timestamp("created_at", now=True)},
  {flag("is_read", 0)},
  {timestamp("read_at")},
  {timestamp("notified_at")},
  {timestamp("deleted_at")}
)""",
    "CREATE INDEX voicemail_messages_box ON voicemail_messages(box_id, created_at)",
    "CREATE INDEX voicemail_messages_call ON voicemail_messages(call_id)",
    f"""
CREATE TABLE blocked_calls (
  id INTEGER PRIMARY KEY,
  {timestamp("at", now=True)},
  caller TEXT NOT NULL,
  dialled TEXT,
  line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL,
  blacklist_id INTEGER REFERENCES blacklist(id) ON DELETE SET NULL,
  reason TEXT NOT NULL,
  call_id INTEGER REFERENCES call_records(id) ON DELETE SET NULL
)""",
    "CREATE INDEX blocked_calls_at ON blocked_calls(at)",
    "CREATE INDEX blocked_calls_caller ON blocked_calls(caller, at)",
    "CREATE INDEX blocked_calls_line ON blocked_calls(line_id)",
    "CREATE INDEX blocked_calls_blacklist ON blocked_calls(blacklist_id)",
    "CREATE INDEX blocked_calls_call ON blocked_calls(call_id)",
    # The missed-and-not-called-back report; cleared when someone reaches the client.
    f"""
CREATE TABLE missed_calls (
  id INTEGER PRIMARY KEY,
  call_id INTEGER UNIQUE REFERENCES call_records(id) ON DELETE CASCADE,
  caller TEXT NOT NULL,
  number_id INTEGER REFERENCES numbers(id) ON DELETE SET NULL,
  reason TEXT NOT NULL CHECK (reason IN ('no_answer', 'busy', 'after_hours',
    'abandoned_in_queue', 'blacklisted', 'all_lines_busy', 'failed', 'voicemail',
    'callback_requested')),
  responsible_employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  {timestamp("created_at", now=True)},
  {timestamp("cleared_at")},
  cleared_by_call_id INTEGER REFERENCES call_records(id) ON DELETE SET NULL,
  CHECK (cleared_by_call_id IS NULL OR cleared_at IS NOT NULL)
)""",
    "CREATE INDEX missed_calls_open ON missed_calls(caller) WHERE cleared_at IS NULL",
    "CREATE INDEX missed_calls_created ON missed_calls(created_at)",
    "CREATE INDEX missed_calls_number ON missed_calls(number_id)",
    "CREATE INDEX missed_calls_responsible ON missed_calls(responsible_employee_id)",
    "CREATE INDEX missed_calls_cleared_by ON missed_calls(cleared_by_call_id)",
    f"""
CREATE TABLE sms (
  id INTEGER PRIMARY KEY,
  line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  peer TEXT NOT NULL,
  text TEXT NOT NULL,
  parts INTEGER NOT NULL DEFAULT 1 CHECK (parts BETWEEN 1 AND 255),
  status TEXT NOT NULL CHECK (status IN ('received', 'queued', 'sending', 'sent',
                                         'delivered', 'failed')),
  employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  reference TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  {timestamp("created_at", now=True)},
  {timestamp("sent_at")},
  {timestamp("delivered_at")},
  CHECK ((direction = 'in') = (status = 'received'))
)""",
    "CREATE INDEX sms_peer ON sms(peer, created_at)",
    "CREATE INDEX sms_line ON sms(line_id, created_at)",
    "CREATE INDEX sms_pending ON sms(created_at) WHERE status IN ('queued', 'sending')",
    "CREATE INDEX sms_employee ON sms(employee_id)",
    f"""
CREATE TABLE ussd_history (
  id INTEGER PRIMARY KEY,
  line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL,
  {timestamp("at", now=True)},
  request TEXT NOT NULL,
  response TEXT,
  balance REAL,
  currency TEXT,
  {flag("ok", 1)},
  error TEXT
)""",
    "CREATE INDEX ussd_history_line ON ussd_history(line_id, at)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the call history tables."""
    run_statements(db, STATEMENTS)
