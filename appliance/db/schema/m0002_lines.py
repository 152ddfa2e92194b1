"""Migration 2: lines, webhooks, schedules and holidays, blacklist, outbound routes, caller ID."""

from __future__ import annotations

import sqlite_utils

from . import (
    ROUTE_CLASSES,
    flag,
    json_check,
    key_check,
    phone_check,
    run_statements,
    sql_list,
    timestamp,
)


def _hhmm(column: str, *, allow_24: bool = False) -> str:
    """CHECK for a wall-clock time 'HH:MM' (00:00-23:59, or 24:00 as the end of a day)."""
    extra = f" OR {column} = '24:00'" if allow_24 else ""
    return (
        f"CHECK ({column} IS NULL OR ({column} GLOB '[0-2][0-9]:[0-5][0-9]' "
        f"AND {column} <= '23:59'){extra})"
    )


def _date(column: str) -> str:
    """CHECK for a calendar date 'YYYY-MM-DD' that SQLite itself accepts as valid."""
    return f"CHECK (date({column}) IS NOT NULL AND date({column}) = {column})"


STATEMENTS = [
    # One row per line whatever its kind; per-kind settings are typed columns (sim_*, sip_*)
    # so they can be queried and checked, plus `options` (JSON object) for rare extras.
    f"""
CREATE TABLE lines (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL CHECK (kind IN ('sim', 'sip_trunk', 'fxo_gateway')),
  {flag("enabled", 1)},
  channels INTEGER NOT NULL DEFAULT 1 CHECK (channels BETWEEN 1 AND 256),
  operator TEXT,
  cost_per_minute REAL CHECK (cost_per_minute IS NULL OR cost_per_minute >= 0),
  sim_imei TEXT CHECK (sim_imei IS NULL OR (length(sim_imei) = 15
                                            AND sim_imei NOT GLOB '*[^0-9]*')),
  sim_iccid TEXT CHECK (sim_iccid IS NULL OR (length(sim_iccid) BETWEEN 18 AND 22
                                              AND sim_iccid NOT GLOB '*[^0-9]*')),
  sim_pin TEXT CHECK (sim_pin IS NULL OR (length(sim_pin) BETWEEN 4 AND 8
                                          AND sim_pin NOT GLOB '*[^0-9]*')),
  sim_usb_path TEXT,
  {flag("sim_simulated", 0)},
  {flag("sim_sms", 1)},
  sim_ussd_balance TEXT,
  sip_host TEXT,
  sip_port INTEGER CHECK (sip_port IS NULL OR sip_port BETWEEN 1 AND 65535),
  sip_transport TEXT CHECK (sip_transport IS NULL OR sip_transport IN ('udp', 'tcp', 'tls')),
  sip_username TEXT,
  sip_auth_username TEXT,
  sip_secret TEXT,
  {flag("sip_register", 0)},
  sip_from_domain TEXT,
  sip_outbound_proxy TEXT,
  options TEXT NOT NULL DEFAULT '{{}}'
    CHECK (CASE WHEN json_valid(options) THEN json_type(options) = 'object' ELSE 0 END),
  state TEXT NOT NULL DEFAULT 'unknown'
    CHECK (state IN ('unknown', 'down', 'starting', 'up', 'error', 'disabled')),
  state_detail TEXT,
  {timestamp("state_changed_at")},
  CHECK (kind != 'sip_trunk' OR sip_host IS NOT NULL),
  CHECK (kind = 'sim' OR (sim_imei IS NULL AND sim_iccid IS NULL AND sim_pin IS NULL
                          AND sim_usb_path IS NULL AND sim_ussd_balance IS NULL)),
  CHECK (kind != 'sim' OR (sip_host IS NULL AND sip_username IS NULL AND sip_secret IS NULL)),
  CHECK (kind != 'sim' OR channels = 1)
)""",
    "CREATE UNIQUE INDEX lines_sim_iccid ON lines(sim_iccid) WHERE sim_iccid IS NOT NULL",
    "CREATE UNIQUE INDEX lines_sim_imei ON lines(sim_imei) WHERE sim_imei IS NOT NULL",
    f"""
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  url TEXT NOT NULL CHECK (url LIKE 'http://_%' OR url LIKE 'https://_%'),
  secret TEXT,
  events TEXT NOT NULL DEFAULT '[]' {json_check("events")},
  {flag("enabled", 1)},
  timeout_s INTEGER NOT NULL DEFAULT 10 CHECK (timeout_s BETWEEN 1 AND 60)
)""",
    f"""
CREATE TABLE holiday_sets (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT ''
)""",
    f"""
CREATE TABLE holiday_dates (
  set_id INTEGER NOT NULL REFERENCES holiday_sets(id) ON DELETE CASCADE,
  date TEXT NOT NULL {_date("date")},
  name TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (set_id, date)
)""",
    # `override` is the manual day/night switch: 'open'/'closed' win over the hours until
    # `override_until` (NULL: until switched back to 'auto').
    f"""
CREATE TABLE schedules (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL CHECK (length(time_zone) > 0),
  override TEXT NOT NULL DEFAULT 'auto' CHECK (override IN ('auto', 'open', 'closed')),
  {timestamp("override_until")}
)""",
    # Weekly periods, weekday 0 = Monday. closes < opens means the period crosses midnight.
    f"""
CREATE TABLE schedule_hours (
  id INTEGER PRIMARY KEY,
  schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
  opens TEXT NOT NULL {_hhmm("opens")},
  closes TEXT NOT NULL {_hhmm("closes", allow_24=True)},
  CHECK (opens != closes),
  UNIQUE (schedule_id, weekday, opens)
)""",
    # One-off dates: a row with NULL hours closes the whole day; rows with hours replace the
    # weekly hours for that date (a shortened day before a holiday, a working Saturday).
    f"""
CREATE TABLE schedule_dates (
  id INTEGER PRIMARY KEY,
  schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  date TEXT NOT NULL {_date("date")},
  opens TEXT {_hhmm("opens")},
  closes TEXT {_hhmm("closes", allow_24=True)},
  note TEXT,
  CHECK ((opens IS NULL) = (closes IS NULL)),
  CHECK (opens IS NULL OR opens != closes)
)""",
    "CREATE INDEX schedule_dates_lookup ON schedule_dates(schedule_id, date)",
    """
CREATE TABLE schedule_holiday_sets (
  schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  set_id INTEGER NOT NULL REFERENCES holiday_sets(id),
  PRIMARY KEY (schedule_id, set_id)
)""",
    # The reason is mandatory: a blocked customer must be explainable later.
    f"""
CREATE TABLE blacklist (
  id INTEGER PRIMARY KEY,
  number TEXT NOT NULL UNIQUE {phone_check("number")},
  reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
  added_by TEXT,
  {timestamp("created_at", now=True)},
  {timestamp("expires_at")}
)""",
    # Routes are tried by `position`; rr_last_line_id is the round-robin memory (runtime).
    f"""
CREATE TABLE outbound_routes (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  position INTEGER NOT NULL CHECK (position >= 0),
  pattern TEXT NOT NULL CHECK (length(pattern) BETWEEN 1 AND 64),
  route_class TEXT NOT NULL CHECK (route_class IN ({sql_list(ROUTE_CLASSES)})),
  line_choice TEXT NOT NULL DEFAULT 'pattern_order'
    CHECK (line_choice IN ('pattern_order', 'same_operator', 'least_cost', 'round_robin')),
  {flag("failover", 1)},
  strip_digits INTEGER NOT NULL DEFAULT 0 CHECK (strip_digits BETWEEN 0 AND 15),
  prepend TEXT NOT NULL DEFAULT '' CHECK (prepend NOT GLOB '*[^0-9+]*'),
  {flag("enabled", 1)},
  rr_last_line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL
)""",
    "CREATE INDEX outbound_routes_position ON outbound_routes(position)",
    """
CREATE TABLE outbound_route_lines (
  route_id INTEGER NOT NULL REFERENCES outbound_routes(id) ON DELETE CASCADE,
  line_id INTEGER NOT NULL REFERENCES lines(id),
  position INTEGER NOT NULL CHECK (position >= 0),
  PRIMARY KEY (route_id, line_id)
)""",
    "CREATE INDEX outbound_route_lines_line ON outbound_route_lines(line_id)",
    # Which number the callee sees: the first matching rule (by position) wins.
    f"""
CREATE TABLE caller_id_rules (
  id INTEGER PRIMARY KEY,
  position INTEGER NOT NULL CHECK (position >= 0),
  route_id INTEGER REFERENCES outbound_routes(id) ON DELETE CASCADE,
  pattern TEXT CHECK (pattern IS NULL OR length(pattern) BETWEEN 1 AND 64),
  mode TEXT NOT NULL CHECK (mode IN ('line_number', 'fixed', 'callee_region',
                                     'previous_contact', 'withheld')),
  number TEXT {phone_check("number")},
  CHECK ((mode = 'fixed') = (number IS NOT NULL))
)""",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the line, schedule and policy tables."""
    run_statements(db, STATEMENTS)
