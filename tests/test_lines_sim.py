"""SIM lines on the modem simulator over real ptys: start-up, calls, DTMF, faults, recovery."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.lines.base import (
    DtmfReceived,
    IncomingCall,
    LineAlert,
    LineCallState,
    LineState,
    LineStateChanged,
    Outcome,
)
from tests.support.lines import line_rig

pytestmark = pytest.mark.timeout(60)
PROFILES = ["quectel-ec25", "simcom-7600", "huawei-e1550"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_boot_to_ready_with_health(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        line = await rig.ready()
        health = line.health()
        assert health["state"] == "ready"
        assert health["imei"] == "860000000000001"
        assert health["imsi"] == "250990000000001"
        assert health["iccid"] == "8970199000000000001"
        assert health["own_number"] == "+79000000001"
        assert health["sim"] == "READY"
        assert health["registration"] == "home"
        assert health["operator"] == "SimNet"
        assert isinstance(health["signal"], int)
        assert health["modem"]["profile"] == profile
        states = [e.new for e in rig.of(LineStateChanged)]
        assert states[:1] == [LineState.STARTING] and states[-1] is LineState.READY
        # The web UI (another process) reads the state from the database.
        await rig.until(lambda: rig.db.read().execute(
            "SELECT state, state_detail FROM lines WHERE key = 'sim1'").fetchone()
            == ("up", "registered"), what="state in the database")


@pytest.mark.parametrize("profile", PROFILES)
async def test_incoming_call_caller_answer_remote_hangup(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        # +CLIP comes 0.3 s after RING: the call is announced only with the number.
        idx = await sim.a_ring("+79001234567", clip_delay=0.3)
        incoming = await rig.until(lambda: rig.of(IncomingCall), what="IncomingCall")
        call = incoming[0].call
        assert incoming[0].caller == "+79001234567" and incoming[0].line == "sim1"
        assert call.state is LineCallState.RINGING and line.state is LineState.IN_CALL
        await call.answer()
        assert call.state is LineCallState.ACTIVE
        assert call.audio_device == sim.audio_path
        # The profile's PCM arming happened: the simulator only sends audio when armed.
        assert await sim.a_wait_flowing(True, timeout=5)
        await sim.a_remote_hangup(idx)
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.NORMAL and call.sip_code == 200
        await rig.until(lambda: line.state is LineState.READY, what="READY after the call")


@pytest.mark.parametrize("profile", ["quectel-ec25", "huawei-e1550"])
async def test_incoming_caller_from_clcc_when_clip_is_late(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        since = sim.now()
        # +CLIP 2.5 s after RING: later than the line waits, so +CLCC tells the number.
        await sim.a_ring("+79007654321", clip_delay=2.5)
        incoming = await rig.until(lambda: rig.of(IncomingCall), what="IncomingCall")
        assert incoming[0].caller == "+79007654321"
        await sim.a_wait_for_command(r"^AT\+CLCC$", timeout=3, since=since)
        await incoming[0].call.hangup()
        assert incoming[0].call.ended


async def test_withheld_caller_and_caller_giving_up(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "simcom-7600"}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        idx = await sim.a_ring("+79001112233", clir=True)
        incoming = await rig.until(lambda: rig.of(IncomingCall), what="IncomingCall")
        assert incoming[0].caller is None
        await sim.a_remote_hangup(idx)
        call = incoming[0].call
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.CANCELLED
        await rig.until(lambda: line.state is LineState.READY, what="READY")


@pytest.mark.parametrize("profile", PROFILES)
async def test_dial_answer_dtmf_and_one_call_at_a_time(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await asyncio.to_thread(sim.script_number, "+79005550001", answer_after=None)
        call = await line.dial("+79005550001")
        await call.wait_state(LineCallState.ALERTING, timeout=5)
        assert call.state is LineCallState.ALERTING
        second = await line.dial("+79005550002")
        assert second.ended and second.outcome is Outcome.BUSY and second.sip_code == 486
        idx = sim.calls()[0].idx
        await sim.a_remote_answer(idx)
        await call.wait_state(LineCallState.ACTIVE, timeout=5)
        assert await sim.a_wait_flowing(True, timeout=5)
        await call.send_dtmf("12#")
        assert [d for _, d in sim.dtmf_sent] == ["1", "2", "#"]
        if profile != "huawei-e1550":  # the E1550 has no detector: in-band is the audio's job
            heard: list[object] = []
            call.events.subscribe(heard.append)
            await sim.a_remote_dtmf(idx, "58")
            await rig.until(lambda: len(rig.of(DtmfReceived)) >= 2, what="DTMF in")
            got = rig.of(DtmfReceived)
            assert [(e.digit, e.call_id) for e in got] == [("5", call.call_id),
                                                           ("8", call.call_id)]
            assert [e for e in heard if isinstance(e, DtmfReceived)] == got
        await call.hangup()
        assert call.outcome is Outcome.NORMAL
        await rig.until(lambda: not sim.calls() and line.state is LineState.READY,
                        what="call released at the modem")


@pytest.mark.parametrize("profile", PROFILES)
async def test_dial_busy(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await asyncio.to_thread(sim.script_number, "+79005550003", busy=True)
        call = await line.dial("+79005550003")
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.BUSY and call.sip_code == 486


@pytest.mark.parametrize("profile", PROFILES)
async def test_dial_no_answer(tmp_path: Path, profile: str) -> None:
    # time_scale 0.1: the network's 30 s no-answer timer runs in 3 s.
    async with line_rig(tmp_path, {"sim1": profile},
                        sim_args={"sim1": {"time_scale": 0.1}}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await asyncio.to_thread(sim.script_number, "+79005550004", no_answer=True)
        call = await line.dial("+79005550004")
        await call.wait_state(LineCallState.ENDED, timeout=10)
        assert call.outcome is Outcome.NO_ANSWER and call.sip_code == 480


async def test_network_drop_marks_line_down_and_dial_fails_over(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_drop_network()
        await rig.until(lambda: line.state is LineState.DOWN, what="DOWN")
        assert line.health()["registration"] == "searching"
        call = await line.dial("+79005550005")
        assert call.ended and call.outcome is Outcome.NO_NETWORK and call.sip_code == 503
        await sim.a_restore_network()
        await rig.ready()


async def test_network_drop_during_a_call_ends_it(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "huawei-e1550"}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        call = await line.dial("+79005550006")
        await call.wait_state(LineCallState.ACTIVE, timeout=5)
        await sim.a_drop_network()
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.NORMAL  # it had been answered: a normal end for SIP
        await rig.until(lambda: line.state is LineState.DOWN, what="DOWN")


async def test_wrong_pin_fails_after_one_try(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"},
                        sim_args={"sim1": {"pin": "1234"}},
                        columns={"sim1": {"sim_pin": "9999"}}) as rig:
        line = rig.line()
        await rig.until(lambda: line.state is LineState.FAILED, what="FAILED")
        alerts = rig.of(LineAlert)
        assert alerts and "PIN" in alerts[0].reason
        sim = rig.modems["sim1"]
        tries = [d for _, kind, d in sim.log if kind == "rx" and d.startswith(b'AT+CPIN="')]
        assert tries == [b'AT+CPIN="9999"']
        # A replug (new paths) brings the modem back, but the refused PIN is not tried again.
        await sim.a_unplug()
        await sim.a_replug()
        await rig.until(lambda: line.port is not None and line.port.at_path == sim.at_path,
                        what="re-attached")
        await rig.until(lambda: line.state is LineState.FAILED
                        and len(rig.of(LineAlert)) >= 2, what="FAILED again")
        tries = [d for _, kind, d in sim.log if kind == "rx" and d.startswith(b'AT+CPIN="')]
        assert tries == [b'AT+CPIN="9999"']


async def test_right_pin_unlocks(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "simcom-7600"},
                        sim_args={"sim1": {"pin": "1234"}},
                        columns={"sim1": {"sim_pin": "1234"}}) as rig:
        line = await rig.ready()
        assert line.health()["sim"] == "READY"


async def test_freeze_detected_reset_and_back(tmp_path: Path) -> None:
    from tests.support.lines import LineTimers

    # The production watchdog timings: the freeze must be caught within 15 s.
    timers = LineTimers(scan_s=0.3, clip_wait_s=1.0, backoff_base_s=0.5, backoff_cap_s=2.0,
                        balance_first_s=3600.0)
    async with line_rig(tmp_path, {"sim1": "huawei-e1550"}, timers=timers) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        old_path = sim.at_path
        frozen_at = time.monotonic()
        await sim.a_freeze()
        await rig.until(lambda: line.state is LineState.RESETTING, timeout=20, what="RESETTING")
        assert time.monotonic() - frozen_at < 15.0
        await rig.ready(timeout=20)
        assert sim.reboots == 1 and sim.at_path != old_path
        assert line.port is not None and line.port.imei == sim.imei
        assert line.health()["resets"] == 0


async def test_unplug_and_replug_on_new_paths(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25", "sim2": "simcom-7600"}) as rig:
        await rig.ready("sim1")
        line2 = await rig.ready("sim2")
        sim2 = rig.modems["sim2"]
        old = sim2.at_path
        await sim2.a_unplug()
        await rig.until(lambda: line2.state is LineState.DOWN, what="sim2 DOWN")
        assert rig.line("sim1").state is LineState.READY
        await sim2.a_replug()
        await rig.ready("sim2")
        assert sim2.at_path != old and line2.port is not None
        assert line2.port.at_path == sim2.at_path and line2.port.imei == sim2.imei


@pytest.mark.parametrize("profile", ["quectel-ec25", "simcom-7600"])
async def test_a_waiting_second_call_leaves_the_first_alone(tmp_path: Path,
                                                            profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        call = await line.dial("+79005550040")
        await call.wait_state(LineCallState.ACTIVE, timeout=5)
        waiting = await sim.a_ring("+79001119999")
        since = sim.now()
        await sim.a_remote_hangup(waiting)  # its NO CARRIER must not end our call
        # A +CLCC sent well after the end grace: the report has been judged by then.
        await sim.a_wait_for_command(r"^AT\+CLCC$", timeout=5, since=since + 1.5)
        assert call.state is LineCallState.ACTIVE and not rig.of(IncomingCall)
        assert call.index == sim.calls()[0].idx
        await call.hangup()
        assert call.outcome is Outcome.NORMAL


async def test_hung_modem_that_cannot_be_reset_fails_then_comes_back(tmp_path: Path) -> None:
    from dataclasses import replace

    from appliance.lines.context import no_usb_reset
    from tests.support.lines import FAST

    async with line_rig(tmp_path, {"sim1": "quectel-ec25"},
                        timers=replace(FAST, reset_wait_s=4.0)) as rig:
        line = await rig.ready()
        rig.manager.ctx.usb_reset = no_usb_reset  # no power switch: CFUN is all there is
        sim = rig.modems["sim1"]
        await sim.a_freeze()
        await rig.until(lambda: line.state is LineState.RESETTING, timeout=20,
                        what="RESETTING")
        await rig.until(lambda: line.state is LineState.FAILED, timeout=20, what="FAILED")
        assert any("did not come back" in a.reason for a in rig.of(LineAlert))
        assert sim.reboots == 0
        # Someone power-cycles it by hand: discovery keeps probing, and the line is back.
        await sim.a_unfreeze()
        await rig.ready(timeout=20)


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_withheld_call_hides_the_sims_number(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await asyncio.to_thread(sim.script_number, "+79005550060", answer_after=None)
        call = await line.dial("+79005550060", withhold=True)
        await call.wait_state(LineCallState.ALERTING, timeout=5)
        [out] = sim.calls()
        assert out.clir and out.number == "+79005550060"  # sent as ATD+79005550060I;
        await call.hangup()
        await rig.until(lambda: not sim.calls(), what="call released")
        await asyncio.to_thread(sim.script_number, "+79005550061", answer_after=None)
        shown = await line.dial("+79005550061")
        await call.wait_state(LineCallState.ENDED, timeout=5)
        await shown.wait_state(LineCallState.ALERTING, timeout=5)
        assert not sim.calls()[0].clir
        await shown.hangup()


def test_line_uris_carry_the_withheld_flag() -> None:
    from appliance.lines.legs import parse_target, target

    assert parse_target(target("sim1", "+79161234567")) == ("sim1", "+79161234567", False)
    uri = target("sim1", "+79161234567", withheld=True)
    assert uri == "line:sim1/+79161234567;withheld"
    assert parse_target(uri) == ("sim1", "+79161234567", True)
    for bad in ("sip:x@y", "line:sim1", "line:/+7916", "line:sim1/;withheld"):
        with pytest.raises(ValueError):
            parse_target(bad)
