"""GSM call audio end to end: a simulated modem in an answered, armed call, its PCM pumped
into a real engine as a port leg, bridged to a pjsua2 phone in another process.

Tones both ways (phone 1000 Hz -> the simulated far end; far end 600 Hz -> the phone's
recording), play() and recording on the port leg, in-band DTMF on a profile without a modem
detector as DtmfEvent (and RFC 4733 to the phone), and ports closed and reopened mid-call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from appliance.engine import DtmfEvent, Engine, EngineError, LegState
from hw.audio import AudioState
from tests.conftest import free_port, free_port_block
from tests.support.gsmcall import floats, gsm_line, running_engine, wait_leg
from tests.support.harness import PhoneProcess
from tests.support.tones import dominant, read_wav, tone_presence, tone_ratio

pytestmark = pytest.mark.timeout(120)

RATE = 8000


class Events:
    """The engine's events, split into leg events and digits."""

    def __init__(self, engine: Engine) -> None:
        self.legs: asyncio.Queue[Any] = asyncio.Queue()
        self.digits: asyncio.Queue[DtmfEvent] = asyncio.Queue()
        engine.subscribe(self._on)

    def _on(self, event: Any) -> None:
        (self.digits if isinstance(event, DtmfEvent) else self.legs).put_nowait(event)

    async def digits_of(self, leg_id: str, count: int, timeout: float = 10.0) -> str:
        out = ""
        async with asyncio.timeout(timeout):
            while len(out) < count:
                event = await self.digits.get()
                if event.leg_id == leg_id:
                    out += event.digit
        return out


async def start_phone(tmp_path: Path) -> PhoneProcess:
    return await asyncio.to_thread(PhoneProcess, free_port(), free_port_block(20),
                                   "--tone", "1000", "--record-dir", str(tmp_path))


async def call_phone(engine: Engine, events: Events, phone: PhoneProcess) -> tuple[str, int]:
    """The engine calls the phone (it answers at once); the leg id and the phone's call id."""
    leg = await engine.dial(f"sip:phone@127.0.0.1:{phone.port}")
    await wait_leg(events.legs, leg, LegState.CONFIRMED, media=True)
    incoming = await asyncio.to_thread(phone.wait, lambda e: e.get("event") == "incoming")
    return leg, int(incoming["id"])


async def far_end_hears(sim: Any, seconds: float = 1.5) -> list[float]:
    """The last `seconds` of what the simulated far end received, after it is there."""
    sim.audio.captured(clear=True)
    want = int(seconds * RATE * 2)
    assert await asyncio.to_thread(sim.audio.wait_captured, want, 10)
    return floats(sim.audio.captured()[-want:])


async def finished_recording(phone: PhoneProcess, path: Path) -> list[float]:
    """The phone's recording, once it has closed it (two round trips after the hang-up)."""
    await asyncio.to_thread(phone.states)
    await asyncio.to_thread(phone.states)
    samples, rate = read_wav(path)
    assert rate == RATE
    return samples


@pytest.mark.parametrize("profile", ["quectel-ec25", "huawei-e1550"])
async def test_tones_both_ways_play_and_recording(profile: str, tmp_path: Path) -> None:
    phone = await start_phone(tmp_path)
    try:
        async with running_engine() as engine:
            events = Events(engine)
            async with gsm_line(engine, profile, "G1") as line:
                line.sim.audio.tone(600, dbfs=-12)  # the far end speaks 600 Hz
                sip, phone_call = await call_phone(engine, events, phone)
                record = tmp_path / "both.wav"
                await engine.bridge(sip, "G1", record_to=str(record))
                # Phone -> engine -> port -> pump -> modem uplink: the far end hears 1000 Hz.
                assert tone_presence(await far_end_hears(line.sim), RATE, 1000) >= 0.8
                # The port's counters show frames both ways and where it is wired.
                stats = {m.leg_id: m for m in await engine.media()}
                port = stats["G1"]
                assert port.kind == "port" and port.slot >= 0
                assert stats[sip].slot in port.listeners
                assert port.rx_packets > 50 and port.tx_packets > 50
                assert port.port["frames_in"] > 50 and port.port["state"] == "flowing"
                assert port.port["callback_errors"] == 0
                # play() on a port leg: the far end hears ringback (425 Hz, 1 s on).
                await engine.play("G1", "ringback")
                heard = (await far_end_hears(line.sim, 0.6))[int(0.1 * RATE):]
                # (pjmedia's single-frequency tone is not a pure sine: dominant, not share.)
                assert dominant(heard, RATE, [425, 600, 1000])[0] == 425
                assert tone_presence(heard, RATE, 1000) == 0
                await engine.bridge(sip, "G1")
                assert tone_presence(await far_end_hears(line.sim, 1.0), RATE, 1000) >= 0.8
                await engine.hangup(sip)
                await wait_leg(events.legs, sip, LegState.DISCONNECTED)
                assert line.audio.state is AudioState.FLOWING
            # Modem -> pump -> port -> engine -> phone: the phone heard 600 Hz.
            heard_by_phone = await finished_recording(
                phone, tmp_path / f"{phone.port}-{phone_call}.wav")
            # (0.4-1.4 s: bridged, before ringback took the port away from the phone.)
            assert len(heard_by_phone) >= 2 * RATE
            assert tone_presence(heard_by_phone[int(0.4 * RATE):int(1.4 * RATE)], RATE,
                                 600) >= 0.8
            # The engine's recording of the bridge holds both parties.
            await engine.media()
            mixed, _ = read_wav(record)
            both = mixed[int(0.4 * RATE):int(1.4 * RATE)]
            far, near = tone_ratio(both, RATE, 600), tone_ratio(both, RATE, 1000)
            assert far > 0.05 and near > 0.05 and far + near > 0.9, (far, near)
    finally:
        await asyncio.to_thread(phone.close)


