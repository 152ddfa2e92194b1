"""The source documents' inbound scenarios, end to end (continued): voicemail with e-mail,
after hours and holidays, repeat callers, mobiles joining a ring. Same rig as
test_inbound_scenarios.py: `pbx run`, simulated SIM modems, pjsua2 desk phones, plus an
aiosmtpd mail server on loopback.

(c) first-line managers, then all of sales, then voicemail: the message recorded and
    e-mailed with the audio attached (the documents' 15 s steps shortened to 3 s);
(e) after hours the answering machine; on a holiday the duty manager's mobile through a
    second SIM line;
(f) a repeat caller reaches the manager who last spoke with them; that manager busy, the
    call goes back to the department; the director is an exception, never sticky;
(h) a member's desk phone silent for 5 s: their mobile rings too through the SIM line (and
    must press 1 before it gets the call).
"""

from __future__ import annotations

import sqlite3
import time
import wave
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.conftest import free_port
from tests.support.harness import EngineProcess
from tests.support.scenarios import (
    CUSTOMER,
    EMPLOYEES,
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
    wav_samples,
    write_prompts,
)
from tests.support.smtp import SmtpSink
from tests.support.tones import tone_presence


def wav_seconds_of(path: Path) -> float:
    """Length of a WAV file."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()

pytestmark = pytest.mark.timeout(240)

IMEI2 = "861234567890302"
DUTY_MOBILE = "+79161230105"
ANNA_MOBILE = "+79161230101"
OPEN_ALWAYS = """
schedules:
  - key: office
    hours: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"],
            thu: ["00:00-24:00"], fri: ["00:00-24:00"], sat: ["00:00-24:00"],
            sun: ["00:00-24:00"]}
"""








@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port()).start()
    try:
        yield sink
    finally:
        sink.stop()


def wait_mail(sink: SmtpSink, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not sink.mails:
        assert time.monotonic() < deadline, "no voicemail e-mail arrived"
        time.sleep(0.1)


def leave_message(modem: FakeModem, greeting_hz: float) -> int:
    """A GSM caller waits through the greeting and the tone, then speaks 600 Hz for 2 s."""
    wait_heard(modem, greeting_hz, timeout=20)
    wait_heard(modem, 1000)  # the beep
    modem.audio.tone(600, dbfs=-12)
    time.sleep(2.5)  # the message: two and a half seconds of speech (wall-clock audio)
    [call] = modem.calls()
    return call.idx


def test_c_first_line_then_sales_then_voicemail_with_email(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones, smtp: SmtpSink) -> None:
    write_prompts(settings)
    start_box(office(f"""
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: main}}]
departments:
  - {{key: first-line, name: First line, strategy: all_at_once, members: ["101"]}}
  - {{key: sales, name: Sales, strategy: all_at_once, members: ["101", "102"]}}
flows:
  - {{key: main, branches: [{{to: {{chain: escalate}}}}]}}
forwarding_chains:
  - key: escalate
    steps:
      - {{to: {{department: first-line}}, timeout: 3}}
      - {{to: {{department: sales}}, timeout: 3}}
    final: {{voicemail: sales}}
voicemail_boxes:
  - {{key: sales, name: Sales, greeting: vm-greeting, email: [sales@office.test]}}
