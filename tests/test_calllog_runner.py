"""The switchboard writing through the real CallLog into a real SQLite file (fake engine):
a missed call from a client, the callback that clears it, a blacklisted caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.calllog import DbCallLog
from appliance.config.yamlio import import_yaml
from appliance.db import Database
from appliance.engine import LegEvent, LegInfo, LegState
from appliance.engine.events import Direction
from appliance.ringing import OutsideAttempt
from appliance.routing.snapshot import load_snapshot
from appliance.switchboard import Switchboard
from tests.support.routing import CUSTOMER, MAIN, OPEN, config
from tests.test_runner import Outside, Phones
from tests.test_switchboard import FakeEngine, settle

CONTACTS = {ext: [f"sip:{ext}@desk"] for ext in ("101", "102", "103", "104")}
# Straight to sales: no greeting to play (the fake engine plays nothing).
FLOWS = {"flows": [{"key": "main", "branches": [{"to": {"department": "sales"}}]},
                   {"key": "menu", "branches": [{"to": {"voice_menu": "main"}}]}]}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    import_yaml(database, yaml.safe_dump(config(FLOWS), allow_unicode=True))
    yield database
    database.close()


def board(db: Database, outside: Outside | None = None) -> tuple[FakeEngine, DbCallLog]:
    engine = FakeEngine()
    log = DbCallLog(db)
    snap = load_snapshot(db.read().conn, now=OPEN)
    Switchboard(engine, Phones(CONTACTS), log,  # type: ignore[arg-type]
                now=lambda: OPEN, snapshot=snap, outside=outside).attach()
    return engine, log


def incoming(eng: FakeEngine, leg: str, caller: str, user: str, **headers: str) -> None:
    assert eng.handler is not None
    eng.handler(LegEvent(LegInfo(
        leg, Direction.INBOUND, LegState.INCOMING, "sip:box", caller, request_user=user,
        headers={k.replace("_", "-"): v for k, v in headers.items()})))


def rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.read().execute(sql).fetchall()]


async def test_a_missed_client_is_reported_and_cleared_by_the_callback(db: Database) -> None:
    eng, log = board(db)
    incoming(eng, "A1", f"sip:{CUSTOMER}@sim1", "sim1", x_pbx_line="sim1",
             x_pbx_number=MAIN)
    await settle()
    assert len(eng.legs) == 4  # sales: every member's desk phone
    eng.emit("A1", LegState.DISCONNECTED, code=487, side="remote", inbound=True)
    await settle()
    await log.flush()
    [(direction, caller, line_key, number_id, route)] = rows(
        db, "SELECT direction, caller, line_key, number_id, route FROM call_records")
    assert (direction, caller, line_key) == ("inbound", CUSTOMER, "sim1")
    assert number_id is not None
    outcome = json.loads(route)["outcome"]
    assert outcome["kind"] == "abandoned" and outcome["missed_reason"] == "no_answer"
    assert rows(db, "SELECT caller, reason, cleared_at FROM missed_calls") == [
        (CUSTOMER, "no_answer", None)]
    assert rows(db, "SELECT kind FROM event_outbox") == [("call.missed",)]

    outside = Outside({"89161112233": (OutsideAttempt(f"sip:{CUSTOMER}@box", "sim1"),)})
    eng, log = board(db, outside)
    incoming(eng, "B1", "sip:102@10.0.0.2", "89161112233", x_pbx_device="102")
    await settle()
    eng.emit(eng.legs[0], LegState.CONFIRMED, code=200)
    await settle()
    eng.emit("B1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    await log.flush()
    [(back_id, employee, caller)] = rows(
        db, "SELECT id, employee_id, caller FROM call_records WHERE direction = 'outbound'")
    assert employee == rows(db, "SELECT id FROM employees WHERE extension = '102'")[0][0]
    assert caller == "102"
    assert rows(db, "SELECT cleared_by_call_id FROM missed_calls") == [(back_id,)]


async def test_a_blacklisted_caller_is_refused_and_logged_with_the_reason(
        db: Database) -> None:
    eng, log = board(db)
    incoming(eng, "A1", "sip:+79995556677@sim1", "sim1", x_pbx_line="sim1",
             x_pbx_number=MAIN)
    await settle()
    assert eng.commands == [("hangup", "A1", 403)]
    eng.emit("A1", LegState.DISCONNECTED, code=403, side="local", inbound=True)
    await settle()
    await log.flush()
    assert rows(db, "SELECT caller, reason, blacklist_id IS NOT NULL FROM blocked_calls") == [
        ("+79995556677", "Robocaller", 1)]
    assert rows(db, "SELECT reason FROM missed_calls") == [("blacklisted",)]
