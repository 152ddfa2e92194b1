"""The routing snapshot loaded from a real SQLite file made by importing YAML."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlite_utils

from appliance.config.yamlio import import_yaml, parse_config
from appliance.db import Database
from appliance.routing.core import route, start
from appliance.routing.plan import Greeting, Reject, Ring
from appliance.routing.snapshot import (
    Dest,
    LiveState,
    MemberState,
    load_snapshot,
    snapshot_from_config,
)
from tests.support.routing import CLOSED, OFFICE, OPEN, call, config


def test_loaded_snapshot_matches_the_configuration(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, OFFICE)
        loaded = load_snapshot(db.read().conn, now=OPEN)
    expected = snapshot_from_config(parse_config(config()), years=[2025, 2026, 2027])
    for name in ("employees", "departments", "voicemail", "menus", "queues", "chains",
                 "flows", "numbers", "blacklist", "webhooks", "repeat_caller"):
        assert getattr(loaded, name) == getattr(expected, name), name
    assert loaded.schedules.keys() == expected.schedules.keys()
    office = loaded.schedules["office"]
    assert office.time_zone == "Europe/Moscow" and office.public.country == "RU"
    assert office.public.years == frozenset({2025, 2026, 2027})
    assert office.week == expected.schedules["office"].week
    assert loaded.employees["101"].devices == ("101",)
    assert loaded.employees["106"].static and not loaded.employees["106"].devices
    assert loaded.employees["101"].voicemail == "general"
    assert loaded.menus["main"].keys["1"] == Dest("department", "sales")


def test_database_only_routing_state(tmp_path: Path) -> None:
    until = "2026-03-03T18:00:00Z"

    def stored_state(conn: sqlite_utils.Database) -> None:
        c = conn.conn
        c.execute("UPDATE schedules SET override = 'open', override_until = ?", (until,))
        c.execute("UPDATE blacklist SET expires_at = '2026-01-01T00:00:00Z'")
        c.execute("UPDATE departments SET rr_last_employee_id ="
                  " (SELECT id FROM employees WHERE extension = '102') WHERE key = 'sales'")

    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, OFFICE)
        db.write(stored_state)
        live = LiveState(members={"102": MemberState(registered=True)})
        snap = load_snapshot(db.read().conn, now=OPEN, live=live)
    office = snap.schedules["office"]
    assert office.override == "open"
    assert office.override_until == dt.datetime(2026, 3, 3, 18, 0, tzinfo=dt.UTC)
    assert snap.last_answerer("sales") == "102"
    assert snap.blacklist["+79995556677"].expires_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert snap.member("102").registered and not snap.member("101").registered
    # The override opens the office until 18:00 UTC (21:00 in Moscow): 20:00 is open.
    state = start(route(call(CLOSED), snap), snap)
    assert isinstance(state.step, Greeting) and state.step.prompt == "welcome"
    # The expired blacklist entry no longer blocks.
    state = start(route(call(caller="+79995556677"), snap), snap)
    assert not isinstance(state.step, Reject)


def test_demo_office_routes_end_to_end(tmp_path: Path) -> None:
    demo = (Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml")
    with Database.open(tmp_path / "pbx.db") as db:
        import_yaml(db, demo.read_text(encoding="utf-8"))
        snap = load_snapshot(db.read().conn, now=OPEN)
    snap = snap.with_live(LiveState(members={e: MemberState(registered=True)
                                             for e in snap.employees}))
    state = start(route(call(), snap), snap)
    assert isinstance(state.step, Greeting)
    assert isinstance(state.step.then, Ring) and state.step.then.strategy == "one_after_another"
