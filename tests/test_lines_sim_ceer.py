"""Why a dial failed on modems that say only NO CARRIER: the SIM line asks AT+CEER and maps
the cause (34/38/41/42/47 -> 503 so the switchboard fails over), over real ptys."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.lines.base import LineCallState, Outcome, SmsReceived
from appliance.lines.simcall import CEER_TIMEOUT_S, Gone, wants_release_cause
from hw.modem.results import FinalKind
from hw.modemsim import FakeModem
from tests.support.lines import FAST, line_rig

pytestmark = pytest.mark.timeout(90)

# Cause -> (outcome, SIP code), one per class the issue names.
CAUSES = {
    34: (Outcome.NO_NETWORK, 503), 38: (Outcome.NO_NETWORK, 503),
    41: (Outcome.NO_NETWORK, 503), 42: (Outcome.NO_NETWORK, 503),
    47: (Outcome.NO_NETWORK, 503), 17: (Outcome.BUSY, 486), 18: (Outcome.NO_ANSWER, 480),
    19: (Outcome.NO_ANSWER, 480), 1: (Outcome.UNREACHABLE, 480),
    3: (Outcome.UNREACHABLE, 480), 28: (Outcome.UNREACHABLE, 480),
    21: (Outcome.REJECTED, 603),
}
# The simulator's network runs 5x fast: a refused dial fails 0.1 s after ATD.
FAST_NET = {"sim1": {"time_scale": 0.2}}


def ceer_count(sim: FakeModem) -> int:
    """How many AT+CEER the modem has been asked."""
    return sum(1 for _, kind, data in sim.log if kind == "rx" and data.strip() == b"AT+CEER")


def test_only_a_failed_outgoing_call_without_a_cause_asks() -> None:
    plain = Gone(1, FinalKind.NO_CARRIER)
    assert wants_release_cause(plain, was_active=False, outgoing=True, local=False)
    assert wants_release_cause(Gone(1), was_active=False, outgoing=True, local=False)
    assert not wants_release_cause(plain, was_active=True, outgoing=True, local=False)
    assert not wants_release_cause(plain, was_active=False, outgoing=False, local=False)
    assert not wants_release_cause(plain, was_active=False, outgoing=True, local=True)
    assert not wants_release_cause(Gone(1, FinalKind.NO_CARRIER, 34), was_active=False,
                                   outgoing=True, local=False)
    assert not wants_release_cause(Gone(1, FinalKind.BUSY), was_active=False, outgoing=True,
                                   local=False)


@pytest.mark.parametrize(("profile", "numeric"), [
    ("quectel-ec25", False), ("quectel-ec25", True), ("simcom-7600", False)])
async def test_every_cause_class_from_ceer(tmp_path: Path, profile: str, numeric: bool) -> None:
    async with line_rig(tmp_path, {"sim1": profile}, sim_args=FAST_NET) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        if numeric:
            await asyncio.to_thread(sim.ceer_numeric)
        for n, (cause, (outcome, code)) in enumerate(CAUSES.items()):
            number = f"+7900555{n:04d}"
            await asyncio.to_thread(sim.script_number, number, fail_cause=cause)
            asked = ceer_count(sim)
            call = await line.dial(number)
            await call.wait_state(LineCallState.ENDED, timeout=5)
            assert (cause, call.outcome, call.sip_code) == (cause, outcome, code)
            assert f"cause={cause}" in call.detail
            assert ceer_count(sim) == asked + 1
            await rig.until(lambda: line.call is None, what="line free")


async def test_huawei_cend_needs_no_ceer_and_answered_calls_never_ask(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "huawei-e1550"}, sim_args=FAST_NET) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await asyncio.to_thread(sim.script_number, "+79005550100", fail_cause=34)
        call = await line.dial("+79005550100")
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.NO_NETWORK and ceer_count(sim) == 0
    async with line_rig(tmp_path / "q", {"sim1": "quectel-ec25"}, sim_args=FAST_NET) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await asyncio.to_thread(sim.script_number, "+79005550101", answer_after=0.5,
                                hangup_after=0.5)
        call = await line.dial("+79005550101")
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.NORMAL and ceer_count(sim) == 0
        await asyncio.to_thread(sim.script_number, "+79005550102", answer_after=None)
        call = await line.dial("+79005550102")
        await call.wait_state(LineCallState.ALERTING, timeout=5)
        await call.hangup()  # we cancel: no cause to ask for
        assert call.outcome is Outcome.CANCELLED
        await asyncio.sleep(FAST.end_grace_s * 2)  # a late end task would ask by now
        assert ceer_count(sim) == 0


@pytest.mark.parametrize("fault", ["unsupported", "silent", "unknown cause"])
async def test_a_modem_that_cannot_tell_keeps_todays_outcome(tmp_path: Path,
                                                             fault: str) -> None:
    async with line_rig(tmp_path, {"sim1": "simcom-7600"}, sim_args=FAST_NET) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        if fault == "unsupported":
            await asyncio.to_thread(sim.unsupported, "+CEER")
        elif fault == "silent":
            # Answers long after the driver stopped waiting (modem seconds, 5x fast).
            await asyncio.to_thread(sim.set_response_delay, 15.0, "+CEER")
        else:
            await asyncio.to_thread(sim.script_number, "+79005550200", fail_cause=16)
            warm = await line.dial("+79005550200")
            await warm.wait_state(LineCallState.ENDED, timeout=5)
            assert warm.outcome is Outcome.NO_ANSWER  # 16 before an answer: the far end
        await asyncio.to_thread(sim.script_number, "+79005550201", fail_cause=99)
        started = time.monotonic()
        call = await line.dial("+79005550201")
        await call.wait_state(LineCallState.ENDED, timeout=CEER_TIMEOUT_S + 5)
        took = time.monotonic() - started
        assert call.outcome is Outcome.UNREACHABLE and call.sip_code == 480
        # The switchboard waits for this end: at most the CEER time limit longer.
        assert took < 0.1 + FAST.end_grace_s + CEER_TIMEOUT_S + 1.5
        # The port is still in step: the next failure gets its cause again.
        await asyncio.to_thread(sim.unsupported, "+CEER", False)
        await asyncio.to_thread(sim.set_response_delay, 0.0, "+CEER")
        await rig.until(lambda: line.call is None, what="line free")
        await asyncio.to_thread(sim.script_number, "+79005550202", fail_cause=42)
        call = await line.dial("+79005550202")
        await call.wait_state(LineCallState.ENDED, timeout=CEER_TIMEOUT_S + 8)
        assert call.outcome is Outcome.NO_NETWORK


async def test_sms_and_ussd_arriving_while_ceer_is_asked(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}, sim_args=FAST_NET) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_set_ussd("*100#", "Balance: 42.50 RUB", dcs=15)
        # The CEER answer is held back (modem seconds, 5x fast: 0.6 s) with a signal URC
        # inside it, while an SMS is pushed (+CMT and its PDU line; the simulator writes it
        # after the held answer) and a USSD request queues behind it.
        await asyncio.to_thread(sim.set_response_delay, 3.0, "+CEER")
        await asyncio.to_thread(sim.urc_inside_response)
        await asyncio.to_thread(sim.script_number, "+79005550300", fail_cause=38)
        since = sim.now()
        call = await line.dial("+79005550300")
        await sim.a_wait_for_command(r"^AT\+CEER$", timeout=5, since=since)
        ussd = asyncio.create_task(line.ussd("*100#"))
        await sim.a_deliver_sms("+79001234567", "during CEER", direct=True)
        delivered = sim.now()
        await call.wait_state(LineCallState.ENDED, timeout=5)
        assert call.outcome is Outcome.NO_NETWORK and call.sip_code == 503
        got = await rig.until(lambda: rig.of(SmsReceived), what="SmsReceived")
        assert got[0].text == "during CEER"
        result = await asyncio.wait_for(ussd, 10)
        assert result.amount is not None and float(result.amount) == 42.5
        log = [e for e in sim.log if e.t >= since]
        answer = next(e for e in log if e.kind == "tx" and b"+CEER:" in e.data)
        assert delivered < answer.t  # the SMS came while AT+CEER waited for its answer
        assert b"+QIND: \"csq\"" in answer.data.split(b"+CEER:")[1]  # a URC inside it