""", smtp_port=smtp.port))
    anna = phones.add("101", "--answer-code", "180")
    boris = phones.add("102", "--answer-code", "180")
    lines_ready(settings)
    modem.audio.captured(clear=True)
    idx = modem.ring(CUSTOMER)
    first = incoming(anna)
    sales = incoming(boris)
    assert abs(sales["t"] - first["t"] - 3.0) <= 0.5, sales["t"] - first["t"]
    anna.wait(state(first["id"], "DISCONNECTED"))  # first line's window closed...
    second = incoming(anna, 1)  # ...and she rings again with all of sales
    assert abs(second["t"] - first["t"] - 3.0) <= 0.5
    assert leave_message(modem, 1300) == idx
    modem.remote_hangup(idx)
    [row] = wait_records(settings, 1)
    steps = steps_of(row)
    assert "chain escalate: step 1/2 (3 s)" in steps[0] and "no answer" in steps[0], steps
    assert "step 2/2" in steps[1] and "department sales" in steps[1], steps
    assert "voicemail sales" in steps[2], steps
    assert steps[-1] == "outcome: voicemail: voicemail sales"

    conn = sqlite3.connect(settings.db_path)
    [(path, seconds, caller)] = conn.execute(
        "SELECT path, duration_s, caller FROM voicemail_messages").fetchall()
    assert 2.0 <= seconds <= 4.0 and CUSTOMER in caller
    message = settings.data_dir / path
    assert tone_presence(wav_samples(message)[RATE // 2:-RATE // 2], RATE, 600) > 0.8
    wait_mail(smtp)
    [mail] = smtp.mails
    assert mail.rcpt_tos == ["sales@office.test"]
    [attachment] = [part for part in mail.message.iter_attachments()]
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_content() == message.read_bytes()  # the recording itself
    missed = conn.execute("SELECT reason FROM missed_calls").fetchall()
    assert missed == [("voicemail",)]


def test_e_after_hours_the_answering_machine(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    write_prompts(settings)
    start_box(office(f"""
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: main}}]
schedules:
  - {{key: never, hours: {{}}}}
flows:
  - key: main
    schedule: never
    branches:
      - {{when: open, to: {{employee: "101"}}}}
      - {{when: closed, greeting: closed, to: {{voicemail: general}}}}
voicemail_boxes:
  - {{key: general, name: General, owner: "101"}}
"""))
    anna = phones.add("101")
    lines_ready(settings)
    idx = modem.ring(CUSTOMER)
    wait_heard(modem, 1100)  # "we are closed", the admin's recording
    leave_message(modem, 1000)  # the built-in voicemail greeting (speech), then the beep
    modem.remote_hangup(idx)
    [row] = wait_records(settings, 1)
    steps = steps_of(row)
    assert "/ closed" in steps[0] and "greeting closed" in steps[0], steps
    assert steps[-1] == "outcome: voicemail: voicemail general"
    assert not [e for e in anna.seen if e.get("event") == "incoming"]
    conn = sqlite3.connect(settings.db_path)
    assert conn.execute("SELECT reason FROM missed_calls").fetchall() == [("after_hours",)]
    assert conn.execute("SELECT box_key FROM voicemail_messages").fetchall() == [("general",)]
    # Anna's message-waiting lamp: her phone subscribed? The box counts it for her.
    assert conn.execute("SELECT count(*) FROM voicemail_messages WHERE is_read = 0"
                        ).fetchone() == (1,)


def test_e_on_a_holiday_the_duty_managers_mobile_over_a_second_sim(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path) -> None:
    today = datetime.now(ZoneInfo("Europe/Moscow")).date().isoformat()
    duty = FakeModem("simcom-7600", imei=IMEI2, links_dir=tmp_path / "by-path")
    duty.start()
    try:
        duty.script_number(DUTY_MOBILE, answer_after=0.5)
        duty.audio.tone(900, dbfs=-12)  # the duty manager speaks 900 Hz
        write_prompts(settings)
        start_box(office(OPEN_ALWAYS.replace(
            "sun: [\"00:00-24:00\"]}", "sun: [\"00:00-24:00\"]}\n    holidays: [ours]")
            + f"""
holiday_sets:
  - {{key: ours, dates: [{{date: "{today}", name: Test day}}]}}
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: main}}]
flows:
  - key: main
    schedule: office
    branches:
      - {{when: holiday, to: {{chain: duty}}}}
      - {{when: open, to: {{employee: "101"}}}}
      - {{when: closed, to: {{employee: "101"}}}}
forwarding_chains:
  - key: duty
    steps: [{{to: {{external: "{DUTY_MOBILE}", line: sim2}}, timeout: 25}}]
    final: {{voicemail: general}}
voicemail_boxes:
  - {{key: general, name: General}}
outbound_routes:
  - {{key: mobiles, pattern: "+79XXXXXXXXX", route_class: mobile, lines: [sim2]}}
