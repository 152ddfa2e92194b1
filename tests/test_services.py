"""Feature-code dialogues against the fake engine: listening to voicemail from a phone
(own box without a PIN, any box with its number and PIN), and the day/night switch that
only administrators may throw."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from appliance.config.yamlio import parse_config
from appliance.engine import LegState
from appliance.routing.snapshot import snapshot_from_config
from appliance.switchboard import Switchboard
from tests.support.tones import write_wav
from tests.test_runner import CONTACTS, Phones, incoming
from tests.test_switchboard import Log, settle
from tests.test_voice import CALLER_LEG, Prompts, VoiceEngine, until

pytestmark = pytest.mark.timeout(30)

OFFICE = """
version: 1
box: {time_zone: Europe/Moscow, country: RU}
employees:
  - {extension: "101", name: Anna, role: administrator,
     devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, devices: [{username: "102", password: Kx7-phone-pw-2}]}
voicemail_boxes:
  - {key: anna, name: Anna, owner: "101"}
  - {key: sales, name: Sales, extension: "555"}
"""
PROMPTS = ("vm-new-messages", "vm-message", "vm-options", "vm-no-messages", "goodbye",
           "vm-enter-box", "vm-enter-pin", "vm-wrong-pin", "mode-night", "mode-day",
           "vm-record-greeting", "voicemail-beep", "vm-greeting-saved")


@dataclass
class Message:
    id: int
    path: Path
    is_read: bool


class Access:
    def __init__(self, root: Path) -> None:
        self.boxes: dict[str, list[Message]] = {"anna": [], "sales": []}
        self.actions: list[tuple[str, int]] = []
        self.root = root

    def add(self, box: str, message_id: int, is_read: bool = False) -> Message:
        path = self.root / f"msg{message_id}.wav"
        write_wav(path, 900, 0.2)
        message = Message(message_id, path, is_read)
        self.boxes[box].append(message)
        return message

    def check_pin(self, box: str, pin: str) -> bool:
        return (box, pin) == ("sales", "4321")

    def messages(self, box: str) -> list[Message]:
        return list(self.boxes[box])

    async def mark_read(self, message_id: int) -> None:
        self.actions.append(("read", message_id))

    async def delete(self, message_id: int) -> None:
        self.actions.append(("delete", message_id))


def rig(tmp_path: Path) -> tuple[Switchboard, VoiceEngine, Log, Access, list[str]]:
    for key in PROMPTS:
        write_wav(tmp_path / f"{key}.wav", 500, 0.1)
    engine = VoiceEngine()
    log = Log()
    snap = snapshot_from_config(parse_config(yaml.safe_load(OFFICE)), years=[2026])
    sb = Switchboard(engine, Phones(CONTACTS), log,  # type: ignore[arg-type]
                     now=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC), snapshot=snap,
                     prompts=Prompts(tmp_path), data_dir=tmp_path / "data")
    access = Access(tmp_path)
    switched: list[str] = []

    async def switch(mode: str) -> None:
        switched.append(mode)

    sb.services.voicemail = access
    sb.services.set_day_night = switch
    sb.services.key_wait_s = 0.3
    sb.attach()
    return sb, engine, log, access, switched


def plays(engine: VoiceEngine) -> list[tuple[str, ...]]:
    return [c[2] for c in engine.commands if c[0] == "play_prompt"]


async def prompt_then(engine: VoiceEngine, stems: tuple[str, ...]) -> None:
    """Wait for this prompt, then let it play to its end."""
    await until(engine, ("play_prompt", CALLER_LEG, stems))
    engine.finish_prompt()
    await settle()


async def test_own_mailbox_new_messages_first_delete_and_mark_read(tmp_path: Path) -> None:
    _sb, eng, log, access, _ = rig(tmp_path)
    access.add("anna", 1, is_read=True)
    access.add("anna", 2)
    access.add("anna", 3)
    incoming(eng, CALLER_LEG, "*97", x_pbx_device="101")
    await prompt_then(eng, ("vm-new-messages",))
    await prompt_then(eng, ("vm-message", "msg2", "vm-options"))
    eng.press("7")  # delete message 2
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-message", "msg3", "vm-options")))
    eng.press("1")  # replay message 3
    await settle()
    assert plays(eng).count(("vm-message", "msg3", "vm-options")) == 2
    eng.press("2")  # next: 3 is marked read
    await prompt_then(eng, ("vm-message", "msg1", "vm-options"))
    await prompt_then(eng, ("goodbye",))  # no key: the old one stays read, the end
    await until(eng, ("hangup", CALLER_LEG, 200))
    assert access.actions == [("delete", 2), ("read", 3)]
    eng.emit(CALLER_LEG, LegState.DISCONNECTED, code=200, side="local", inbound=True)
    await settle()
    assert log.done == []  # a service call is not in the call history


async def test_any_mailbox_needs_its_number_and_pin(tmp_path: Path) -> None:
    _sb, eng, _log, access, _ = rig(tmp_path)
    access.add("sales", 9)
    incoming(eng, CALLER_LEG, "*98", x_pbx_device="102")
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-enter-box",)))
    eng.press("555#")
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-enter-pin",)))
    eng.press("1111#")
    await prompt_then(eng, ("vm-wrong-pin",))
    eng.press("4321#")
    await prompt_then(eng, ("vm-new-messages",))
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-message", "msg9", "vm-options")))
    eng.press("#")
    await prompt_then(eng, ("goodbye",))
    await until(eng, ("hangup", CALLER_LEG, 200))
    assert access.actions == [("read", 9)]


async def test_three_wrong_pins_end_the_call(tmp_path: Path) -> None:
    _sb, eng, _log, access, _ = rig(tmp_path)
    access.add("sales", 9)
    incoming(eng, CALLER_LEG, "*98", x_pbx_device="102")
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-enter-box",)))
    eng.press("555#")
    for _ in range(2):
        await until(eng, ("play_prompt", CALLER_LEG, ("vm-enter-pin",)))
        eng.press("0000#")
        await until(eng, ("play_prompt", CALLER_LEG, ("vm-wrong-pin",)))
        eng.commands.clear()
        eng.finish_prompt()
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-enter-pin",)))
    eng.press("0000#")
    await prompt_then(eng, ("vm-wrong-pin", "goodbye"))
    await until(eng, ("hangup", CALLER_LEG, 200))
    assert access.actions == []


async def test_hanging_up_mid_dialogue_stops_it(tmp_path: Path) -> None:
    sb, eng, _log, access, _ = rig(tmp_path)
    access.add("anna", 1)
    incoming(eng, CALLER_LEG, "*97", x_pbx_device="101")
    await until(eng, ("play_prompt", CALLER_LEG, ("vm-new-messages",)))
    eng.emit(CALLER_LEG, LegState.DISCONNECTED, code=200, side="remote", inbound=True)
    await settle()
    assert sb.live_calls == {}
    await asyncio.sleep(0.4)  # longer than the key wait: nothing runs on
    assert access.actions == []


async def test_day_night_switch_is_for_administrators(tmp_path: Path) -> None:
    _sb, eng, _log, _access, switched = rig(tmp_path)
    incoming(eng, CALLER_LEG, "*32", x_pbx_device="102")
    await until(eng, ("hangup", CALLER_LEG, 403))
    assert switched == []
    eng.emit(CALLER_LEG, LegState.DISCONNECTED, code=403, side="local", inbound=True)
    await settle()
    eng.commands.clear()
    incoming(eng, CALLER_LEG, "*32", x_pbx_device="101")
    await prompt_then(eng, ("mode-night", "goodbye"))
    await until(eng, ("hangup", CALLER_LEG, 200))
    assert switched == ["night"]


async def test_feature_codes_are_for_desk_phones(tmp_path: Path) -> None:
    _sb, eng, _log, _access, switched = rig(tmp_path)
    incoming(eng, CALLER_LEG, "*31", x_pbx_line="trunk1")
    await until(eng, ("hangup", CALLER_LEG, 403))
    assert switched == []


async def test_a_greeting_recorded_from_the_owners_phone(tmp_path: Path) -> None:
    sb, eng, _log, _access, _ = rig(tmp_path)
    saved: list[tuple[str, bytes]] = []

    async def save(box: str, path: Path) -> None:
        saved.append((box, path.read_bytes()))

    sb.services.save_greeting = save
    incoming(eng, CALLER_LEG, "*96", x_pbx_device="101")
    await prompt_then(eng, ("vm-record-greeting", "voicemail-beep"))
    await until(eng, ("record", CALLER_LEG))
    eng.press("#")
    await prompt_then(eng, ("vm-greeting-saved", "goodbye"))
    await until(eng, ("hangup", CALLER_LEG, 200))
    [(box, wav)] = saved
    assert box == "anna" and wav[:4] == b"RIFF" and len(wav) > 8000 * 2 * 2
    assert not list((tmp_path / "data" / "prompts").glob(".recording-*"))  # cleaned up


async def test_only_a_mailbox_owner_records_a_greeting(tmp_path: Path) -> None:
    sb, eng, _log, _access, _ = rig(tmp_path)

    async def save(box: str, path: Path) -> None:
        raise AssertionError("nothing to save")

    sb.services.save_greeting = save
    incoming(eng, CALLER_LEG, "*96", x_pbx_device="102")  # Boris owns no mailbox
    await until(eng, ("hangup", CALLER_LEG, 404))
