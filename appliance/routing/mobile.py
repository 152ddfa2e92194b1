"""Forwarding to staff mobiles: when the mobiles join, what is dialled, and "press 1".

An employee's `ring_mobile_after` N makes their mobiles ring N seconds after the desk phones
start. Each mobile is an outbound call the box places itself (`plan_outbound(as_box=True)`),
so the employee's own outbound permissions do not matter, the box's do (local, mobile, long
distance: never international or premium). With `confirm_mobile` a mobile that answers
hears a prompt and must press 1 before it gets the call: a mobile's voicemail answers like a
person, and without the check it would swallow the call while the desk phones stop ringing.

Pure: times are seconds from the moment the desk phones started ringing, passed in by the
runner; each leg is a small state machine (`advance`) that reports its state changes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .outbound import OutboundPlan, RotationState, next_attempt, plan_outbound
from .snapshot import Line, Snapshot

CONFIRM_DIGIT = "1"
CONFIRM_TIMEOUT = 10.0  # seconds a mobile has to press 1 after it answered
CONFIRM_PROMPT = "mobile-confirm"  # built-in prompt: "press 1 to accept the call"


@dataclass(frozen=True)
class Confirmation:
    """The "press 1 to accept" step: the prompt, the digit and how long to wait."""

    prompt: str = CONFIRM_PROMPT
    digit: str = CONFIRM_DIGIT
    timeout: float = CONFIRM_TIMEOUT


class LegState(enum.Enum):
    """Where one mobile leg is."""

    WAITING = "waiting"  # its time has not come yet
    DIALLING = "dialling"  # being dialled / ringing on a line
    CONFIRMING = "confirming"  # answered; waiting for the digit
    BRIDGED = "bridged"  # connected to the caller
    DROPPED = "dropped"  # hung up by us (no or wrong digit, someone else answered)
    FAILED = "failed"  # no line could reach it


FINAL = frozenset({LegState.BRIDGED, LegState.DROPPED, LegState.FAILED})


@dataclass(frozen=True)
class MobileLeg:
    """One mobile of the employee, its start time, its outbound plan and where it is."""

    extension: str
    mobile: str
    start: float  # seconds after the desk phones start ringing
    plan: OutboundPlan
    confirm: Confirmation | None
    state: LegState = LegState.WAITING
    answered_at: float | None = None


@dataclass(frozen=True)
class MobileForward:
    """The forward-to-mobile plan of one employee for one call."""

    extension: str
    after: float | None  # None: the mobiles are not rung
    legs: tuple[MobileLeg, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (mobile, why it is not rung)
    rotation: RotationState = field(default_factory=RotationState)
    reason: str = ""


def plan_forward(extension: str, snapshot: Snapshot, line_status: Mapping[str, Any],
                 state: RotationState | None = None, *,
                 after: float | None = None) -> MobileForward:
    """The mobiles to ring for `extension`, when, and through which lines.

    `after` overrides the employee's own delay (0 when their desk phone is offline, as the
    routing core does). Lines are shared out: a SIM that the first mobile's call takes is
    not offered to the second one (it carries one call at a time), and a trunk offers one
    channel fewer.
    """
    rotation = state or RotationState()
    employee = snapshot.employees.get(extension)
    if employee is None or not employee.enabled:
        return MobileForward(extension, None, rotation=rotation,
                             reason="no such active employee")
    delay = after if after is not None else employee.ring_mobile_after
    if delay is None:
        return MobileForward(extension, None, rotation=rotation,
                             reason="the employee's mobiles are never rung")
    if not employee.mobiles:
        return MobileForward(extension, None, rotation=rotation, reason="no mobiles")
    confirm = Confirmation() if employee.confirm_mobile else None
    status: dict[str, Any] = dict(line_status)
    legs: list[MobileLeg] = []
    skipped: list[tuple[str, str]] = []
    for mobile in employee.mobiles:
        plan = plan_outbound(mobile, None, snapshot, status, rotation, as_box=True)
        if plan.current is None:
            skipped.append((mobile, plan.reason or plan.kind))
            continue
        rotation = plan.rotation
        line = snapshot.lines[plan.current.line]  # plans only use configured lines
        status[line.key] = _taken(status.get(line.key), line)
        legs.append(MobileLeg(extension, mobile, float(delay), plan, confirm))
    return MobileForward(extension, float(delay), tuple(legs), tuple(skipped), rotation,
                         reason=f"mobiles after {delay} s")


def _taken(raw: object, line: Line) -> dict[str, Any]:
    """A line's status after one more call was given to it."""
    status = dict(raw) if isinstance(raw, Mapping) else {}
    if line.kind == "sim":
        status["busy"] = True  # one call at a time
        return status
    free = status.get("free_channels")
    if not isinstance(free, int) or isinstance(free, bool):
        free = line.channels  # the manager does not count them: the configured number
    status["free_channels"] = free - 1
    return status


