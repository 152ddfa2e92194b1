"""The modem simulator's PCM port: gating on active + armed, 20 ms pacing, tone/play,
capture, echo, and the timing impairments."""

from __future__ import annotations

import array
import itertools
import math
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hw.modemsim import FakeModem
from tests.support.atclient import AtClient, open_audio, read_audio, sim_session
from tests.support.tones import dominant, tone_ratio

pytestmark = pytest.mark.timeout(30)

ARM = {"huawei-e1550": "AT^DDSETEX=2", "quectel-ec25": "AT+QPCMV=1,0",
       "simcom-7600": "AT+CPCMREG=1"}


def sine(hz: float, seconds: float, amp: float = 0.4, rate: int = 8000) -> bytes:
    """s16le PCM of a sine."""
    return array.array("h", (int(amp * 32767 * math.sin(2 * math.pi * hz * n / rate))
                             for n in range(int(seconds * rate)))).tobytes()


def floats(pcm: bytes) -> list[float]:
    """s16le PCM as floats in -1..1."""
    samples = array.array("h")
    samples.frombytes(pcm[:len(pcm) - len(pcm) % 2])
    return [s / 32768 for s in samples]


@contextmanager
def call_with_audio(profile: str, *, arm: bool = True,
                    **kwargs: Any) -> Iterator[tuple[FakeModem, AtClient, int]]:
    """A simulator with an answered incoming call, the path armed, and the audio port open."""
    with sim_session(profile, **kwargs) as (sim, at):
        assert sim.audio_path is not None
        fd = open_audio(sim.audio_path)
        try:
            sim.ring()
            at.wait_line("RING")
            assert at.command("ATA") == ["OK"]
            if arm:
                assert at.command(ARM[profile]) == ["OK"]
                assert sim.audio.wait_flowing(timeout=2)
            yield sim, at, fd
        finally:
            os.close(fd)


@pytest.mark.parametrize("profile", list(ARM))
def test_nothing_flows_unless_active_and_armed(profile: str) -> None:
    with sim_session(profile) as (sim, at):
        assert sim.audio_path is not None
        fd = open_audio(sim.audio_path)
        try:
            # Armed (where the family allows it) but no call: silence on the wire.
            if profile != "simcom-7600":
                assert at.command(ARM[profile]) == ["OK"]
            else:
                assert at.command(ARM[profile]) == ["ERROR"]  # CPCMREG needs a call
            idx = sim.ring()
            at.wait_line("RING")
            os.write(fd, sine(440, 0.1))
            assert read_audio(fd, 0.1) == []
            assert at.command("ATA") == ["OK"]
            if profile == "simcom-7600":
                assert read_audio(fd, 0.1) == []  # active, not armed
                assert at.command(ARM[profile]) == ["OK"]
            assert sim.audio.wait_flowing(timeout=2)
            assert read_audio(fd, 0.1)
            stats = sim.audio.stats
            assert stats.ignored_rx == 1600 and sim.audio.captured() == b""
            sim.remote_hangup(idx)
            assert sim.audio.wait_flowing(False, timeout=2)
            read_audio(fd, 0.05)
            assert read_audio(fd, 0.1) == []
            # The next call: huawei and simcom must arm again, quectel's QPCMV stays set.
            sim.ring()
            at.wait_line("RING")
            assert at.command("ATA") == ["OK"]
            if profile == "quectel-ec25":
                assert sim.audio.wait_flowing(timeout=2)
            else:
                assert not sim.audio.wait_flowing(timeout=0.1)
                assert at.command(ARM[profile]) == ["OK"]
                assert sim.audio.wait_flowing(timeout=2)
        finally:
            os.close(fd)


def test_quectel_qpcmv_port_switch_needs_reset() -> None:
    with sim_session("quectel-ec25") as (_sim, at):
        assert at.command("AT+QPCMV=1,0") == ["OK"]
        assert at.command("AT+QPCMV=1,2") == ["ERROR"]
        assert at.command("AT+QPCMV?") == ["+QPCMV: 1,0", "OK"]
        assert at.command("AT+QPCMV=0;+QPCMV=1,2;+QPCMV?") == ["+QPCMV: 1,2", "OK"]


def test_frames_every_20ms() -> None:
    with call_with_audio("quectel-ec25") as (sim, _at, fd):
        read_audio(fd, 0.1)
        reads = read_audio(fd, 1.0)
        total = sum(len(d) for _t, d in reads)
        assert 47 * 320 <= total <= 53 * 320
        assert all(len(d) % 320 == 0 for _t, d in reads)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
        assert 0.017 <= statistics.median(gaps) <= 0.023
        assert sim.audio.stats.frames_tx >= 55


def test_tone_then_play() -> None:
    with call_with_audio("huawei-e1550") as (sim, _at, fd):
        sim.audio.tone(1000, dbfs=-6)
        read_audio(fd, 0.06)
        pcm = b"".join(d for _t, d in read_audio(fd, 0.4))
        freq, share = dominant(floats(pcm), 8000, [440, 1000, 1400])
        assert freq == 1000 and share > 0.9
        sim.audio.play(sine(440, 0.3))
        pcm = b"".join(d for _t, d in read_audio(fd, 0.25))
        assert tone_ratio(floats(pcm[:1600]), 8000, 440) > 0.9
        pcm = b"".join(d for _t, d in read_audio(fd, 0.3))
        assert dominant(floats(pcm[-1600:]), 8000, [440, 1000])[0] == 1000
        sim.audio.tone(None)


