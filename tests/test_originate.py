"""Click-to-call and hang-up in the switchboard, against the fake engine (no SIP)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from appliance.directory import DirectorySnapshot, Extension
from appliance.engine import LegState
from appliance.switchboard import Disposition, Switchboard
from appliance.switchboard.originate import OriginateError, hang_up_call, ringing_name
from tests.test_switchboard import FakeEngine, Log, settle


class Engine(FakeEngine):
    """The switchboard tests' fake engine, also keeping dial headers and played tones."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: dict[str, Any] = {}

    async def dial(self, uri: str, leg_id: str | None = None, headers: Any = None) -> str:
        self.headers[uri] = headers
        return await super().dial(uri, leg_id, headers)

    async def play(self, leg_id: str, source: str) -> None:
        self.commands.append(("play", leg_id, source))


def make(ring_s: float = 5.0) -> tuple[Switchboard, Engine, Log]:
    """Anna (101) with a desk phone and a softphone registered; Boris (102) with one."""
    registered = {"101": ["sip:101@desk"], "101s": ["sip:101s@soft"], "102": ["sip:102@desk"]}
    directory = DirectorySnapshot(
        {"101": Extension("101", "Anna", False, (), ("101", "101s")),
         "102": Extension("102", "Boris", False, (), ("102",)),
         "103": Extension("103", "Vera", False, (), ("103",))},
        lambda device: registered.get(device, []))
    engine, log = Engine(), Log()
    sb = Switchboard(engine, directory, log,  # type: ignore[arg-type]
                     now=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC), ring_timeout_s=5.0)
    sb.originations.ring_s = ring_s
    sb.attach()
    return sb, engine, log


async def test_rings_every_phone_showing_the_number_then_connects_the_one_that_answers() -> None:
    sb, eng, log = make()
    call_id = await sb.originations.originate("101", "102")
    dialled = [c for c in eng.commands if c[0] == "dial"]
    assert [c[1] for c in dialled] == ["sip:101@desk", "sip:101s@soft"]
    assert eng.headers["sip:101@desk"] == {"X-PBX-Caller": "102",
                                          "X-PBX-Caller-Name": "Call to 102"}
    assert sb.active_calls() == [] and log.started_ids == []  # nothing routed yet
    soft = dialled[1][2]
    eng.emit(soft, LegState.CONFIRMED)
    await settle()
    # The softphone is now the caller: the desk phone stops, 102 rings, Anna hears ringback.
    assert ("hangup", dialled[0][2], 0) in eng.commands
    assert ("play", soft, "ringback") in eng.commands
    [call] = sb.active_calls()
    assert call.call_id == call_id and call.caller_device == "101s" and call.dialled == "102"
    assert log.started_ids == [call_id]
    out = [c for c in eng.commands if c[0] == "dial"][-1]
    assert out[1] == "sip:102@desk"
    eng.emit(out[2], LegState.CONFIRMED)
    await settle()
    assert ("bridge", soft, out[2]) in eng.commands
    assert await hang_up_call(sb, call_id)
    await eng.wait_for(("hangup", out[2], 0))
    eng.emit(out[2], LegState.DISCONNECTED, side="local")
    eng.emit(soft, LegState.DISCONNECTED, side="local")
    await settle()
    [done] = log.done
    assert done.disposition is Disposition.ANSWERED and done.hangup_side == "system"
    assert sb.active_calls() == []
    assert not await hang_up_call(sb, call_id)  # gone


async def test_nobody_answers_and_the_phones_stop_ringing() -> None:
    sb, eng, log = make(ring_s=0.05)
    call_id = await sb.originations.originate("101", "+79161234567")
    legs = [c[2] for c in eng.commands if c[0] == "dial"]
    await eng.wait_for(("hangup", legs[1], 0))
    assert ("hangup", legs[0], 0) in eng.commands
    for leg in legs:
        eng.emit(leg, LegState.DISCONNECTED, code=487)
    await settle()
    assert not await hang_up_call(sb, call_id)
    assert log.started_ids == [] and sb.active_calls() == []


async def test_declined_on_every_phone_ends_the_attempt() -> None:
    sb, eng, _log = make()
    call_id = await sb.originations.originate("101", "102")
    for leg in [c[2] for c in eng.commands if c[0] == "dial"]:
        eng.emit(leg, LegState.DISCONNECTED, code=603, side="remote")
    await settle()
    assert not await sb.originations.cancel(call_id)


async def test_cancel_while_ringing_the_employee() -> None:
    sb, eng, log = make()
    call_id = await sb.originations.originate("101", "102")
    legs = [c[2] for c in eng.commands if c[0] == "dial"]
    assert await hang_up_call(sb, call_id)
    assert {("hangup", leg, 0) for leg in legs} <= set(eng.commands)
    eng.emit(legs[0], LegState.CONFIRMED)  # answered too late: nothing is routed
    await settle()
    assert log.started_ids == [] and sb.active_calls() == []


@pytest.mark.parametrize(("extension", "status"), [("199", 404), ("103", 409)])
async def test_refusals(extension: str, status: int) -> None:
    sb, eng, _log = make()
    with pytest.raises(OriginateError) as err:
        await sb.originations.originate(extension, "102")
    assert err.value.status == status
    assert eng.commands == []


async def test_hanging_up_a_call_still_ringing_its_callee() -> None:
    sb, eng, log = make()
    eng.emit("A1", LegState.INCOMING, inbound=True, user="102")
    await settle()
    [call] = sb.active_calls()
    assert await hang_up_call(sb, call.call_id)
    await eng.wait_for(("hangup", "A1", 480))
    eng.emit("A1", LegState.DISCONNECTED, side="local")
    await asyncio.sleep(0)
    await settle()
    [done] = log.done
    assert done.disposition is Disposition.NO_ANSWER


async def test_a_phone_answering_while_the_next_is_dialled_stops_the_dialling() -> None:
    sb, eng, _log = make()
    original = eng.dial

    async def dial_and_answer_at_once(uri: str, leg_id: str | None = None,
                                      headers: Any = None) -> str:
        found = await original(uri, leg_id, headers)
        if uri == "sip:101@desk":
            eng.emit(found, LegState.CONFIRMED)  # answered before the dial returned
        return found

    eng.dial = dial_and_answer_at_once  # type: ignore[method-assign]
    call_id = await sb.originations.originate("101", "102")
    await settle()
    assert [c[1] for c in eng.commands if c[0] == "dial"] == ["sip:101@desk", "sip:102@desk"]
    [call] = sb.active_calls()
    assert call.call_id == call_id and call.caller_device == "101"


def test_the_ringing_name_is_in_the_box_language() -> None:
    assert ringing_name("+79161234567", "ru") == "Звонок на +79161234567"
    assert ringing_name("102", "en") == "Call to 102"
    assert ringing_name("102", None) == "Call to 102"  # a box without prompts
    assert ringing_name("102", "de") == "Call to 102"
