"""Desk-phone features through the box with real pjsua2 phones: hold, pickup, transfer."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance import sounds
from appliance.control import call as control
from appliance.settings import Settings
from tests.support.harness import EngineProcess, PhoneProcess
from tests.support.tones import heard_in_order, read_wav, timeline
from tests.test_edge_calls import desk_phone, registered

pytestmark = pytest.mark.timeout(180)

ALICE_HZ, BOB_HZ, CAROL_HZ, DAVE_HZ = 700.0, 1400.0, 1000.0, 1800.0
LABELS = {ALICE_HZ: "alice", BOB_HZ: "bob", CAROL_HZ: "carol", DAVE_HZ: "dave",
          **{f: "music" for f in sounds.MELODY_HZ}}
PASSWORDS = {"101": "Kx7-desk-alpha", "102": "Kx7-desk-bravo", "103": "Kx7-desk-carol",
             "104": "Kx7-desk-delta"}

# Bob and Carol share a department (a pickup group); Alice and Dave are in none.
OFFICE = """\
version: 1
employees:
  - {extension: "101", name: Алиса, devices: [{username: "101", password: "Kx7-desk-alpha"}]}
  - {extension: "102", name: Борис, devices: [{username: "102", password: "Kx7-desk-bravo"}]}
  - {extension: "103", name: Клара, devices: [{username: "103", password: "Kx7-desk-carol"}]}
  - {extension: "104", name: Денис, devices: [{username: "104", password: "Kx7-desk-delta"}]}
departments:
  - {key: sales, name: Продажи, members: ["102", "103"]}
"""


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    return start_box(OFFICE)


def phone(settings: Settings, ext: str, tone: float, *extra: str) -> PhoneProcess:
    p = desk_phone(settings, ext, PASSWORDS[ext], "--tone", str(int(tone)), *extra)
    p.wait(registered(p))
    return p


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


def uri(settings: Settings, user: str) -> str:
    return f"sip:{user}@127.0.0.1:{settings.sip_port}"


def confirmed(cid: int | None = None) -> Callable[[dict], bool]:  # type: ignore[type-arg]
    return lambda e: e.get("state") == "CONFIRMED" and (cid is None or e.get("id") == cid)


def ended(e: dict) -> bool:  # type: ignore[type-arg]
    return e.get("state") == "DISCONNECTED"


@pytest.mark.parametrize("code", ["*8", "**102"])
def test_pickup_answers_a_call_ringing_elsewhere(
        box: EngineProcess, settings: Settings, tmp_path: Path, code: str) -> None:
    """Alice calls Bob, who does not answer; Carol (same group) or Dave (directed) picks up."""
    rec = tmp_path / "rec"
    rec.mkdir()
    picker_ext, picker_hz = ("103", CAROL_HZ) if code == "*8" else ("104", DAVE_HZ)
    alice = phone(settings, "101", ALICE_HZ, "--record-dir", str(rec))
    bob = phone(settings, "102", BOB_HZ, "--answer-code", "180")
    picker = phone(settings, picker_ext, picker_hz, "--record-dir", str(rec))
    try:
        cid = alice.call(uri(settings, "102"), record=True)
        bob.wait(lambda e: e.get("event") == "incoming")
        pid = picker.call(uri(settings, code), record=True)
        picker.wait(confirmed(pid))
        alice.wait(confirmed(cid))
        bob.wait(ended)  # its ringing was cancelled
        time.sleep(1.5)  # talk
        alice.send(cmd="hangup", id=cid)
        picker.wait(ended)
    finally:
        for p in (alice, bob, picker):
            p.close()
    for port, want in ((alice.port, "carol" if code == "*8" else "dave"), (picker.port, "alice")):
        [wav] = list(rec.glob(f"{port}-*.wav"))
        samples, rate = read_wav(wav)
        runs = timeline(samples, rate, LABELS)
        assert heard_in_order(runs, [want], min_s=0.8), (wav.name, runs)
    db = sqlite3.connect(settings.db_path)
    record = db.execute("SELECT disposition, dialled, answered_by FROM call_records"
                        " WHERE dialled = '102'").fetchone()
    assert record[:2] == ("answered", "102") and picker_ext in record[2]
    legs = db.execute("SELECT l.extension, l.disposition FROM call_legs l JOIN call_records r"
                      " ON r.id = l.call_id WHERE r.dialled = '102' ORDER BY position").fetchall()
    assert legs == [("102", "cancelled"), (picker_ext, "answered")]


def test_group_pickup_only_takes_calls_of_the_pickers_group(
        box: EngineProcess, settings: Settings) -> None:
    """Dave is in no department: *8 finds nothing while Bob rings; Bob's call goes on ringing."""
    alice = phone(settings, "101", ALICE_HZ)
    bob = phone(settings, "102", BOB_HZ, "--answer-code", "180")
    dave = phone(settings, "104", DAVE_HZ)
    try:
        cid = alice.call(uri(settings, "102"))
        bob.wait(lambda e: e.get("event") == "incoming")
        did = dave.call(uri(settings, "*8"))
        refused = dave.wait(lambda e: e.get("id") == did and ended(e))
        assert refused["code"] == 404
        assert alice.states()[str(cid)] == "EARLY"
        alice.send(cmd="hangup", id=cid)
        bob.wait(ended)
    finally:
        for p in (alice, bob, dave):
            p.close()


