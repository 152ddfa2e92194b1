"""The modem simulator's AT layer over its pty: identity, framing, errors, SIM and network."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import subprocess
import sys

import pytest

from hw.modemsim import FakeModem
from tests.support.atclient import FINALS, AtClient, sim_session

pytestmark = pytest.mark.timeout(30)

PROFILES = ["huawei-e1550", "quectel-ec25", "simcom-7600"]
IDENTITY = {
    "huawei-e1550": ("huawei", "E1550", "11.608.12.02.143"),
    "quectel-ec25": ("Quectel", "EC25", "EC25EFAR06A06M4G"),
    "simcom-7600": ("SIMCOM INCORPORATED", "SIMCOM_SIM7600G-H", "+CGMR: LE20B04SIM7600G22"),
}


@pytest.mark.parametrize("profile", PROFILES)
def test_boot_and_identity(profile: str) -> None:
    with sim_session(profile, imei="861234567890123", imsi="250991234567890",
                     iccid="8970199123456789012", own_number="+79005550001") as (sim, at):
        assert sim.at_path and sim.audio_path and sim.at_path != sim.audio_path
        for path in (sim.at_path, sim.audio_path):
            assert stat.S_ISCHR(os.stat(path).st_mode)
        assert os.readlink(sim.links_dir / "861234567890123-if02") == sim.at_path
        assert os.readlink(sim.links_dir / "861234567890123-if01") == sim.audio_path
        maker, model, revision = IDENTITY[profile]
        assert at.command("AT") == ["OK"]
        assert at.command("AT+CGMI") == [maker, "OK"]
        assert at.command("AT+CGMM") == [model, "OK"]
        assert at.command("AT+CGMR") == [revision, "OK"]
        assert at.command("AT+CGSN") == ["861234567890123", "OK"]
        assert at.command("AT+CIMI") == ["250991234567890", "OK"]
        assert at.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
        assert at.command("AT+CNUM") == ['+CNUM: "","+79005550001",145', "OK"]
        assert at.command("AT+CSCA?") == ['+CSCA: "+79000000000",145', "OK"]
        ati = at.command("ATI")
        assert ati[-1] == "OK" and any(model in line for line in ati)
        # The ICCID three ways: vendor command where there is one, and the SIM file.
        iccid = {"quectel-ec25": ("AT+QCCID", "+QCCID: 8970199123456789012"),
                 "simcom-7600": ("AT+CICCID", "+ICCID: 8970199123456789012")}.get(profile)
        if iccid:
            assert at.command(iccid[0]) == [iccid[1], "OK"]
        assert at.command("AT+CRSM=176,12258,0,0,10") == [
            '+CRSM: 144,0,"980791193254769810F2"', "OK"]


@pytest.mark.parametrize("profile", PROFILES)
def test_voice_capability_query(profile: str) -> None:
    query, answer = {
        "huawei-e1550": ("AT^CVOICE?", "^CVOICE:0,8000,16,20"),
        "quectel-ec25": ("AT+QPCMV?", "+QPCMV: 0"),
        "simcom-7600": ("AT+CPCMREG?", "+CPCMREG: 0"),
    }[profile]
    with sim_session(profile) as (_sim, at):
        assert at.command(query) == [answer, "OK"]


def test_echo_on_and_off() -> None:
    with sim_session("quectel-ec25", echo=True) as (sim, at):
        at.write(b"AT+CSQ\r")
        assert at.until_final() == ["AT+CSQ", "+CSQ: 20,99", "OK"]
        assert bytes(at.raw).startswith(b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
        assert at.command("ATE0") == ["ATE0", "OK"]
        assert at.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]
        # LF and empty lines are ignored; ATZ brings the echo back.
        at.write(b"\n\r\r\nAT\r")
        assert at.until_final() == ["OK"]
        assert at.command("ATZ") == ["OK"]
        assert at.command("AT") == ["AT", "OK"]
        assert sim.wait_for_command(r"^ATZ$", timeout=1) == "ATZ"


def test_semicolon_joined_commands() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        assert at.command("AT+CGMI;+CGMM;+CSQ") == ["Quectel", "EC25", "+CSQ: 20,99", "OK"]
        assert at.command("ATE0V1;+CMEE=2;+CMEE?") == ["+CMEE: 2", "OK"]
        # chan_quectel's re-arming dial: every part runs, the dial is the voice call.
        assert at.command("AT+QPCMV=0;+QPCMV=1,0;D123;") == ["OK"]
        assert [c.number for c in sim.calls()] == ["123"]
        assert at.command("AT+QPCMV?") == ["+QPCMV: 1,0", "OK"]
        # A failing part stops the line with its error.
        assert at.command("AT+CSQ;+NOPE;+CGMI") == ["+CSQ: 20,99", "+CME ERROR: unknown"]


@pytest.mark.parametrize(("profile", "cmee0", "cmee1", "cmee2"), [
    ("huawei-e1550", "COMMAND NOT SUPPORT", "COMMAND NOT SUPPORT", "COMMAND NOT SUPPORT"),
    ("quectel-ec25", "ERROR", "+CME ERROR: 100", "+CME ERROR: unknown"),
    ("simcom-7600", "ERROR", "+CME ERROR: 100", "+CME ERROR: unknown"),
])
def test_unknown_command_styles(profile: str, cmee0: str, cmee1: str, cmee2: str) -> None:
    with sim_session(profile) as (_sim, at):
        for level, expected in ((0, cmee0), (1, cmee1), (2, cmee2)):
            assert at.command(f"AT+CMEE={level}") == ["OK"]
            assert at.command("AT+XYZZY") == [expected]
        # Another family's command is unknown here too.
        foreign = "AT+QPCMV?" if profile != "quectel-ec25" else "AT^DDSETEX=2"
        assert at.command(foreign) == [cmee2]


def test_cmee_defaults_per_profile() -> None:
    for profile, default in (("huawei-e1550", 0), ("quectel-ec25", 1), ("simcom-7600", 0)):
        with sim_session(profile) as (_sim, at):
            assert at.command("AT+CMEE?") == [f"+CMEE: {default}", "OK"]


def test_non_at_lines_get_no_answer() -> None:
    with sim_session("simcom-7600") as (_sim, at):
        at.write(b"hello\r")
        assert at.command("AT") == ["OK"]


@pytest.mark.parametrize("profile", PROFILES)
def test_pin_flow_to_puk(profile: str) -> None:
    with sim_session(profile, pin="4321") as (sim, at):
        assert at.command("AT+CMEE=1") == ["OK"]
        assert at.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
        assert at.command("AT+CIMI") == ["+CME ERROR: 11"]
        assert at.command("AT+CREG?") == ["+CREG: 0,0", "OK"]
        assert at.command('AT+CPIN="0000"') == ["+CME ERROR: 16"]
        assert at.command('AT+CPIN="1111"') == ["+CME ERROR: 16"]
        tries = {"huawei-e1550": ("AT^CPIN?", "^CPIN: SIM PIN,1,10,1,10,3"),
                 "quectel-ec25": ("AT+QPINC?", '+QPINC: "SC",1,10'),
                 "simcom-7600": ("AT+SPIC", "+SPIC: 1,10,3,10")}[profile]
        assert at.command(tries[0])[0] == tries[1]
        assert at.command('AT+CPIN="2222"') == ["+CME ERROR: 16"]
        assert at.command("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
        assert at.command('AT+CPIN="4321"') == ["+CME ERROR: 12"]
        assert at.command("AT+CIMI") == ["+CME ERROR: 12"]
        assert at.command("AT+CMEE=0;+CIMI") == ["ERROR"]
        assert at.command('AT+CPIN="12345678","5678"') == ["OK"]
        assert at.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
        assert at.command("AT+CREG=1") == ["OK"]
        at.wait_line(r"^\+CREG: 1$")
        assert sim.registered


def test_correct_pin_registers() -> None:
    with sim_session("huawei-e1550", pin="1234") as (_sim, at):
        assert at.command("AT+CREG=2;+CMEE=1") == ["OK"]
        assert at.command('AT+CPIN="1234"') == ["OK"]
        assert at.wait_line(r"^\+CREG: ") == '+CREG: 2,"1A2B","01C0FFEE"'
        assert at.wait_line(r"^\+CREG: ") == '+CREG: 1,"1A2B","01C0FFEE"'
        assert at.command("AT+CIMI") == ["250990000000001", "OK"]


def test_sim_not_inserted() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        sim.set_sim("NOT INSERTED")
        assert at.wait_line(r"^\+CPIN: ") == "+CPIN: NOT INSERTED"
        assert at.command("AT+CPIN?") == ["+CME ERROR: 10"]
        assert at.command("AT+CIMI") == ["+CME ERROR: 10"]
        assert at.command("AT+QCCID") == ["+CME ERROR: 10"]
        assert at.command("AT+CMGL=4") == ["+CMS ERROR: 310"]
        assert not sim.registered


@pytest.mark.parametrize("profile", PROFILES)
def test_creg_csq_cops(profile: str) -> None:
    act = 2 if profile == "huawei-e1550" else 7
    with sim_session(profile, operator="Beeline") as (sim, at):
        assert at.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]
        assert at.command("AT+CREG?") == ["+CREG: 0,1", "OK"]
        assert at.command("AT+CREG=2") == ["OK"]
        assert at.command("AT+CREG?") == ['+CREG: 2,1,"1A2B","01C0FFEE"', "OK"]
        assert at.command("AT+COPS=3,0;+COPS?") == [f'+COPS: 0,0,"Beeline",{act}', "OK"]
        assert at.command("AT+COPS=3,2;+COPS?") == [f'+COPS: 0,2,"25099",{act}', "OK"]
        if profile == "huawei-e1550":
            assert at.command("AT+CEREG?") == ["COMMAND NOT SUPPORT"]
        else:
            assert at.command("AT+CEREG=2;+CEREG?") == [
                f'+CEREG: 2,1,"1A2B","01C0FFEE",{act}', "OK"]
        sim.set_signal(7)
        at.drain()  # huawei pushes ^RSSI at once
        assert at.command("AT+CSQ") == ["+CSQ: 7,99", "OK"]
        sim.drop_network()
        assert at.wait_line(r"^\+CREG: ") == '+CREG: 2,"1A2B","01C0FFEE"'
        at.drain()
        assert at.command("AT+CSQ") == ["+CSQ: 99,99", "OK"]
        assert at.command("AT+COPS?") == ["+COPS: 0", "OK"]
        sim.restore_network()
        assert at.wait_line(r"^\+CREG: ") == '+CREG: 1,"1A2B","01C0FFEE"'
        at.drain()
        assert at.command("AT+CSQ") == ["+CSQ: 7,99", "OK"]


@pytest.mark.parametrize(("profile", "enable", "urc"), [
    ("huawei-e1550", None, "^RSSI: 9"),
    ("quectel-ec25", 'AT+QINDCFG="csq",1,0', '+QIND: "csq",9,99'),
    ("simcom-7600", "AT+AUTOCSQ=1,1", "+CSQ: 9,99"),
])
def test_signal_pushed(profile: str, enable: str | None, urc: str) -> None:
    with sim_session(profile, quiet=False) as (sim, at):
        if enable:
            assert at.command(enable) == ["OK"]
        sim.set_signal(9)
        assert at.wait_line(r"RSSI|csq|CSQ") == urc
        # ... and again every 10 s (200 ms at this time scale).
        assert at.wait_line(r"RSSI|csq|CSQ", timeout=2) == urc


def test_creg_n1_urcs_and_cfun() -> None:
    with sim_session("simcom-7600") as (_sim, at):
        assert at.command("AT+CREG=1;+CFUN?") == ["+CFUN: 1", "OK"]
        assert at.command("AT+CFUN=4") == ["OK"]
        assert at.wait_line(r"^\+CREG") == "+CREG: 0"
        assert at.command("AT+CFUN=1") == ["OK"]
        assert at.wait_line(r"^\+CREG") == "+CREG: 2"
        assert at.wait_line(r"^\+CREG") == "+CREG: 1"


def test_response_delay_per_command() -> None:
    with sim_session("quectel-ec25", time_scale=1.0) as (sim, at):
        sim.set_response_delay(0.3, "+COPS")
        t0 = FakeModem.now()
        assert at.command("AT+COPS?")[-1] == "OK"
        assert FakeModem.now() - t0 >= 0.29
        t0 = FakeModem.now()
        assert at.command("AT+CSQ")[-1] == "OK"
        assert FakeModem.now() - t0 < 0.2


def test_log_records_both_directions() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        at.command("AT+CSQ")
        kinds = [(e.kind, e.data) for e in sim.log]
        assert ("rx", b"AT+CSQ") in kinds
        assert ("tx", b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n") in kinds


def test_client_sees_both_ports_raw() -> None:
    sim = FakeModem("simcom-7600", time_scale=0.02).start()
    try:
        assert sim.at_path is not None
        client = AtClient(str(sim.at_link))
        assert client.command("AT+CGSN") == ["AT+CGSN", "860000000000001", "OK"]
        client.close()
    finally:
        sim.stop()
    assert not sim.links_dir.exists() or not any(sim.links_dir.iterdir())


def test_runs_standalone() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hw.modemsim", "--profile", "simcom-7600"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("simcom-7600 IMEI 860000000000001")
        at_path = proc.stdout.readline().split()[1]
        client = AtClient(at_path)
        try:
            assert client.command("AT+CGMM") == ["AT+CGMM", "SIMCOM_SIM7600G-H", "OK"]
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0


async def test_coroutine_wrappers() -> None:
    sim = await FakeModem("huawei-e1550", time_scale=0.02).a_start()
    try:
        assert sim.at_path is not None
        client = AtClient(sim.at_path)
        client.write(b"ATE0;+CLIP=1\r")
        assert await sim.a_wait_for_command(r"CLIP=1") == "ATE0;+CLIP=1"
        idx = await sim.a_ring("+79001234567")
        await asyncio.to_thread(client.wait_line, r"^\+CLIP")
        client.write(b"ATA\r")
        await sim.a_wait_for_command(r"^ATA$")
        await sim.a_remote_hangup(idx)
        assert await asyncio.to_thread(client.wait_line, "^NO CARRIER$") == "NO CARRIER"
        await sim.a_unplug()
        await sim.a_replug()
        assert await sim.a_wait_plugged()
        client.close()
    finally:
        await sim.a_stop()


@pytest.mark.parametrize("profile", PROFILES)
def test_bad_input_never_kills_the_modem(profile: str, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(4475)
    with sim_session(profile) as (sim, at):
        for line in ("AT+CMGR=abc", "AT+CPIN=", "ATD;", "AT+CHLD=9", "AT+CUSD=1,\"open",
                     "AT+CMGS=0", "AT+VTS=", "AT^DTMF=x,y", "AT+QPCMV=7", "AT+CPMS=\"XX\"",
                     "AT+CNMI=a,b", "AT+CREG=5", "ATS7?", "AT&F", "AT+CSCS=\"KOI8\"",
                     "AT+CLCC=1;+CLCC?", "AT+COPS=9", "AT+CMGD=99", "AT+CMGL=9"):
            final = at.command(line)[-1]
            assert FINALS.match(final) and final != "> ", (line, final)
        at.command("ATE0")
        at.drain()
        for _ in range(200):
            at.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
        at.write(b"\x1a\x1b\rAT\r")
        # Whatever the noise did (a prompt, half a line), the modem answers again.
        assert "OK" in at.lines_for(0.5)
        assert at.command("AT+CSQ")[-2:] == ["+CSQ: 20,99", "OK"]
        assert sim.log[-1].kind == "tx"
    # Refusals are answers, not simulator bugs: nothing was logged as a failure.
    assert not [r for r in caplog.records if r.name.startswith("hw.modemsim")]
