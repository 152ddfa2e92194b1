"""Department strategies as ring timetables, and which members are left out and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from appliance.routing.core import route, start
from appliance.routing.plan import CallContext, Leg, Ring, Step
from appliance.routing.snapshot import MemberState, Snapshot
from tests.support.routing import OPEN, config, snapshot

REGISTERED = MemberState(registered=True)


def sales(**fields: Any) -> list[dict[str, Any]]:
    """The office's departments with sales changed."""
    depts = config()["departments"]
    depts[0].update(fields)
    return depts


def ring_sales(snap: Snapshot, seed: int = 0) -> Step:
    """The first step of an internal call to sales (extension 500)."""
    call = CallContext("101", "500", OPEN, direction="internal", seed=seed)
    return route(call, snap).root


def ring(snap: Snapshot, seed: int = 0) -> Ring:
    step = ring_sales(snap, seed)
    assert isinstance(step, Ring), step
    return step


def desk(legs: tuple[Leg, ...]) -> list[tuple[str, float, float]]:
    """(extension, start, stop) of the desk legs, in timetable order."""
    return [(leg.address, leg.start, leg.stop) for leg in legs if leg.kind == "extension"]


def order(step: Ring) -> list[str]:
    seen: list[str] = []
    for leg in step.legs:
        if leg.kind == "extension" and leg.address not in seen:
            seen.append(leg.address)
    return seen


def test_all_at_once_rings_everyone_until_the_timeout() -> None:
    step = ring(snapshot())
    assert step.strategy == "all_at_once" and step.timeout == 40
    assert desk(step.legs) == [(e, 0, 40) for e in ("101", "102", "103", "104")]
    # Anna's mobile joins after her 5 s; Boris never has his mobile rung.
    mobiles = [(leg.address, leg.extension, leg.start) for leg in step.legs
               if leg.kind == "mobile"]
    assert mobiles == [("+79160000101", "101", 5)]
    assert "department sales" in step.why.step


def test_one_after_another_moves_on_every_ring_delay() -> None:
    step = ring(snapshot({"departments": sales(strategy="one_after_another", ring_delay=10)}))
    assert desk(step.legs) == [("101", 0, 10), ("102", 10, 20), ("103", 20, 30),
                               ("104", 30, 40)]
    mobile = [leg for leg in step.legs if leg.kind == "mobile"]
    assert [(m.start, m.stop) for m in mobile] == [(5, 10)]  # within Anna's own turn


def test_one_after_another_starts_again_until_the_timeout() -> None:
    depts = sales(strategy="one_after_another", ring_delay=10, timeout=45,
                  members=["104", "102"])
    assert desk(ring(snapshot({"departments": depts})).legs) == [
        ("104", 0, 10), ("102", 10, 20), ("104", 20, 30), ("102", 30, 40), ("104", 40, 45)]


def test_cascading_keeps_earlier_members_ringing() -> None:
    step = ring(snapshot({"departments": sales(strategy="cascading", ring_delay=12)}))
    assert desk(step.legs) == [("101", 0, 40), ("102", 12, 40), ("103", 24, 40),
                               ("104", 36, 40)]


def test_fixed_order_hunts_with_member_timeout() -> None:
    step = ring(snapshot({"departments": sales(strategy="fixed_order", member_timeout=15,
                                               timeout=40)}))
    assert desk(step.legs) == [("101", 0, 15), ("102", 15, 30), ("103", 30, 40)]


def test_a_single_member_rings_once_for_the_whole_time() -> None:
    step = ring(snapshot({"departments": sales(strategy="one_after_another",
                                               members=["104"])}))
    assert desk(step.legs) == [("104", 0, 40)]


def test_longest_idle_first() -> None:
    base = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)
    snap = snapshot(
        {"departments": sales(strategy="longest_idle", member_timeout=10)},
        m101=MemberState(registered=True, idle_since=base + dt.timedelta(minutes=30)),
        m102=MemberState(registered=True, idle_since=base),
        m103=MemberState(registered=True),  # no call yet today: idle the longest
        m104=MemberState(registered=True, idle_since=base + dt.timedelta(minutes=5)))
    assert order(ring(snap)) == ["103", "102", "104", "101"]


