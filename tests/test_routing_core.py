"""Routing decisions: flows by schedule state, blacklist, menus, chains, employees, repeat
callers, webhooks, and moving through a plan with next_step."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from appliance.config.model import BoxConfig
from appliance.routing.core import next_step, route, start
from appliance.routing.plan import (
    Answered,
    Busy,
    CallContext,
    CallerHungUp,
    Done,
    Failed,
    Greeting,
    Hangup,
    KeyPressed,
    ManagerFact,
    Menu,
    NoAnswer,
    PlanState,
    Played,
    Reject,
    Ring,
    Voicemail,
    Webhook,
    WebhookReplied,
)
from appliance.routing.repeat_callers import full_number
from appliance.routing.snapshot import Dest, LiveState, MemberState, snapshot_from_config
from tests.support.routing import (
    CLOSED,
    CUSTOMER,
    HOLIDAY,
    MAIN,
    MOBILE_NUMBER,
    OPEN,
    call,
    config,
    snapshot,
)


def begin(ctx: CallContext | None = None, **members: MemberState) -> PlanState:
    snap = snapshot(**members)
    return start(route(ctx or call(), snap), snap)


def run(state: PlanState, *events: object) -> PlanState:
    for event in events:
        state = next_step(state, event)  # type: ignore[arg-type]
    return state


# -- flows by schedule state ------------------------------------------------------------------

def test_working_hours_greeting_then_sales() -> None:
    state = begin()
    assert isinstance(state.step, Greeting) and state.step.prompt == "welcome"
    assert state.step.why.flow == "main" and state.step.why.branch == "open"
    assert "schedule office open" in state.step.why.rule
    state = next_step(state, Played())
    assert isinstance(state.step, Ring) and state.step.target == "department:sales"
    done = next_step(state, Answered("102"))
    assert done.finished and done.outcome is not None
    assert done.outcome.kind == "answered" and done.outcome.by == "102"
    assert done.explain()[-1] == "outcome: answered: answered by 102"


def test_sales_unanswered_goes_to_its_overflow() -> None:
    state = run(begin(), Played(), NoAnswer())
    assert isinstance(state.step, Voicemail) and state.step.box == "sales"
    assert "no answer within 40 s" in state.trail[-1].ended
    done = next_step(state, Done())
    assert done.outcome is not None and done.outcome.missed_reason == "voicemail"


def test_after_hours_answering_machine() -> None:
    state = run(begin(call(CLOSED)), Played())
    assert isinstance(state.step, Voicemail) and state.step.box == "general"
    assert state.step.why.branch == "closed"
    done = next_step(state, Done())
    assert done.outcome is not None and done.outcome.missed_reason == "after_hours"


def test_holiday_runs_the_duty_chain() -> None:
    state = begin(call(HOLIDAY))
    assert isinstance(state.step, Ring) and state.step.target == "department:first-line"
    assert state.step.why.branch == "holiday" and state.step.timeout == 15
    assert "holiday 2026-01-07" in state.step.why.rule
    assert "chain duty: step 1/3" in state.step.why.rule
    state = next_step(state, NoAnswer())
    assert isinstance(state.step, Ring) and state.step.target == "department:sales"
    assert state.step.timeout == 15  # the chain step's timeout caps the department's 40 s
    state = next_step(state, Busy())
    assert isinstance(state.step, Ring) and state.step.target == "external:+79160000105"
    assert state.step.legs[0].line == "sim1" and state.step.timeout == 25
    state = next_step(state, Failed("line down"))
    assert isinstance(state.step, Voicemail) and state.step.box == "general"
    assert [hop.ended for hop in state.trail[-3:]] == [
        "no answer within 15 s", "busy", "failed: line down"]


def test_holiday_without_holiday_branch_uses_closed() -> None:
    data = config()
    data["flows"][0]["branches"] = [b for b in data["flows"][0]["branches"]
                                    if b["when"] != "holiday"]
    data["schedules"][0]["holidays"] = []
    snap = snapshot({"flows": data["flows"]})
    state = start(route(call(HOLIDAY), snap), snap)
    assert state.step is not None and state.step.why.branch == "closed"


def test_backup_mode_takes_the_backup_branch() -> None:
    snap = snapshot()
    snap = snap.with_live(dataclasses.replace(snap.live, backup=True))
    state = start(route(call(), snap), snap)
    assert isinstance(state.step, Ring) and state.step.target == "external:+79160000105"
    assert state.step.why.branch == "backup"


def test_manual_night_switch_sends_working_hours_calls_to_the_machine() -> None:
    snap = dataclasses.replace(snapshot(), day_night="night")
    state = run(start(route(call(OPEN), snap), snap), Played())
    assert isinstance(state.step, Voicemail) and "manual night switch" in state.step.why.rule


def test_nothing_left_hangs_up_as_missed() -> None:
    depts = config()["departments"]
    depts[0].pop("overflow")
    snap = snapshot({"departments": depts})
    state = run(start(route(call(), snap), snap), Played(), Busy())
    assert isinstance(state.step, Hangup)
    done = next_step(state, Done())
    assert done.outcome is not None and done.outcome.missed_reason == "busy"


# -- blacklist and numbers --------------------------------------------------------------------

def test_blacklisted_caller_is_refused_with_the_reason() -> None:
    state = begin(call(caller="8 999 555 66 77"))
    assert isinstance(state.step, Reject)
    assert state.step.reason == "Robocaller" and state.step.sip_code == 403
    done = next_step(state, Done())
    assert done.outcome is not None and done.outcome.kind == "rejected"
    assert done.outcome.missed_reason == "blacklisted"
    assert "blacklist" in done.explain()[0]


def test_expired_blacklist_entry_lets_the_call_through() -> None:
    from appliance.config.yamlio import parse_config

    cfg = parse_config(config())
    until = {"+79995556677": OPEN - dt.timedelta(days=1)}
    snap = snapshot_from_config(cfg, blacklist_expiry=until)
    state = start(route(call(caller="+79995556677"), snap), snap)
    assert not isinstance(state.step, Reject)


def test_unknown_and_disabled_numbers_are_refused() -> None:
    state = begin(call(dialled="+74950000000"))
    assert isinstance(state.step, Reject) and state.step.sip_code == 404
    numbers = config()["numbers"]
    numbers[0]["enabled"] = False
    snap = snapshot({"numbers": numbers})
    state = start(route(call(), snap), snap)
    assert isinstance(state.step, Reject) and state.step.sip_code == 480


def test_a_sim_line_without_the_dialled_number_uses_the_lines_number() -> None:
    state = begin(call(dialled="", line="sim1"))
    assert isinstance(state.step, Menu) and state.step.menu == "main"


# -- voice menus ------------------------------------------------------------------------------

def menu() -> PlanState:
    state = begin(call(dialled=MOBILE_NUMBER))
    assert isinstance(state.step, Menu)
    return state


def test_menu_key_goes_to_its_destination() -> None:
    state = next_step(menu(), KeyPressed("1"))
    assert isinstance(state.step, Ring) and state.step.target == "department:sales"
    assert state.step.why.rule == "menu main: key 1"


def test_menu_no_key_goes_to_the_default() -> None:
    state = menu()
    assert isinstance(state.step, Menu) and state.step.timeout == 5
    state = next_step(state, NoAnswer())
    assert isinstance(state.step, Ring) and state.step.target == "department:sales"
    assert state.trail[-1].ended == "no key within 5 s"


def test_menu_invalid_keys_replay_then_default() -> None:
    state = run(menu(), KeyPressed("7"), KeyPressed("8"))
    assert isinstance(state.step, Menu) and state.invalid_keys == 2
    assert state.trail[-1].ended == "invalid key 8: replay (2/2)"
    state = next_step(state, KeyPressed("7"))
    assert isinstance(state.step, Ring) and state.step.target == "department:sales"
    assert state.trail[-1].ended == "invalid key 7 (3 times)"


def test_menu_direct_dialling() -> None:
    state = next_step(menu(), KeyPressed("104"))
    assert isinstance(state.step, Ring) and state.step.target == "employee:104"
    assert state.step.why.rule == "menu main: dialled 104"
    state = next_step(menu(), KeyPressed("500"))
    assert isinstance(state.step, Ring) and state.step.target == "department:sales"
    state = next_step(menu(), KeyPressed("999"))
    assert isinstance(state.step, Menu) and state.invalid_keys == 1


def test_sub_menu_and_back() -> None:
    state = next_step(menu(), KeyPressed("2"))
    assert isinstance(state.step, Menu) and state.step.menu == "support"
    state = next_step(state, KeyPressed("*"))
    assert isinstance(state.step, Menu) and state.step.menu == "main"


def test_operator_key_rings_the_employee_then_their_voicemail() -> None:
    state = next_step(menu(), KeyPressed("0"))
    assert isinstance(state.step, Ring) and state.step.target == "employee:101"
    assert state.step.timeout == 30  # the employee's no_answer_timeout
    state = next_step(state, NoAnswer())
    assert isinstance(state.step, Voicemail) and state.step.box == "general"


def test_caller_hanging_up_in_the_menu() -> None:
    done = next_step(menu(), CallerHungUp())
    assert done.outcome is not None and done.outcome.kind == "abandoned"
    assert "voice menu main" in done.outcome.detail


# -- employees --------------------------------------------------------------------------------

def internal(dialled: str, **members: MemberState) -> PlanState:
    return begin(CallContext("105", dialled, OPEN, direction="internal"), **members)


def test_desk_phone_then_mobile_after_n_seconds() -> None:
    state = internal("101")
    assert isinstance(state.step, Ring)
    assert [(leg.kind, leg.address, leg.start, leg.stop) for leg in state.step.legs] == [
        ("extension", "101", 0, 30), ("mobile", "+79160000101", 5, 30)]


def test_unregistered_desk_rings_the_mobile_at_once() -> None:
    state = internal("101", m101=MemberState(registered=False))
    assert isinstance(state.step, Ring)
    assert [(leg.kind, leg.start) for leg in state.step.legs] == [("mobile", 0)]
    state = internal("104", m104=MemberState(registered=False))
    assert isinstance(state.step, Hangup)
    assert "not registered and no mobile" in state.trail[0].ended


def test_busy_employee_call_waiting_or_voicemail() -> None:
    state = internal("101", m101=MemberState(registered=True, activity="busy"))
    assert isinstance(state.step, Ring) and state.step.legs[0].call_waiting
    state = internal("103", m103=MemberState(registered=True, activity="busy"))
    assert isinstance(state.step, Hangup) and "103: busy" in state.trail[0].ended


def test_dnd_employee_goes_to_their_voicemail() -> None:
    state = internal("101", m101=MemberState(registered=True, dnd=True))
    assert isinstance(state.step, Voicemail) and state.step.box == "general"
    assert "do not disturb" in state.trail[0].ended


def test_unknown_internal_number() -> None:
    state = internal("777")
    assert isinstance(state.step, Reject) and state.step.sip_code == 404


# -- repeat callers ---------------------------------------------------------------------------

def history(extension: str, days_ago: int = 3) -> ManagerFact:
    return ManagerFact("call_history", extension, OPEN - dt.timedelta(days=days_ago))


def test_repeat_caller_reaches_the_last_manager_then_the_flow() -> None:
    state = begin(call(managers=(history("104", 30), history("102"))))
    assert isinstance(state.step, Ring) and state.step.strategy == "repeat_caller"
    assert state.step.target == "employee:102" and state.step.timeout == 20
    assert [leg.kind for leg in state.step.legs] == ["extension"]  # desk only
    assert state.step.why.rule == "repeat caller: call_history says 102"
    state = next_step(state, NoAnswer())
    assert isinstance(state.step, Greeting)  # back in the normal flow
    assert isinstance(next_step(state, Played()).step, Ring)


def test_busy_manager_returns_the_call_to_the_flow() -> None:
    state = begin(call(managers=(history("102"),)),
                  m102=MemberState(registered=True, activity="busy"))
    assert isinstance(state.step, Greeting)
    assert "manager 102: busy; back to the flow" in state.trail[0].ended


def test_exceptions_and_old_history_are_not_sticky() -> None:
    state = begin(call(managers=(history("105"), history("102", 200))))
    assert isinstance(state.step, Greeting)
    ended = state.trail[0].ended
    assert "105 is an exception" in ended and "older than 90 days" in ended


def test_sources_in_order_and_mobiles() -> None:
    changes = {
        "crm": [{"key": "amo", "adapter": "amocrm", "base_url": "https://x.amocrm.ru"}],
        "repeat_caller": {"enabled": True, "sources": ["crm:amo", "call_history"],
                          "ring_mobiles": True, "answer_timeout": 25},
    }
    snap = snapshot(changes)
    facts = (history("102"), ManagerFact("crm:amo", "101"))
    state = start(route(call(managers=facts), snap), snap)
    assert isinstance(state.step, Ring) and state.step.target == "employee:101"
    assert [(leg.kind, leg.start) for leg in state.step.legs] == [("extension", 0),
                                                                  ("mobile", 5)]
    offline = snap.with_live(LiveState(members={"101": MemberState(registered=False)}))
    state = start(route(call(managers=facts), offline), offline)
    assert isinstance(state.step, Ring)
    assert [(leg.kind, leg.start) for leg in state.step.legs] == [("mobile", 0)]


def test_no_manager_default_destination_then_the_flow() -> None:
    snap = snapshot({"repeat_caller": {"enabled": True, "default": {"employee": "104"}}})
    state = start(route(call(), snap), snap)
    assert isinstance(state.step, Ring) and state.step.target == "employee:104"
    assert "no manager found" in state.step.why.rule
    assert isinstance(next_step(state, NoAnswer()).step, Greeting)


def test_numbers_can_opt_out_of_repeat_callers() -> None:
    numbers = config()["numbers"]
    numbers[0]["repeat_caller"] = False
    snap = snapshot({"numbers": numbers})
    state = start(route(call(managers=(history("102"),)), snap), snap)
    assert isinstance(state.step, Greeting) and not state.trail


@pytest.mark.parametrize(("raw", "full"), [
    ("5550123", "+74955550123"), ("+74955550123", "+74955550123"),
    ("84955550123", "+74955550123"), ("anonymous", "anonymous")])
def test_local_numbers_get_the_area_code(raw: str, full: str) -> None:
    assert full_number(raw, "495") == full


# -- webhooks, loops, events ------------------------------------------------------------------

def webhook_state() -> PlanState:
    flows = config()["flows"]
    flows[1]["branches"] = [{"to": {"webhook": "router"}}]
    snap = snapshot({"flows": flows, "webhooks": [{"key": "router",
                                                   "url": "https://crm.example/route"}]})
    return start(route(call(dialled=MOBILE_NUMBER), snap), snap)


def test_webhook_reply_and_failure() -> None:
    state = webhook_state()
    assert isinstance(state.step, Webhook) and state.step.url == "https://crm.example/route"
    routed = next_step(state, WebhookReplied(Dest("employee", "104")))
    assert isinstance(routed.step, Ring) and routed.step.target == "employee:104"
    assert "webhook router replied employee:104" in routed.step.why.rule
    for event in (Failed("timeout"), WebhookReplied(None), NoAnswer()):
        assert isinstance(next_step(state, event).step, Hangup)
    nowhere = next_step(state, WebhookReplied(Dest("department", "ghosts")))
    assert isinstance(nowhere.step, Hangup) and "does not exist" in nowhere.trail[-1].ended


def test_a_loop_that_skipped_validation_still_ends() -> None:
    data = config()
    data["flows"].append({"key": "night", "branches": [{"to": {"chain": "loop"}}]})
    data["forwarding_chains"].append({"key": "loop", "steps": [{"to": {"employee": "104"}}],
                                      "final": {"flow": "night"}})
    data["numbers"][0]["flow"] = "night"
    cfg = BoxConfig.model_validate(data, context={"from_database": True})
    snap = snapshot_from_config(cfg, live=snapshot().live)
    state = next_step(start(route(call(), snap), snap), NoAnswer())
    assert isinstance(state.step, Hangup) and state.step.reason == "routing loop"


def test_irrelevant_and_late_events_change_nothing() -> None:
    state = begin()
    assert next_step(state, KeyPressed("1")) == state
    ringing = next_step(state, Played())
    assert next_step(ringing, Played()) == ringing
    done = next_step(ringing, Answered("101"))
    assert next_step(done, NoAnswer()) == done


def test_route_explanation_names_every_step() -> None:
    state = run(begin(call(CLOSED, caller=CUSTOMER)), Played(), Done())
    lines = state.explain()
    assert lines[0].startswith("flow main: repeat caller")
    assert "flow main / closed" in lines[1] and "play greeting closed" in lines[1]
    assert "voicemail general" in lines[2]
    assert lines[-1] == "outcome: voicemail: voicemail general"
    assert MAIN in lines[1]