# -- "press 1 to accept" -------------------------------------------------------------------


class ConfirmAction(enum.Enum):
    """What to do with an answered mobile leg that is being asked to press 1."""

    BRIDGE = "bridge"
    HANG_UP = "hang_up"  # that leg only: the others keep ringing
    WAIT = "wait"


@dataclass(frozen=True)
class ConfirmDecision:
    """The decision, why, and for WAIT how many seconds are left."""

    action: ConfirmAction
    reason: str
    wait: float | None = None


def decide_confirmation(confirm: Confirmation, digits: str | None,
                        elapsed: float) -> ConfirmDecision:
    """Digit 1 bridges; any other digit, or nothing within the timeout, hangs up that leg."""
    if digits:
        if digits[0] == confirm.digit:
            return ConfirmDecision(ConfirmAction.BRIDGE, f"pressed {confirm.digit}")
        return ConfirmDecision(ConfirmAction.HANG_UP, f"pressed {digits[0]}, not "
                                                      f"{confirm.digit}")
    if elapsed >= confirm.timeout:
        return ConfirmDecision(ConfirmAction.HANG_UP,
                               f"no key within {confirm.timeout:g} s (voicemail?)")
    return ConfirmDecision(ConfirmAction.WAIT, "waiting for a key",
                           wait=confirm.timeout - elapsed)


# -- one leg as a state machine ----------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """The leg's start time came: the runner dials the plan's current attempt."""


@dataclass(frozen=True)
class LegAnswered:
    """The mobile answered, `at` seconds after the desk phones started."""

    at: float


@dataclass(frozen=True)
class LegDigits:
    """The mobile pressed keys while being asked to confirm."""

    digits: str
    at: float


@dataclass(frozen=True)
class LegTick:
    """Time passed (the runner's timer for the confirmation timeout)."""

    at: float


@dataclass(frozen=True)
class LegFailed:
    """The attempt failed with a SIP code (`local`: the line itself refused)."""

    code: int
    local: bool = False


@dataclass(frozen=True)
class CallTaken:
    """Someone else (a desk phone, another mobile) took the call, or the caller left."""


LegEvent = Started | LegAnswered | LegDigits | LegTick | LegFailed | CallTaken


@dataclass(frozen=True)
class LegChanged:
    """A leg's state changed (for the runner's log and the call record)."""

    extension: str
    mobile: str
    old: LegState
    new: LegState
    reason: str


def advance(leg: MobileLeg, event: LegEvent) -> tuple[MobileLeg, LegChanged | None]:
    """The leg after `event`, and the state change it caused (None: no change).

    A failed attempt moves to the plan's next line where `next_attempt` says so (the leg
    stays DIALLING with a new `plan.current`; the change is reported with the reason).
    Events that do not apply leave the leg as it is.
    """
    state = leg.state
    if state in FINAL:
        return leg, None
    if isinstance(event, CallTaken):
        return _to(leg, LegState.DROPPED, "the call was taken elsewhere")
    if state is LegState.WAITING:
        if isinstance(event, Started):
            return _to(leg, LegState.DIALLING, f"dial {leg.mobile}")
        return leg, None
    if state is LegState.DIALLING:
        if isinstance(event, LegAnswered):
            if leg.confirm is None:
                return _to(leg, LegState.BRIDGED, "answered")
            return _to(replace(leg, answered_at=event.at), LegState.CONFIRMING,
                       f"answered: play {leg.confirm.prompt}, wait for {leg.confirm.digit}")
        if isinstance(event, LegFailed):
            nxt = next_attempt(leg.plan, event.code, local=event.local)
            if nxt.retry:
                moved = replace(leg, plan=nxt.plan)
                return moved, LegChanged(leg.extension, leg.mobile, state, state, nxt.reason)
            return _to(replace(leg, plan=nxt.plan), LegState.FAILED, nxt.reason)
        return leg, None
    # CONFIRMING
    if leg.confirm is None or leg.answered_at is None:
        return _to(leg, LegState.BRIDGED, "answered (no confirmation asked)")
    if isinstance(event, LegDigits | LegTick):
        digits = event.digits if isinstance(event, LegDigits) else None
        decision = decide_confirmation(leg.confirm, digits, event.at - leg.answered_at)
        if decision.action is ConfirmAction.BRIDGE:
            return _to(leg, LegState.BRIDGED, decision.reason)
        if decision.action is ConfirmAction.HANG_UP:
            return _to(leg, LegState.DROPPED, decision.reason)
    if isinstance(event, LegFailed):
        return _to(leg, LegState.DROPPED, f"hung up before confirming ({event.code})")
    return leg, None


def _to(leg: MobileLeg, new: LegState, reason: str) -> tuple[MobileLeg, LegChanged]:
    return replace(leg, state=new), LegChanged(leg.extension, leg.mobile, leg.state, new, reason)
