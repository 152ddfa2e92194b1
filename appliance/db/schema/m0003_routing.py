"""Migration 3: departments, voice menus, queues, forwarding chains, call flows and numbers.

Everything that sends a call somewhere uses the destination columns of
`destination_columns()`: a kind plus a real foreign key, so a dangling reference is
impossible. Config-to-config references use the default NO ACTION so that an import can
replace the configuration in one transaction with deferred foreign keys.
"""

from __future__ import annotations

import sqlite_utils

from . import (
    destination_columns,
    extension_check,
    flag,
    key_check,
    phone_check,
    run_statements,
)

RECORDING = "('default', 'always', 'never')"
DIGIT = "('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#')"
GROUP_STRATEGIES = (
    "('all_at_once', 'one_after_another', 'cascading', 'longest_idle', 'fewest_calls', "
    "'random', 'round_robin_memory', 'fixed_order')"
)
QUEUE_STRATEGIES = (
    "('all_at_once', 'longest_idle', 'fewest_calls', 'random', 'round_robin_memory', "
    "'fixed_order')"
)

STATEMENTS = [
    f"""
CREATE TABLE departments (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  extension TEXT UNIQUE {extension_check("extension")},
  strategy TEXT NOT NULL DEFAULT 'all_at_once' CHECK (strategy IN {GROUP_STRATEGIES}),
  ring_delay_s INTEGER NOT NULL DEFAULT 10 CHECK (ring_delay_s BETWEEN 1 AND 120),
  member_timeout_s INTEGER NOT NULL DEFAULT 20 CHECK (member_timeout_s BETWEEN 5 AND 300),
  timeout_s INTEGER NOT NULL DEFAULT 60 CHECK (timeout_s BETWEEN 5 AND 3600),
  call_waiting TEXT NOT NULL DEFAULT 'skip_busy'
    CHECK (call_waiting IN ('skip_busy', 'ring_busy')),
  recording TEXT NOT NULL DEFAULT 'default' CHECK (recording IN {RECORDING}),
  {destination_columns("overflow", required=False)},
  rr_last_employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL
)""",
    """
CREATE TABLE department_members (
  department_id INTEGER NOT NULL REFERENCES departments(id) ON DELETE CASCADE,
  employee_id INTEGER NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  PRIMARY KEY (department_id, employee_id),
  UNIQUE (department_id, position)
)""",
    "CREATE INDEX department_members_employee ON department_members(employee_id)",
    f"""
CREATE TABLE voice_menus (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  extension TEXT UNIQUE {extension_check("extension")},
  greeting_prompt_id INTEGER REFERENCES prompts(id),
  invalid_prompt_id INTEGER REFERENCES prompts(id),
  timeout_s INTEGER NOT NULL DEFAULT 5 CHECK (timeout_s BETWEEN 1 AND 60),
  invalid_retries INTEGER NOT NULL DEFAULT 2 CHECK (invalid_retries BETWEEN 0 AND 10),
  {flag("direct_dial", 1)},
  parent_id INTEGER REFERENCES voice_menus(id),
  {destination_columns("default", required=True)},
  CHECK (parent_id IS NULL OR parent_id != id)
)""",
    f"""
CREATE TABLE menu_keys (
  menu_id INTEGER NOT NULL REFERENCES voice_menus(id) ON DELETE CASCADE,
  digit TEXT NOT NULL CHECK (digit IN {DIGIT}),
  label TEXT,
  {destination_columns("dest", required=True)},
  PRIMARY KEY (menu_id, digit)
)""",
    f"""
CREATE TABLE queues (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  extension TEXT UNIQUE {extension_check("extension")},
  strategy TEXT NOT NULL DEFAULT 'longest_idle' CHECK (strategy IN {QUEUE_STRATEGIES}),
  moh_prompt_id INTEGER REFERENCES prompts(id),
  {flag("announce_position", 1)},
  announce_every_s INTEGER NOT NULL DEFAULT 30 CHECK (announce_every_s BETWEEN 10 AND 600),
  max_wait_s INTEGER NOT NULL DEFAULT 300 CHECK (max_wait_s BETWEEN 10 AND 7200),
  max_callers INTEGER CHECK (max_callers IS NULL OR max_callers BETWEEN 1 AND 500),
  agent_timeout_s INTEGER NOT NULL DEFAULT 20 CHECK (agent_timeout_s BETWEEN 5 AND 300),
  wrapup_s INTEGER NOT NULL DEFAULT 10 CHECK (wrapup_s BETWEEN 0 AND 600),
  -- Nobody free: go straight to the overflow instead of holding (inbound minutes cost money).
  {flag("skip_waiting", 0)},
  service_level_s INTEGER NOT NULL DEFAULT 20 CHECK (service_level_s BETWEEN 1 AND 600),
  recording TEXT NOT NULL DEFAULT 'default' CHECK (recording IN {RECORDING}),
  {destination_columns("overflow", required=True)},
  rr_last_employee_id INTEGER REFERENCES employees(id) ON DELETE SET NULL
)""",
    # `paused*` is live state (an agent pausing from the phone); imports keep it.
    f"""
CREATE TABLE queue_agents (
  queue_id INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
  employee_id INTEGER NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  penalty INTEGER NOT NULL DEFAULT 0 CHECK (penalty BETWEEN 0 AND 100),
  {flag("paused", 0)},
  paused_at TEXT,
  paused_reason TEXT,
  PRIMARY KEY (queue_id, employee_id)
)""",
    "CREATE INDEX queue_agents_employee ON queue_agents(employee_id)",
    f"""
CREATE TABLE queue_key_options (
  queue_id INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
  digit TEXT NOT NULL CHECK (digit IN {DIGIT}),
  label TEXT,
  {destination_columns("dest", required=True)},
  PRIMARY KEY (queue_id, digit)
)""",
    # A chain never ends "nowhere": the final destination is mandatory.
    f"""
CREATE TABLE forwarding_chains (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  {destination_columns("final", required=True)}
)""",
    f"""
CREATE TABLE chain_steps (
  chain_id INTEGER NOT NULL REFERENCES forwarding_chains(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  timeout_s INTEGER NOT NULL CHECK (timeout_s BETWEEN 1 AND 600),
  {destination_columns("dest", required=True)},
  PRIMARY KEY (chain_id, position)
)""",
    f"""
CREATE TABLE call_flows (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE {key_check("key")},
  name TEXT NOT NULL DEFAULT '',
  schedule_id INTEGER REFERENCES schedules(id),
  description TEXT
)""",
    # Branches are evaluated by position; `condition` is the schedule state they apply to.
    f"""
CREATE TABLE flow_branches (
  id INTEGER PRIMARY KEY,
  flow_id INTEGER NOT NULL REFERENCES call_flows(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  condition TEXT NOT NULL DEFAULT 'always'
    CHECK (condition IN ('always', 'open', 'closed', 'holiday', 'backup')),
  greeting_prompt_id INTEGER REFERENCES prompts(id),
  {destination_columns("dest", required=True)},
  UNIQUE (flow_id, position)
)""",
    # Incoming numbers (SIM numbers, trunk DIDs, FXO lines), each with its call flow.
    f"""
CREATE TABLE numbers (
  id INTEGER PRIMARY KEY,
  number TEXT NOT NULL UNIQUE {phone_check("number")},
  line_id INTEGER REFERENCES lines(id),
  flow_id INTEGER NOT NULL REFERENCES call_flows(id),
  label TEXT,
  ad_source TEXT,
  region TEXT,
  recording TEXT NOT NULL DEFAULT 'default' CHECK (recording IN {RECORDING}),
  {flag("repeat_caller", 1)},
  {flag("enabled", 1)}
)""",
    "CREATE INDEX numbers_line ON numbers(line_id)",
    "CREATE INDEX numbers_flow ON numbers(flow_id)",
]


def apply(db: sqlite_utils.Database) -> None:
    """Create the call-routing tables."""
    run_statements(db, STATEMENTS)
