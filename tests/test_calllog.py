"""Call records written to a real SQLite file: route and outcome, parties, legs, missed and
blocked calls, clearing when the client is reached, and the call history as an ICM source.

Calls are routed by the real routing core over the routing tests' office; the records are
what the switchboard would hand the CallLog (no engine needed at this level).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from appliance.callfacts import MISSED_REASONS, caller_name, client_number, missed_reason
from appliance.calllog import DbCallLog
from appliance.config.yamlio import import_yaml
from appliance.db import Database
from appliance.history import dialled_forms, managers_from_history
from appliance.routing import core
from appliance.routing.plan import (
    Answered,
    CallerHungUp,
    Done,
    Event,
    Leg,
    ManagerFact,
    NoAnswer,
    PlanState,
    Played,
    Ring,
)
from appliance.routing.repeat_callers import find_manager
from appliance.routing.snapshot import Snapshot
from appliance.switchboard.records import CallRecord, Disposition, Rung
from tests.support.routing import CLOSED, CUSTOMER, MAIN, OPEN, call, config, snapshot

BLOCKED = "+79995556677"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    import_yaml(database, yaml.safe_dump(config(), allow_unicode=True))
    yield database
    database.close()


def rows(db: Database, sql: str, *args: object) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.read().execute(sql, args).fetchall()]


def ids(db: Database) -> dict[str, int]:
    return dict(rows(db, "SELECT extension, id FROM employees"))


def walk(state: PlanState, *events: Event) -> PlanState:
    for event in events:
        state = core.next_step(state, event)
    return state


def plan(snap: Snapshot, **kwargs: Any) -> PlanState:
    ctx = call(**kwargs)
    return core.start(core.route(ctx, snap), snap)


def ring_legs(record: CallRecord, step: Ring, at: dt.datetime) -> dict[str, str]:
    """Note every leg of a ring step as dialled; returns extension or number -> leg id."""
    out = {}
    for leg in step.legs:
        leg_id = f"L{len(record.rung) + 1}"
        outside = leg.kind in ("mobile", "external")
        uri = f"line:sim1/{leg.address}" if outside else f"sip:{leg.address}@10.0.0.9:5060"
        record.rang.append(uri)
        record.rung[leg_id] = Rung(uri, leg, at + dt.timedelta(seconds=leg.start),
                                   line="sim1" if outside else None)
        out[leg.address] = leg_id
    return out


def record(state: PlanState | None, *, caller: str = f"sip:{CUSTOMER}@sim1", dialled: str = MAIN,
           direction: str = "inbound", line: str = "sim1", started: dt.datetime = OPEN,
           seconds: float = 30) -> CallRecord:
    return CallRecord(call_id=f"call-{started.timestamp():.0f}-{direction}", inbound_leg="A1",
                      caller=caller, dialled=dialled, started_at=started,
                      ended_at=started + dt.timedelta(seconds=seconds),
                      direction=direction, line=line if direction == "inbound" else "",
                      plan=state)


def answer(rec: CallRecord, leg_id: str, after: float = 5) -> None:
    rec.answered_leg = leg_id
    rec.answered_contact = rec.rung[leg_id].uri
    rec.answered_at = rec.started_at + dt.timedelta(seconds=after)
    rec.disposition = Disposition.ANSWERED
    rec.hangup_side = "caller"
    rec.sip_code = 200


async def write(db: Database, *records: CallRecord) -> None:
    log = DbCallLog(db)
    for rec in records:
        log.started(rec)
        log.finished(rec)
        await log.flush()


def answered_by_sales(snap: Snapshot, who: str = "102",
                      started: dt.datetime = OPEN) -> CallRecord:
    state = plan(snap, now=started)
    state = walk(state, Played())  # the greeting
    step = state.step
    assert isinstance(step, Ring) and step.target == "department:sales"
    rec = record(state, started=started)
    legs = ring_legs(rec, step, started)
    rec.plan = walk(state, Answered(who))
    answer(rec, legs[who])
    return rec


# -- complete records ------------------------------------------------------------------------


async def test_an_answered_call_names_its_route_parties_number_line_and_legs(
        db: Database) -> None:
    rec = answered_by_sales(snapshot())
    await write(db, rec)
    emp = ids(db)
    [(caller, employee, answered_by, number, line_key, line_id, route)] = rows(
        db, "SELECT caller, employee_id, answered_by_employee_id, number_id, line_key,"
            " line_id, route FROM call_records")
    assert caller == CUSTOMER
    assert employee == answered_by == emp["102"]
    assert number == rows(db, "SELECT id FROM numbers WHERE number = ?", MAIN)[0][0]
    assert line_key == "sim1" and line_id == rows(db, "SELECT id FROM lines")[0][0]
    route = json.loads(route)
    assert route["outcome"] == {"kind": "answered", "detail": "answered by 102", "by": "102",
                                "missed_reason": None}
    assert rec.plan is not None and route["steps"] == rec.plan.explain()
    assert route["steps"][0] == ("flow main: repeat caller -> look for the caller's manager"
                                 " [skipped: no manager found]")
    assert route["steps"][1].startswith("flow main / open: number +74955550001; schedule")
    assert route["steps"][1].endswith("-> play greeting welcome [played]")
    assert "ring department sales" in route["steps"][2]
    assert route["steps"][-1] == "outcome: answered: answered by 102"
    legs = rows(db, "SELECT position, party_kind, employee_id, device_id, extension, target,"
                    " disposition FROM call_legs ORDER BY position")
    devices = dict(rows(db, "SELECT username, id FROM devices"))
    by_target = {leg[5]: leg for leg in legs}
    assert by_target["sip:102@10.0.0.9:5060"][1:] == (
        "employee", emp["102"], devices["102"], "102", "sip:102@10.0.0.9:5060", "answered")
    assert by_target["sip:101@10.0.0.9:5060"][6] == "cancelled"
    # Anna's mobile rings 5 s after her desk phone: an outside leg that is still hers.
    assert by_target["+79160000101"][1:] == (
        "external", emp["101"], None, "101", "+79160000101", "cancelled")
    assert rows(db, "SELECT count(*) FROM missed_calls") == [(0,)]


@pytest.mark.parametrize(("to", "events", "kind", "missed"), [
    ({"voicemail": "general"}, [Done()], "voicemail", "voicemail"),
    ("hangup", [Done()], "hangup", None),  # an explicit hangup: the core does not count it
    ("callback", [Done()], "callback", "callback_requested"),
    ({"fax": "fax@example.org"}, [Done()], "fax", None),
    ({"department": "sales"}, [CallerHungUp()], "abandoned", "no_answer"),
    ({"department": "sales"}, [NoAnswer(), Done()], "voicemail", "voicemail"),
    ({"employee": "104"}, [NoAnswer(), Done()], "hangup", "no_answer"),
    ({"queue": "support"}, [CallerHungUp()], "abandoned", "abandoned_in_queue"),
])
async def test_every_outcome_kind_is_written_and_missed_ones_are_reported(
        db: Database, to: object, events: list[Event], kind: str, missed: str | None) -> None:
    changes = {"flows": [{"key": "main", "branches": [{"to": to}]},
                         {"key": "menu", "branches": [{"to": {"voice_menu": "main"}}]}],
               "queues": [{"key": "support", "agents": ["104"],
                           "overflow": {"voicemail": "general"}}]}
    import_yaml(db, yaml.safe_dump(config(changes), allow_unicode=True))
    snap = snapshot(changes)
    state = plan(snap)
    rec = record(None)
    if isinstance(state.step, Ring):
        ring_legs(rec, state.step, OPEN)
    rec.plan = walk(state, *events)
    rec.disposition = Disposition.CANCELLED if kind == "abandoned" else Disposition.NO_ANSWER
    if kind in ("voicemail", "fax", "callback"):
        rec.answered_at = OPEN + dt.timedelta(seconds=1)  # the machine answered, not a person
        rec.disposition = Disposition.ANSWERED
    await write(db, rec)
    [(route,)] = rows(db, "SELECT route FROM call_records")
    outcome = json.loads(route)["outcome"]
    assert outcome["kind"] == kind
    reported = rows(db, "SELECT reason, caller FROM missed_calls")
    events_out = rows(db, "SELECT kind, json_extract(payload, '$.reason') FROM event_outbox")
    if missed is None:
        assert reported == [] and events_out == []
    else:
        assert reported == [(missed, CUSTOMER)]
        assert events_out == [("call.missed", missed)]


async def test_after_hours_voicemail_is_missed_for_the_boxes_owner(db: Database) -> None:
    state = walk(plan(snapshot(), now=CLOSED), Played(), Done())
    assert state.outcome is not None and state.outcome.missed_reason == "after_hours"
    rec = record(state, started=CLOSED)
    rec.answered_at, rec.disposition = CLOSED, Disposition.ANSWERED  # the answering machine
    await write(db, rec)
    emp = ids(db)
    assert rows(db, "SELECT reason, responsible_employee_id, caller, cleared_at"
                    " FROM missed_calls") == [("after_hours", emp["101"], CUSTOMER, None)]
    # Nobody spoke with the caller: the voicemail box's owner is the party of the call.
    assert rows(db, "SELECT employee_id, answered_by_employee_id FROM call_records") == [
        (emp["101"], None)]
    [(payload,)] = rows(db, "SELECT payload FROM event_outbox WHERE kind = 'call.missed'")
    event = json.loads(payload)
    assert event["reason"] == "after_hours" and event["responsible"] == "101"
    assert event["caller"] == CUSTOMER and event["route"][-1].startswith("outcome: voicemail")


async def test_a_blacklisted_call_is_blocked_with_the_entrys_reason(db: Database) -> None:
    state = walk(plan(snapshot(), caller=BLOCKED), Done())
    rec = record(state, caller=f'"Robo" <sip:{BLOCKED}@sim1>')
    rec.disposition, rec.sip_code, rec.hangup_side = Disposition.FAILED, 403, "system"
    await write(db, rec)
    [(blacklist_id,)] = rows(db, "SELECT id FROM blacklist")
    [(call_id,)] = rows(db, "SELECT id FROM call_records")
    assert rows(db, "SELECT caller, dialled, blacklist_id, reason, call_id, line_id IS NOT NULL"
                    " FROM blocked_calls") == [
        (BLOCKED, MAIN, blacklist_id, "Robocaller", call_id, 1)]
    assert rows(db, "SELECT reason FROM missed_calls") == [("blacklisted",)]
    assert rows(db, "SELECT kind FROM event_outbox") == [("call.blocked",)]
    [(caller_name, route)] = rows(db, "SELECT caller_name, route FROM call_records")
    assert caller_name == "Robo"
    assert json.loads(route)["steps"][0] == (
        f"no flow: blacklist: {BLOCKED} -> reject: Robocaller [done]")


async def test_a_repeat_callers_missed_call_is_the_managers(db: Database) -> None:
    manager = ManagerFact("call_history", "103", OPEN - dt.timedelta(days=2))
    state = plan(snapshot(), managers=(manager,))
    assert isinstance(state.step, Ring) and state.step.strategy == "repeat_caller"
    rec = record(None)
    ring_legs(rec, state.step, OPEN)
    state = walk(state, NoAnswer(), Played())  # back to the flow: the greeting, then sales
    assert isinstance(state.step, Ring)
    ring_legs(rec, state.step, OPEN + dt.timedelta(seconds=20))
    rec.plan = walk(state, CallerHungUp())
    rec.disposition = Disposition.CANCELLED
    await write(db, rec)
    assert rows(db, "SELECT reason, responsible_employee_id FROM missed_calls") == [
        ("no_answer", ids(db)["103"])]


async def test_a_failed_leg_keeps_its_code(db: Database) -> None:
    rec = answered_by_sales(snapshot())
    [vera] = [r for r in rec.rung.values() if r.leg.address == "103"]
    vera.code = 486  # she was busy
    await write(db, rec)
    assert rows(db, "SELECT disposition, sip_cause FROM call_legs WHERE extension = '103'") == [
        ("busy", 486)]


async def test_an_inbound_call_on_a_line_that_names_no_number_gets_the_lines_number(
        db: Database) -> None:
    snap = snapshot()
    state = core.start(core.route(call(dialled="", line="sim1"), snap), snap)
    rec = record(walk(state, NoAnswer(), Done()), dialled="")
    rec.disposition = Disposition.NO_ANSWER
    await write(db, rec)
    [(number_id,)] = rows(db, "SELECT number_id FROM call_records")
    assert number_id == rows(db, "SELECT id FROM numbers WHERE number = '+79165550002'")[0][0]
    assert rows(db, "SELECT number_id FROM missed_calls") == [(number_id,)]


async def test_an_internal_call_names_the_callee_and_is_not_a_client_miss(
        db: Database) -> None:
    snap = snapshot()
    ctx = call(caller="101", dialled="104", direction="internal")
    state = core.start(core.route(ctx, snap), snap)
    rec = record(None, caller="sip:101@10.0.0.1", dialled="104", direction="internal")
    rec.caller_device = "101"
    assert isinstance(state.step, Ring)
    ring_legs(rec, state.step, OPEN)
    rec.plan = walk(state, NoAnswer())
    rec.disposition = Disposition.NO_ANSWER
    await write(db, rec)
    emp = ids(db)
    assert rows(db, "SELECT caller, employee_id, answered_by_employee_id FROM call_records"
                ) == [("101", emp["104"], None)]
    assert rows(db, "SELECT count(*) FROM missed_calls") == [(0,)]


# -- clearing ------------------------------------------------------------------------------


def outbound(dialled: str, started: dt.datetime, *, answered: bool,
             device: str = "102") -> CallRecord:
    leg = Leg("external", dialled, 0.0, 120.0)
    rec = record(None, caller=f"sip:{device}@10.0.0.2", dialled=dialled,
                 direction="outbound", started=started)
    rec.caller_device = device
    rec.rang.append(f"sip:{dialled}@sim1")
    rec.rung["O1"] = Rung(f"sip:{dialled}@sim1", leg, started, line="sim1")
    if answered:
        answer(rec, "O1")
    else:
        rec.rung["O1"].code = 480
        rec.disposition = Disposition.NO_ANSWER
    return rec


def missed_at(snap: Snapshot, started: dt.datetime) -> CallRecord:
    state = walk(plan(snap, now=started), Played())
    rec = record(None, started=started)
    assert isinstance(state.step, Ring)
    ring_legs(rec, state.step, started)
    rec.plan = walk(state, CallerHungUp())
    rec.disposition = Disposition.CANCELLED
    return rec


async def test_calling_the_client_back_clears_their_missed_calls(db: Database) -> None:
    snap = snapshot()
    first = missed_at(snap, OPEN)
    second = missed_at(snap, OPEN + dt.timedelta(minutes=5))
    tried = outbound("89161112233", OPEN + dt.timedelta(minutes=10), answered=False)
    await write(db, first, second, tried)
    # A callback nobody answered has not reached the client: still open.
    assert rows(db, "SELECT count(*) FROM missed_calls WHERE cleared_at IS NULL") == [(2,)]
    back = outbound("89161112233", OPEN + dt.timedelta(minutes=20), answered=True)
    await write(db, back)
    [(back_id, employee, line_key)] = rows(
        db, "SELECT id, employee_id, line_key FROM call_records WHERE uuid = ?", back.call_id)
    assert employee == ids(db)["102"] and line_key == "sim1"
    assert rows(db, "SELECT cleared_by_call_id, cleared_at FROM missed_calls") == [
        (back_id, "2026-03-03T07:20:05.000+00:00")] * 2


async def test_an_answered_call_from_the_client_clears_too_but_not_other_numbers(
        db: Database) -> None:
    snap = snapshot()
    other = missed_at(snap, OPEN)
    other.caller = "sip:+79160009999@sim1"
    other.call_id = "call-other-0001"
    mine = missed_at(snap, OPEN + dt.timedelta(minutes=1))
    answered = answered_by_sales(snap, "101", OPEN + dt.timedelta(minutes=30))
    await write(db, other, mine, answered)
    assert sorted(rows(db, "SELECT caller, cleared_at IS NOT NULL FROM missed_calls")) == [
        ("+79160009999", 0), (CUSTOMER, 1)]


# -- the call history as a repeat-caller source --------------------------------------------


async def test_history_names_who_last_spoke_with_the_caller_newest_first(
        db: Database) -> None:
    snap = snapshot()
    day = dt.timedelta(days=1)
    now = OPEN + 100 * day
    old = answered_by_sales(snap, "104", OPEN)  # 100 days ago: beyond a 90-day lookback
    by_101 = answered_by_sales(snap, "101", now - 30 * day)
    by_103 = answered_by_sales(snap, "103", now - 20 * day)
    missed = missed_at(snap, now - 1 * day)  # unanswered: nobody spoke with them
    called = outbound("89161112233", now - 10 * day, answered=True, device="102")
    not_reached = outbound("+79161112233", now - 5 * day, answered=False, device="104")
    again_101 = answered_by_sales(snap, "101", now - 3 * day)
    await write(db, old, by_101, by_103, missed, called, not_reached, again_101)
    facts = managers_from_history(db.read(), CUSTOMER, now, 90)
    assert [(f.extension, f.at) for f in facts] == [
        ("101", now - 3 * day + dt.timedelta(seconds=5)),
        ("102", now - 10 * day + dt.timedelta(seconds=5)),
        ("103", now - 20 * day + dt.timedelta(seconds=5))]
    assert all(f.source == "call_history" for f in facts)
    longer = managers_from_history(db.read(), CUSTOMER, now, 365)
    assert [f.extension for f in longer] == ["101", "102", "103", "104"]
    assert managers_from_history(db.read(), CUSTOMER, now, 2) == ()
    assert managers_from_history(db.read(), "+79160000000", now, 365) == ()
    # Routing takes the first usable one; the director would be passed over as an exception.
    found, _notes = find_manager(snap.repeat_caller, facts, snap, now)
    assert found is not None and found.extension == "101"


async def test_history_reads_a_local_number_with_the_area_code(db: Database) -> None:
    snap = snapshot()
    rec = outbound("5550123", OPEN, answered=True, device="103")
    await write(db, rec)
    later = OPEN + dt.timedelta(days=1)
    facts = managers_from_history(db.read(), "5550123", later, 30, local_area_code="495")
    assert [f.extension for f in facts] == ["103"]
    facts = managers_from_history(db.read(), "+74955550123", later, 30,
                                  local_area_code="495")
    assert [f.extension for f in facts] == ["103"]
    assert snap.repeat_caller.local_area_code == "495"


def test_history_lookups_use_the_indexes(db: Database) -> None:
    plans = [" ".join(str(r[-1]) for r in db.read().execute(f"EXPLAIN QUERY PLAN {sql}",
                                                           args).fetchall())
             for sql, args in (
                 ("SELECT 1 FROM call_records WHERE caller = ? AND started_at >= ?"
                  " ORDER BY started_at DESC", ["+7", "2026"]),
                 ("SELECT 1 FROM call_records WHERE dialled IN (?, ?) AND started_at >= ?"
                  " ORDER BY started_at DESC", ["+7", "8", "2026"]))]
    assert "call_records_caller" in plans[0]
    assert "call_records_dialled" in plans[1]


def test_dialled_forms_of_a_number() -> None:
    assert dialled_forms("+74955550123", "495") == [
        "+74955550123", "74955550123", "0074955550123", "81074955550123", "84955550123",
        "4955550123", "5550123"]
    assert dialled_forms("+442079460000") == [
        "+442079460000", "442079460000", "00442079460000", "810442079460000"]
    assert dialled_forms("101") == ["101"]


def test_missed_reasons_map_onto_the_reports_list() -> None:
    assert missed_reason("after_hours") == "after_hours"
    assert missed_reason("abandoned") == "no_answer"
    assert missed_reason("interrupted") == "failed"
    assert missed_reason("something new") == "failed"
    assert missed_reason(None) == "failed"


async def test_a_pickup_is_the_pickers_leg_and_the_rung_phone_is_cancelled(
        db: Database) -> None:
    snap = snapshot()
    ctx = call(caller="101", dialled="102", direction="internal")
    state = core.start(core.route(ctx, snap), snap)
    assert isinstance(state.step, Ring)
    rec = record(None, caller="sip:101@10.0.0.1", dialled="102", direction="internal")
    ring_legs(rec, state.step, OPEN)
    rec.plan = walk(state, Answered("104"))
    rec.answered_leg, rec.answered_contact = "P1", "sip:104@10.0.0.4:5060"
    rec.answered_extension, rec.answered_at = "104", OPEN + dt.timedelta(seconds=3)
    rec.disposition = Disposition.ANSWERED
    await write(db, rec)
    emp = ids(db)
    assert rows(db, "SELECT extension, employee_id, disposition FROM call_legs"
                    " ORDER BY position") == [("102", emp["102"], "cancelled"),
                                              ("104", emp["104"], "answered")]
    assert rows(db, "SELECT employee_id, answered_by_employee_id FROM call_records") == [
        (emp["102"], emp["104"])]


async def test_an_answered_withheld_caller_clears_nothing(db: Database) -> None:
    snap = snapshot()
    withheld = missed_at(snap, OPEN)
    withheld.caller = "sip:anonymous@anonymous.invalid"
    withheld.call_id = "call-anon-0001"
    answered = answered_by_sales(snap, "101", OPEN + dt.timedelta(minutes=30))
    answered.caller = "sip:anonymous@anonymous.invalid"
    await write(db, withheld, answered)
    assert rows(db, "SELECT caller, cleared_at FROM missed_calls") == [("anonymous", None)]


@given(st.text(max_size=40) | st.none())
def test_any_reason_maps_into_the_list(reason: str | None) -> None:
    assert missed_reason(reason) in MISSED_REASONS


@given(st.text(max_size=80))
def test_caller_names_and_numbers_read_any_text(text: str) -> None:
    name = caller_name(text)
    assert name is None or (name and name in text)
    assert isinstance(client_number(text, "495"), str)


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True), st.sampled_from([None, "495"]))
def test_dialled_forms_start_with_the_number_and_never_repeat(number: str,
                                                              area: str | None) -> None:
    forms = dialled_forms(number, area)
    assert forms[0] == number and len(set(forms)) == len(forms)
    assert all(form.endswith(number[-4:]) for form in forms)
