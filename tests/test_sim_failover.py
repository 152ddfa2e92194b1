"""Outbound failover between two real SIM lines: `pbx run` with two simulated modems (a
Huawei or a Quectel first, a SIMCom second), a pjsua2 desk phone dialling a mobile number.

The first line fails the call (the network has no circuit, cause 34): the Huawei says so in
its ^CEND, the Quectel says only NO CARRIER and the line asks AT+CEER for the cause. Either
way the dial ends as 503 and the box dials the same number on the second line, where the
call goes through with audio. Then the first SIM loses the network: its line goes down and
the next call goes straight to the second line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.support.harness import EngineProcess, pbx
from tests.support.scenarios import (
    RATE,
    Phones,
    caller_heard,
    lines_ready,
    office,
    state,
    wait_records,
)
from tests.support.tones import tone_presence

pytestmark = pytest.mark.timeout(180)

IMEI1 = "861234567890401"
IMEI2 = "861234567890402"
MOBILE = "+79161234567"
NO_CIRCUIT = 34  # 3GPP TS 24.008 cause: no circuit/channel available


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, modem_dir=tmp_path / "by-path")


@pytest.fixture(params=["huawei-e1550", "quectel-ec25"])
def modems(request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[tuple[FakeModem, FakeModem]]:
    first = FakeModem(request.param, imei=IMEI1, links_dir=tmp_path / "by-path").start()
    second = FakeModem("simcom-7600", imei=IMEI2, links_dir=tmp_path / "by-path").start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def line_state(settings: Settings, key: str) -> str:
    lines = json.loads(pbx(settings, "lines", "--json").stdout)
    return str(next(line for line in lines if line.get("key") == key).get("state"))


def test_a_failing_line_hands_the_call_to_the_next_and_a_line_down_is_skipped(
        start_box: Callable[..., EngineProcess], settings: Settings,
        modems: tuple[FakeModem, FakeModem], tmp_path: Path) -> None:
    sim1, sim2 = modems
    start_box(office("""
outbound_routes:
  - {key: mobiles, pattern: "+79XXXXXXXXX", route_class: mobile, lines: [sim1, sim2]}
""", imei=IMEI1, extra_lines=f"  - {{key: sim2, kind: sim, imei: \"{IMEI2}\"}}\n"))
    phones = Phones(settings, tmp_path)
    try:
        anna = phones.add("101", "--tone", "1000")
        lines_ready(settings, ("sim1", "sim2"))
        sim1.script_number(MOBILE, fail_cause=NO_CIRCUIT)
        sim2.script_number(MOBILE, answer_after=0.5)

        cid = anna.call(f"sip:89161234567@127.0.0.1:{settings.sip_port}")
        anna.wait(state(cid, "CONFIRMED"), timeout=30)
        [out] = sim2.calls()
        assert out.number == MOBILE
        sim2.audio.captured(clear=True)
        assert sim2.audio.wait_captured(RATE * 2, 10)
        assert tone_presence(caller_heard(sim2, 1.0), RATE, 1000) > 0.8  # Anna is heard
        anna.send(cmd="hangup", id=cid)
        anna.wait(state(cid, "DISCONNECTED"))
        [first] = wait_records(settings, 1)
        assert first["route"]["rang"] == [f"line:sim1/{MOBILE}", f"line:sim2/{MOBILE}"]
        assert first["disposition"] == "answered"
        # Only the modem without a cause in its own reports was asked for one.
        asked = [e for e in sim1.log if e.kind == "rx" and e.data.strip() == b"AT+CEER"]
        assert len(asked) == (0 if sim1.profile.family == "huawei" else 1)

        # The first SIM loses the network: its line is down, and not even tried.
        sim1.script_number(MOBILE, answer_after=0.5)
        sim1.drop_network()
        deadline = time.monotonic() + 30
        while line_state(settings, "sim1") == "ready":
            assert time.monotonic() < deadline, "sim1 never went down"
            time.sleep(0.3)
        cid = anna.call(f"sip:89161234567@127.0.0.1:{settings.sip_port}")
        anna.wait(state(cid, "CONFIRMED"), timeout=30)
        assert sim1.calls() == [] and [c.number for c in sim2.calls()] == [MOBILE]
        anna.send(cmd="hangup", id=cid)
        anna.wait(state(cid, "DISCONNECTED"))
        second = wait_records(settings, 2)[1]
        assert second["route"]["rang"] == [f"line:sim2/{MOBILE}"]
    finally:
        phones.close()