def test_fewest_calls_first_ties_in_member_order() -> None:
    snap = snapshot({"departments": sales(strategy="fewest_calls", member_timeout=10)},
                    m101=MemberState(registered=True, calls_today=4),
                    m102=MemberState(registered=True, calls_today=1),
                    m103=MemberState(registered=True, calls_today=2),
                    m104=MemberState(registered=True, calls_today=1))
    assert order(ring(snap)) == ["102", "104", "103", "101"]


def test_random_is_a_seeded_permutation() -> None:
    snap = snapshot({"departments": sales(strategy="random", member_timeout=10)})
    orders = {tuple(order(ring(snap, seed))) for seed in range(40)}
    assert all(sorted(o) == ["101", "102", "103", "104"] for o in orders)
    assert len(orders) > 5  # the seed really shuffles
    assert order(ring(snap, 7)) == order(ring(snap, 7))  # and the same seed, the same order


def test_round_robin_continues_after_the_last_answerer() -> None:
    depts = sales(strategy="round_robin_memory", member_timeout=10)
    snap = snapshot({"departments": depts})
    assert order(ring(snap)) == ["101", "102", "103", "104"]  # nobody answered yet
    live = dataclasses.replace(snap.live, round_robin={"sales": "102"})
    assert order(ring(snap.with_live(live))) == ["103", "104", "101", "102"]
    # The stored pointer counts when the runner has none; the runner's wins.
    stored = dataclasses.replace(snap, stored_round_robin={"sales": "101"})
    assert order(ring(stored)) == ["102", "103", "104", "101"]
    assert order(ring(stored.with_live(live))) == ["103", "104", "101", "102"]


def test_round_robin_skips_an_unavailable_member_but_keeps_the_place() -> None:
    snap = snapshot({"departments": sales(strategy="round_robin_memory", member_timeout=10)},
                    m103=MemberState(registered=True, activity="busy"))
    live = dataclasses.replace(snap.live, round_robin={"sales": "102"})
    assert order(ring(snap.with_live(live))) == ["104", "101", "102"]


def test_members_left_out_and_why() -> None:
    snap = snapshot(m101=MemberState(registered=True, activity="busy"),
                    m102=MemberState(registered=False),
                    m103=MemberState(registered=True, dnd=True))
    step = ring(snap)
    assert order(step) == ["104"]
    assert step.skipped == ("101: busy", "102: not registered", "103: do not disturb")


def test_ringing_members_still_ring() -> None:
    step = ring(snapshot(m102=MemberState(registered=True, activity="ringing")))
    assert "102" in order(step)


def test_configured_dnd_disabled_and_static_contacts() -> None:
    data = config()
    data["employees"][0]["dnd"] = True
    data["employees"][1]["enabled"] = False
    depts = sales(members=["101", "102", "106"])
    step = ring(snapshot({"employees": data["employees"], "departments": depts}))
    # 106 has a static contact: reachable without registering.
    assert order(step) == ["106"]
    assert step.skipped == ("101: do not disturb", "102: disabled")


def test_call_waiting_rings_busy_members_who_allow_it() -> None:
    busy = MemberState(registered=True, activity="busy")
    snap = snapshot({"departments": sales(call_waiting="ring_busy")}, m101=busy, m103=busy)
    step = ring(snap)
    assert order(step) == ["101", "102", "104"]  # 103 has call waiting off
    assert [leg.call_waiting for leg in step.legs if leg.kind == "extension"] == [
        True, False, False]
    assert step.skipped == ("103: busy",)


def test_busy_members_hunt_last_in_queue_strategies() -> None:
    busy = MemberState(registered=True, activity="busy")
    depts = sales(strategy="longest_idle", call_waiting="ring_busy", member_timeout=10)
    snap = snapshot({"departments": depts}, m101=busy)
    assert order(ring(snap))[-1] == "101"


@pytest.mark.parametrize("strategy", ["all_at_once", "one_after_another", "cascading",
                                      "longest_idle", "fewest_calls", "random",
                                      "round_robin_memory", "fixed_order"])
def test_nobody_available_goes_to_the_overflow_with_the_reason(strategy: str) -> None:
    away = MemberState(registered=False)
    snap = snapshot({"departments": sales(strategy=strategy)},
                    m101=away, m102=away, m103=away, m104=away)
    state = start(route(CallContext("101", "500", OPEN, direction="internal"), snap), snap)
    assert type(state.step).__name__ == "Voicemail"
    assert "nobody can take the call" in state.trail[0].ended
    assert "101: not registered" in state.trail[0].ended
