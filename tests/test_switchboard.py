"""The switchboard's call mechanics against a fake engine (no SIP)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from appliance.engine import EngineError, EngineEvent, LegEvent, LegInfo, LegState
from appliance.engine.events import Direction
from appliance.switchboard import (
    CallRecord,
    Disposition,
    Switchboard,
    final_code,
)


class FakeEngine:
    """Records commands; the test plays the far ends by emitting events."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []
        self.handler: Callable[[EngineEvent], None] | None = None
        self.legs: list[str] = []
        self.fail_dial: set[str] = set()
        self.hung_up = asyncio.Event()

    def subscribe(self, handler: Callable[[EngineEvent], None]) -> Callable[[], None]:
        self.handler = handler
        return lambda: None

    async def answer(self, leg_id: str, code: int = 200) -> None:
        self.commands.append(("answer", leg_id, code))

    async def hangup(self, leg_id: str, code: int = 0, reason: str = "") -> None:
        self.commands.append(("hangup", leg_id, code))
        self.hung_up.set()

    async def wait_for(self, command: tuple[Any, ...], timeout: float = 5.0) -> None:
        """Wait (bounded) until the switchboard has sent this command."""
        async with asyncio.timeout(timeout):
            while command not in self.commands:
                self.hung_up.clear()
                await self.hung_up.wait()

    async def dial(self, uri: str, leg_id: str | None = None, headers: Any = None) -> str:
        if uri in self.fail_dial:
            raise EngineError("no route")
        assert leg_id is not None  # the switchboard names its legs up front
        self.legs.append(leg_id)
        self.commands.append(("dial", uri, leg_id))
        return leg_id

    async def bridge(self, a: str, b: str, record_to: str | None = None) -> None:
        self.commands.append(("bridge", a, b))

    def emit(self, leg_id: str, state: LegState, *, code: int = 0, side: str = "",
             inbound: bool = False, user: str = "") -> None:
        assert self.handler is not None
        self.handler(LegEvent(LegInfo(
            leg_id, Direction.INBOUND if inbound else Direction.OUTBOUND, state,
            "sip:box", "sip:far", request_user=user, sip_code=code, hangup_side=side)))


class Directory:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def contacts(self, user: str) -> list[str] | None:
        return self.table.get(user)

    def records(self, user: str) -> bool:
        return False

    def records_call(self, *parties: str | None) -> bool:
        return False

    def owner_of(self, device: str) -> str | None:
        return None  # no desk phones in this table: every caller is from outside

    def same_group(self, a: str, b: str) -> bool:
        return False


class Log:
    """Collects call records as the switchboard writes them."""

    def __init__(self) -> None:
        self.started_ids: list[str] = []
        self.done: list[CallRecord] = []

    def started(self, call: CallRecord) -> None:
        self.started_ids.append(call.call_id)

    def finished(self, call: CallRecord) -> None:
        self.done.append(call)


def make(table: dict[str, list[str]]) -> tuple[Switchboard, FakeEngine, Log]:
    engine = FakeEngine()
    log = Log()
    sb = Switchboard(engine, Directory(table), log,  # type: ignore[arg-type]
                     now=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
                     ring_timeout_s=0.2)
    sb.attach()
    return sb, engine, log


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_first_to_answer_wins_and_others_are_cancelled() -> None:
    sb, eng, log = make({"200": ["sip:desk", "sip:soft"]})
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")  # pjsua2 repeats it
    await settle()
    assert [c[0] for c in eng.commands] == ["answer", "dial", "dial"]
    assert eng.commands[0] == ("answer", "A1", 180)
    eng.emit(eng.legs[1], LegState.CONFIRMED, code=200)
    await settle()
    assert ("hangup", eng.legs[0], 0) in eng.commands
    assert ("answer", "A1", 200) in eng.commands
    assert ("bridge", "A1", eng.legs[1]) in eng.commands
    assert len(log.started_ids) == 1
    eng.emit(eng.legs[0], LegState.DISCONNECTED, code=487, side="local")
    eng.emit(eng.legs[1], LegState.DISCONNECTED, code=200, side="remote")
    await settle()
    assert ("hangup", "A1", 0) in eng.commands
    eng.emit("A1", LegState.DISCONNECTED, code=200, side="local", inbound=True)
    await settle()
    [rec] = log.done
    assert rec.disposition is Disposition.ANSWERED
    assert rec.hangup_side == "callee"
    assert rec.answered_leg == eng.legs[1]
    assert sb.active_calls() == []


@pytest.mark.parametrize(
    ("table", "user", "code", "disposition"),
    [
        ({}, "999", 404, Disposition.FAILED),
        ({"200": []}, "200", 480, Disposition.NO_ANSWER),
    ],
)
async def test_unknown_and_offline(table: dict[str, list[str]], user: str, code: int,
                                   disposition: Disposition) -> None:
    _sb, eng, log = make(table)
    eng.emit("A1", LegState.INCOMING, inbound=True, user=user)
    await settle()
    assert eng.commands == [("hangup", "A1", code)]
    eng.emit("A1", LegState.DISCONNECTED, code=code, side="local", inbound=True)
    await settle()
    assert log.done[0].disposition is disposition
    assert log.done[0].sip_code == code


