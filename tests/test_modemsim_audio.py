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


def drain(fd: int) -> None:
    """Throw away what is buffered on the port (audio from before the step under test)."""
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except BlockingIOError:
            return


def read_bytes(fd: int, n: int, timeout: float = 3.0) -> bytes:
    """Exactly n bytes from the port (fewer only on timeout)."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < n and (left := deadline - time.monotonic()) > 0:
        for _t, data in read_audio(fd, min(left, 0.05)):
            out.extend(data)
    return bytes(out[:n])


def frame_rate(reads: list[tuple[float, bytes]], frame: int) -> float:
    """Frames per second over the reads' span (the first read only opens the span)."""
    span = reads[-1][0] - reads[0][0]
    return (sum(len(d) for _t, d in reads) - len(reads[0][1])) / frame / span


def mostly_whole(reads: list[tuple[float, bytes]], size: int) -> bool:
    """True if at least 80 % of the reads are whole multiples of size (a pty may split one)."""
    return sum(len(d) % size == 0 for _t, d in reads) >= 0.8 * len(reads)


def on_time(sim: FakeModem, fd: int, seconds: float) -> list[tuple[float, bytes]]:
    """Reads of a window in which the modem kept its clock (tried up to 4 times).

    A busy machine (2 shared cores) can starve the audio thread; such a window measures the
    machine, so it is measured again rather than judged.
    """
    for _ in range(4):
        late = sim.audio.stats.late_ticks
        drain(fd)
        reads = read_audio(fd, seconds)
        if sim.audio.stats.late_ticks == late and len(reads) > 2:
            return reads
    pytest.skip("the machine is too busy to keep a 20 ms clock")


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
        reads = on_time(sim, fd, 1.0)
        assert 47 <= frame_rate(reads, 320) <= 53
        assert mostly_whole(reads, 320)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
        assert 0.016 <= statistics.median(gaps) <= 0.024
        assert sim.audio.stats.frames_tx >= 45


def test_tone_then_play() -> None:
    with call_with_audio("huawei-e1550") as (sim, _at, fd):
        sim.audio.tone(1000, dbfs=-6)
        read_audio(fd, 0.06)
        drain(fd)
        pcm = read_bytes(fd, 6400)
        freq, share = dominant(floats(pcm[-3200:]), 8000, [440, 1000, 1400])
        assert freq == 1000 and share > 0.9
        drain(fd)
        sim.audio.play(sine(440, 0.3))
        pcm = read_bytes(fd, 9600)
        # Played PCM goes ahead of the tone (a few tone frames may already be in flight),
        # and the tone comes back once it is used up.
        blocks = [floats(pcm[i:i + 800]) for i in range(0, len(pcm) - 799, 320)]
        assert max(tone_ratio(b, 8000, 440) for b in blocks) > 0.9
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
        # 100 ms of echo path plus a few frames of the modem's uplink buffer (more on a
        # loaded machine).
        assert 0.09 <= delay <= 0.25
        echo = b"".join(d for t, d in arrivals if t in loud)
        assert tone_ratio(floats(echo), 8000, 1000) > 0.8


def test_clock_skew() -> None:
    with call_with_audio("huawei-e1550") as (sim, _at, fd):
        sim.audio.clock_skew_ppm = 50_000  # 5 % fast, so the difference shows in a second
        read_audio(fd, 0.1)
        rate = frame_rate(on_time(sim, fd, 1.2), 320)
        assert 51.0 <= rate <= 54.5, rate


def test_burst_and_jitter_and_drops() -> None:
    with call_with_audio("simcom-7600") as (sim, _at, fd):
        sim.audio.burst = 3
        read_audio(fd, 0.15)
        reads = on_time(sim, fd, 0.6)
        assert mostly_whole(reads, 960)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
        assert 0.05 <= statistics.median(gaps) <= 0.07
        sim.audio.burst = 1
        sim.audio.jitter_ms = 10
        read_audio(fd, 0.1)
        reads = on_time(sim, fd, 0.6)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
        assert statistics.pstdev(gaps) > 0.002
        # Absolute deadlines: jitter moves frames, it does not change their number.
        assert 45 <= frame_rate(reads, 320) <= 55
        sim.audio.jitter_ms = 0
        sim.audio.drop_prob = 0.5
        t0, before = time.monotonic(), sim.audio.stats
        read_audio(fd, 0.6)
        after, elapsed = sim.audio.stats, time.monotonic() - t0
        dropped = after.dropped_tx - before.dropped_tx
        ticks = dropped + after.frames_tx - before.frames_tx
        if after.late_ticks == before.late_ticks:
            assert abs(ticks - elapsed / 0.02) <= 4
        assert 0.2 <= dropped / ticks <= 0.8


def test_simcom_16khz_frames() -> None:
    with call_with_audio("simcom-7600") as (sim, at, fd):
        assert at.command("AT+CPCMFRM=1;+CPCMFRM?") == ["+CPCMFRM: 1", "OK"]
        read_audio(fd, 0.1)
        reads = on_time(sim, fd, 0.5)
        assert mostly_whole(reads, 640)
        assert 46 <= frame_rate(reads, 640) <= 54
        assert sim.audio.frame_bytes == 640


def test_unplug_closes_the_audio_port() -> None:
    with call_with_audio("quectel-ec25") as (sim, _at, fd):
        assert read_audio(fd, 0.2)
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
