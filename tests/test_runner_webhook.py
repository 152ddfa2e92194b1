"""A call flow that asks a webhook where the call goes: the switchboard posts to a real HTTP
server on loopback and follows its answer; a failing webhook sends the call on the
configured failure path, and the record says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from appliance.config.yamlio import parse_config
from appliance.engine import LegState
from appliance.routing.snapshot import frozen_map, snapshot_from_config
from appliance.switchboard import Switchboard
from tests.test_runner import CONTACTS, Phones, dialled, incoming, wait_until
from tests.test_switchboard import FakeEngine, Log, settle
from tests.test_webhooks import Start, answer, http, send  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(30)

OFFICE = """
version: 1
box: {time_zone: Europe/Moscow, country: RU}
employees:
  - {extension: "101", name: Anna, ring_mobile_after: never,
     devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, ring_mobile_after: never,
     devices: [{username: "102", password: Kx7-phone-pw-2}]}
lines:
  - {key: trunk1, kind: sip_trunk, host: 127.0.0.1, username: office}
numbers:
  - {number: "+7 495 555-00-01", line: trunk1, flow: main}
flows:
  - key: main
    branches: [{to: {webhook: crm-router}}]
webhooks:
  - {key: crm-router, url: "http://127.0.0.1:9/route", timeout: 2}
"""


def board(hook: Any) -> tuple[Switchboard, FakeEngine, Log]:
    engine = FakeEngine()
    log = Log()
    snap = snapshot_from_config(parse_config(yaml.safe_load(OFFICE)), years=[2026])
    snap = replace(snap, webhooks=frozen_map([(hook.key, hook)]))
    sb = Switchboard(engine, Phones(CONTACTS), log,  # type: ignore[arg-type]
                     now=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC), snapshot=snap)
    sb.attach()
    return sb, engine, log


async def finish(eng: FakeEngine, log: Log) -> list[str]:
    eng.emit("A1", LegState.DISCONNECTED, code=487, side="remote", inbound=True)
    await settle()
    [rec] = log.done
    assert rec.plan is not None
    return rec.plan.explain()


async def test_the_webhooks_answer_routes_the_call(http: Start) -> None:  # noqa: F811
    hook, seen = http(answer({"destination": {"employee": "102"}}))
    _sb, eng, log = board(hook)
    incoming(eng, "A1", "office", x_pbx_line="trunk1", x_pbx_number="+74955550001")
    await wait_until(lambda: dialled(eng))
    assert dialled(eng) == ["sip:102@desk"]
    assert seen.signed_ok == [True] and b'"caller":"+79161112233"' in seen.bodies[0]
    steps = await finish(eng, log)
    assert "webhook crm-router" in steps[0] and "[replied employee:102]" in steps[0], steps


async def test_a_failing_webhook_takes_the_failure_path(http: Start) -> None:  # noqa: F811
    hook, _seen = http(lambda h, _s: send(h, 500, b"{}"))
    _sb, eng, log = board(hook)
    incoming(eng, "A1", "office", x_pbx_line="trunk1", x_pbx_number="+74955550001")
    await wait_until(lambda: ("hangup", "A1", 480) in eng.commands)
    assert dialled(eng) == []
    steps = await finish(eng, log)
    assert "webhook crm-router" in steps[0] and "failed: " in steps[0] and "500" in steps[0]
    assert steps[-1].startswith("outcome: hangup"), steps
