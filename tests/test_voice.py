"""Greetings, voice menus and voicemail as the switchboard carries them out, against a fake
engine that plays prompts and records on command (no SIP) and a real configuration."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config.yamlio import parse_config
from appliance.engine import DtmfEvent, LegState, PromptEvent
from appliance.ringing import OutsideAttempt
from appliance.routing.mobile import Confirmation
from appliance.routing.snapshot import frozen_map, snapshot_from_config
from appliance.switchboard import Disposition, Switchboard
from tests.support.tones import write_wav
from tests.test_runner import CONTACTS, Outside, Phones, dialled, incoming
from tests.test_switchboard import FakeEngine, Log, settle

pytestmark = pytest.mark.timeout(30)

OFFICE = """
version: 1
box: {time_zone: Europe/Moscow, country: RU}
employees:
  - {extension: "101", name: Anna, ring_mobile_after: never,
     devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, ring_mobile_after: never,
     devices: [{username: "102", password: Kx7-phone-pw-2}]}
  - {extension: "103", name: Vera, ring_mobile_after: never,
     devices: [{username: "103", password: Kx7-phone-pw-3}]}
departments:
  - {key: sales, name: Sales, extension: "500", strategy: all_at_once,
     members: ["102", "103"], timeout: 40}
lines:
  - {key: trunk1, kind: sip_trunk, host: 127.0.0.1, username: office}
numbers:
  - {number: "+7 495 555-00-01", line: trunk1, flow: main}
  - {number: "+7 495 555-00-02", line: trunk1, flow: mail}
prompts:
  - {key: welcome, file: prompts/welcome.wav}
  - {key: menu-main, file: prompts/menu.wav}
flows:
  - key: main
    branches: [{greeting: welcome, to: {voice_menu: main}}]
  - key: mail
    branches: [{to: {voicemail: general}}]
voice_menus:
  - key: main
    greeting: menu-main
    timeout: 1
    invalid_retries: 1
    keys: {"1": {department: sales}, "2": {employee: "101"}}
    default: {voicemail: general}
voicemail_boxes:
  - {key: general, name: General, max_message: 10}
