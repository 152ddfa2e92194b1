"""The transfer state machine (pure): bridges and hang-ups for each leg event."""

from __future__ import annotations

from appliance.engine import LegState
from appliance.transfers import Bridge, Hangup, Stage, Transfer

UP, GONE = LegState.CONFIRMED, LegState.DISCONNECTED


def transfer() -> Transfer:
    return Transfer(transferee="P", transferor="T", target_leg="X", target="sip:103@box")


def test_target_answers_then_transferor_is_released() -> None:
    t = transfer()
    assert t.step("X", LegState.EARLY) == []
    assert t.step("X", UP) == [Bridge("P", "X"), Hangup("T")]
    assert t.stage is Stage.DONE
    assert t.step("T", GONE) == []
    assert t.step("X", GONE) == [Hangup("P")]
    assert t.stage is Stage.OVER
    assert t.step("P", GONE) == []


def test_transferor_hung_up_first_then_target_answers() -> None:
    t = transfer()
    assert t.step("T", GONE) == []
    assert t.step("X", UP) == [Bridge("P", "X")]
    assert t.step("P", GONE) == [Hangup("X")]


def test_target_fails_the_call_returns_to_the_transferor() -> None:
    t = transfer()
    assert t.step("X", GONE) == [Bridge("P", "T")]
    assert t.stage is Stage.RETURNED
    assert t.step("T", GONE) == [Hangup("P")]
    assert t.stage is Stage.OVER


def test_target_fails_after_the_transferor_left_ends_the_call() -> None:
    t = transfer()
    t.step("T", GONE)
    assert t.step("X", GONE) == [Hangup("P")]


def test_transferee_leaves_while_the_target_rings() -> None:
    t = transfer()
    assert t.step("P", GONE) == [Hangup("X"), Hangup("T")]
    assert t.step("X", GONE) == []


def test_returned_call_ends_from_the_transferee_side() -> None:
    t = transfer()
    t.step("X", GONE)
    assert t.step("P", GONE) == [Hangup("T")]