""", extra_lines=f"  - {{key: sim2, kind: sim, imei: \"{IMEI2}\"}}\n"))
        lines_ready(settings, ("sim1", "sim2"))
        modem.audio.tone(600, dbfs=-12)
        idx = modem.ring(CUSTOMER)
        wait_heard(modem, 900, timeout=20)  # the caller talks with the duty manager
        [out] = duty.calls()
        assert out.number == DUTY_MOBILE
        duty.audio.captured(clear=True)
        assert duty.audio.wait_captured(RATE * 2, 10)
        assert tone_presence(caller_heard(duty, 1.0), RATE, 600) > 0.8
        modem.remote_hangup(idx)
        [row] = wait_records(settings, 1)
    finally:
        duty.stop()
    steps = steps_of(row)
    assert "/ holiday" in steps[0] and "chain duty" in steps[0], steps
    assert steps[-1] == f"outcome: answered: answered by {DUTY_MOBILE}", steps
    assert f"line:sim2/{DUTY_MOBILE}" in row["route"]["rang"]


def test_f_repeat_caller_reaches_their_manager_unless_busy_director_not_sticky(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    write_prompts(settings)
    start_box(office(f"""
numbers: [{{number: "{SIM1_NUMBER}", line: sim1, flow: main}}]
departments:
  - {{key: sales, name: Sales, strategy: all_at_once, members: ["101", "102", "105"]}}
flows:
  - {{key: main, branches: [{{to: {{department: sales}}}}]}}
repeat_caller:
  enabled: true
  sources: [call_history]
  exceptions: ["105"]
  answer_timeout: 10
"""))
    ring = {ext: phones.add(ext, "--answer-code", "180", "--tone", "1000")
            for ext in ("101", "102", "105")}
    vera = phones.add("103")
    lines_ready(settings)
    counts = {ext: 0 for ext in ring}
    finished: list[int] = []

    def call(caller: str, answers: str, expect: set[str]) -> None:
        """A GSM call from caller; the phones in `expect` ring, `answers` takes it."""
        idx = modem.ring(caller)
        events = {}
        for ext in expect:
            events[ext] = incoming(ring[ext], counts[ext])
            counts[ext] += 1
        ring[answers].send(cmd="answer", id=events[answers]["id"])
        ring[answers].wait(state(events[answers]["id"], "CONFIRMED"))
        modem.remote_hangup(idx)
        ring[answers].wait(state(events[answers]["id"], "DISCONNECTED"))
        finished.append(idx)
        wait_records(settings, len(finished))  # the next lookup sees this call
        for ext in set(ring) - expect:
            assert sum(e.get("event") == "incoming" for e in ring[ext].seen) == counts[ext]

    call(CUSTOMER, "102", {"101", "102", "105"})  # first time: the whole department
    call(CUSTOMER, "102", {"102"})  # again: straight to Boris
    # Boris is on another call: the customer goes back to the department (not to Boris).
    busy = ring["102"].call(f"sip:103@127.0.0.1:{settings.sip_port}")
    ring["102"].wait(state(busy, "CONFIRMED"))
    vera.wait(lambda e: e.get("state") == "CONFIRMED")
    call(CUSTOMER, "101", {"101", "105"})
    ring["102"].send(cmd="hangup", id=busy)
    ring["102"].wait(state(busy, "DISCONNECTED"))
    finished.append(busy)
    wait_records(settings, len(finished))  # Boris is free again as far as the box knows
    # The director answered another client once: that client is not made his.
    other = "+79165554433"
    call(other, "105", {"101", "102", "105"})
    call(other, "101", {"101", "102", "105"})

    rows = [r for r in wait_records(settings, 6) if r["direction"] == "inbound"]
    first, again, busy_row, _director, not_sticky = (steps_of(r) for r in rows)
    assert not any("repeat caller: call_history" in s for s in first), first
    assert "repeat caller: call_history says 102" in again[0], again
    assert again[-1] == "outcome: answered: answered by 102"
    assert "manager 102: busy; back to the flow" in busy_row[0], busy_row
    assert busy_row[-1] == "outcome: answered: answered by 101"
    assert not any("says 105" in s for s in not_sticky), not_sticky


def test_h_a_silent_desk_phone_brings_in_the_mobile_which_must_press_1(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    employees = EMPLOYEES.replace(
        f'mobiles: ["{ANNA_MOBILE}"], ring_mobile_after: never,',
        f'mobiles: ["{ANNA_MOBILE}"], ring_mobile_after: 5, confirm_mobile: true,')
    write_prompts(settings)
    start_box(office("""
