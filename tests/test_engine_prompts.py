"""Prompts and voice messages in the real engine: a pjsua2 phone in another process hears
prompts (tone files, so they can be told apart) played once each, in order, with an end
event per prompt; what it says is recorded into a WAV file; its RFC 4733 digits arrive as
events while a prompt plays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.engine import DtmfEvent, Engine, EngineEvent, LegEvent, LegState, PromptEvent
from tests.conftest import free_port, free_port_block
from tests.support.gsmcall import running_engine
from tests.support.harness import PhoneProcess
from tests.support.tones import read_wav, timeline, tone_presence, write_wav

pytestmark = pytest.mark.timeout(90)

PHONE_TONE = 1000


async def next_of(events: asyncio.Queue[EngineEvent], kind: type, timeout: float = 10.0,
                  leg: str | None = None) -> EngineEvent:
    """The next event of that kind (for that leg), skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            event = await events.get()
            if not isinstance(event, kind):
                continue
            leg_id = event.leg.leg_id if isinstance(event, LegEvent) else event.leg_id
            if leg is None or leg_id == leg:
                return event


async def call_phone(engine: Engine, phone: PhoneProcess,
                     events: asyncio.Queue[EngineEvent]) -> str:
    leg = await engine.dial(f"sip:phone@127.0.0.1:{phone.port}")
    async with asyncio.timeout(10):
        while True:
            event = await next_of(events, LegEvent, leg=leg)
            assert isinstance(event, LegEvent)
            if event.leg.state is LegState.CONFIRMED:
                return leg
            assert event.leg.state is not LegState.DISCONNECTED


async def test_prompts_play_once_in_order_and_the_caller_is_recorded(tmp_path: Path) -> None:
    for name, freq, seconds in (("a", 600, 1.0), ("b", 850, 0.6), ("c", 1300, 0.6)):
        write_wav(tmp_path / f"{name}.wav", freq, seconds)
    heard = tmp_path / "heard"
    heard.mkdir()
    phone = PhoneProcess(free_port(), free_port_block(20), "--tone", str(PHONE_TONE),
                         "--record-dir", str(heard))
    try:
        async with running_engine() as engine:
            events: asyncio.Queue[EngineEvent] = asyncio.Queue()
            engine.subscribe(events.put_nowait)
            leg = await call_phone(engine, phone, events)
            started = time.monotonic()
            first, second, replaced, last = 1, 2, 3, 4
            await engine.play_prompt(leg, [str(tmp_path / "a.wav")], first)
            done = await next_of(events, PromptEvent, leg=leg)
            assert done == PromptEvent(leg, first)
            # The end event comes after the file's length, not before.
            assert time.monotonic() - started >= 0.9
            started = time.monotonic()
            await engine.play_prompt(leg, [str(tmp_path / "b.wav"), str(tmp_path / "c.wav")],
                                     second)
            assert await next_of(events, PromptEvent, leg=leg) == PromptEvent(leg, second)
            # The end comes once both files were heard (pjsua2's own end-of-file notice
            # comes when the last file is read into its buffer, a quarter second early).
            assert time.monotonic() - started >= 1.15

            # A prompt replaced before its end gives no event of its own.
            await engine.play_prompt(leg, [str(tmp_path / "a.wav")], replaced)
            await engine.play_prompt(leg, [str(tmp_path / "b.wav")], last)
            await engine.silence(leg, replaced)  # a late stop of the old one: ignored
            assert await next_of(events, PromptEvent, leg=leg) == PromptEvent(leg, last)

            message = tmp_path / "message.wav"
            await engine.record(leg, str(message))
            await asyncio.sleep(1.5)  # the phone talks into the recording for 1.5 s
            await engine.stop_record(leg)
            # Complete when stop_record returns (voicemail mails the file at once).
            assert int.from_bytes(message.read_bytes()[4:8], "little") > 36
            await engine.hangup(leg)
            await next_of(events, LegEvent, leg=leg)
    finally:
        phone.close()
    samples, rate = read_wav(message)
    assert 1.2 <= len(samples) / rate <= 1.8
    assert tone_presence(samples, rate, PHONE_TONE) > 0.8
    recorded = next(heard.glob("*.wav"))
    runs = timeline(read_wav(recorded)[0], 8000, {600.0: "a", 850.0: "b", 1300.0: "c"})
    heard_runs = [(label, seconds) for label, seconds in runs if label != "-" and seconds >= 0.3]
    assert [label for label, _ in heard_runs[:3]] == ["a", "b", "c"], runs
    assert heard_runs[2][1] >= 0.5, runs  # the last file of the list played to its end


async def test_digits_arrive_while_a_prompt_plays_and_silence_stops_it(tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", 700, 10.0)
    heard = tmp_path / "heard"
    heard.mkdir()
    phone = PhoneProcess(free_port(), free_port_block(20), "--record-dir", str(heard))
    try:
        async with running_engine() as engine:
            events: asyncio.Queue[EngineEvent] = asyncio.Queue()
            engine.subscribe(events.put_nowait)
            leg = await call_phone(engine, phone, events)
            await engine.play_prompt(leg, [str(tmp_path / "long.wav")], 1)
            media = phone.wait(lambda e: e.get("event") == "media")
            await asyncio.sleep(1.0)  # the phone hears a second of the prompt
            phone.send(cmd="dtmf", id=media["id"], digits="7")
            digit = await next_of(events, DtmfEvent, leg=leg)
            assert digit == DtmfEvent(leg, "7")
            await engine.silence(leg)
            with pytest.raises(TimeoutError):
                await next_of(events, PromptEvent, timeout=1.5)
            await engine.hangup(leg)
            await next_of(events, LegEvent, leg=leg)
    finally:
        phone.close()
    samples, rate = read_wav(next(heard.glob("*.wav")))
    assert tone_presence(samples[:-rate], rate, 700) > 0.1  # the prompt played...
    assert tone_presence(samples[-rate:], rate, 700) == 0.0  # ...and stopped