"""
CALLER_LEG = "A1"


class VoiceEngine(FakeEngine):
    """The fake engine, plus prompts and recordings: it says when a prompt has 'played'."""

    def __init__(self) -> None:
        super().__init__()
        self.played: list[list[str]] = []
        self.current: tuple[str, int] | None = None

    async def answer(self, leg_id: str, code: int = 200) -> None:
        await super().answer(leg_id, code)
        if code == 200 and leg_id == CALLER_LEG:
            self.emit(leg_id, LegState.CONFIRMED, inbound=True)

    async def play_prompt(self, leg: str, paths: list[str], play_id: int) -> None:
        self.commands.append(("play_prompt", leg, tuple(Path(p).stem for p in paths)))
        self.played.append([Path(p).stem for p in paths])
        self.current = (leg, play_id)
        self.hung_up.set()

    def finish_prompt(self) -> None:
        """The prompt now playing reaches its end."""
        assert self.current is not None and self.handler is not None
        leg, play_id = self.current
        self.current = None
        self.handler(PromptEvent(leg, play_id))

    def press(self, digits: str) -> None:
        assert self.handler is not None
        for digit in digits:
            self.handler(DtmfEvent(CALLER_LEG, digit))

    async def silence(self, leg: str, play_id: int | None = None) -> None:
        self.commands.append(("silence", leg))
        if self.current is not None and play_id in (None, self.current[1]):
            self.current = None

    async def play(self, leg: str, source: str) -> None:
        self.commands.append(("play", leg, source))

    async def record(self, leg: str, path: str) -> None:
        self.commands.append(("record", leg))
        write_wav(Path(path), 1000, 3.0)  # what the caller 'said'

    async def stop_record(self, leg: str) -> None:
        self.commands.append(("stop_record", leg))


class Prompts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str, language: str | None = None) -> Path | None:
        path = self.root / f"{key}.wav"
        return path if path.exists() else None


class Mailboxes:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.delivered: list[tuple[Any, ...]] = []

    def message_path(self, box: str, call_id: str) -> Path:
        (self.root / box).mkdir(parents=True, exist_ok=True)
        return self.root / box / f"{call_id}.wav"

    async def deliver(self, box: str, caller: str, call_id: str, path: Path,
                      duration_s: float) -> int | None:
        self.delivered.append((box, caller, path, round(duration_s, 1)))
        return len(self.delivered)


@pytest.fixture
def rig(tmp_path: Path) -> tuple[Switchboard, VoiceEngine, Log, Mailboxes]:
    for key in ("welcome", "menu-main", "invalid-key", "voicemail-greeting", "voicemail-beep",
                "voicemail-saved"):
        write_wav(tmp_path / f"{key}.wav", 500, 0.2)
    engine = VoiceEngine()
    log = Log()
    boxes = Mailboxes(tmp_path / "vm")
    snap = snapshot_from_config(parse_config(yaml.safe_load(OFFICE)), years=[2026])
    sb = Switchboard(engine, Phones(CONTACTS), log,  # type: ignore[arg-type]
                     now=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC), snapshot=snap,
                     prompts=Prompts(tmp_path), mailboxes=boxes)
    sb.voice.digit_gap_s = 0.3
    sb.attach()
    return sb, engine, log, boxes


async def until(engine: VoiceEngine, what: tuple[Any, ...], timeout: float = 5.0) -> None:
    """Wait (bounded) until the switchboard has sent this command."""
    async with asyncio.timeout(timeout):
        while what not in engine.commands:
            await asyncio.sleep(0.01)
    await settle()


def route(log: Log) -> list[str]:
    [rec] = log.done
    assert rec.plan is not None
    return rec.plan.explain()


async def call_in(engine: VoiceEngine, number: str) -> None:
    incoming(engine, CALLER_LEG, "office", x_pbx_line="trunk1", x_pbx_number=number)
    await settle()


async def hang_up(engine: VoiceEngine) -> None:
    engine.emit(CALLER_LEG, LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()


async def test_greeting_then_menu_key_rings_the_department_with_ringback(rig: Any) -> None:
    _sb, eng, log, _ = rig
    await call_in(eng, "+74955550001")
    assert eng.commands[:3] == [("answer", CALLER_LEG, 180), ("answer", CALLER_LEG, 200),
                                ("play_prompt", CALLER_LEG, ("welcome",))]
    eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("menu-main",)))
    eng.press("1")
    await settle()
    assert ("silence", CALLER_LEG) in eng.commands  # the key cut the menu short
    await until(eng, ("play", CALLER_LEG, "ringback"))  # after the digit gap
    assert sorted(dialled(eng)) == ["sip:102@desk", "sip:103@desk"]
    eng.emit(eng.legs[0], LegState.CONFIRMED, code=200)
    await settle()
    assert ("bridge", CALLER_LEG, eng.legs[0]) in eng.commands
    assert [c for c in eng.commands if c[0] == "answer" and c[2] == 200] == [
        ("answer", CALLER_LEG, 200)]  # answered once, by the box
    await hang_up(eng)
    steps = route(log)
    assert "greeting welcome" in steps[0] and "[played]" in steps[0]
    assert "voice menu main" in steps[1] and "[key 1]" in steps[1]
    assert steps[-1] == "outcome: answered: answered by 102"
    assert log.done[0].disposition is Disposition.ANSWERED


async def test_no_key_goes_to_the_default_after_the_timeout(rig: Any) -> None:
    _sb, eng, log, boxes = rig
    await call_in(eng, "+74955550001")
    eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("menu-main",)))
    eng.finish_prompt()
    started = asyncio.get_running_loop().time()
    await until(eng, ("play_prompt", CALLER_LEG, ("voicemail-greeting", "voicemail-beep")))
    waited = asyncio.get_running_loop().time() - started
    assert 0.9 <= waited <= 1.5  # the menu's 1 s timeout, counted from the prompt's end
    eng.finish_prompt()
    await until(eng, ("record", CALLER_LEG))
    await hang_up(eng)
    assert ("stop_record", CALLER_LEG) in eng.commands
    [(box, caller, path, seconds)] = boxes.delivered
    assert box == "general" and caller.startswith("sip:+79161112233") and seconds == 3.0
    assert path.exists()
    steps = route(log)
    assert "[no key within 1 s]" in steps[1]
    assert steps[-1] == "outcome: voicemail: voicemail general"
    rec = log.done[0]
    assert rec.voicemail_id == 1 and rec.disposition is Disposition.CANCELLED


async def test_an_invalid_key_replays_the_menu_then_the_default(rig: Any) -> None:
    _sb, eng, log, _ = rig
    await call_in(eng, "+74955550001")
    eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("menu-main",)))
    eng.press("7")
    await until(eng, ("play_prompt", CALLER_LEG, ("invalid-key", "menu-main")))
    eng.press("8")
    await until(eng, ("play_prompt", CALLER_LEG, ("voicemail-greeting", "voicemail-beep")))
    await hang_up(eng)
    steps = route(log)
    assert any("invalid key 7: replay (1/1)" in s for s in steps)
    assert any("invalid key 8 (2 times)" in s for s in steps)
    # Hung up during the voicemail greeting: no message, so a plain missed call.
    assert steps[-1].startswith("outcome: hangup: voicemail general: no message")


async def test_an_extension_dialled_in_the_menu_and_a_key_that_starts_one(rig: Any) -> None:
    _sb, eng, log, _ = rig
    await call_in(eng, "+74955550001")
    eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("menu-main",)))
    eng.press("10")
    await settle()
    assert dialled(eng) == []  # 10 could still become 101, 102 or 103
    eng.press("3")
    await settle()
    assert dialled(eng) == ["sip:103@desk"]
    await hang_up(eng)
    assert "[key 103]" in route(log)[1]

    log.done.clear()
    eng.commands.clear()
    await call_in(eng, "+74955550001")
    eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("menu-main",)))
    eng.press("1")  # key 1, but also the start of 101..103: chosen after the digit gap
    await settle()
    assert dialled(eng) == []
    async with asyncio.timeout(2):
        while not dialled(eng):
            await asyncio.sleep(0.05)
    assert sorted(dialled(eng)) == ["sip:102@desk", "sip:103@desk"]
    await hang_up(eng)


async def test_caller_hanging_up_in_the_menu_is_explained(rig: Any) -> None:
    _sb, eng, log, _ = rig
    await call_in(eng, "+74955550001")
    eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("menu-main",)))
    await hang_up(eng)
    assert route(log)[-1] == "outcome: abandoned: caller hung up during: voice menu main"
    assert log.done[0].disposition is Disposition.CANCELLED


async def test_a_message_at_its_length_limit_is_kept_and_the_call_ends(rig: Any) -> None:
    sb, eng, log, boxes = rig
    snap = sb.snapshot
    short = replace(snap.voicemail["general"], max_message=1)
    sb.snapshot = replace(snap, voicemail=frozen_map([("general", short)]))
    await call_in(eng, "+74955550002")
    await until(eng, ("play_prompt", CALLER_LEG, ("voicemail-greeting", "voicemail-beep")))
    eng.finish_prompt()
    await until(eng, ("record", CALLER_LEG))
    await until(eng, ("play_prompt", CALLER_LEG, ("voicemail-saved",)))
    assert ("stop_record", CALLER_LEG) in eng.commands
    assert len(boxes.delivered) == 1
    eng.finish_prompt()
    await until(eng, ("hangup", CALLER_LEG, 200))
    await hang_up(eng)
    assert route(log)[-1] == "outcome: voicemail: voicemail general"
    assert log.done[0].disposition is Disposition.NO_ANSWER


MOBILE_OFFICE = """
version: 1
box: {time_zone: Europe/Moscow, country: RU}
employees:
  - {extension: "101", name: Anna, mobiles: ["+79160000101"], ring_mobile_after: 0,
     confirm_mobile: true, devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, devices: [{username: "102", password: Kx7-phone-pw-2}]}
