"""Calls on the modem simulator: ringing, dialling scripts, per-family URCs, CLCC, DTMF."""

from __future__ import annotations

import array
import os
from typing import Any

import pytest

from tests.support.atclient import open_audio, read_audio, sim_session
from tests.support.tones import goertzel_power

pytestmark = pytest.mark.timeout(30)

PROFILES = ["huawei-e1550", "quectel-ec25", "simcom-7600"]
ARM = {"huawei-e1550": "AT^DDSETEX=2", "quectel-ec25": "AT+QPCMV=1,0",
       "simcom-7600": "AT+CPCMREG=1"}


def test_incoming_ring_with_late_clip() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        assert at.command("AT+CLIP=1") == ["OK"]
        since = sim.now()
        idx = sim.ring("+79001234567", clip_delay=2.0)
        assert idx == 1
        assert at.wait_line("RING") == "RING"
        clip = at.wait_line(r"^\+CLIP")
        assert clip == '+CLIP: "+79001234567",145,,,,0'
        # RING and +CLIP are separate writes, clip_delay (scaled: 40 ms) apart.
        urcs = [e for e in sim.log if e.kind == "urc" and e.t >= since]
        ring_t = next(e.t for e in urcs if e.data == b"\r\nRING\r\n")
        clip_t = next(e.t for e in urcs if e.data.startswith(b"\r\n+CLIP"))
        assert clip_t - ring_t >= 0.03
        # RING repeats every 3 s (60 ms here), each followed by +CLIP.
        assert at.wait_line("RING") == "RING"
        assert at.command("AT+CLCC") == ['+CLCC: 1,1,4,0,0,"+79001234567",145', "OK"]


def test_crc_and_clir() -> None:
    with sim_session("simcom-7600") as (sim, at):
        assert at.command("AT+CRC=1;+CLIP=1") == ["OK"]
        sim.ring("+79001234567", clir=True)
        assert at.wait_line("RING") == "+CRING: VOICE"
        assert at.wait_line(r"^\+CLIP") == '+CLIP: "",128'
        assert at.command("AT+CLCC")[0] == '+CLCC: 1,1,4,0,0,"",128'


def test_clip_off_by_default() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.ring()
        lines = at.lines_for(0.15)
        assert "RING" in lines and not any(line.startswith("+CLIP") for line in lines)


@pytest.mark.parametrize("profile", PROFILES)
def test_missed_call(profile: str) -> None:
    with sim_session(profile) as (sim, at):
        if profile == "quectel-ec25":
            at.command('AT+QINDCFG="ccinfo",1,0')
        sim.ring("+79001234567")
        at.wait_line("RING")
        # Missed after 30 s (0.6 s here).
        expected = {"huawei-e1550": r"^\^CEND:1,0,104,19$",
                    "quectel-ec25": r'^\+QIND: "ccinfo",1,1,-1,0,0,"\+79001234567",145$',
                    "simcom-7600": r"^MISSED_CALL: \d\d:\d\d \+79001234567$"}[profile]
        at.wait_line(expected, timeout=3)
        at.wait_line("^NO CARRIER$")
        assert sim.calls() == []


@pytest.mark.parametrize("profile", PROFILES)
def test_answer_and_remote_hangup(profile: str) -> None:
    with sim_session(profile) as (sim, at):
        if profile == "quectel-ec25":
            assert at.command('AT+QINDCFG="ccinfo",1,0') == ["OK"]
        idx = sim.ring("+79001234567")
        at.wait_line("RING")
        assert at.command("ATA") == ["OK"]
        connect = {"huawei-e1550": "^CONN:1,0",
                   "quectel-ec25": '+QIND: "ccinfo",1,1,0,0,0,"+79001234567",145',
                   "simcom-7600": "VOICE CALL: BEGIN"}[profile]
        assert at.wait_line(r"CONN|ccinfo\",1,1,0|BEGIN") == connect
        assert at.command("AT+CLCC") == ['+CLCC: 1,1,0,0,0,"+79001234567",145', "OK"]
        sim.remote_hangup(idx, cause=16)
        end = {"huawei-e1550": r"^\^CEND:1,\d+,104,16$",
               "quectel-ec25": r'^\+QIND: "ccinfo",1,1,-1,',
               "simcom-7600": r"^VOICE CALL: END: \d{6}$"}[profile]
        at.wait_line(end)
        at.wait_line("^NO CARRIER$")
        assert at.command("AT+CLCC") == ["OK"]


