"""The source documents' inbound scenarios, end to end: `pbx run`, a simulated SIM modem,
pjsua2 desk phones in other processes. Each test asserts what the phones and the caller
saw and heard, and the call record's route explanation.

(a) working hours: greeting, then sales all at once; the first to answer gets the call,
    the others stop ringing;
(b) one after another and cascading, ring timings measured (+-0.5 s);
(d) voice menu: a key from a GSM caller detected in-band, an extension dialled directly
    from a desk phone, no key -> the default after the menu's timeout;
(g) a blacklisted number refused and logged with its reason.
The voicemail, after-hours, holiday, repeat-caller and mobile scenarios are in
test_inbound_scenarios_more.py.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import pytest

from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.support.harness import EngineProcess
from tests.support.scenarios import (
    CUSTOMER,
    RATE,
    SIM1_NUMBER,
    Phones,
    caller_heard,
    incoming,
    lines_ready,
    office,
    state,
    steps_of,
    wait_heard,
    wait_records,
    write_prompts,
)
from tests.support.tones import tone_presence

pytestmark = pytest.mark.timeout(180)

OPEN_ALWAYS = """
schedules:
  - key: office
    hours: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"],
            thu: ["00:00-24:00"], fri: ["00:00-24:00"], sat: ["00:00-24:00"],
            sun: ["00:00-24:00"]}
"""








def boot(start_box: Callable[..., EngineProcess], settings: Settings, body: str) -> None:
    write_prompts(settings)
    start_box(office(body))


def test_a_greeting_then_sales_all_at_once_first_answer_wins(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    boot(start_box, settings, OPEN_ALWAYS + f"""
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: main}}]
departments:
  - {{key: sales, name: Sales, strategy: all_at_once, members: ["101", "102"], timeout: 30}}
flows:
  - key: main
    schedule: office
    branches:
      - {{when: open, greeting: welcome, to: {{department: sales}}}}
      - {{when: closed, to: {{hangup: null}}}}
""")
    anna = phones.add("101", "--answer-code", "180")
    boris = phones.add("102", "--answer-code", "180", "--tone", "1000")
    lines_ready(settings)
    modem.audio.captured(clear=True)
    idx = modem.ring(CUSTOMER)
    ring_a, ring_b = incoming(anna), incoming(boris)
    assert f"<sip:{CUSTOMER}@" in ring_a["remote"]  # the phones show the caller's number
    # The caller heard the greeting (700 Hz) before the department rang.
    assert tone_presence(caller_heard(modem, 1.0), RATE, 700) > 0.5
    boris.send(cmd="answer", id=ring_b["id"])
    boris.wait(state(ring_b["id"], "CONFIRMED"))
    anna.wait(state(ring_a["id"], "DISCONNECTED"))  # Anna's phone stopped ringing
    modem.audio.captured(clear=True)
    assert modem.audio.wait_captured(RATE * 2, 10)
    assert tone_presence(caller_heard(modem, 1.0), RATE, 1000) > 0.8  # Boris talks
    modem.remote_hangup(idx)
    boris.wait(state(ring_b["id"], "DISCONNECTED"))
    [row] = wait_records(settings, 1)
    steps = steps_of(row)
    assert "greeting welcome" in steps[0] and steps[0].endswith("[played]"), steps
    assert "department sales" in steps[1] and "[answered by 102]" in steps[1], steps
    assert steps[-1] == "outcome: answered: answered by 102"
    assert (row["direction"], row["disposition"]) == ("inbound", "answered")


@pytest.mark.parametrize("strategy", ["one_after_another", "cascading"])
def test_b_ring_timings_of_one_after_another_and_cascading(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones, strategy: str) -> None:
    boot(start_box, settings, f"""
departments:
  - {{key: line, name: Line, extension: "510", strategy: {strategy}, ring_delay: 3,
     members: ["101", "102", "103"], timeout: 8}}
""")
    ring = {ext: phones.add(ext, "--answer-code", "180") for ext in ("101", "102", "103")}
    caller = phones.add("104")
    cid = caller.call(f"sip:510@127.0.0.1:{settings.sip_port}")
    rang = {ext: incoming(phone) for ext, phone in ring.items()}
    assert '"Gleb" <sip:104@' in rang["102"]["remote"]  # the phone shows the colleague
    t0 = rang["101"]["t"]
    for ext, delay in (("102", 3.0), ("103", 6.0)):
        assert abs(rang[ext]["t"] - t0 - delay) <= 0.5, (ext, rang[ext]["t"] - t0)
    first_end = ring["101"].wait(state(rang["101"]["id"], "DISCONNECTED"), timeout=15)
    expected_end = 3.0 if strategy == "one_after_another" else 8.0  # cascading: to the end
    assert abs(first_end["t"] - t0 - expected_end) <= 0.5, first_end["t"] - t0
    caller.wait(state(cid, "DISCONNECTED"), timeout=15)
    [row] = wait_records(settings, 1)
    assert f"strategy {strategy}" in " ".join(steps_of(row)) or strategy in row["route"][
        "steps"][0], steps_of(row)
    assert steps_of(row)[-1].startswith("outcome: hangup"), steps_of(row)


# Huawei reports no digits: the box hears them in-band. SIMCom's own detector reports them.
@pytest.mark.parametrize("modem", ["huawei-e1550", "simcom-7600"], indirect=True)
def test_d_voice_menu_keys_direct_dial_and_default(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    boot(start_box, settings, f"""
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: menu}}]
departments:
  - {{key: sales, name: Sales, strategy: all_at_once, members: ["102"], timeout: 20}}
  - {{key: support, name: Support, strategy: all_at_once, members: ["103"], timeout: 20}}
