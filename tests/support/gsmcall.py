"""A simulated GSM call with its audio in a real engine: shared by tests and bench/gsm_audio.py.

The AT side is driven with raw commands over the product's AtChannel, with the profile's own
answer and arming sequences (hw.modem.profiles), as the line manager will send them.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from appliance.engine import Engine, EngineConfig, LegEvent, LegState
from hw.audio import AudioState, AudioStateChange, SerialAudio
from hw.modem.calls import CallerId
from hw.modem.channel import AtChannel
from hw.modem.port import open_channel
from hw.modem.profiles import DtmfDetection, ModemProfile, by_name
from hw.modemsim import FakeModem
from tests.conftest import free_port, free_port_block


def floats(pcm: bytes) -> list[float]:
    """s16le PCM as floats in -1..1."""
    samples = array.array("h")
    samples.frombytes(pcm[:len(pcm) - len(pcm) % 2])
    return [s / 32768 for s in samples]


@contextlib.asynccontextmanager
async def running_engine(**config: Any) -> AsyncIterator[Engine]:
    """An engine on loopback with free ports; stopped on exit."""
    rtp = free_port_block(200)
    engine = Engine(EngineConfig(sip_port=free_port(), rtp_port_min=rtp,
                                 rtp_port_max=rtp + 200, **config))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


@dataclass
class GsmLine:
    """One simulated modem in a call, its AT channel, its audio pump and port leg."""

    sim: FakeModem
    chan: AtChannel
    profile: ModemProfile
    audio: SerialAudio
    states: asyncio.Queue[AudioStateChange]
    idx: int = 0
    leg_id: str = ""

    async def wait_state(self, state: AudioState, timeout: float = 5.0) -> None:
        """Wait for the pump's state-change event into state."""
        async with asyncio.timeout(timeout):
            while (await self.states.get()).new is not state:
                pass


async def answer(sim: FakeModem, chan: AtChannel, profile: ModemProfile,
                 number: str = "+79001234567") -> int:
    """Ring the modem, answer with the profile's sequence, arm the PCM path; the call index."""
    with chan.watch(lambda u: isinstance(u, CallerId)) as clips:
        idx = await sim.a_ring(number)
        await clips.next(timeout=5)
    for command in (*profile.answer_sequence(), *profile.on_connected):
        (await chan.command(command)).expect_ok()
    if not await sim.a_wait_flowing(timeout=5):
        raise AssertionError(f"{profile.name}: no PCM after {profile.answer_sequence()}")
    return idx


@contextlib.asynccontextmanager
async def gsm_line(engine: Engine, profile_name: str, leg_id: str, *,
                   imei: str = "860000000000001", seed: int = 0) -> AsyncIterator[GsmLine]:
    """A simulated modem, answered and armed, its audio pump running and its port leg open
    (in-band DTMF detection where the profile has no modem detector)."""
    profile = by_name(profile_name)
    sim = await FakeModem(profile_name, imei=imei, time_scale=0.05, seed=seed).a_start()
    chan = await open_channel(str(sim.at_link))
    audio: SerialAudio | None = None
    try:
        (await chan.command("ATE0")).expect_ok()
        for step in profile.init_commands():
            await chan.command(step.command)
        assert sim.audio_path is not None
        loop = asyncio.get_running_loop()
        states: asyncio.Queue[AudioStateChange] = asyncio.Queue()

        def on_state(change: AudioStateChange) -> None:
            loop.call_soon_threadsafe(states.put_nowait, change)

        audio = SerialAudio(sim.audio_path, name=leg_id,
                            detect_dtmf=profile.dtmf_detection is DtmfDetection.INBAND,
                            thread_init=lambda: engine.register_thread(f"audio-{leg_id}"),
                            on_state=on_state)
        audio.start()
        line = GsmLine(sim, chan, profile, audio, states)
        line.idx = await answer(sim, chan, profile)
        line.leg_id = await engine.open_port(leg_id, audio)
        yield line
    finally:
        with contextlib.suppress(Exception):
            await engine.close_port(leg_id)
        if audio is not None:
            audio.stop()
        await chan.close()
        await sim.a_stop()


async def wait_leg(events: asyncio.Queue[Any], leg_id: str | None, state: LegState,
                   timeout: float = 10.0, media: bool = False) -> LegEvent:
    """The next LegEvent for leg_id (any leg if None) reaching state (with media, if asked)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await events.get()
            if not isinstance(event, LegEvent):
                continue
            leg = event.leg
            if leg_id is not None and leg.leg_id != leg_id:
                continue
            if leg.state is state and (not media or leg.media_active):
                return event
