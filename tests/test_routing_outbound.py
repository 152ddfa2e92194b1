"""Outbound routing decisions: routes, strip/prepend, permissions, emergency calls, every
line_choice strategy, failover order and next_attempt, round robin, caller ID modes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from appliance.routing.outbound import (
    LineStatus,
    OutboundPlan,
    RotationState,
    next_attempt,
    plan_outbound,
)
from appliance.routing.snapshot import frozen_map
from tests.support.outbound import snapshot, status

SNAP = snapshot()


def plan(dialled: str, caller: str | None = "101", lines: dict[str, Any] | None = None,
         state: RotationState | None = None, **kwargs: Any) -> OutboundPlan:
    return plan_outbound(dialled, caller, kwargs.pop("snap", SNAP),
                         status() if lines is None else lines, state, **kwargs)


def order(p: OutboundPlan) -> list[str]:
    return [a.line for a in p.attempts]


# -- numbers and routes -----------------------------------------------------------------------

@pytest.mark.parametrize(("dialled", "route", "number_class", "first", "number"), [
    # Moscow numbers, however written: the local route, cheapest line first (the trunk).
    ("8 495 123-45-67", "moscow", "local", "trunk", "+74951234567"),
    ("+7 (495) 123-45-67", "moscow", "local", "trunk", "+74951234567"),
    ("123-45-67", "moscow", "local", "trunk", "+74951234567"),
    # Mobiles: the SIM of the callee's operator first.
    ("8 926 123-45-67", "mobile", "mobile", "sim-mega", "+79261234567"),
    ("89031234567", "mobile", "mobile", "sim-bee", "+79031234567"),
    # Elsewhere in Russia: round robin over the SIMs.
    ("8 343 123-45-67", "russia", "long_distance", "sim-mts", "+73431234567"),
    # Toll-free and short service numbers.
    ("8 800 555-35-35", "free", "service", "trunk", "+78005553535"),
    ("0611", "short", "service", "sim-mts", "0611"),
    # The old PBX habit: 9 for an outside line, stripped, sent to the FXO gateway, which
    # wants national dialling.
    ("9 8 495 123-45-67", "exit9", "local", "fxo", "84951234567"),
])
def test_routes_and_numbers(dialled: str, route: str, number_class: str, first: str,
                            number: str) -> None:
    p = plan(dialled)
    assert p.kind == "dial" and p.route == route and p.sip_code is None
    assert p.number.route_class == number_class
    assert p.current is not None and p.current.line == first
    assert p.current.number == number


def test_strip_and_prepend_shape_the_number_for_the_trunk() -> None:
    p = plan("8 812 234-56-78")
    assert p.route == "spb"
    # '+78122345678' without '+7', then '8' in front; the trunk takes it as is ...
    assert (p.attempts[0].line, p.attempts[0].number) == ("trunk", "88122345678")
    # ... while a SIM still gets E.164 (a mobile network knows no national shortcuts).
    assert (p.attempts[1].line, p.attempts[1].number) == ("sim-mts", "+78122345678")
    assert p.number.e164 == "+78122345678"


def test_a_disabled_route_is_passed_over() -> None:
    # `old` (first, disabled) would send everything in +7 to the trunk only.
    assert plan("8 343 123-45-67").route == "russia"


def test_internal_numbers_are_not_dialled_out() -> None:
    p = plan("102")
    assert p.kind == "internal" and p.attempts == () and p.current is None


def test_no_route_and_incomplete_numbers() -> None:
    p = plan("8495")
    assert p.kind == "no_route" and p.sip_code == 484  # still being dialled
    p = plan("12#34")
    assert p.kind == "no_route" and p.sip_code == 404
    p = plan("hello")
    assert p.kind == "invalid" and p.sip_code == 484


# -- permissions ------------------------------------------------------------------------------

def test_permission_refusal_names_the_class() -> None:
    p = plan("8 926 123-45-67", caller="104")  # Gleb: internal, local, service
    assert p.kind == "refused" and p.sip_code == 403 and p.attempts == ()
    assert "employee 104 may not call mobile numbers" in p.reason
    assert plan("8 495 123-45-67", caller="104").kind == "dial"


def test_international_needs_the_grant() -> None:
    refused = plan("8 10 44 20 7123 4567", caller="101")
    assert refused.kind == "refused" and "international" in refused.reason
    allowed = plan("8 10 44 20 7123 4567", caller="103")
    assert allowed.kind == "dial" and allowed.route == "world"
    assert allowed.current is not None and allowed.current.number == "+442071234567"


def test_premium_numbers_need_the_premium_class_whatever_the_route_says() -> None:
    assert plan("8 809 555-12-34", caller="101").kind == "refused"
    assert plan("8 809 555-12-34", caller="103").kind == "dial"
    # A catch-all route declared `local` does not let a premium number out either.
    snap = snapshot({"outbound_routes": [
        {"key": "all", "pattern": "X.", "route_class": "local", "lines": ["trunk"]}]})
    p = plan("8 809 555-12-34", caller="104", snap=snap)
    assert p.kind == "refused" and "premium" in p.reason
    assert plan("8 495 123-45-67", caller="104", snap=snap).kind == "dial"


def test_a_route_the_caller_may_not_use_falls_through_to_the_next() -> None:
    snap = snapshot({"outbound_routes": [
        {"key": "mobile-cheap", "pattern": "+79XXXXXXXXX", "route_class": "long_distance",
         "lines": ["trunk"]},
        {"key": "mobile", "pattern": "+79XXXXXXXXX", "route_class": "mobile",
         "lines": ["sim-mts"]}]})
    boris = replace(snap.employees["102"], allowed_routes=frozenset({"internal", "mobile"}))
    snap = replace(snap, employees=frozen_map({**snap.employees, "102": boris}))
    assert plan("8 926 123-45-67", caller="102", snap=snap).route == "mobile"
    assert plan("8 926 123-45-67", caller="101", snap=snap).route == "mobile-cheap"


def test_unknown_and_disabled_callers_are_refused() -> None:
    assert plan("8 495 123-45-67", caller="999").kind == "refused"
    assert plan("8 495 123-45-67", caller="105").kind == "refused"
    assert plan("8 495 123-45-67", caller=None).kind == "refused"


def test_the_box_itself_may_call_mobiles_but_not_abroad() -> None:
    assert plan("8 926 123-45-67", caller=None, as_box=True).kind == "dial"
    p = plan("+44 20 7123 4567", caller=None, as_box=True)
    assert p.kind == "refused" and "the box" in p.reason


# -- emergency --------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["112", "911", "01", "02", "03", "04"])
def test_emergency_with_no_permissions(code: str) -> None:
    p = plan(code, caller="102")  # Boris may only make internal calls
    assert p.kind == "dial" and p.emergency and p.sip_code is None
    assert p.current is not None and p.current.number == code
    assert not any(a.caller_id.withheld for a in p.attempts)


def test_short_codes_an_office_uses_as_extensions_stay_internal() -> None:
    # This office numbers its phones 101-105, so 103 is Vera; 112 always reaches help.
    assert plan("103", caller="102").kind == "internal"
    snap = snapshot({"employees": [{"extension": "201", "name": "Solo",
                                    "allowed_routes": ["internal"]}]})
    p = plan("103", caller="201", snap=snap)
    assert p.kind == "dial" and p.emergency


def test_emergency_uses_its_route_first_then_every_usable_line() -> None:
    p = plan("112", caller="102")
    assert order(p)[:2] == ["sim-mts", "trunk"]
    assert set(order(p)) == {"sim-mts", "trunk", "sim-mega", "sim-bee", "fxo"}
    assert "sim-off" not in order(p)  # disabled lines are never used


def test_emergency_without_any_route() -> None:
    snap = snapshot({"outbound_routes": []})
    p = plan("112", caller="102", snap=snap)
    assert p.kind == "dial" and p.route is None
    assert order(p) == ["sim-mts", "sim-mega", "sim-bee", "trunk", "fxo"]


def test_emergency_tries_a_sim_without_signal_last_and_skips_down_lines() -> None:
    lines = status(sim_mts={"up": True, "signal": 0}, trunk={"up": False},
                   sim_mega={"up": True, "busy": True})
    p = plan("112", lines=lines)
    assert order(p) == ["sim-bee", "fxo", "sim-mts"]
    assert ("trunk", "down") in p.skipped and ("sim-mega", "busy") in p.skipped


def test_emergency_through_an_exit_prefix_route() -> None:
    p = plan("9112", caller="102")
    assert p.emergency and p.current is not None and p.current.number == "112"


def test_emergency_with_every_line_down() -> None:
    p = plan("112", lines={k: {"up": False} for k in status()})
    assert p.kind == "no_line" and p.sip_code == 503 and p.current is None


def test_emergency_fails_over_on_anything_but_the_caller_hanging_up() -> None:
    p = plan("112")
    nxt = next_attempt(p, 486)
    assert nxt.retry and nxt.plan.current is not None and nxt.plan.current.line == "trunk"
    assert not next_attempt(p, 487).retry


# -- line choice ------------------------------------------------------------------------------

def test_pattern_order() -> None:
    snap = snapshot({"outbound_routes": [
        {"key": "r", "pattern": "+7XXXXXXXXXX", "route_class": "long_distance",
         "lines": ["sim-bee", "trunk", "sim-mts"]}]})
    assert order(plan("8 343 123-45-67", snap=snap)) == ["sim-bee", "trunk", "sim-mts"]


@pytest.mark.parametrize(("dialled", "lines"), [
    ("8 926 123-45-67", ["sim-mega", "sim-mts", "sim-bee", "trunk"]),  # MegaFon range
    ("8 903 123-45-67", ["sim-bee", "sim-mts", "sim-mega", "trunk"]),  # Beeline range
    ("8 982 123-45-67", ["sim-mts", "sim-mega", "sim-bee", "trunk"]),  # MTS range
    ("8 950 123-45-67", ["sim-mts", "sim-mega", "sim-bee", "trunk"]),  # T2: no T2 SIM
    ("8 916 123-45-67", ["sim-mts", "sim-mega", "sim-bee", "trunk"]),  # operator unknown
])
def test_same_operator(dialled: str, lines: list[str]) -> None:
    assert order(plan(dialled)) == lines


def test_least_cost_puts_unpriced_lines_last() -> None:
    assert order(plan("8 495 123-45-67")) == ["trunk", "sim-mega", "sim-mts"]
    snap = snapshot({"outbound_routes": [
        {"key": "r", "pattern": "+7495XXXXXXX", "route_class": "local",
         "line_choice": "least_cost", "lines": ["fxo", "sim-bee", "sim-mts"]}]})
    assert order(plan("8 495 123-45-67", snap=snap)) == ["sim-mts", "sim-bee", "fxo"]


def test_round_robin_rotates_and_returns_the_state() -> None:
    seen = []
    state = RotationState()
    for _ in range(4):
        p = plan("8 343 123-45-67", state=state)
        seen.append(order(p))
        state = p.rotation
    assert seen == [["sim-mts", "sim-mega", "sim-bee"], ["sim-mega", "sim-bee", "sim-mts"],
                    ["sim-bee", "sim-mts", "sim-mega"], ["sim-mts", "sim-mega", "sim-bee"]]
    assert state.last == {"russia": "sim-mts"}


def test_round_robin_skips_a_busy_sim_and_remembers_the_one_used() -> None:
    state = RotationState().used("russia", "sim-mts")
    p = plan("8 343 123-45-67", state=state, lines=status(sim_mega={"up": True, "busy": True}))
    assert order(p) == ["sim-bee", "sim-mts"]
    assert p.rotation.last["russia"] == "sim-bee"
    # The line that actually carried the call is what counts after a failover.
    nxt = next_attempt(p, 503)
    assert nxt.plan.rotation.last["russia"] == "sim-mts"


# -- failover ---------------------------------------------------------------------------------

def test_failover_order_skips_down_busy_and_signal_less_lines() -> None:
    lines = status(sim_mega={"up": False}, sim_bee={"up": True, "signal": 99},
                   trunk={"up": True, "free_channels": 0})
    p = plan("8 926 123-45-67", lines=lines)
    assert order(p) == ["sim-mts"]
    assert dict(p.skipped) == {"sim-mega": "down", "sim-bee": "no signal", "trunk": "busy"}


def test_all_lines_unusable_gives_503() -> None:
    lines = status(trunk={"up": True, "registered": False, "free_channels": 2},
                   sim_mts={"up": True, "busy": True})
    p = plan("8 800 555-35-35", lines=lines)
    assert p.kind == "no_line" and p.sip_code == 503
    assert dict(p.skipped) == {"trunk": "not registered", "sim-mts": "busy"}


def test_lines_without_a_status_are_not_used() -> None:
    p = plan("8 495 123-45-67", lines={"sim-mts": {"up": True}})
    assert order(p) == ["sim-mts"]
    assert ("trunk", "no status reported") in p.skipped


@pytest.mark.parametrize(("code", "local", "retry"), [
    (503, False, True), (500, False, True), (408, False, True), (0, False, True),
    (403, False, True), (402, False, True), (488, False, True),
    (486, True, True),  # the SIM line was busy with another call: the next line may do
    (486, False, False),  # the callee is busy: busy on every line, answer busy at once
    (600, False, False), (480, False, False), (404, False, False), (484, False, False),
    (603, False, False), (487, False, False), (487, True, False),
])
def test_next_attempt_decisions(code: int, local: bool, retry: bool) -> None:
    p = plan("8 926 123-45-67")
    nxt = next_attempt(p, code, local=local)
    assert nxt.retry is retry
    if retry:
        assert nxt.plan.current is not None and nxt.plan.current.line == "sim-mts"
        assert nxt.sip_code is None
    else:
        assert nxt.plan.current == p.current
        assert nxt.sip_code == (503 if local and code != 487 else code)


def test_failover_walks_the_list_then_gives_up() -> None:
    p = plan("8 926 123-45-67")
    tried = [p.current.line if p.current else None]
    while True:
        nxt = next_attempt(p, 503)
        if not nxt.retry:
            break
        p = nxt.plan
        tried.append(p.current.line if p.current else None)
    assert tried == ["sim-mega", "sim-mts", "sim-bee", "trunk"]
    assert nxt.sip_code == 503 and "no line left" in nxt.reason


def test_no_failover_route_tries_one_line() -> None:
    p = plan("+44 20 7123 4567", caller="103")
    assert order(p) == ["trunk"] and not p.failover
    assert not next_attempt(p, 503).retry


def test_next_attempt_on_a_plan_with_nothing_to_dial() -> None:
    refused = plan("8 926 123-45-67", caller="104")
    nxt = next_attempt(refused, 503)
    assert not nxt.retry and nxt.sip_code == 403


# -- caller ID --------------------------------------------------------------------------------

def test_caller_id_line_number() -> None:
    p = plan("8 926 123-45-67")
    ids = {a.line: a.caller_id.number for a in p.attempts}
    assert ids == {"sim-mega": "+79265550002", "sim-mts": None, "sim-bee": "+79035550003",
                   "trunk": "+74955550001"}
    assert all(a.caller_id.mode == "line_number" for a in p.attempts)


def test_caller_id_withheld() -> None:
    p = plan("+44 20 7123 4567", caller="103")
    assert p.attempts[0].caller_id.withheld and p.attempts[0].caller_id.number is None


def test_caller_id_fixed_on_a_trunk() -> None:
    p = plan("8 809 555-12-34", caller="103")
    assert p.attempts[0].caller_id.number == "+74955550009"


def test_caller_id_callee_region_on_the_trunk_and_own_number_on_a_sim() -> None:
    p = plan("8 812 234-56-78")
    by_line = {a.line: a.caller_id for a in p.attempts}
    assert by_line["trunk"].number == "+78125550001"  # the box's St Petersburg number
    assert by_line["sim-mts"].mode == "callee_region" and by_line["sim-mts"].number is None
    assert "SIM line shows its own number" in by_line["sim-mts"].why


def test_caller_id_previous_contact() -> None:
    snap = SNAP.with_previous_contacts({"+74951234567": "+74955550001"})
    p = plan("8 495 123-45-67", snap=snap)
    trunk = p.attempts[0]
    assert trunk.line == "trunk" and trunk.caller_id.mode == "previous_contact"
    assert trunk.caller_id.number == "+74955550001"
    # Nothing known about this callee: the line's own number.
    other = plan("8 495 765-43-21")
    assert other.attempts[0].caller_id.number == "+74955550001"
    assert "no the number they spoke with before" in other.attempts[0].caller_id.why


def test_emergency_caller_id_is_never_withheld() -> None:
    snap = snapshot({"caller_id_rules": [{"mode": "withheld"}]})
    p = plan("112", snap=snap)
    assert p.attempts and not any(a.caller_id.withheld for a in p.attempts)
    assert plan("8 926 123-45-67", snap=snap).attempts[0].caller_id.withheld


# -- line status ------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "kind", "problem"), [
    ({"up": True}, "sim", None),
    ({"up": True, "signal": 0}, "sim", "no signal"),
    ({"up": True, "signal": 99}, "sim", "no signal"),
    ({"up": True, "signal": 0}, "sip_trunk", None),
    ({"up": True, "registered": False}, "sip_trunk", "not registered"),
    ({"up": True, "free_channels": 0}, "sip_trunk", "busy"),
    ({"up": "yes"}, "sim", "down"),
    ({"up": True, "busy": 1}, "sim", None),
    ({"up": True, "signal": "strong"}, "sim", None),
    ({"up": True, "free_channels": float("nan")}, "sip_trunk", None),
    ({"up": True, "free_channels": float("-inf")}, "sip_trunk", None),
    ({"up": True, "free_channels": 0.0}, "sip_trunk", "busy"),
    (None, "sim", "no status reported"),
    ("up", "sim", "no status reported"),
])
def test_line_status_is_read_leniently(raw: object, kind: str, problem: str | None) -> None:
    assert LineStatus.of(raw).problem(kind) == problem