flows:
  - {{key: menu, branches: [{{to: {{voice_menu: main}}}}]}}
voice_menus:
  - key: main
    extension: "600"
    greeting: menu-main
    timeout: 3
    keys: {{"1": {{department: sales}}, "2": {{department: support}}}}
    default: {{employee: "101"}}
""")
    anna = phones.add("101", "--answer-code", "180")
    boris = phones.add("102")
    vera = phones.add("103")
    # A phone that sends audio: pjsua2 test phones with nothing to send lose RFC 4733
    # digits (seen with the bare engine too); desk phones always send RTP.
    gleb = phones.add("104", "--tone", "400")
    lines_ready(settings)

    # A GSM caller presses 2: support.
    idx = modem.ring(CUSTOMER)
    wait_heard(modem, 900)  # the menu
    if modem.profile.family == "huawei":
        modem.audio.dtmf("2")  # tone pairs only, no report from the modem
    else:
        modem.remote_dtmf(idx, "2")  # tone pairs and the modem's +DTMF report
    vera.wait(lambda e: e.get("state") == "CONFIRMED")
    modem.remote_hangup(idx)
    vera.wait(lambda e: e.get("state") == "DISCONNECTED")

    # A desk phone dials the menu's extension and then 102 directly (RFC 4733 digits).
    cid = gleb.call(f"sip:600@127.0.0.1:{settings.sip_port}")
    gleb.wait(state(cid, "CONFIRMED"))
    gleb.send(cmd="dtmf", id=cid, digits="102")
    boris.wait(lambda e: e.get("state") == "CONFIRMED")
    gleb.send(cmd="hangup", id=cid)
    gleb.wait(state(cid, "DISCONNECTED"))

    # No key at all: the default (Anna) after the 3 s timeout, counted after the prompt.
    cid = gleb.call(f"sip:600@127.0.0.1:{settings.sip_port}")
    answered = gleb.wait(state(cid, "CONFIRMED"))
    ring = incoming(anna)
    waited = ring["t"] - answered["t"]
    assert 3.5 <= waited <= 5.5, waited  # 1 s menu prompt + 3 s timeout (+ set-up)
    gleb.send(cmd="hangup", id=cid)
    gleb.wait(state(cid, "DISCONNECTED"))

    rows = wait_records(settings, 3)
    gsm, direct, default = (steps_of(r) for r in rows)
    assert "voice menu main" in gsm[0] and "[key 2]" in gsm[0], gsm
    assert gsm[-1] == "outcome: answered: answered by 103", gsm
    assert "[key 102]" in direct[0] and direct[-1] == "outcome: answered: answered by 102"
    assert "[no key within 3 s]" in default[0], default
    assert rows[0]["direction"] == "inbound" and rows[1]["direction"] == "internal"


def test_g_a_blacklisted_number_is_refused_and_logged_with_its_reason(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    boot(start_box, settings, f"""
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: main}}]
flows:
  - {{key: main, branches: [{{to: {{employee: "101"}}}}]}}
blacklist:
  - {{number: "{CUSTOMER}", reason: "Robocaller offering loans"}}
""")
    anna = phones.add("101")
    lines_ready(settings)
    idx = modem.ring(CUSTOMER)
    deadline = time.monotonic() + 10
    while any(c.idx == idx for c in modem.calls()):
        assert time.monotonic() < deadline, "the blacklisted call was not refused"
        time.sleep(0.1)
    [row] = wait_records(settings, 1)
    assert steps_of(row)[0].startswith(f"no flow: blacklist: {CUSTOMER} -> reject"), row
    assert steps_of(row)[-1] == "outcome: rejected: Robocaller offering loans"
    assert not [e for e in anna.seen if e.get("event") == "incoming"]
    blocked = sqlite3.connect(settings.db_path).execute(
        "SELECT caller, reason FROM blocked_calls").fetchall()
    assert blocked == [(CUSTOMER, "Robocaller offering loans")]
