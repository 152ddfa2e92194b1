"""Migration 1: box settings, prompts, employees with their devices and mobiles, voicemail boxes."""

from __future__ import annotations

import sqlite_utils

from . import (
    ROUTE_CLASSES,
    extension_check,
    flag,
    json_check,
    key_check,
    phone_check,
    run_statements,
    sql_list,
    timestamp,
)

RECORDING = "('default', 'always', 'never')"

STATEMENTS = [
    # Free-form box-wide settings (name, time zone, country, language, day/night mode ...);
    # values are JSON so a setting can be a string, number, bool or list without new columns.
    f"""
CREATE TABLE box_settings (
  key TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),
  value TEXT NOT NULL CHECK (json_valid(value)),
  {timestamp("updated_at", now=True)}
)""",
    # Audio files (greetings, menus, music on hold); paths are relative to the data directory.
    f"""
CREATE TABLE prompts (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  path TEXT NOT NULL CHECK (length(path) > 0 AND substr(path, 1, 1) != '/'),
  language TEXT CHECK (language IS NULL OR language IN ('ru', 'en')),
  duration_s REAL CHECK (duration_s IS NULL OR duration_s >= 0),
  {timestamp("created_at", now=True)}
)""",
    f"""
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  extension TEXT NOT NULL UNIQUE {extension_check("extension")},
  name TEXT NOT NULL CHECK (length(trim(name)) > 0),
  role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('administrator', 'user')),
  email TEXT CHECK (email IS NULL OR email LIKE '%_@_%'),
  {flag("enabled", 1)},
  {flag("dnd", 0)},
  -- NULL: never ring the mobiles; otherwise seconds after the desk devices start ringing.
  ring_mobile_after_s INTEGER CHECK (ring_mobile_after_s IS NULL
                                     OR ring_mobile_after_s BETWEEN 0 AND 300),
  no_answer_timeout_s INTEGER NOT NULL DEFAULT 30 CHECK (no_answer_timeout_s BETWEEN 5 AND 600),
  {flag("call_waiting", 1)},
  recording TEXT NOT NULL DEFAULT 'default' CHECK (recording IN {RECORDING}),
  {timestamp("created_at", now=True)},
  {timestamp("updated_at", now=True)}
)""",
    # Ordered: position 0 rings first.
    f"""
CREATE TABLE employee_mobiles (
  employee_id INTEGER NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  number TEXT NOT NULL {phone_check("number")},
  PRIMARY KEY (employee_id, position),
  UNIQUE (employee_id, number)
)""",
    # Recognise an employee calling in from a mobile (repeat-caller, internal rates).
    "CREATE INDEX employee_mobiles_number ON employee_mobiles(number)",
    f"""
CREATE TABLE employee_route_permissions (
  employee_id INTEGER NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  route_class TEXT NOT NULL CHECK (route_class IN ({sql_list(ROUTE_CLASSES)})),
  PRIMARY KEY (employee_id, route_class)
)""",
    # SIP credentials are kept only as HA1 digests (RFC 7616: MD5 and SHA-256) for `realm`;
    # the plain password is never stored. A device with a static contact (it does not
    # register, e.g. a gateway port) needs no credentials.
    f"""
CREATE TABLE devices (
  id INTEGER PRIMARY KEY,
  employee_id INTEGER NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  username TEXT NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64
                                       AND username NOT GLOB '*[^A-Za-z0-9._-]*'),
  kind TEXT NOT NULL DEFAULT 'desk_phone' CHECK (kind IN ('desk_phone', 'softphone')),
  label TEXT,
  realm TEXT,
  ha1_md5 TEXT CHECK (ha1_md5 IS NULL OR (length(ha1_md5) = 32
                                          AND ha1_md5 NOT GLOB '*[^0-9a-f]*')),
  ha1_sha256 TEXT CHECK (ha1_sha256 IS NULL OR (length(ha1_sha256) = 64
                                                AND ha1_sha256 NOT GLOB '*[^0-9a-f]*')),
  static_contact TEXT CHECK (static_contact IS NULL OR static_contact LIKE 'sip:_%'
                             OR static_contact LIKE 'sips:_%'),
  codecs TEXT NOT NULL DEFAULT '[]' {json_check("codecs")},
  recording TEXT NOT NULL DEFAULT 'default' CHECK (recording IN {RECORDING}),
  {flag("enabled", 1)},
  {timestamp("created_at", now=True)},
  CHECK ((ha1_md5 IS NULL) = (ha1_sha256 IS NULL)),
  CHECK (ha1_md5 IS NULL OR realm IS NOT NULL),
  CHECK (static_contact IS NOT NULL OR ha1_md5 IS NOT NULL)
)""",
    "CREATE INDEX devices_employee ON devices(employee_id)",
    f"""
CREATE TABLE voicemail_boxes (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  extension TEXT UNIQUE {extension_check("extension")},
  employee_id INTEGER REFERENCES employees(id),
  greeting_prompt_id INTEGER REFERENCES prompts(id),
  notify_emails TEXT NOT NULL DEFAULT '[]' {json_check("notify_emails")},
  {flag("attach_audio", 1)},
  max_message_s INTEGER NOT NULL DEFAULT 180 CHECK (max_message_s BETWEEN 10 AND 3600)
)""",
    "CREATE INDEX voicemail_boxes_employee ON voicemail_boxes(employee_id)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the people tables."""
    run_statements(db, STATEMENTS)
