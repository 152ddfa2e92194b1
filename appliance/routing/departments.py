"""Who in a department rings, in which order and when: each strategy becomes a timetable.

A timetable is a tuple of `Leg`s with start/stop offsets, so the runner needs no strategy
logic: it starts and stops legs when their times come. Live state (busy, registered, DND,
idle times, call counts, the round-robin pointer) is read from the snapshot, never fetched.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .plan import Leg
from .snapshot import Department, Employee, LiveState, MemberState, Snapshot, frozen_map

# Strategies that ring one member at a time, each for `member_timeout` (hunting).
HUNT = frozenset({"fixed_order", "longest_idle", "fewest_calls", "random",
                  "round_robin_memory"})
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Candidate:
    """A member who can be rung now; `busy` ones ring as call waiting."""

    employee: Employee
    position: int  # in the department's member list
    busy: bool = False


def availability(dept: Department, snap: Snapshot) -> tuple[list[Candidate], list[str]]:
    """Members that can ring now, in member order, and the others with the reason."""
    ringable: list[Candidate] = []
    skipped: list[str] = []
    for position, extension in enumerate(dept.members):
        employee = snap.employees.get(extension)
        reason = unavailable(employee, snap.member(extension), ring_busy=dept.ring_busy)
        if reason is not None or employee is None:
            skipped.append(f"{extension}: {reason}")
            continue
        busy = snap.member(extension).activity == "busy"
        ringable.append(Candidate(employee, position, busy))
    return ringable, skipped


def unavailable(employee: Employee | None, state: MemberState, *,
                ring_busy: bool) -> str | None:
    """Why a member cannot ring now (None if they can)."""
    if employee is None:
        return "no such employee"
    if not employee.enabled:
        return "disabled"
    if employee.dnd or state.dnd:
        return "do not disturb"
    if not (employee.static or state.registered):
        return "not registered"
    if state.activity == "busy" and not (ring_busy and employee.call_waiting):
        return "busy"
    return None


def ordered(dept: Department, candidates: list[Candidate], snap: Snapshot,
            seed: int = 0) -> list[Candidate]:
    """Candidates in the order the strategy rings them."""
    strategy = dept.strategy
    if strategy == "longest_idle":
        return sorted(candidates, key=lambda c: (
            c.busy, snap.member(c.employee.extension).idle_since or _EARLIEST, c.position))
    if strategy == "fewest_calls":
        return sorted(candidates, key=lambda c: (
            c.busy, snap.member(c.employee.extension).calls_today, c.position))
    if strategy == "random":
        shuffled = list(candidates)
        # A text seed is hashed with SHA-512 by `random`, so it does not depend on
        # PYTHONHASHSEED: the same call seed gives the same order in tests and in the runner.
        random.Random(f"{seed}:{dept.key}").shuffle(shuffled)
        return shuffled
    if strategy == "round_robin_memory":
        last = snap.last_answerer(dept.key)
        if last in dept.members:
            # Continue after the last answerer's place in the member list, even if they are
            # unavailable now, so everyone is offered a call before anyone gets a second.
            after = dept.members.index(last)
            size = len(dept.members)
            return sorted(candidates, key=lambda c: (c.position - after - 1) % size)
    return list(candidates)


def timetable(dept: Department, order: list[Candidate], total: float) -> tuple[Leg, ...]:
    """The legs of a department ring lasting `total` seconds."""
    windows: list[tuple[Candidate, float, float]] = []
    if not order:
        return ()
    if dept.strategy == "all_at_once":
        windows = [(c, 0.0, total) for c in order]
    elif dept.strategy == "cascading":
        # Each member joins `ring_delay` after the previous one; nobody stops early.
        windows = [(c, float(i * dept.ring_delay), total) for i, c in enumerate(order)
                   if i * dept.ring_delay < total]
    elif len(order) == 1:
        windows = [(order[0], 0.0, total)]
    else:
        # One at a time; after the last member the list starts again until `total`.
        slot = dept.ring_delay if dept.strategy == "one_after_another" else dept.member_timeout
        start, i = 0.0, 0
        while start < total:
            windows.append((order[i % len(order)], start, min(start + slot, total)))
            start += slot
            i += 1
    legs: list[Leg] = []
    for candidate, start, stop in windows:
        legs += member_legs(candidate.employee, start, stop, busy=candidate.busy)
    return tuple(legs)


def member_legs(employee: Employee, start: float, stop: float, *, busy: bool = False,
                desk: bool = True, mobile_after: int | None = -1) -> list[Leg]:
    """An employee's desk devices from `start`, their mobiles `ring_mobile_after` s later.

    `mobile_after` overrides the employee's own delay (None: no mobiles; -1: their own).
    """
    after = employee.ring_mobile_after if mobile_after == -1 else mobile_after
    legs = []
    if desk:
        legs.append(Leg("extension", employee.extension, start, stop,
                        extension=employee.extension, call_waiting=busy))
    if after is not None and start + after < stop:
        legs += [Leg("mobile", number, start + after, stop, extension=employee.extension)
                 for number in employee.mobiles]
    return legs


# -- live state after call events (pure; the runner keeps the result) ------------------------


def after_answer(live: LiveState, extension: str, now: dt.datetime, *,
                 department: str | None = None) -> LiveState:
    """Live state after `extension` answered: busy, one more call, round robin moves on."""
    state = live.members.get(extension, MemberState())
    members = dict(live.members)
    members[extension] = replace(state, activity="busy", last_answer=now,
                                 calls_today=state.calls_today + 1)
    pointers: Mapping[str, str] = live.round_robin
    if department is not None:
        pointers = frozen_map({**live.round_robin, department: extension})
    return replace(live, members=frozen_map(members), round_robin=pointers)


def after_hangup(live: LiveState, extension: str, now: dt.datetime) -> LiveState:
    """Live state after `extension`'s call ended: idle since `now`."""
    state = live.members.get(extension, MemberState())
    members = dict(live.members)
    members[extension] = replace(state, activity="idle", idle_since=now)
    return replace(live, members=frozen_map(members))