def test_quectel_dsci_urcs() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        assert at.command("AT^DSCI=1") == ["OK"]
        sim.script_number("+79005550000", answer_after=0.5)
        assert at.command("ATD+79005550000;") == ["OK"]
        assert at.wait_line("DSCI") == "^DSCI: 1,0,2,0,+79005550000,145,0"
        assert at.wait_line("DSCI") == "^DSCI: 1,0,7,0,+79005550000,145,0"
        assert at.wait_line("DSCI") == "^DSCI: 1,0,3,0,+79005550000,145,0"
        assert at.command("AT+QHUP=16,1") == ["OK"]
        assert at.wait_line("DSCI") == "^DSCI: 1,0,6,0,+79005550000,145,0"


@pytest.mark.parametrize("profile", PROFILES)
def test_dial_answered_then_hangup_after(profile: str) -> None:
    with sim_session(profile) as (sim, at):
        if profile == "quectel-ec25":
            at.command('AT+QINDCFG="ccinfo",1,0')
        if profile == "simcom-7600":
            at.command("AT+CLCC=1")
        sim.script_number("89001112233", answer_after=1.0, hangup_after=2.0)
        assert at.command("ATD89001112233;") == ["OK"]
        states = {
            "huawei-e1550": ["^ORIG:1,0", "^CONF:1", "^CONN:1,0"],
            "quectel-ec25": [f'+QIND: "ccinfo",1,0,{s},0,0,"89001112233",129' for s in (2, 3, 0)],
            "simcom-7600": [f'+CLCC: 1,0,{s},0,0,"89001112233",129' for s in (2, 3, 0)],
        }[profile]
        for line in states:
            assert at.wait_line(r"ORIG|CONF|CONN|ccinfo|CLCC") == line
        assert at.command("AT+CLCC")[0] == '+CLCC: 1,0,0,0,0,"89001112233",129'
        at.wait_line("^NO CARRIER$", timeout=3)
        assert sim.calls() == []


@pytest.mark.parametrize(("script", "result", "cause"), [
    ({"busy": True}, "BUSY", 17),
    ({"no_answer": True}, "NO ANSWER", 19),
    ({"fail_cause": 1}, "NO CARRIER", 1),
])
def test_dial_scripts_huawei(script: dict[str, Any], result: str, cause: int) -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.script_number("+79009998877", **script)
        assert at.command("ATD+79009998877;") == ["OK"]
        assert at.wait_line("ORIG") == "^ORIG:1,0"
        assert at.wait_line(r"^\^CEND", timeout=3) == f"^CEND:1,0,104,{cause}"
        assert at.wait_line(f"^{result}$") == result


def test_dial_without_network_or_sim() -> None:
    with sim_session("simcom-7600", pin="1111") as (sim, at):
        assert at.command("AT+CMEE=1") == ["OK"]
        assert at.command("ATD+79001234567;") == ["+CME ERROR: 11"]
        assert at.command('AT+CPIN="1111"') == ["OK"]
        sim.drop_network()
        assert at.command("ATD+79001234567;") == ["NO CARRIER"]
        # A data call is not simulated; a second voice call while one is up is refused.
        sim.restore_network()
        assert at.command("ATD12345") == ["NO CARRIER"]
        sim.script_number("12345", answer_after=0.1)
        assert at.command("ATD12345;") == ["OK"]
        assert at.command("ATD12346;") == ["+CME ERROR: 3"]


