"""Properties of outbound routing, checked with hypothesis: plan_outbound never raises,
attempts use only configured enabled lines, an emergency call always gets a line when one
is up, and failover always ends."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.routing.outbound import RotationState, next_attempt, plan_outbound
from tests.support.outbound import snapshot

SNAP = snapshot()
KEYS = ("sim-mts", "sim-mega", "sim-bee", "trunk", "fxo", "sim-off", "ghost")
ENABLED = {key for key, line in SNAP.lines.items() if line.enabled}

junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 120), st.text(max_size=3),
                 st.floats(allow_nan=True))
statuses = st.one_of(
    st.none(), st.text(max_size=3),
    st.fixed_dictionaries({}, optional={
        "up": st.one_of(st.booleans(), junk), "busy": st.one_of(st.booleans(), junk),
        "free_channels": st.one_of(st.integers(-1, 3), junk),
        "signal": st.one_of(st.integers(0, 31), st.just(99), junk),
        "registered": st.one_of(st.booleans(), junk)}))
line_states = st.dictionaries(st.sampled_from(KEYS), statuses)
callers = st.one_of(st.none(), st.sampled_from(["101", "102", "103", "104", "105", "999"]))
dialled = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\+?[0-9*#() -]{1,20}", fullmatch=True),
    st.sampled_from(["112", "911", "01", "103", "8 495 123-45-67", "8 10 44 20 7123 4567",
                     "9 8 495 123 45 67", "8 809 555 12 34", "0611", "*100#"]),
)
rotations = st.builds(RotationState, st.dictionaries(
    st.sampled_from(["russia", "mobile", "gone"]), st.sampled_from(KEYS)))
codes = st.sampled_from([0, 403, 404, 408, 480, 486, 487, 488, 500, 503, 600, 603])


@settings(max_examples=500, deadline=None)
@given(dialled, callers, line_states, rotations, st.booleans())
def test_plans_never_raise_and_use_only_enabled_lines(
        text: str, caller: str | None, lines: dict[str, Any], rotation: RotationState,
        as_box: bool) -> None:
    plan = plan_outbound(text, caller, SNAP, lines, rotation, as_box=as_box)
    assert {a.line for a in plan.attempts} <= ENABLED
    assert len({a.line for a in plan.attempts}) == len(plan.attempts)
    if plan.kind == "dial":
        assert plan.attempts and plan.sip_code is None and plan.current is not None
    else:
        assert plan.attempts == () or plan.kind == "no_line"
        assert plan.current is None and (plan.sip_code is not None or plan.kind == "internal")
    if plan.kind == "refused":
        assert plan.sip_code == 403 and not plan.emergency


usable = st.fixed_dictionaries({"up": st.just(True), "busy": st.just(False),
                                "free_channels": st.integers(1, 3),
                                "signal": st.integers(0, 31)})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["112", "911", "01", "02", "03", "04", " 1-1-2 "]), callers,
       line_states, st.sampled_from(sorted(ENABLED)), usable)
def test_emergency_always_gets_a_line_when_one_is_up(
        code: str, caller: str | None, lines: dict[str, Any], up_line: str,
        up: dict[str, Any]) -> None:
    lines = {**lines, up_line: up}
    plan = plan_outbound(code, caller, SNAP, lines)
    assert plan.kind == "dial" and plan.emergency
    assert up_line in {a.line for a in plan.attempts}
    assert all(a.number.strip() in ("112", "911", "01", "02", "03", "04") for a in plan.attempts)


@settings(max_examples=300, deadline=None)
@given(dialled, callers, line_states, st.lists(st.tuples(codes, st.booleans()), max_size=8))
def test_failover_only_moves_forward_and_ends(
        text: str, caller: str | None, lines: dict[str, Any],
        failures: list[tuple[int, bool]]) -> None:
    plan = plan_outbound(text, caller, SNAP, lines)
    tried = []
    for code, local in failures:
        if plan.current is None:
            break
        tried.append(plan.current.line)
        nxt = next_attempt(plan, code, local=local)
        if not nxt.retry:
            assert nxt.sip_code is not None
            break
        assert nxt.plan.position == plan.position + 1
        plan = nxt.plan
    assert len(tried) == len(set(tried)) <= len(plan.attempts)
