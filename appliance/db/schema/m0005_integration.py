"""Migration 5: CRM connections, contact cache and event outbox, repeat-caller (ICM)
settings, notifications, web users, API tokens and the audit log."""

from __future__ import annotations

import sqlite_utils

from . import (
    destination_columns,
    flag,
    json_check,
    key_check,
    run_statements,
    timestamp,
)

STATEMENTS = [
    # Secrets are stored as given because the box must present them to the CRM; exports and
    # the API never show them.
    f"""
CREATE TABLE crm_connections (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  adapter TEXT NOT NULL CHECK (adapter IN ('generic_webhook', 'amocrm', 'bitrix24')),
  {flag("enabled", 1)},
  base_url TEXT NOT NULL CHECK (base_url LIKE 'http://_%' OR base_url LIKE 'https://_%'),
  api_secret TEXT,
  signing_secret TEXT,
  options TEXT NOT NULL DEFAULT '{{}}' {json_check("options")},
  sync_interval_s INTEGER NOT NULL DEFAULT 300 CHECK (sync_interval_s BETWEEN 30 AND 86400),
  callback_deadline_min INTEGER NOT NULL DEFAULT 60
    CHECK (callback_deadline_min BETWEEN 1 AND 10080),
  {timestamp("last_sync_at")},
  last_sync_error TEXT
)""",
    # CRM user id -> employee: who is the "responsible manager" of a CRM contact.
    """
CREATE TABLE crm_user_map (
  crm_id INTEGER NOT NULL REFERENCES crm_connections(id) ON DELETE CASCADE,
  external_user_id TEXT NOT NULL CHECK (length(external_user_id) > 0),
  employee_id INTEGER NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  PRIMARY KEY (crm_id, external_user_id)
)""",
    "CREATE INDEX crm_user_map_employee ON crm_user_map(employee_id)",
    # Local cache so routing never waits on the network.
    f"""
CREATE TABLE crm_contacts (
  id INTEGER PRIMARY KEY,
  crm_id INTEGER NOT NULL REFERENCES crm_connections(id) ON DELETE CASCADE,
  external_id TEXT NOT NULL,
  name TEXT,
  company TEXT,
  url TEXT,
  responsible_external_id TEXT,
  responsible_employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  {timestamp("synced_at", now=True)},
  UNIQUE (crm_id, external_id)
)""",
    "CREATE INDEX crm_contacts_responsible ON crm_contacts(responsible_employee_id)",
    """
CREATE TABLE crm_contact_phones (
  contact_id INTEGER NOT NULL REFERENCES crm_contacts(id) ON DELETE CASCADE,
  phone TEXT NOT NULL,
  PRIMARY KEY (contact_id, phone)
)""",
    "CREATE INDEX crm_contact_phones_phone ON crm_contact_phones(phone)",
    # Persistent outbox: events survive CRM/internet outages and restarts.
    f"""
CREATE TABLE event_outbox (
  id INTEGER PRIMARY KEY,
  {timestamp("created_at", now=True)},
  kind TEXT NOT NULL CHECK (length(kind) > 0),
  crm_id INTEGER REFERENCES crm_connections(id) ON DELETE SET NULL,
  webhook_id INTEGER REFERENCES webhooks(id) ON DELETE SET NULL,
  call_id INTEGER REFERENCES call_records(id) ON DELETE SET NULL,
  payload TEXT NOT NULL CHECK (json_valid(payload)),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  {timestamp("next_attempt_at", now=True)},
  {timestamp("delivered_at")},
  {timestamp("failed_at")},
  last_error TEXT
)""",
    "CREATE INDEX event_outbox_due ON event_outbox(next_attempt_at) "
    "WHERE delivered_at IS NULL AND failed_at IS NULL",
    "CREATE INDEX event_outbox_crm ON event_outbox(crm_id)",
    "CREATE INDEX event_outbox_webhook ON event_outbox(webhook_id)",
    "CREATE INDEX event_outbox_call ON event_outbox(call_id)",
    # Single-row tables (id = 1) for box-wide policies.
    f"""
CREATE TABLE repeat_caller_settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  {flag("enabled", 0)},
  local_area_code TEXT CHECK (local_area_code IS NULL OR (length(local_area_code)
                              BETWEEN 1 AND 5 AND local_area_code NOT GLOB '*[^0-9]*')),
  {flag("ring_mobiles", 0)},
  lookback_days INTEGER NOT NULL DEFAULT 90 CHECK (lookback_days BETWEEN 1 AND 3650),
  answer_timeout_s INTEGER NOT NULL DEFAULT 20 CHECK (answer_timeout_s BETWEEN 5 AND 120),
  {destination_columns("default", required=False)}
)""",
    """
CREATE TABLE repeat_caller_sources (
  position INTEGER PRIMARY KEY CHECK (position >= 0),
  source TEXT NOT NULL CHECK (source IN ('crm', 'call_history')),
  crm_id INTEGER REFERENCES crm_connections(id),
  CHECK ((source = 'crm') = (crm_id IS NOT NULL))
)""",
    "CREATE INDEX repeat_caller_sources_crm ON repeat_caller_sources(crm_id)",
    """
CREATE TABLE repeat_caller_exceptions (
  employee_id INTEGER PRIMARY KEY REFERENCES employees(id) ON DELETE CASCADE
)""",
    f"""
CREATE TABLE notification_settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  smtp_host TEXT,
  smtp_port INTEGER CHECK (smtp_port IS NULL OR smtp_port BETWEEN 1 AND 65535),
  smtp_security TEXT NOT NULL DEFAULT 'starttls'
    CHECK (smtp_security IN ('none', 'starttls', 'tls')),
  smtp_username TEXT,
  smtp_password TEXT,
  from_address TEXT,
  sms_line_id INTEGER REFERENCES lines(id),
  low_balance_threshold REAL,
  {timestamp("updated_at", now=True)}
)""",
    f"""
CREATE TABLE notification_rules (
  id INTEGER PRIMARY KEY,
  position INTEGER NOT NULL CHECK (position >= 0),
  event TEXT NOT NULL CHECK (event IN ('missed_call', 'voicemail', 'low_balance',
                                       'line_down', 'blocked_call')),
  channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
  recipients TEXT NOT NULL DEFAULT '[]' {json_check("recipients")},
  {flag("responsible_manager", 0)},
  CHECK (json_array_length(recipients) > 0 OR responsible_manager = 1)
)""",
    # No default users ever: the first administrator is created by the wizard or the CLI.
    f"""
CREATE TABLE web_users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE
    CHECK (length(username) BETWEEN 1 AND 64 AND username NOT GLOB '*[^A-Za-z0-9._@-]*'),
  password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
  role TEXT NOT NULL CHECK (role IN ('administrator', 'user')),
  employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL,
  {flag("disabled", 0)},
  failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
  {timestamp("created_at", now=True)},
  {timestamp("last_login_at")},
  {timestamp("password_changed_at", now=True)}
)""",
    "CREATE INDEX web_users_employee ON web_users(employee_id)",
    # Only the SHA-256 of a token is kept; the token itself is shown once.
    f"""
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL CHECK (length(trim(name)) > 0),
  token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64
                                         AND token_hash NOT GLOB '*[^0-9a-f]*'),
  token_prefix TEXT NOT NULL,
  scopes TEXT NOT NULL {json_check("scopes")},
  created_by_user_id INTEGER REFERENCES web_users(id) ON DELETE SET NULL,
  {timestamp("created_at", now=True)},
  {timestamp("last_used_at")},
  {timestamp("expires_at")},
  {timestamp("revoked_at")}
)""",
    "CREATE INDEX api_tokens_created_by ON api_tokens(created_by_user_id)",
    f"""
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY,
  {timestamp("at", now=True)},
  actor TEXT NOT NULL,
  user_id INTEGER REFERENCES web_users(id) ON DELETE SET NULL,
  token_id INTEGER REFERENCES api_tokens(id) ON DELETE SET NULL,
  area TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT,
  before TEXT {json_check("before")},
  after TEXT {json_check("after")}
)""",
    "CREATE INDEX audit_log_at ON audit_log(at)",
    "CREATE INDEX audit_log_area ON audit_log(area, at)",
    "CREATE INDEX audit_log_user ON audit_log(user_id)",
    "CREATE INDEX audit_log_token ON audit_log(token_id)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the integration and administration tables."""
    run_statements(db, STATEMENTS)