def heard(rec: Path, port: int, expected: list[str], min_s: float = 0.8) -> None:
    [wav] = list(rec.glob(f"{port}-*.wav"))
    samples, rate = read_wav(wav)
    runs = timeline(samples, rate, LABELS)
    assert heard_in_order(runs, expected, min_s=min_s), (wav.name, runs)


def records(settings: Settings) -> list[tuple[str, str, str, str]]:
    db = sqlite3.connect(settings.db_path)
    return db.execute("SELECT dialled, disposition, caller, route FROM call_records"
                      " WHERE ended_at IS NOT NULL ORDER BY id").fetchall()


@dataclass
class Talk:
    """Alice has called Bob and they have talked for a second; Carol waits (or not)."""

    alice: PhoneProcess
    bob: PhoneProcess
    carol: PhoneProcess | None
    alice_call: int
    bob_call: int


@contextlib.contextmanager
def alice_talks_to_bob(settings: Settings, rec: Path, carol: bool = True) -> Iterator[Talk]:
    rec.mkdir()
    phones = [phone(settings, "101", ALICE_HZ, "--record-dir", str(rec)),
              phone(settings, "102", BOB_HZ)]
    if carol:
        phones.append(phone(settings, "103", CAROL_HZ, "--record-dir", str(rec)))
    try:
        alice, bob = phones[:2]
        cid = alice.call(uri(settings, "102"), record=True)
        alice.wait(confirmed(cid))
        bob_call = bob.wait(confirmed())["id"]
        time.sleep(1.0)  # Alice talks to Bob
        yield Talk(alice, bob, phones[2] if carol else None, cid, bob_call)
    finally:
        for p in phones:
            p.close()


def test_blind_transfer_connects_the_caller_to_the_target(
        box: EngineProcess, settings: Settings, tmp_path: Path) -> None:
    """Bob answers Alice and transfers her to Carol (REFER); Bob's phone is released."""
    rec = tmp_path / "rec"
    with alice_talks_to_bob(settings, rec) as t:
        assert t.carol is not None
        t.bob.send(cmd="xfer", id=t.bob_call, uri=uri(settings, "103"))
        t.carol.wait(confirmed())
        t.bob.wait(ended)  # the box releases the transferor
        final = t.bob.wait(lambda e: e.get("event") == "xfer_status" and e.get("final"))
        assert final["code"] == 200
        time.sleep(1.5)  # Alice talks to Carol
        assert t.alice.states()[str(t.alice_call)] == "CONFIRMED"
        t.alice.send(cmd="hangup", id=t.alice_call)
        t.carol.wait(ended)
    heard(rec, t.alice.port, ["bob", "carol"])
    heard(rec, t.carol.port, ["alice"])
    rows = records(settings)
    assert [(r[0], r[1]) for r in rows] == [("102", "answered"), ("103", "answered")]
    assert "103" in rows[0][3]  # the first call says where it was transferred
    assert "101" in rows[1][2]  # the second call's caller is Alice, not the box


@pytest.mark.parametrize(("target", "code"), [
    ("109", 404),  # nobody has that number: the call comes back
    ("sip:103@127.0.0.9:5999", 403),  # not the box: refused, the engine dials nothing
])
def test_failed_blind_transfer_keeps_the_call(
        box: EngineProcess, settings: Settings, tmp_path: Path, target: str, code: int) -> None:
    """A transfer that cannot work leaves Alice with Bob."""
    rec = tmp_path / "rec"
    with alice_talks_to_bob(settings, rec, carol=False) as t:
        refer_to = target if target.startswith("sip:") else uri(settings, target)
        t.bob.send(cmd="xfer", id=t.bob_call, uri=refer_to)
        final = t.bob.wait(lambda e: e.get("event") == "xfer_status" and e.get("final"))
        assert final["code"] == code
        time.sleep(1.5)
        assert t.alice.states()[str(t.alice_call)] == "CONFIRMED"
        assert t.bob.states()[str(t.bob_call)] == "CONFIRMED"
        t.alice.send(cmd="hangup", id=t.alice_call)
        t.bob.wait(ended)
    # A second and a half of Bob after the failed transfer (a brief ringback at most).
    heard(rec, t.alice.port, ["bob"], min_s=2.0)


def test_attended_transfer_joins_the_two_other_parties(
        box: EngineProcess, settings: Settings, tmp_path: Path) -> None:
    """Bob holds Alice, consults Carol, then transfers (REFER with Replaces)."""
    rec = tmp_path / "rec"
    with alice_talks_to_bob(settings, rec) as t:
        assert t.carol is not None
        t.bob.send(cmd="hold", id=t.bob_call)
        wait_for(lambda: any(legs_held(settings)))
        second = t.bob.call(uri(settings, "103"))
        t.bob.wait(confirmed(second))
        t.carol.wait(confirmed())
        time.sleep(1.5)  # Bob consults Carol; Alice hears music
        t.bob.send(cmd="xfer_replaces", id=t.bob_call, to=second)
        t.bob.wait_count(ended, 2)  # both of Bob's calls end
        time.sleep(1.5)  # Alice talks to Carol
        assert t.alice.states()[str(t.alice_call)] == "CONFIRMED"
        t.alice.send(cmd="hangup", id=t.alice_call)
        t.carol.wait(ended)
    heard(rec, t.alice.port, ["bob", "music", "carol"])
    heard(rec, t.carol.port, ["bob", "alice"])
