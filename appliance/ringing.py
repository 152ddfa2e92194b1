"""One Ring step in progress: which plan legs wait for their window, which engine legs ring.

The routing core says *whom* to ring and *when* (`routing.plan.Ring`: legs with start and
stop times, a step timeout); the switchboard dials and hangs up. `RingSet` is the
bookkeeping between the two, kept pure so that the outcome rules are tested without SIP:
a step ends Answered when a leg answers, Busy when every leg that was tried was busy,
Failed when nothing else can ring, NoAnswer when its time runs out (the switchboard's timer).

`OutsideRoute` is how a number outside the box is reached: the attempt on the line outbound
routing chose (`Outside.failover` gives the next one), or the reason it may not go out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from .routing.plan import Busy, Event, Failed, Leg, Ring

BUSY_CODES = frozenset({486, 600})
# A one-at-a-time strategy moves to the next member as soon as the current one fails.
SIMULTANEOUS = frozenset({"direct", "all_at_once"})


@dataclass(frozen=True)
class OutsideAttempt:
    """One way out for a number: a SIP URI for the engine to dial, with trusted headers."""

    uri: str
    line: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutsideRoute:
    """The way out for a number now: the attempt to dial, or why nothing is (refusal)."""

    attempt: OutsideAttempt | None = None
    refusal: int = 0  # the caller's answer when nothing is dialled (403, 404, 503)
    reason: str = ""
    plan: Any = None  # what outbound routing needs to fail over (opaque here)


class Outside(Protocol):
    """Outbound routing as the switchboard uses it."""

    def route(self, number: str, *, extension: str | None, line: str | None) -> OutsideRoute:
        """The first attempt for `number` dialled by `extension` (None: the box itself)."""
        ...

    def failover(self, route: OutsideRoute, code: int) -> OutsideRoute:
        """After the attempt failed with `code`: the next line, or the caller's answer."""
        ...


class NoOutside:
    """A box without lines: nothing goes out."""

    def route(self, number: str, *, extension: str | None, line: str | None) -> OutsideRoute:
        """Always refused: no line can carry the call."""
        return OutsideRoute(refusal=404, reason="no outbound route (no lines)")

    def failover(self, route: OutsideRoute, code: int) -> OutsideRoute:
        """Never: there is no next line."""
        return OutsideRoute(refusal=code, reason="no other line")


@dataclass
class Ringing:
    """An engine leg of a ring step: which plan leg it serves and its remaining attempts."""

    plan_leg: Leg
    uri: str
    route: OutsideRoute | None = None  # for an outside number: what it may fail over with
    confirming_since: float | None = None  # a mobile answered and is asked to press 1


@dataclass
class RingSet:
    """The live state of one Ring step."""

    step: Ring
    pending: list[Leg] = field(default_factory=list)  # plan legs whose window has not come
    live: dict[str, Ringing] = field(default_factory=dict)  # engine leg id -> what it serves
    codes: list[int] = field(default_factory=list)  # final codes of legs that failed
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    started: float = 0.0  # the event loop's time when the step began (windows count from it)

    @classmethod
    def of(cls, step: Ring) -> RingSet:
        """A fresh set: every plan leg pending, in start order."""
        return cls(step, pending=sorted(step.legs, key=lambda leg: leg.start))

    def take(self, leg: Leg) -> bool:
        """Mark `leg` started; False if it already was (a timer racing an early start)."""
        if leg not in self.pending:
            return False
        self.pending.remove(leg)
        return True

    def next_early(self) -> Leg | None:
        """The pending leg to start now because nothing rings (one-at-a-time strategies)."""
        if self.live or not self.pending or self.step.strategy in SIMULTANEOUS:
            return None
        return self.pending[0]

    def legs_of(self, leg: Leg) -> list[str]:
        """The engine legs ringing for a plan leg."""
        return [leg_id for leg_id, ringing in self.live.items() if ringing.plan_leg == leg]

    def outcome(self) -> Event | None:
        """Busy or Failed once nothing rings and nothing waits; None while the step lives."""
        if self.live or self.pending:
            return None
        if self.codes and all(code in BUSY_CODES for code in self.codes):
            return Busy()
        cause = f"SIP {min(self.codes)}" if self.codes else "nobody to ring"
        return Failed(cause)

    def cancel(self) -> None:
        """Stop every timer of the step."""
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
