"""Outbound routing for the switchboard: numbers out of the box, line by line.

`OutboundRouting` is the switchboard's `Outside`: it asks the pure outbound core
(`routing.outbound.plan_outbound`) for the plan (route, permissions, line choice, caller ID,
failover order) and turns each attempt into something the engine can dial. How a line is
dialled depends on its kind and lives with the line (`LineTargets`): a SIP trunk or FXO
gateway is an INVITE through the edge with the trusted `X-PBX-Line` header, a SIM line is a
modem call. An attempt whose line cannot be dialled right now counts as a line failure, so
the plan moves on to the next line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from .ringing import OutsideAttempt, OutsideRoute
from .routing.outbound import (
    Attempt,
    OutboundPlan,
    RotationState,
    next_attempt,
    plan_outbound,
)
from .routing.snapshot import Snapshot

log = logging.getLogger(__name__)


class LineTargets(Protocol):
    """How each kind of line is dialled by the engine."""

    def target(self, line: str, kind: str, attempt: Attempt) -> OutsideAttempt | None:
        """The engine's dial target for this attempt, or None if the line cannot take it."""
        ...


class SipLineTargets:
    """SIP trunks and FXO gateways: an INVITE through the edge, which knows the way out."""

    def __init__(self, edge_host: str, edge_port: int) -> None:
        self.edge = f"{edge_host}:{edge_port}"

    def target(self, line: str, kind: str, attempt: Attempt) -> OutsideAttempt | None:
        """`sip:<number>@<edge>` with the line and caller ID in trusted headers."""
        if kind not in ("sip_trunk", "fxo_gateway"):
            return None
        headers = {"X-PBX-Line": line}
        cid = attempt.caller_id
        if cid.withheld:
            headers["X-PBX-Caller-Id"] = "anonymous"
        elif cid.number:
            headers["X-PBX-Caller-Id"] = cid.number
        return OutsideAttempt(f"sip:{attempt.number}@{self.edge}", line, headers)


class OutboundRouting:
    """The switchboard's `Outside` over the configured lines."""

    def __init__(self, snapshot: Callable[[], Snapshot | None],
                 line_status: Callable[[], Mapping[str, Any]],
                 targets: Mapping[str, LineTargets]) -> None:
        self._snapshot = snapshot
        self._line_status = line_status
        self._targets = targets  # by line kind
        self.rotation = RotationState()  # round-robin pointers, kept between calls

    def route(self, number: str, *, extension: str | None, line: str | None) -> OutsideRoute:
        """The first dialable attempt for `number` (extension None: the box's own call)."""
        snap = self._snapshot()
        if snap is None:
            return OutsideRoute(refusal=503, reason="no configuration")
        plan = plan_outbound(number, extension, snap, self._line_status(), self.rotation,
                             as_box=extension is None)
        if line and plan.kind == "dial":
            plan = _prefer(plan, line)
        self.rotation = plan.rotation
        if plan.kind != "dial" or plan.current is None:
            code = plan.sip_code or 404
            log.info("outside call to %s by %s: %s (%d)", number, extension or "the box",
                     plan.reason, code)
            return OutsideRoute(refusal=code, reason=plan.reason, plan=plan)
        return self._dialable(plan, f"{plan.route or 'emergency'}: line {plan.current.line}")

    def failover(self, route: OutsideRoute, code: int) -> OutsideRoute:
        """The next line after a failed attempt, or the caller's answer."""
        plan = route.plan
        if not isinstance(plan, OutboundPlan):
            return OutsideRoute(refusal=code, reason="no plan to fail over with")
        step = next_attempt(plan, code)
        self.rotation = step.plan.rotation
        if not step.retry:
            return OutsideRoute(refusal=step.sip_code or code, reason=step.reason,
                                plan=step.plan)
        return self._dialable(step.plan, step.reason)

    def _dialable(self, plan: OutboundPlan, reason: str) -> OutsideRoute:
        """The plan's current attempt as a dial target, skipping lines that cannot take it."""
        snap = self._snapshot()
        while plan.current is not None:
            attempt = plan.current
            line = snap.lines.get(attempt.line) if snap is not None else None
            targets = self._targets.get(line.kind) if line is not None else None
            target = targets.target(attempt.line, line.kind, attempt) \
                if targets is not None and line is not None else None
            if target is not None:
                return OutsideRoute(attempt=target, reason=reason, plan=plan)
            # Not dialable now (no driver for the kind, modem gone): the next line.
            step = next_attempt(plan, 503, local=True)
            if not step.retry:
                return OutsideRoute(refusal=step.sip_code or 503, reason=step.reason,
                                    plan=step.plan)
            plan, reason = step.plan, step.reason
        return OutsideRoute(refusal=plan.sip_code or 503, reason="no line left", plan=plan)


def _prefer(plan: OutboundPlan, line: str) -> OutboundPlan:
    """The configuration named a line for this destination: try it first."""
    attempts = sorted(plan.attempts, key=lambda a: a.line != line)
    return replace(plan, attempts=tuple(attempts), position=0)
