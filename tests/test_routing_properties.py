"""Properties of the routing core, checked with hypothesis: every plan ends in a terminal
step, any event sequence keeps the state sound, round robin offers everyone a call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.routing.core import next_step, route, start
from appliance.routing.departments import after_answer, after_hangup
from appliance.routing.plan import (
    Answered,
    Busy,
    CallContext,
    CallerHungUp,
    Done,
    Event,
    Failed,
    Greeting,
    KeyPressed,
    ManagerFact,
    Menu,
    NoAnswer,
    Played,
    Queue,
    Ring,
    Skip,
    Step,
    Webhook,
    WebhookReplied,
)
from appliance.routing.snapshot import Dest, LiveState, MemberState, Snapshot
from tests.support.routing import MAIN, MOBILE_NUMBER, config, snapshot

BASE = snapshot()
EXTENSIONS = ("101", "102", "103", "104", "105", "106")

member_states = st.builds(
    MemberState,
    activity=st.sampled_from(["idle", "busy", "ringing"]),
    registered=st.booleans(),
    dnd=st.booleans(),
    calls_today=st.integers(0, 20),
)
lives = st.builds(
    LiveState,
    members=st.dictionaries(st.sampled_from(EXTENSIONS), member_states),
    round_robin=st.dictionaries(st.just("sales"), st.sampled_from(EXTENSIONS)),
    backup=st.booleans(),
)
instants = st.datetimes(min_value=dt.datetime(2025, 12, 20), max_value=dt.datetime(2027, 1, 10),
                        timezones=st.just(dt.UTC))
strategies = st.sampled_from(["all_at_once", "one_after_another", "cascading", "longest_idle",
                              "fewest_calls", "random", "round_robin_memory", "fixed_order"])
calls = st.builds(
    CallContext,
    caller=st.sampled_from(["+79161112233", "+79995556677", "5550123", "anonymous"]),
    dialled=st.sampled_from([MAIN, MOBILE_NUMBER, "+74950000000", "", "500", "101", "777"]),
    now=instants,
    line=st.sampled_from([None, "sim1"]),
    direction=st.sampled_from(["inbound", "internal"]),
    managers=st.lists(st.builds(ManagerFact, source=st.just("call_history"),
                                extension=st.sampled_from(EXTENSIONS),
                                at=st.none() | instants), max_size=3).map(tuple),
    seed=st.integers(0, 1000),
)
events = st.one_of(
    st.builds(Answered, by=st.sampled_from(EXTENSIONS)), st.just(NoAnswer()),
    st.just(Busy()), st.builds(Failed, cause=st.sampled_from(["", "503"])),
    st.builds(KeyPressed, digits=st.sampled_from(["1", "2", "0", "9", "*", "7", "104", "500"])),
    st.just(Played()), st.just(Done()),
    st.builds(WebhookReplied, destination=st.none() | st.builds(
        Dest, kind=st.sampled_from(["employee", "department", "voicemail", "flow"]),
        target=st.sampled_from(["101", "sales", "general", "main", "nope"]))),
)


def _department_snapshot(strategy: str) -> Snapshot:
    depts = config()["departments"]
    depts[0]["strategy"] = strategy
    return snapshot({"departments": depts})


# Built once: parsing a configuration is far slower than routing a call.
BY_STRATEGY = {s: _department_snapshot(s) for s in (
    "all_at_once", "one_after_another", "cascading", "longest_idle", "fewest_calls", "random",
    "round_robin_memory", "fixed_order")}


def with_strategy(strategy: str, live: LiveState) -> Snapshot:
    return BY_STRATEGY[strategy].with_live(live)


def robin_office(size: int) -> Snapshot:
    """An office whose only department is a round robin of `size` members."""
    members = [f"1{i:02d}" for i in range(size)]
    data = config()
    data["employees"] = [{"extension": m, "name": m, "devices": [
        {"username": m, "password": f"Kx7-robin-pw-{i}"}]} for i, m in enumerate(members)]
    data["departments"] = [{"key": "sales", "name": "Sales", "extension": "500",
                            "strategy": "round_robin_memory", "members": members,
                            "member_timeout": 5, "timeout": 60}]
    data["voicemail_boxes"] = [{"key": "general", "name": "General"},
                               {"key": "sales", "name": "Sales"}]
    data["forwarding_chains"][0]["steps"] = []
    data["voice_menus"] = []
    data["flows"] = [{"key": "main", "branches": [{"to": {"department": "sales"}}]},
                     {"key": "menu", "branches": [{"to": {"department": "sales"}}]}]
    data["repeat_caller"] = {"enabled": False}
    return snapshot(data)


ROBINS = {size: robin_office(size) for size in range(2, 7)}


def successors(step: Step) -> Iterator[Step]:
    """Every step that can follow `step` without the caller choosing (menu keys are lazy)."""
    if isinstance(step, Ring):
        yield from (step.on_no_answer, step.on_busy, step.on_failure)
    elif isinstance(step, Greeting | Skip):
        yield step.then
    elif isinstance(step, Menu):
        yield from (step.default, step.after)
    elif isinstance(step, Queue):
        yield step.overflow
    elif isinstance(step, Webhook):
        yield step.on_failure


def leaves(root: Step) -> Iterator[Step]:
    stack = [root]
    count = 0
    while stack:
        step = stack.pop()
        count += 1
        assert count < 10_000, "the plan tree is unreasonably large"
        following = list(successors(step))
        if not following:
            yield step
        stack += following


@settings(max_examples=200, deadline=None)
@given(calls, lives, strategies)
def test_every_plan_ends_in_a_terminal_step(ctx: CallContext, live: LiveState,
                                            strategy: str) -> None:
    plan = route(ctx, with_strategy(strategy, live))
    for leaf in leaves(plan.root):
        assert leaf.terminal, leaf
        assert leaf.why.rule and leaf.why.step


@settings(max_examples=200, deadline=None)
@given(calls, lives, strategies, st.lists(events, max_size=12))
def test_any_events_then_silence_finish_the_call(ctx: CallContext, live: LiveState,
                                                 strategy: str, seen: list[Event]) -> None:
    snap = with_strategy(strategy, live)
    state = start(route(ctx, snap), snap)
    for event in seen:
        state = next_step(state, event)
        assert state.finished or (state.step is not None and not isinstance(state.step, Skip))
        if isinstance(state.step, Ring):
            for leg in state.step.legs:
                assert 0 <= leg.start < leg.stop <= state.step.timeout
    # With the caller silent and nobody answering, every call reaches its end.
    for _ in range(60):
        if state.finished:
            break
        state = next_step(state, Done() if state.step and state.step.terminal else NoAnswer())
    assert state.finished and state.outcome is not None
    assert len(state.explain()) == len(state.trail) + 1


@settings(max_examples=100, deadline=None)
@given(calls, lives)
def test_caller_hanging_up_always_ends_routing(ctx: CallContext, live: LiveState) -> None:
    snap = with_strategy("all_at_once", live)
    state = next_step(start(route(ctx, snap), snap), CallerHungUp())
    assert state.finished


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 6), st.integers(1, 4), st.integers(0, 5))
def test_round_robin_offers_everyone_a_call_before_anyone_gets_a_second(
        size: int, rounds: int, first: int) -> None:
    members = [f"1{i:02d}" for i in range(size)]
    live = LiveState(members={m: MemberState(registered=True) for m in members},
                     round_robin={"sales": members[first % size]})
    snap = ROBINS[size].with_live(live)
    now = dt.datetime(2026, 3, 3, 8, 0, tzinfo=dt.UTC)
    answered: list[str] = []
    for _ in range(rounds * size):
        state = start(route(CallContext("+79161112233", MAIN, now), snap), snap)
        assert isinstance(state.step, Ring)
        who = state.step.legs[0].extension
        assert who is not None
        answered.append(who)
        live = after_hangup(after_answer(snap.live, who, now, department="sales"), who, now)
        snap = snap.with_live(live)
        now += dt.timedelta(minutes=3)
    for start_at in range(0, len(answered), size):
        assert sorted(answered[start_at:start_at + size]) == sorted(members)
    assert answered[0] == members[(first + 1) % size]
    assert snap.member(answered[0]).calls_today == rounds
