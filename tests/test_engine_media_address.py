"""The engine's RTP faces the LAN: it binds where the settings say and writes the chosen
address into its SDP, so a phone sends its audio there (SIP stays on loopback).

On one machine every 127.x address is local, so a box "at" 127.0.0.9 is reachable: the
phone must learn that address from the SDP and the engine must take audio on it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance import settings as settings_mod
from appliance.engine import EngineEvent, LegEvent
from appliance.settings import SettingsError
from tests.conftest import free_port, free_port_block
from tests.support.gsmcall import running_engine
from tests.support.harness import PhoneProcess
from tests.support.tones import read_wav, tone_presence
from tests.test_engine_prompts import call_phone, next_of

pytestmark = pytest.mark.timeout(60)


async def test_the_phone_sends_its_audio_to_the_address_in_the_sdp(tmp_path: Path) -> None:
    phone = PhoneProcess(free_port(), free_port_block(20), "--tone", "1000")
    try:
        async with running_engine(media_bind="0.0.0.0", media_address="127.0.0.9") as engine:
            events: asyncio.Queue[EngineEvent] = asyncio.Queue()
            engine.subscribe(events.put_nowait)
            leg = await call_phone(engine, phone, events)
            phone.wait(lambda e: e.get("event") == "media")
            stats = phone.stats()
            [theirs] = stats.values()
            assert str(theirs["remote"]).startswith("127.0.0.9:"), theirs
            message = tmp_path / "heard.wav"
            await engine.record(leg, str(message))
            await asyncio.sleep(1.0)  # a second of the phone's tone
            await engine.stop_record(leg)
            [ours] = [m for m in await engine.media() if m.leg_id == leg]
            assert ours.rx_packets > 0 and ours.local_rtp.startswith("127.0.0.9:"), ours
            await engine.hangup(leg)
            await next_of(events, LegEvent, leg=leg)
    finally:
        phone.close()
    samples, rate = read_wav(message)
    assert tone_presence(samples, rate, 1000) > 0.8


def test_rtp_addresses_are_checked(tmp_path: Path) -> None:
    loaded = settings_mod.load(environ={}, data_dir=tmp_path)
    assert loaded.rtp_bind == "" and loaded.rtp_address == ""
    with pytest.raises(SettingsError, match="rtp_bind"):
        settings_mod.load(environ={"PBX_RTP_BIND": "not-an-address"}, data_dir=tmp_path)
    with pytest.raises(SettingsError, match="rtp_address"):
        settings_mod.load(environ={}, data_dir=tmp_path, rtp_address="10.0.0.300")