async def test_busy_everywhere_is_busy() -> None:
    _sb, eng, log = make({"200": ["sip:desk", "sip:soft"]})
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")
    await settle()
    eng.emit(eng.legs[0], LegState.DISCONNECTED, code=486, side="remote")
    await settle()
    assert ("hangup", "A1", 486) not in eng.commands  # the softphone still rings
    eng.emit(eng.legs[1], LegState.DISCONNECTED, code=480, side="remote")
    await settle()
    assert ("hangup", "A1", 486) in eng.commands
    eng.emit("A1", LegState.DISCONNECTED, code=486, side="local", inbound=True)
    await settle()
    assert log.done[0].disposition is Disposition.BUSY


async def test_no_answer_times_out() -> None:
    _sb, eng, _log = make({"200": ["sip:desk"]})
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")
    await eng.wait_for(("hangup", "A1", 480))  # after the 0.2 s ring timeout
    assert ("hangup", eng.legs[0], 0) in eng.commands


async def test_caller_gives_up_while_ringing() -> None:
    _sb, eng, log = make({"200": ["sip:desk"]})
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")
    await settle()
    eng.emit("A1", LegState.DISCONNECTED, code=487, side="remote", inbound=True)
    await settle()
    assert ("hangup", eng.legs[0], 0) in eng.commands
    assert log.done[0].disposition is Disposition.CANCELLED
    assert log.done[0].hangup_side == "caller"


async def test_shutdown_refuses_new_calls_and_closes_records() -> None:
    sb, eng, log = make({"200": ["sip:desk"]})
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")
    await settle()
    eng.emit(eng.legs[0], LegState.CONFIRMED, code=200)
    await settle()
    await sb.shutdown()
    assert log.done[0].disposition is Disposition.ANSWERED
    assert ("hangup", eng.legs[0], 0) in eng.commands
    eng.emit("A2", LegState.INCOMING, inbound=True, user="200")
    await settle()
    assert ("hangup", "A2", 503) in eng.commands


async def test_dial_failure_falls_through() -> None:
    _sb, eng, _log = make({"200": ["sip:broken"]})
    eng.fail_dial.add("sip:broken")
    eng.emit("A1", LegState.INCOMING, inbound=True, user="200")
    await settle()
    assert ("hangup", "A1", 500) in eng.commands


def test_final_code() -> None:
    assert final_code([]) == 480
    assert final_code([486, 408]) == 486
    assert final_code([408, 480, 0]) == 480
    assert final_code([503, 488]) == 488


class Lamps:
    """Records what busy lamps are told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def ringing(self, call_id: str, extension: str, caller_device: str = "") -> None:
        self.events.append(("ringing", call_id, extension))

    def answered(self, call_id: str, extension: str) -> None:
        self.events.append(("answered", call_id, extension))

    def ended(self, call_id: str) -> None:
        self.events.append(("ended", call_id, ""))


async def test_blind_transfer_moves_the_transferee() -> None:
    from appliance.engine import TransferEvent

    sb, eng, log = make({"102": ["sip:bob"], "103": ["sip:carol"]})
    lamps = Lamps()
    sb.presence = lamps
    played: list[tuple[str, str]] = []

    async def play(leg: str, source: str) -> None:
        played.append((leg, source))

    eng.play = play  # type: ignore[attr-defined]
    assert eng.handler is not None
    # 102 answers a call from outside, then transfers the caller (A1) to 103.
    eng.emit("A1", LegState.INCOMING, inbound=True, user="102")
    await settle()
    bob = eng.legs[0]
    eng.emit(bob, LegState.CONFIRMED, code=200)
    await settle()
    eng.handler(TransferEvent(transferor=bob, new_leg="X1", target="sip:103@box"))
    await settle()
    assert played == [("A1", "ringback")]
    [first] = log.done
    assert first.transferred_to == "sip:103@box" and first.hangup_side == "callee"
    # The new leg answers: the caller is bridged to it and the transferor released.
    eng.emit("X1", LegState.CONFIRMED, code=200)
    await settle()
    assert ("bridge", "A1", "X1") in eng.commands
    assert ("hangup", bob, 0) in eng.commands
    eng.emit(bob, LegState.DISCONNECTED, code=200, side="local")
    await settle()
    assert ("hangup", "A1", 0) not in eng.commands  # the caller stays
    eng.emit("A1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    assert ("hangup", "X1", 0) in eng.commands
    # The lamp of 102 went out when Bob transferred; no desk phone called, so nothing else.
    assert ("answered", first.call_id, "102") in lamps.events
    assert ("ended", first.call_id, "") in lamps.events
    assert not any(e[1].startswith("transfer-") for e in lamps.events)


async def test_a_transferred_desk_phone_keeps_its_busy_lamp() -> None:
    from appliance.engine import TransferEvent

    sb, eng, _log = make({"102": ["sip:bob"]})
    lamps = Lamps()
    sb.presence = lamps
    sb.directory.owner_of = lambda device: {"alice-desk": "101"}.get(device)  # type: ignore[attr-defined]
    eng.play = lambda leg, source: asyncio.sleep(0)  # type: ignore[attr-defined]
    assert eng.handler is not None
    eng.handler(LegEvent(LegInfo("A1", Direction.INBOUND, LegState.INCOMING, "sip:box",
                                 "sip:101@box", request_user="102",
                                 headers={"x-pbx-device": "alice-desk"})))
    await settle()
    eng.emit(eng.legs[0], LegState.CONFIRMED, code=200)
    await settle()
    eng.handler(TransferEvent(transferor=eng.legs[0], new_leg="X1", target="sip:103@box"))
    await settle()
    assert ("answered", "transfer-X1", "101") in lamps.events
    eng.emit("A1", LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    assert lamps.events[-1] == ("ended", "transfer-X1", "")
