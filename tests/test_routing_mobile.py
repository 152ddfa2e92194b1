"""Forwarding to staff mobiles: when and what is dialled (as the box's call), lines shared
between mobiles, "press 1 to accept" decisions and each leg's state machine."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.routing.mobile import (
    CONFIRM_TIMEOUT,
    CallTaken,
    ConfirmAction,
    Confirmation,
    LegAnswered,
    LegChanged,
    LegDigits,
    LegEvent,
    LegFailed,
    LegState,
    LegTick,
    MobileLeg,
    Started,
    advance,
    decide_confirmation,
    plan_forward,
)
from appliance.routing.outbound import RotationState
from tests.support.outbound import snapshot, status

SNAP = snapshot()


def test_when_and_what_to_dial() -> None:
    fwd = plan_forward("101", SNAP, status())
    assert fwd.after == 5.0
    assert [leg.mobile for leg in fwd.legs] == ["+79031110101", "+79261110101"]
    assert all(leg.start == 5.0 and leg.state is LegState.WAITING for leg in fwd.legs)
    first, second = fwd.legs
    # Each mobile is an outbound plan of its own: the SIM of its operator first.
    assert first.plan.current is not None and first.plan.current.line == "sim-bee"
    assert second.plan.current is not None and second.plan.current.line == "sim-mega"
    assert first.plan.number.route_class == "mobile" and first.plan.caller is None


def test_the_employees_own_permissions_do_not_apply() -> None:
    # Boris may only make internal calls; the box calls his mobile when asked to.
    fwd = plan_forward("102", SNAP, status(), after=0)
    assert fwd.after == 0.0 and len(fwd.legs) == 1
    assert fwd.legs[0].plan.kind == "dial"


def test_the_box_never_forwards_abroad() -> None:
    fwd = plan_forward("103", SNAP, status())  # Vera's "mobile" is a London number
    assert fwd.after == 0.0 and fwd.legs == ()
    assert fwd.skipped[0][0] == "+442071234567" and "the box" in fwd.skipped[0][1]


def test_never_no_mobiles_and_unknown_employees() -> None:
    assert plan_forward("102", SNAP, status()).after is None  # ring_mobile_after: never
    assert "never" in plan_forward("102", SNAP, status()).reason
    assert plan_forward("104", SNAP, status()).legs == ()  # no mobiles
    assert plan_forward("105", SNAP, status()).after is None  # disabled
    assert plan_forward("999", SNAP, status()).after is None


def test_a_sim_is_not_given_to_two_mobiles() -> None:
    # Only one SIM is up: the first mobile gets it, the second goes out on the trunk.
    lines = status(sim_mega={"up": False}, sim_mts={"up": False})
    fwd = plan_forward("101", SNAP, lines)
    first, second = fwd.legs
    assert first.plan.current is not None and first.plan.current.line == "sim-bee"
    assert second.plan.current is not None and second.plan.current.line == "trunk"
    assert ("sim-bee", "busy") in second.plan.skipped


def test_a_trunk_channel_is_counted_per_mobile() -> None:
    sims_down = {"up": False}
    lines = status(sim_mega=sims_down, sim_mts=sims_down, sim_bee=sims_down,
                   trunk={"up": True, "free_channels": 1})
    fwd = plan_forward("101", SNAP, lines)
    assert len(fwd.legs) == 1 and fwd.legs[0].plan.current is not None
    assert fwd.legs[0].plan.current.line == "trunk"
    assert fwd.skipped[0][0] == "+79261110101"


def test_rotation_state_is_passed_along() -> None:
    snap = snapshot({"outbound_routes": [
        {"key": "mobile", "pattern": "+79XXXXXXXXX", "route_class": "mobile",
         "line_choice": "round_robin", "lines": ["sim-mts", "sim-mega", "sim-bee"]}]})
    fwd = plan_forward("101", snap, status(), RotationState().used("mobile", "sim-mts"))
    assert [leg.plan.current.line for leg in fwd.legs if leg.plan.current] == [
        "sim-mega", "sim-bee"]
    assert fwd.rotation.last["mobile"] == "sim-bee"


def test_confirmation_is_asked_only_when_configured() -> None:
    assert all(leg.confirm == Confirmation() for leg in plan_forward("101", SNAP,
                                                                     status()).legs)
    assert plan_forward("102", SNAP, status(), after=0).legs[0].confirm is None


# -- press 1 -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("digits", "elapsed", "action"), [
    ("1", 2.0, ConfirmAction.BRIDGE),
    ("1#", 9.9, ConfirmAction.BRIDGE),
    ("2", 1.0, ConfirmAction.HANG_UP),
    ("*", 1.0, ConfirmAction.HANG_UP),
    (None, 3.0, ConfirmAction.WAIT),
    ("", 3.0, ConfirmAction.WAIT),
    (None, CONFIRM_TIMEOUT, ConfirmAction.HANG_UP),
    (None, 60.0, ConfirmAction.HANG_UP),
])
def test_confirmation_decisions(digits: str | None, elapsed: float,
                                action: ConfirmAction) -> None:
    decision = decide_confirmation(Confirmation(), digits, elapsed)
    assert decision.action is action
    if action is ConfirmAction.WAIT:
        assert decision.wait == pytest.approx(CONFIRM_TIMEOUT - elapsed)


# -- a leg as a state machine ------------------------------------------------------------------

def leg(confirm: bool = True) -> MobileLeg:
    fwd = plan_forward("101", SNAP, status())
    first = fwd.legs[0]
    return first if confirm else replace(first, confirm=None)


def run(start: MobileLeg, *events: LegEvent) -> tuple[MobileLeg, list[LegChanged]]:
    changes = []
    current = start
    for event in events:
        current, change = advance(current, event)
        if change is not None:
            changes.append(change)
    return current, changes


def test_confirmed_leg_is_bridged() -> None:
    done, changes = run(leg(), Started(), LegAnswered(at=12.0), LegTick(at=15.0),
                        LegDigits("1", at=16.0))
    assert done.state is LegState.BRIDGED
    assert [(c.old, c.new) for c in changes] == [
        (LegState.WAITING, LegState.DIALLING), (LegState.DIALLING, LegState.CONFIRMING),
        (LegState.CONFIRMING, LegState.BRIDGED)]
    assert "pressed 1" in changes[-1].reason


def test_voicemail_that_presses_nothing_is_dropped_after_the_timeout() -> None:
    waiting, _ = run(leg(), Started(), LegAnswered(at=12.0), LegTick(at=21.0))
    assert waiting.state is LegState.CONFIRMING
    done, changes = run(waiting, LegTick(at=22.0))
    assert done.state is LegState.DROPPED and "no key within 10 s" in changes[0].reason


def test_wrong_digit_drops_the_leg() -> None:
    done, _ = run(leg(), Started(), LegAnswered(at=12.0), LegDigits("5", at=13.0))
    assert done.state is LegState.DROPPED


def test_without_confirmation_an_answer_bridges_at_once() -> None:
    done, _ = run(leg(confirm=False), Started(), LegAnswered(at=7.0))
    assert done.state is LegState.BRIDGED


def test_a_failed_attempt_moves_to_the_next_line_then_fails() -> None:
    current, changes = run(leg(), Started(), LegFailed(503))
    assert current.state is LegState.DIALLING
    assert current.plan.current is not None and current.plan.current.line == "sim-mts"
    assert changes[-1].old is changes[-1].new is LegState.DIALLING
    done, changes = run(current, LegFailed(486))  # the mobile itself is busy
    assert done.state is LegState.FAILED and "far end" in changes[-1].reason


def test_the_call_taken_elsewhere_drops_every_unfinished_leg() -> None:
    for events in ((), (Started(),), (Started(), LegAnswered(at=6.0))):
        current, _ = run(leg(), *events)
        done, change = advance(current, CallTaken())
        assert done.state is LegState.DROPPED and change is not None
    bridged, _ = run(leg(confirm=False), Started(), LegAnswered(at=6.0))
    assert advance(bridged, CallTaken()) == (bridged, None)


def test_events_that_do_not_apply_change_nothing() -> None:
    waiting = leg()
    assert advance(waiting, LegAnswered(at=1.0)) == (waiting, None)
    dialling, _ = run(waiting, Started())
    assert advance(dialling, LegDigits("1", at=2.0)) == (dialling, None)
    assert advance(dialling, LegTick(at=100.0)) == (dialling, None)


events = st.one_of(
    st.just(Started()), st.builds(LegAnswered, st.floats(0, 100)),
    st.builds(LegDigits, st.sampled_from(["1", "2", "#", "11"]), st.floats(0, 100)),
    st.builds(LegTick, st.floats(0, 100)),
    st.builds(LegFailed, st.sampled_from([0, 408, 480, 486, 487, 503]), st.booleans()),
    st.just(CallTaken()))


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(events, max_size=12))
def test_legs_only_move_forward_and_final_states_stay(confirm: bool,
                                                      sequence: list[LegEvent]) -> None:
    rank = {LegState.WAITING: 0, LegState.DIALLING: 1, LegState.CONFIRMING: 2}
    current = leg(confirm)
    for event in sequence:
        nxt, change = advance(current, event)
        if current.state not in rank:
            assert (nxt, change) == (current, None)
        elif nxt.state in rank:
            assert rank[nxt.state] >= rank[current.state]
        if change is not None:
            assert (change.old, change.new) == (current.state, nxt.state)
        else:
            assert nxt.state is current.state
        if nxt.state is LegState.CONFIRMING:
            assert confirm
        current = nxt


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["101", "102", "103", "104", "105", "999"]),
       st.dictionaries(st.sampled_from(["sim-mts", "sim-mega", "sim-bee", "trunk", "fxo"]),
                       st.fixed_dictionaries({}, optional={
                           "up": st.booleans(), "busy": st.booleans(),
                           "free_channels": st.integers(-1, 2),
                           "signal": st.integers(0, 99)})),
       st.one_of(st.none(), st.integers(0, 60)))
def test_forward_plans_never_share_a_sim(extension: str, lines: dict[str, dict[str, object]],
                                         after: int | None) -> None:
    fwd = plan_forward(extension, SNAP, lines, after=after)
    firsts = [leg.plan.current.line for leg in fwd.legs if leg.plan.current is not None]
    assert len(firsts) == len(fwd.legs)  # every leg has something to dial
    sims = [line for line in firsts if SNAP.lines[line].kind == "sim"]
    assert len(sims) == len(set(sims))
    assert len(fwd.legs) + len(fwd.skipped) == (len(SNAP.employees[extension].mobiles)
                                                if fwd.after is not None else 0)