def test_uplink_captured_and_counted() -> None:
    with call_with_audio("simcom-7600") as (sim, _at, fd):
        tone = sine(700, 0.5)
        start = time.monotonic()
        for i in range(25):
            os.write(fd, tone[i * 320:(i + 1) * 320])
            # Paced on absolute 20 ms deadlines like a real bridge.
            time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
        assert sim.audio.wait_captured(len(tone), timeout=2)
        captured = sim.audio.captured()
        assert captured == tone
        assert tone_ratio(floats(captured), 8000, 700) > 0.95
        stats = sim.audio.stats
        assert stats.frames_rx == 25 and stats.bytes_rx == 8000
        assert stats.overruns == 0
        # Silence from the host for over 40 ms is an underrun.
        before = stats.underruns
        time.sleep(0.15)
        assert sim.audio.stats.underruns == before + 1
        # A burst far beyond the modem's 200 ms buffer overruns it.
        os.write(fd, bytes(320 * 30))
        time.sleep(0.05)
        assert sim.audio.stats.overruns >= 15


def test_echo_loop_delay() -> None:
    with call_with_audio("quectel-ec25") as (sim, _at, fd):
        sim.audio.echo_ms = 100
        sim.audio.echo_gain = 0.5
        read_audio(fd, 0.1)
        # Silence, then a 1 kHz burst, paced at 20 ms: when does its echo come back?
        frames = [bytes(320)] * 5 + [sine(1000, 0.02)] * 10 + [bytes(320)] * 15
        sent_at = 0.0
        arrivals: list[tuple[float, bytes]] = []
        start = time.monotonic()
        for i, frame in enumerate(frames):
            if i == 5:
                sent_at = time.monotonic()
            os.write(fd, frame)
            arrivals += read_audio(fd, max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
        arrivals += read_audio(fd, 0.2)
        loud = [t for t, d in arrivals
                if max(abs(s) for s in floats(d)) > 0.1]
        assert loud, "no echo came back"
        delay = loud[0] - sent_at
        # 100 ms of echo path plus at most a few frames of the modem's uplink buffer.
        assert 0.09 <= delay <= 0.2
        echo = b"".join(d for t, d in arrivals if t in loud)
        assert tone_ratio(floats(echo), 8000, 1000) > 0.8


def test_clock_skew() -> None:
    with call_with_audio("huawei-e1550") as (sim, _at, fd):
        sim.audio.clock_skew_ppm = 50_000  # 5 % fast, so the difference shows in a second
        read_audio(fd, 0.1)
        t0 = time.monotonic()
        reads = read_audio(fd, 1.2)
        span = reads[-1][0] - reads[0][0]
        frames = (sum(len(d) for _t, d in reads) - len(reads[0][1])) / 320
        rate = frames / span
        assert 51.0 <= rate <= 54.5, rate
        assert time.monotonic() - t0 < 2


def test_burst_and_jitter_and_drops() -> None:
    with call_with_audio("simcom-7600") as (sim, _at, fd):
        sim.audio.burst = 3
        read_audio(fd, 0.15)
        reads = read_audio(fd, 0.6)
        assert all(len(d) % 960 == 0 for _t, d in reads)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
        assert 0.05 <= statistics.median(gaps) <= 0.07
        sim.audio.burst = 1
        sim.audio.jitter_ms = 10
        read_audio(fd, 0.1)
        reads = read_audio(fd, 0.6)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
        assert statistics.pstdev(gaps) > 0.002
        # Absolute deadlines: jitter moves frames, it does not change their number.
        assert 26 * 320 <= sum(len(d) for _t, d in reads) <= 34 * 320
        sim.audio.jitter_ms = 0
        sim.audio.drop_prob = 0.5
        before = sim.audio.stats
        read_audio(fd, 0.6)
        after = sim.audio.stats
        dropped = after.dropped_tx - before.dropped_tx
        sent = after.frames_tx - before.frames_tx
        assert 27 <= dropped + sent <= 33 and 6 <= dropped <= 24


def test_simcom_16khz_frames() -> None:
    with call_with_audio("simcom-7600") as (sim, at, fd):
        assert at.command("AT+CPCMFRM=1;+CPCMFRM?") == ["+CPCMFRM: 1", "OK"]
        read_audio(fd, 0.1)
        reads = read_audio(fd, 0.5)
        assert all(len(d) % 640 == 0 for _t, d in reads)
        assert 22 * 640 <= sum(len(d) for _t, d in reads) <= 27 * 640
        assert sim.audio.frame_bytes == 640


def test_unplug_closes_the_audio_port() -> None:
    with call_with_audio("quectel-ec25") as (sim, _at, fd):
        assert read_audio(fd, 0.05)
        sim.unplug()
        assert not sim.audio.flowing
        # What was in flight may still be read; then end of file (or EIO), as on a real
        # unplug: pyserial's "device reports readiness to read but returned no data".
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if os.read(fd, 4096) == b"":
                    break
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        else:
            pytest.fail("the audio port stayed open after unplug")
