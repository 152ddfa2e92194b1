"""Desk-phone features through the box with real pjsua2 phones: hold with music."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import sounds
from appliance.control import call as control
from appliance.settings import Settings
from tests.support.harness import EngineProcess
from tests.support.tones import heard_in_order, read_wav, timeline
from tests.test_edge_calls import OFFICE, desk_phone, registered

pytestmark = pytest.mark.timeout(180)

ALICE_HZ, BOB_HZ = 700.0, 1400.0
LABELS = {ALICE_HZ: "alice", BOB_HZ: "bob", **{f: "music" for f in sounds.MELODY_HZ}}


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    return start_box(OFFICE)


def legs_held(settings: Settings) -> list[bool]:
    return [leg["held"] for leg in control(settings.control_socket, "GET", "/legs")]


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_hold_plays_music_to_the_other_party_and_resume_restores_the_call(
        box: EngineProcess, settings: Settings, tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    alice = desk_phone(settings, "101", "Kx7-desk-alpha")
    bob = desk_phone(settings, "102", "Kx7-desk-bravo", "--tone", str(int(BOB_HZ)),
                     "--record-dir", str(rec))
    try:
        alice.wait(registered(alice))
        bob.wait(registered(bob))
        cid = alice.call(f"sip:102@127.0.0.1:{settings.sip_port}", tone=int(ALICE_HZ))
        alice.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        bob.wait(lambda e: e.get("state") == "CONFIRMED")
        time.sleep(1.2)  # talk
        alice.send(cmd="hold", id=cid)
        wait_for(lambda: any(legs_held(settings)))
        time.sleep(1.5)  # bob on hold
        alice.send(cmd="unhold", id=cid)
        wait_for(lambda: not any(legs_held(settings)))
        time.sleep(1.2)  # talk again
        assert len(control(settings.control_socket, "GET", "/calls")) == 1
        alice.send(cmd="hangup", id=cid)
        bob.wait(lambda e: e.get("state") == "DISCONNECTED")
    finally:
        alice.close()
        bob.close()
    [wav] = list(rec.glob("*.wav"))
    samples, rate = read_wav(wav)
    runs = timeline(samples, rate, LABELS)
    assert heard_in_order(runs, ["alice", "music", "alice"], min_s=0.6), runs


def test_default_music_is_written_once(tmp_path: Path) -> None:
    path = tmp_path / sounds.DEFAULT_MUSIC
    sounds.write_default_music(path)
    samples, rate = read_wav(path)
    assert rate == sounds.RATE
    assert len(samples) / rate == pytest.approx(len(sounds.MELODY_HZ) * sounds.NOTE_S * 4)
    runs = timeline(samples, rate, {f: str(f) for f in sounds.MELODY_HZ})
    notes = [label for label, seconds in runs if seconds >= 0.3 and label != "-"]
    assert notes[:len(sounds.MELODY_HZ)] == [str(f) for f in sounds.MELODY_HZ]