def test_network_drop_ends_active_call() -> None:
    for profile, end in (("huawei-e1550", r"^\^CEND:1,\d+,104,41$"),
                         ("quectel-ec25", r'^\+QIND: "ccinfo",1,0,-1,'),
                         ("simcom-7600", r"^VOICE CALL: END")):
        with sim_session(profile) as (sim, at):
            if profile == "quectel-ec25":
                assert at.command('AT+QINDCFG="ccinfo",1,0') == ["OK"]
            sim.script_number("100", answer_after=0.1)
            assert at.command("ATD100;") == ["OK"]
            at.wait_line(r'CONN|BEGIN|ccinfo",1,0,0')
            sim.drop_network()
            at.wait_line(end)
            at.wait_line("^NO CARRIER$")
            assert sim.calls() == []


def test_clcc_truth_with_hold_and_waiting() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        assert at.command("AT+CCWA=1") == ["OK"]
        sim.script_number("+79001110000", answer_after=0.1)
        assert at.command("ATD+79001110000;") == ["OK"]
        at.wait_line("CONN")
        sim.ring("+79002220000")
        assert at.wait_line("CCWA") == '+CCWA: "+79002220000",145,1'
        assert at.command("AT+CLCC") == ['+CLCC: 1,0,0,0,0,"+79001110000",145',
                                         '+CLCC: 2,1,5,0,0,"+79002220000",145', "OK"]
        assert at.command("AT+CHLD=2") == ["OK"]
        at.drain()
        assert at.command("AT+CLCC") == ['+CLCC: 1,0,1,0,0,"+79001110000",145',
                                         '+CLCC: 2,1,0,0,0,"+79002220000",145', "OK"]
        assert at.command("AT+CHLD=12") == ["OK"]
        assert at.wait_line("CEND").startswith("^CEND:2,")
        assert at.command("AT+CHLD=21") == ["OK"]
        at.drain()
        assert at.command("AT+CLCC") == ['+CLCC: 1,0,0,0,0,"+79001110000",145', "OK"]
        assert [(c.idx, c.stat) for c in sim.calls()] == [(1, 0)]
        assert at.command("AT+CHUP") == ["OK"]
        assert at.wait_line("CEND").startswith("^CEND:1,")


@pytest.mark.parametrize("profile", PROFILES)
def test_dtmf_out_recorded(profile: str) -> None:
    with sim_session(profile) as (sim, at):
        idx = sim.ring()
        at.wait_line("RING")
        # No connected call yet: not allowed (quectel reports errors as +CME ERROR by default).
        no_call = "+CME ERROR: 3" if profile == "quectel-ec25" else "ERROR"
        assert at.command("AT+VTS=1") == [no_call]
        assert at.command("ATA") == ["OK"]
        if profile == "huawei-e1550":
            assert at.command("AT^DTMF=1,5;^DTMF=1,#") == ["OK"]
            assert at.command("AT^DTMF=1,A") == ["ERROR"]
            assert at.command("AT^DTMF=2,1") == ["ERROR"]
            assert sim.dtmf_sent == [(idx, "5"), (idx, "#")]
        else:
            assert at.command('AT+VTD=2;+VTS="5";+VTS=A') == ["OK"]
            assert sim.dtmf_sent == [(idx, "5"), (idx, "A")]


def _tone_energy(pcm: bytes, freqs: tuple[int, int]) -> tuple[float, float]:
    samples = array.array("h")
    samples.frombytes(pcm[:len(pcm) - len(pcm) % 2])
    floats = [s / 32768 for s in samples]
    return (goertzel_power(floats, 8000, freqs[0]), goertzel_power(floats, 8000, freqs[1]))


