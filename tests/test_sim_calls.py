"""SIM line calls through the running box: a simulated modem (its ptys found like USB
modems), `pbx run` in another process, a pjsua2 desk phone in a third.

An incoming GSM call goes through its number's call flow to the desk phone, which is
answered, and tones pass both ways through the modem's PCM path (the phone plays 1000 Hz,
the far end 600 Hz); a desk phone's outside call leaves on the SIM line outbound routing
chooses, with tones both ways; the call records say inbound/outbound and who called.
"""

from __future__ import annotations

import json
import sqlite3
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.support.gsmcall import floats
from tests.support.harness import EngineProcess, PhoneProcess, pbx
from tests.support.scenarios import SIM_IMEI
from tests.support.tones import read_wav, tone_presence
from tests.test_edge_calls import desk_phone, registered

pytestmark = pytest.mark.timeout(180)

RATE = 8000
CUSTOMER = "+79161112233"
MOBILE = "+79161230000"  # Anna's own mobile
OFFICE = f"""\
version: 1
box: {{country: RU, area_code: "495"}}
employees:
  - extension: "101"
    name: Anna
    mobiles: ["{MOBILE}"]
    ring_mobile_after: 2
    devices: [{{username: "101", password: "Kx7-desk-alpha"}}]
  - extension: "102"
    name: Boris
    devices: [{{username: "102", password: "Kx7-desk-bravo"}}]
lines:
  - {{key: sim1, kind: sim, imei: "{SIM_IMEI}"}}
numbers:
  - {{number: "+79000000001", line: sim1, flow: main}}
flows:
  - key: main
    branches: [{{to: {{employee: "101"}}}}]
outbound_routes:
  - {{key: mobiles, pattern: "+79XXXXXXXXX", route_class: mobile, lines: [sim1]}}
"""


PROFILES = ["quectel-ec25", "simcom-7600", "huawei-e1550"]






def line_ready(settings: Settings, timeout: float = 30.0) -> dict[str, Any]:
    # The engine is another process: asking it again is the only way to wait on it.
    deadline = time.monotonic() + timeout
    while True:
        lines = json.loads(pbx(settings, "lines", "--json").stdout)
        sim = next((line for line in lines if line.get("key") == "sim1"), {})
        if sim.get("state") == "ready" or time.monotonic() > deadline:
            assert sim.get("state") == "ready", lines
            return sim
        time.sleep(0.3)


def ready_phone(settings: Settings, tmp_path: Path, user: str, password: str,
                *extra: str) -> tuple[PhoneProcess, Path]:
    """A registered desk phone that records its calls, once the SIM line is ready."""
    rec = tmp_path / f"rec-{user}"
    rec.mkdir()
    phone = desk_phone(settings, user, password, "--record-dir", str(rec), *extra)
    try:
        phone.wait(registered(phone))
        line_ready(settings)
    except BaseException:
        phone.close()
        raise
    return phone, rec


def far_end_hears(sim: FakeModem, seconds: float = 1.5) -> list[float]:
    """The last `seconds` of what the simulated far end received."""
    sim.audio.captured(clear=True)
    want = int(seconds * RATE * 2)
    assert sim.audio.wait_captured(want, 10)
    return floats(sim.audio.captured()[-want:])


