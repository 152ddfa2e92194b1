"""The switchboard carrying out routing plans (departments, lines' numbers, outside calls,
mobiles), against a fake engine and a real snapshot of a configuration (no SIP)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import yaml

from appliance.config.yamlio import parse_config
from appliance.engine import LegEvent, LegInfo, LegState
from appliance.engine.events import Direction
from appliance.outside import OutboundRouting, SipLineTargets
from appliance.ringing import OutsideAttempt, OutsideRoute
from appliance.routing.snapshot import snapshot_from_config
from appliance.switchboard import Disposition, Switchboard
from tests.test_switchboard import Directory, FakeEngine, Log, settle

OFFICE = """
version: 1
box: {time_zone: Europe/Moscow, country: RU}
employees:
  - {extension: "101", name: Anna, mobiles: ["+79160000101"], ring_mobile_after: 1,
     devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, ring_mobile_after: never,
     devices: [{username: "102", password: Kx7-phone-pw-2}]}
  - {extension: "103", name: Vera, ring_mobile_after: never,
     devices: [{username: "103", password: Kx7-phone-pw-3}]}
departments:
  - {key: sales, name: Sales, extension: "500", strategy: all_at_once,
     members: ["102", "103"], timeout: 40}
  - {key: line, name: Line, extension: "510", strategy: one_after_another, ring_delay: 1,
     members: ["102", "103"], member_timeout: 5, timeout: 40}
lines:
  - {key: trunk1, kind: sip_trunk, host: 127.0.0.1, username: office}
numbers:
  - {number: "+7 495 555-00-01", line: trunk1, flow: main}
  - {number: "+7 495 555-00-09", line: trunk1, flow: closed}
flows:
  - key: main
    branches: [{to: {department: sales}}]
  - key: closed
    branches: [{to: {voicemail: general}}]
voicemail_boxes:
  - {key: general, name: General}