departments:
  - {key: sales, name: Sales, extension: "500", strategy: all_at_once, members: ["101"],
     timeout: 30}
outbound_routes:
  - {key: mobiles, pattern: "+79XXXXXXXXX", route_class: mobile, lines: [sim1]}
""", employees=employees))
    anna = phones.add("101", "--answer-code", "180")
    gleb = phones.add("104", "--tone", "1000")
    lines_ready(settings)
    modem.script_number(ANNA_MOBILE, answer_after=None)
    modem.audio.tone(600, dbfs=-12)
    cid = gleb.call(f"sip:500@127.0.0.1:{settings.sip_port}")
    desk = incoming(anna)
    deadline = time.monotonic() + 10
    while not modem.calls():
        assert time.monotonic() < deadline, "the mobile was never dialled"
        time.sleep(0.02)
    joined = time.monotonic() - desk["t"]
    assert abs(joined - 5.0) <= 0.5, joined
    [mobile] = modem.calls()
    assert mobile.number == ANNA_MOBILE
    modem.audio.captured(clear=True)
    modem.remote_answer(mobile.idx)
    time.sleep(1.0)  # the box asks the mobile to press 1; nothing is bridged yet
    assert tone_presence(caller_heard(modem, 0.8), RATE, 1000) < 0.2
    modem.remote_dtmf(mobile.idx, "1")
    gleb.wait(state(cid, "CONFIRMED"))
    anna.wait(state(desk["id"], "DISCONNECTED"))  # the desk phone stops ringing
    modem.audio.captured(clear=True)
    assert modem.audio.wait_captured(RATE * 2, 10)
    assert tone_presence(caller_heard(modem, 1.0), RATE, 1000) > 0.8  # Gleb is heard
    gleb.send(cmd="hangup", id=cid)
    gleb.wait(state(cid, "DISCONNECTED"))
    [row] = wait_records(settings, 1)
    assert steps_of(row)[-1] == "outcome: answered: answered by 101", steps_of(row)
    assert f"line:sim1/{ANNA_MOBILE}" in row["route"]["rang"]


def test_a_greeting_recorded_from_a_phone_is_what_callers_hear(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        phones: Phones) -> None:
    """Anna dials *96 and records her greeting (her phone 'says' 1300 Hz, '#' ends it);
    the next caller sent to her mailbox hears it, then the tone."""
    write_prompts(settings)
    start_box(office("""
voicemail_boxes:
  - {key: anna, name: Anna, owner: "101", extension: "555"}
"""))
    anna = phones.add("101", "--tone", "1300")
    gleb = phones.add("104", "--tone", "400")
    cid = anna.call(f"sip:*96@127.0.0.1:{settings.sip_port}")
    anna.wait(state(cid, "CONFIRMED"))
    builtin = Path(__file__).parent.parent / "share" / "prompts" / "en"
    instructions = sum(wav_seconds_of(builtin / f"{k}.wav")
                       for k in ("vm-record-greeting", "voicemail-beep"))
    time.sleep(instructions + 2.5)  # the instructions and the tone, then the greeting
    anna.send(cmd="dtmf", id=cid, digits="#")
    anna.wait(state(cid, "DISCONNECTED"), timeout=30)
    conn = sqlite3.connect(settings.db_path)
    [(key, seconds)] = conn.execute(
        "SELECT p.key, p.duration_s FROM voicemail_boxes b JOIN prompts p"
        " ON p.id = b.greeting_prompt_id WHERE b.key = 'anna'").fetchall()
    assert key == "greeting-anna" and seconds >= 1.0
    call = gleb.call(f"sip:555@127.0.0.1:{settings.sip_port}", record=True)
    gleb.wait(state(call, "CONFIRMED"))
    time.sleep(seconds + 1.0)
    gleb.send(cmd="hangup", id=call)
    gleb.wait(state(call, "DISCONNECTED"))
    [recorded] = list((phones.tmp_path / "rec-104").glob("*.wav"))
    heard = wav_samples(recorded)
    assert tone_presence(heard, RATE, 1300) > 0.3, "the new greeting was not played"