def phone_heard(phone: PhoneProcess, rec: Path, timeout: float = 10.0) -> list[float]:
    """What the phone recorded, once it has closed the file (another process: poll)."""
    phone.states()
    deadline = time.monotonic() + timeout
    while True:
        try:
            [wav] = list(rec.glob("*.wav"))
            samples, rate = read_wav(wav)
            break
        except (ValueError, wave.Error, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert rate == RATE
    return samples


def records(settings: Settings) -> list[tuple[Any, ...]]:
    return sqlite3.connect(settings.db_path).execute(
        "SELECT direction, caller, dialled, disposition, l.key FROM call_records c"
        " LEFT JOIN lines l ON l.id = c.line_id ORDER BY c.id").fetchall()


@pytest.mark.parametrize("modem", PROFILES, indirect=True)
def test_a_gsm_call_rings_the_desk_phone_through_its_flow_with_audio_both_ways(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path) -> None:
    start_box(OFFICE)
    phone, rec = ready_phone(settings, tmp_path, "101", "Kx7-desk-alpha", "--tone", "1000")
    try:
        modem.audio.tone(600, dbfs=-12)  # the caller speaks 600 Hz
        idx = modem.ring(CUSTOMER)
        ring = phone.wait(lambda e: e.get("event") == "incoming")
        assert CUSTOMER in ring["remote"]  # the desk phone shows who calls
        phone.wait(lambda e: e.get("state") == "CONFIRMED")
        # Phone -> engine -> port leg -> pump -> modem uplink: the caller hears 1000 Hz.
        assert tone_presence(far_end_hears(modem), RATE, 1000) >= 0.8
        # Keys pressed on the desk phone reach the GSM caller (AT+VTS, ^DTMF).
        phone.send(cmd="dtmf", id=ring["id"], digits="5")
        deadline = time.monotonic() + 10
        while not any(digit == "5" for _idx, digit in modem.dtmf_sent):
            assert time.monotonic() < deadline, modem.dtmf_sent
            time.sleep(0.1)
        time.sleep(1.0)  # audio needs wall-clock time to reach the phone's recording
        modem.remote_hangup(idx)
        phone.wait(lambda e: e.get("state") == "DISCONNECTED")
        heard = phone_heard(phone, rec)
        assert tone_presence(heard[int(0.3 * RATE):], RATE, 600) >= 0.7
    finally:
        phone.close()
    [(direction, caller, dialled, disposition, line)] = records(settings)
    assert (direction, disposition, line) == ("inbound", "answered", "sim1")
    assert CUSTOMER in caller and dialled == "+79000000001"


def test_a_desk_phone_calls_a_mobile_through_the_sim_line(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path) -> None:
    start_box(OFFICE)
    phone, rec = ready_phone(settings, tmp_path, "101", "Kx7-desk-alpha")
    try:
        modem.script_number("+79161234567", answer_after=0.5)
        modem.audio.tone(600, dbfs=-12)
        # Dialled the Russian way (8 + ten digits): normalised to E.164 for the SIM.
        cid = phone.call(f"sip:89161234567@127.0.0.1:{settings.sip_port}", tone=1000,
                         record=True)
        phone.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        [call] = modem.calls()
        assert call.number == "+79161234567" and call.direction == 0
        assert tone_presence(far_end_hears(modem), RATE, 1000) >= 0.8
        time.sleep(1.0)
        phone.send(cmd="hangup", id=cid)
        phone.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED")
        heard = phone_heard(phone, rec)
        assert tone_presence(heard[int(0.3 * RATE):], RATE, 600) >= 0.7
        deadline = time.monotonic() + 10
        while modem.calls() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert modem.calls() == []  # the box hung the modem up too
    finally:
        phone.close()
    [(direction, _caller, dialled, disposition, _line)] = records(settings)
    assert (direction, dialled, disposition) == ("outbound", "89161234567", "answered")


def test_an_offline_colleague_is_reached_on_her_mobile_through_the_sim_line(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path) -> None:
    """Boris calls Anna, whose desk phone is not registered: the box forwards to her
    mobile at once (the routing core's "not registered" rule) through the SIM line."""
    start_box(OFFICE)
    boris, rec = ready_phone(settings, tmp_path, "102", "Kx7-desk-bravo")
    try:
        modem.script_number(MOBILE, answer_after=0.5)
        modem.audio.tone(600, dbfs=-12)
        cid = boris.call(f"sip:101@127.0.0.1:{settings.sip_port}", tone=1000, record=True)
        boris.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        [call] = modem.calls()
        assert call.number == MOBILE
        assert tone_presence(far_end_hears(modem), RATE, 1000) >= 0.8
        time.sleep(1.0)
        modem.remote_hangup(call.idx)
        boris.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED")
        heard = phone_heard(boris, rec)
        assert tone_presence(heard[int(0.3 * RATE):], RATE, 600) >= 0.7
    finally:
        boris.close()
    row = sqlite3.connect(settings.db_path).execute(
        "SELECT direction, dialled, disposition, route FROM call_records").fetchone()
    assert row[:3] == ("internal", "101", "answered")
    route = json.loads(row[3])
    assert f"line:sim1/{MOBILE}" in route["rang"], route  # the mobile, through the SIM
    assert route["rang"] == [f"line:sim1/{MOBILE}"], route  # not the offline desk phone


@pytest.mark.parametrize(("script", "code"), [({"busy": True}, 486),
                                              ({"no_answer": True}, 480)])
def test_a_busy_or_unanswered_mobile_gives_the_desk_phone_the_right_answer(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path, script: dict[str, bool], code: int) -> None:
    start_box(OFFICE)
    phone, _rec = ready_phone(settings, tmp_path, "101", "Kx7-desk-alpha")
    try:
        modem.script_number("+79161234567", answer_after=None, **script)
        cid = phone.call(f"sip:89161234567@127.0.0.1:{settings.sip_port}")
        ended = phone.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED",
                           timeout=90)
        assert ended["code"] == code, ended
    finally:
        phone.close()
    [(direction, _caller, _dialled, disposition, line)] = records(settings)
    assert (direction, line) == ("outbound", "sim1")  # the line it went out on
    assert disposition == ("busy" if code == 486 else "no_answer")


def test_a_caller_id_rule_withholds_the_sims_number(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path) -> None:
    start_box(OFFICE + """caller_id_rules:
  - {route: mobiles, mode: withheld}
""")
    phone, _rec = ready_phone(settings, tmp_path, "101", "Kx7-desk-alpha")
    try:
        modem.script_number("+79161234567", answer_after=None)
        cid = phone.call(f"sip:89161234567@127.0.0.1:{settings.sip_port}")
        deadline = time.monotonic() + 15
        while not modem.calls():
            assert time.monotonic() < deadline, "the SIM line never dialled"
            time.sleep(0.05)
        [out] = modem.calls()
        assert out.clir  # dialled with the CLIR modifier: the callee sees no number
        phone.send(cmd="hangup", id=cid)
        phone.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED")
    finally:
        phone.close()