"""
CONTACTS = {"101": ["sip:101@desk"], "102": ["sip:102@desk"], "103": ["sip:103@desk"]}
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Outside:
    """Outbound routing as a table: number -> attempts in failover order, or a refusal."""

    def __init__(self, routes: dict[str, tuple[OutsideAttempt, ...] | int]) -> None:
        self.routes = routes
        self.asked: list[tuple[str, str | None]] = []

    def route(self, number: str, *, extension: str | None, line: str | None) -> OutsideRoute:
        self.asked.append((number, extension))
        found = self.routes.get(number, 404)
        if isinstance(found, int):
            return OutsideRoute(refusal=found, reason="refused")
        return OutsideRoute(attempt=found[0], plan=found[1:])

    def failover(self, route: OutsideRoute, code: int) -> OutsideRoute:
        rest = route.plan
        if code in (503, 0, 500) and rest:
            return OutsideRoute(attempt=rest[0], plan=rest[1:], reason="next line")
        return OutsideRoute(refusal=code, reason="not a line problem")


class Phones(Directory):
    def owner_of(self, device: str) -> str | None:
        return device if device in self.table else None


def make(outside: Outside | None = None) -> tuple[Switchboard, FakeEngine, Log]:
    engine = FakeEngine()
    log = Log()
    snap = snapshot_from_config(parse_config(yaml.safe_load(OFFICE)), years=[2026])
    sb = Switchboard(engine, Phones(CONTACTS), log,  # type: ignore[arg-type]
                     now=lambda: NOW, snapshot=snap, outside=outside)
    sb.attach()
    return sb, engine, log


def incoming(eng: FakeEngine, leg: str, user: str, **headers: str) -> None:
    assert eng.handler is not None
    eng.handler(LegEvent(LegInfo(
        leg, Direction.INBOUND, LegState.INCOMING, "sip:box", "sip:+79161112233@trunk",
        request_user=user, headers={k.replace("_", "-"): v for k, v in headers.items()})))


def dialled(eng: FakeEngine) -> list[str]:
    return [c[1] for c in eng.commands if c[0] == "dial"]


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_department_rings_every_member_and_the_answer_names_who() -> None:
    _sb, eng, log = make()
    incoming(eng, "A1", "500", x_pbx_device="101")
    await settle()
    assert sorted(dialled(eng)) == ["sip:102@desk", "sip:103@desk"]
    answering = eng.legs[dialled(eng).index("sip:103@desk")]
    eng.emit(answering, LegState.CONFIRMED, code=200)
    await settle()
    assert ("bridge", "A1", answering) in eng.commands
    eng.emit("A1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    [rec] = log.done
    assert rec.answered_extension == "103"
    assert rec.plan is not None and rec.plan.outcome is not None
    assert rec.plan.outcome.kind == "answered" and rec.plan.outcome.by == "103"


async def test_linear_strategy_moves_on_when_the_member_is_busy() -> None:
    _sb, eng, _log = make()
    incoming(eng, "A1", "510", x_pbx_device="101")
    await settle()
    assert dialled(eng) == ["sip:102@desk"]
    eng.emit(eng.legs[0], LegState.DISCONNECTED, code=486, side="remote")
    await settle()
    # Not after its window: at once, because nothing else rings.
    assert dialled(eng) == ["sip:102@desk", "sip:103@desk"]


async def test_a_lines_number_goes_through_its_flow() -> None:
    _sb, eng, log = make()
    incoming(eng, "A1", "office", x_pbx_line="trunk1", x_pbx_number="+74955550001")
    await settle()
    assert ("answer", "A1", 180) in eng.commands
    assert sorted(dialled(eng)) == ["sip:102@desk", "sip:103@desk"]
    eng.emit("A1", LegState.DISCONNECTED, code=487, side="remote", inbound=True)
    await settle()
    [rec] = log.done
    assert rec.direction == "inbound" and rec.line == "trunk1"
    assert rec.dialled == "+74955550001"
    assert rec.disposition is Disposition.CANCELLED
    assert rec.plan is not None and rec.plan.outcome is not None
    assert rec.plan.outcome.kind == "abandoned"


async def test_an_unknown_number_on_a_line_is_refused_without_ringing() -> None:
    _sb, eng, _log = make()
    incoming(eng, "A1", "x", x_pbx_line="nowhere", x_pbx_number="+74950000000")
    await settle()
    assert eng.commands == [("hangup", "A1", 404)]


async def test_a_step_not_built_yet_is_said_in_the_record() -> None:
    _sb, eng, log = make()
    incoming(eng, "A1", "x", x_pbx_line="trunk1", x_pbx_number="+74955550009")
    await settle()
    assert eng.commands == [("hangup", "A1", 480)]
    eng.emit("A1", LegState.DISCONNECTED, code=480, side="local", inbound=True)
    await settle()
    [rec] = log.done
    assert rec.unavailable == ["voicemail"]
    assert rec.plan is not None and rec.plan.outcome is not None
    assert rec.plan.outcome.kind == "hangup"
    assert "no message (voicemail is not set up)" in rec.plan.outcome.detail


async def test_outside_call_uses_the_callers_permissions_and_fails_over() -> None:
    outside = Outside({"89161234567": (
        OutsideAttempt("sip:+79161234567@box", "sim1", {"X-PBX-Line": "sim1"}),
        OutsideAttempt("sip:+79161234567@box", "trunk1", {"X-PBX-Line": "trunk1"}))})
    _sb, eng, log = make(outside)
    incoming(eng, "A1", "89161234567", x_pbx_device="102")
    await settle()
    assert outside.asked == [("89161234567", "102")]
    assert dialled(eng) == ["sip:+79161234567@box"]
    eng.emit(eng.legs[0], LegState.DISCONNECTED, code=503, side="remote")
    await settle()
    assert len(eng.legs) == 2  # the next line
    eng.emit(eng.legs[1], LegState.CONFIRMED, code=200)
    await settle()
    assert ("bridge", "A1", eng.legs[1]) in eng.commands
    eng.emit("A1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    [rec] = log.done
    assert rec.direction == "outbound"
    route = rec.plan.explain() if rec.plan else []
    assert any("outside call to 89161234567" in line for line in route)


async def test_a_refused_outside_call_gets_the_refusal_code() -> None:
    outside = Outside({"810441234567890": 403})
    _sb, eng, _log = make(outside)
    incoming(eng, "A1", "810441234567890", x_pbx_device="102")
    await settle()
    assert ("hangup", "A1", 403) in eng.commands
    assert dialled(eng) == []


async def test_the_mobile_joins_after_its_delay() -> None:
    outside = Outside({"+79160000101": (
        OutsideAttempt("sip:+79160000101@box", "sim1", {"X-PBX-Line": "sim1"}),)})
    _sb, eng, log = make(outside)
    incoming(eng, "A1", "101", x_pbx_device="102")
    await settle()
    assert dialled(eng) == ["sip:101@desk"]
    await wait_until(lambda: len(dialled(eng)) == 2)  # ring_mobile_after: 1 s
    assert dialled(eng)[1] == "sip:+79160000101@box"
    # The forward is the box's call, not Boris's: no caller permissions applied.
    assert outside.asked == [("+79160000101", None)]
    eng.emit(eng.legs[1], LegState.CONFIRMED, code=200)
    await settle()
    assert ("hangup", eng.legs[0], 0) in eng.commands
    eng.emit("A1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    [rec] = log.done
    route = json.dumps(rec.plan.explain() if rec.plan else [])
    assert "answered by 101" in route


ROUTED = """
version: 1
box: {time_zone: Europe/Moscow, country: RU, area_code: "495"}
employees:
  - {extension: "102", name: Boris, allowed_routes: [internal, local, mobile],
     devices: [{username: "102", password: Kx7-phone-pw-2}]}