"""
MOBILE_URI = "sip:+79160000101@sim"


def mobile_rig(tmp_path: Path) -> tuple[Switchboard, VoiceEngine, Log]:
    write_wav(tmp_path / "mobile-confirm.wav", 500, 0.2)
    engine = VoiceEngine()
    log = Log()
    snap = snapshot_from_config(parse_config(yaml.safe_load(MOBILE_OFFICE)), years=[2026])
    outside = Outside({"+79160000101": (OutsideAttempt(MOBILE_URI, "sim1"),)})
    sb = Switchboard(engine, Phones(CONTACTS), log,  # type: ignore[arg-type]
                     now=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC), snapshot=snap,
                     outside=outside, prompts=Prompts(tmp_path))
    sb.voice.confirmation = Confirmation(timeout=0.5)
    sb.attach()
    return sb, engine, log


async def mobile_answers(eng: VoiceEngine) -> tuple[str, str]:
    incoming(eng, CALLER_LEG, "101", x_pbx_device="102")
    await settle()
    assert sorted(dialled(eng)) == [MOBILE_URI, "sip:101@desk"]
    desk, mobile = (eng.legs[dialled(eng).index(u)] for u in ("sip:101@desk", MOBILE_URI))
    eng.emit(mobile, LegState.CONFIRMED, code=200)
    await until(eng, ("play_prompt", mobile, ("mobile-confirm",)))
    assert not [c for c in eng.commands if c[0] in ("bridge", "hangup")]  # desk rings on
    return desk, mobile


async def test_a_mobile_gets_the_call_only_after_pressing_1(tmp_path: Path) -> None:
    _sb, eng, log = mobile_rig(tmp_path)
    desk, mobile = await mobile_answers(eng)
    assert eng.handler is not None
    eng.handler(DtmfEvent(mobile, "1"))
    await until(eng, ("bridge", CALLER_LEG, mobile))
    assert ("hangup", desk, 0) in eng.commands
    await hang_up(eng)
    assert route(log)[-1] == "outcome: answered: answered by 101"


@pytest.mark.parametrize("key", ["2", ""])
async def test_a_mobile_that_does_not_press_1_is_dropped(tmp_path: Path, key: str) -> None:
    _sb, eng, log = mobile_rig(tmp_path)
    desk, mobile = await mobile_answers(eng)
    assert eng.handler is not None
    if key:
        eng.handler(DtmfEvent(mobile, key))
    await until(eng, ("hangup", mobile, 0))  # a wrong key at once; no key after 0.5 s
    assert ("hangup", desk, 0) not in eng.commands  # the desk phone still rings
    eng.emit(desk, LegState.CONFIRMED, code=200)
    await until(eng, ("bridge", CALLER_LEG, desk))
    await hang_up(eng)
    assert route(log)[-1] == "outcome: answered: answered by 101"