async def test_in_band_dtmf_without_a_modem_detector(tmp_path: Path) -> None:
    """Huawei has no DTMF detector: the pump's in-band detector turns the far end's key
    presses into DtmfEvents of the port leg, relayed to the bridged phone as RFC 4733."""
    phone = await start_phone(tmp_path)
    try:
        async with running_engine() as engine:
            events = Events(engine)
            async with gsm_line(engine, "huawei-e1550", "G7") as line:
                assert line.audio.detects_dtmf
                sip, phone_call = await call_phone(engine, events, phone)
                await engine.bridge(sip, "G7")
                await line.sim.a_remote_dtmf(line.idx, "159#")
                assert await events.digits_of("G7", 4) == "159#"
                await asyncio.to_thread(
                    phone.wait_count, lambda e: e.get("event") == "dtmf", 4, 10)
                assert [e["digit"] for e in phone.seen if e.get("event") == "dtmf"] == list("159#")
                # A digit from the phone towards the port leg is reported, not relayed.
                await asyncio.to_thread(phone.send, cmd="dtmf", id=phone_call, digits="5")
                assert await events.digits_of(sip, 1) == "5"
                stats = {m.leg_id: m for m in await engine.media()}
                assert stats["G7"].port["digits"] == 4
    finally:
        await asyncio.to_thread(phone.close)


async def test_ports_close_and_reopen_mid_call_and_survive_an_unplug(tmp_path: Path) -> None:
    """The port's C++ side is freed while the bridge clock is calling it; 20 times over,
    then the modem vanishes under an open port. The engine stays healthy throughout."""
    phone = await start_phone(tmp_path)
    try:
        async with running_engine() as engine:
            events = Events(engine)
            async with gsm_line(engine, "quectel-ec25", "G2") as line:
                sip, _ = await call_phone(engine, events, phone)
                for _ in range(20):
                    await engine.bridge(sip, "G2")
                    await engine.close_port("G2")
                    await engine.close_port("G2")  # idempotent
                    with pytest.raises(EngineError, match="no such leg"):
                        await engine.bridge(sip, "G2")
                    await engine.open_port("G2", line.audio)
                with pytest.raises(EngineError, match="in use"):
                    await engine.open_port("G2", line.audio)
                with pytest.raises(EngineError, match="in use"):
                    await engine.open_port(sip, line.audio)
                await engine.bridge(sip, "G2")
                heard = tone_presence(await far_end_hears(line.sim, 1.0), RATE, 1000)
                assert heard >= 0.8, (heard, await engine.media(), line.audio.stats(),
                                      await asyncio.to_thread(phone.stats))
                assert engine.healthy()
                await line.sim.a_unplug()
                await line.wait_state(AudioState.LOST)
                # The port stays in the bridge, quiet, until the line closes it.
                stats = {m.leg_id: m for m in await engine.media()}
                assert stats["G2"].port["state"] == "lost"
                await engine.close_port("G2")
                assert "G2" not in {m.leg_id for m in await engine.media()}
                assert engine.healthy()
    finally:
        await asyncio.to_thread(phone.close)