lines:
  - {key: sim1, kind: sim, simulated: true}
  - {key: trunk1, kind: sip_trunk, host: 127.0.0.1, username: office}
  - {key: trunk2, kind: sip_trunk, host: 127.0.0.2, username: office}
outbound_routes:
  - {key: mobiles, pattern: "+79XXXXXXXXX", route_class: mobile,
     lines: [sim1, trunk1, trunk2]}
  - {key: abroad, pattern: "+X.", route_class: international, lines: [trunk1]}
"""


def routing_for(status: dict[str, dict[str, Any]]) -> OutboundRouting:
    snap = snapshot_from_config(parse_config(yaml.safe_load(ROUTED)), years=[2026])
    sip = SipLineTargets("127.0.0.1", 5060)
    return OutboundRouting(lambda: snap, lambda: status, {"sip_trunk": sip})


def test_outbound_routing_skips_a_line_it_cannot_dial_and_fails_over() -> None:
    up = {"up": True, "registered": True, "free_channels": 2}
    out = routing_for({"sim1": {"up": True, "signal": 20}, "trunk1": up, "trunk2": up})
    first = out.route("89161234567", extension="102", line=None)
    # No SIM driver in this box: the SIM is passed over as a line failure.
    assert first.attempt is not None and first.attempt.line == "trunk1"
    assert first.attempt.uri == "sip:+79161234567@127.0.0.1:5060"
    assert first.attempt.headers["X-PBX-Line"] == "trunk1"
    second = out.failover(first, 503)
    assert second.attempt is not None and second.attempt.line == "trunk2"
    # The callee being busy is not the line's fault: no third try, the caller hears busy.
    assert out.failover(second, 486).attempt is None
    assert out.failover(second, 486).refusal == 486


def test_outbound_routing_refuses_what_the_employee_may_not_dial() -> None:
    up = {"up": True, "registered": True, "free_channels": 2}
    out = routing_for({"trunk1": up, "trunk2": up})
    refused = out.route("810441234567890", extension="102", line=None)
    assert refused.attempt is None and refused.refusal == 403
    hinted = out.route("+79161234567", extension="102", line="trunk2").attempt
    assert hinted is not None and hinted.line == "trunk2"


async def test_only_an_authenticated_desk_phone_can_reach_an_outside_line() -> None:
    """A call without the edge's x-pbx-device (say, a static contact or anything the edge let
    through for an inbound number) dialling an outside number never reaches Outside."""
    outside = Outside({"89161234567": (OutsideAttempt("sip:x@box", "sim1"),)})
    _sb, eng, _log = make(outside)
    incoming(eng, "A1", "89161234567")
    await settle()
    assert outside.asked == []
    assert eng.commands == [("hangup", "A1", 404)]