@pytest.mark.parametrize(("profile", "enable", "urc"), [
    ("huawei-e1550", None, None),
    ("quectel-ec25", "AT+QTONEDET=1", "+QTONEDET: 53"),
    ("simcom-7600", "AT+DDET=1", "+RXDTMF: 5"),
])
def test_remote_dtmf_in_band_and_urc(profile: str, enable: str | None, urc: str | None) -> None:
    with sim_session(profile) as (sim, at):
        assert sim.audio_path is not None
        fd = open_audio(sim.audio_path)
        try:
            if enable:
                assert at.command(enable) == ["OK"]
            idx = sim.ring()
            at.wait_line("RING")
            assert at.command("ATA") == ["OK"]
            assert at.command(ARM[profile]) == ["OK"]
            assert sim.audio.wait_flowing(timeout=2)
            read_audio(fd, 0.1)  # let the path settle
            sim.remote_dtmf(idx, "5")
            pcm = b"".join(data for _t, data in read_audio(fd, 0.3))
            # Find the 70 ms burst: digit 5 is 770 + 1336 Hz, and 697 Hz (row of 1) is absent.
            frames = [pcm[i:i + 320] for i in range(0, len(pcm) - 319, 320)]
            loud = [f for f in frames if max(_tone_energy(f, (770, 1336))) > 1e-3]
            assert 2 <= len(loud) <= 5
            low, high = _tone_energy(b"".join(loud), (770, 1336))
            other, _ = _tone_energy(b"".join(loud), (697, 1209))
            assert low > 20 * other and high > 20 * other
            if urc:
                assert at.wait_line(r"TONEDET|RXDTMF") == urc
            else:
                assert not [ln for ln in at.drain() if "DTMF" in ln or "TONEDET" in ln]
        finally:
            os.close(fd)


@pytest.mark.parametrize(("profile", "quote"), [
    ("quectel-ec25", '"'), ("simcom-7600", ""), ("huawei-e1550", "")])
def test_ceer_reports_the_last_release(profile: str, quote: str) -> None:
    with sim_session(profile) as (sim, at):
        # Nothing has ended since power-up.
        assert at.command("AT+CEER") == [
            f"+CEER: {quote}No cause information available{quote}", "OK"]
        assert at.command("AT+CEER=?") == ["OK"]
        sim.script_number("+79009998877", fail_cause=34)
        assert at.command("ATD+79009998877;") == ["OK"]
        at.wait_line("^NO CARRIER$", timeout=3)
        assert at.command("AT+CEER") == [
            f"+CEER: {quote}No circuit/channel available{quote}", "OK"]
        sim.script_number("+79009998866", busy=True)
        assert at.command("ATD+79009998866;") == ["OK"]
        at.wait_line("^BUSY$", timeout=3)
        assert at.command("AT+CEER") == [f"+CEER: {quote}User busy{quote}", "OK"]


def test_ceer_quectel_numeric_form_and_a_released_call() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        sim.ceer_numeric()
        assert at.command("AT+CEER") == ['+CEER: "No report available"', "OK"]
        sim.script_number("+79009998877", fail_cause=42)
        assert at.command("ATD+79009998877;") == ["OK"]
        at.wait_line("^NO CARRIER$", timeout=3)
        assert at.command("AT+CEER") == [
            '+CEER: "CC setup error",42,"Switching equipment congestion"', "OK"]
        sim.script_number("100", answer_after=None)
        assert at.command("ATD100;") == ["OK"]
        sim.remote_answer(sim.calls()[0].idx)
        assert at.command("AT+CHUP") == ["OK"]
        assert at.command("AT+CEER") == [
            '+CEER: "CC release",16,"Normal call clearing"', "OK"]


def test_ceer_unsupported_by_the_firmware() -> None:
    with sim_session("simcom-7600") as (sim, at):
        sim.unsupported("+CEER")
        assert at.command("AT+CEER") == ["ERROR"]
        sim.unsupported("+CEER", on=False)
        assert at.command("AT+CEER")[-1] == "OK"
