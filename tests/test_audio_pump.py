"""The SerialAudio pump against a pty pair (a paced PCM 'modem') and the modem simulator,
plus its drift handling simulated on a fake clock."""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import random
from collections.abc import Callable, Iterator

import pytest

from hw.audio import AudioError, AudioState, AudioStateChange, SerialAudio
from tests.support.atclient import open_audio, sim_session
from tests.support.pcmpeer import FRAME, FakeBridge, PcmModem, number_of, numbered

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def modem() -> Iterator[PcmModem]:
    peer = PcmModem()
    yield peer
    peer.close()


def states() -> tuple[queue.SimpleQueue[AudioStateChange],
                      Callable[[AudioStateChange], None]]:
    got: queue.SimpleQueue[AudioStateChange] = queue.SimpleQueue()
    return got, got.put


def next_state(got: queue.SimpleQueue[AudioStateChange], timeout: float = 3.0) -> AudioState:
    return got.get(timeout=timeout).new


def test_frames_both_ways_at_the_modems_pace(modem: PcmModem) -> None:
    # Frames reach the pump split and joined: 100+220 bytes, then 3 frames in one write.
    modem.chunks = lambda n: [100, 220] if n % 4 else [FRAME]
    got, on_state = states()
    with SerialAudio(modem.path, on_state=on_state) as pump:
        assert next_state(got) is AudioState.IDLE
        bridge = FakeBridge(pump).start()
        modem.start()
        assert next_state(got) is AudioState.FLOWING
        assert modem.wait(lambda m: m.sent >= 100)
        assert bridge.wait(lambda b: len(b.numbers()) >= 60)
        modem.sending.clear()
        # Every modem frame gets its answer.
        assert modem.wait(lambda m: len(m.received) >= m.sent * FRAME)
        bridge.stop()
        heard = bridge.numbers()
        # In order; a drift step may repeat or skip a frame, nothing else.
        assert heard == sorted(heard)
        assert len(set(heard)) >= len(heard) - 2
        assert max(b - a for a, b in itertools.pairwise(heard)) <= 2
        stats = pump.stats()
        assert stats.frames_in == modem.sent >= 100 and stats.bytes_in == modem.sent * FRAME
        # One uplink frame answers each modem frame, none torn, in the bridge's order.
        up = modem.uplink_frames()
        assert len(up) == stats.frames_out == stats.frames_in
        numbers = [number_of(f) for f in up]
        assert all(f == bytes(FRAME) or n is not None for f, n in zip(up, numbers, strict=True))
        sent_up = [n for n in numbers if n is not None]
        assert sent_up == sorted(sent_up) and len(sent_up) >= 50
        assert stats.write_dropped == 0 and stats.downlink.overruns == 0
    assert next_state(got) is AudioState.STOPPED
    assert pump.state is AudioState.STOPPED


def test_nothing_bridged_sends_silence_and_keeps_only_fresh_audio(modem: PcmModem) -> None:
    with SerialAudio(modem.path) as pump:
        modem.start()
        assert modem.wait(lambda m: len(m.received) >= 50 * FRAME)
        assert len(pump.downlink) <= 1  # only the newest, so a later bridge starts fresh
        assert all(f == bytes(FRAME) for f in modem.uplink_frames())
        assert pump.stats().silent_out >= 50
        assert pump.downlink.underruns == 0  # nobody popped: no underruns counted
        # A bridge joining late hears the modem's current frames, not a backlog.
        bridge = FakeBridge(pump).start()
        assert bridge.wait(lambda b: len(b.numbers()) >= 5)
        bridge.stop()
        first = bridge.numbers()[0]
        assert first >= modem.sent - 10


def test_flow_stops_and_starts_again(modem: PcmModem) -> None:
    got, on_state = states()
    with SerialAudio(modem.path, on_state=on_state) as pump:
        assert next_state(got) is AudioState.IDLE
        modem.start()
        assert next_state(got) is AudioState.FLOWING
        modem.sending.clear()  # the call ended: the modem sends nothing
        assert next_state(got) is AudioState.IDLE
        modem.sending.set()
        assert next_state(got) is AudioState.FLOWING
        assert pump.stats().flows == 2


def test_a_vanished_tty_ends_the_pump_without_raising(modem: PcmModem) -> None:
    got, on_state = states()
    pump = SerialAudio(modem.path, on_state=on_state).start()
    assert next_state(got) is AudioState.IDLE
    modem.start()
    assert next_state(got) is AudioState.FLOWING
    modem.unplug()
    change = got.get(timeout=3)
    assert change.new is AudioState.LOST and change.old is AudioState.FLOWING
    assert "tty" in change.reason
    pump.stop()  # after the loss: harmless
    pump.stop()
    assert pump.state is AudioState.LOST
    assert got.empty()


def test_open_errors_and_restarts_are_refused(modem: PcmModem, tmp_path: object) -> None:
    with pytest.raises(AudioError, match="cannot open"):
        SerialAudio("/dev/nonexistent-modem-audio").start()
    with SerialAudio(modem.path) as pump:
        with pytest.raises(AudioError, match="held by another"):
            SerialAudio(modem.path).start()
        with pytest.raises(AudioError, match="already started"):
            pump.start()
    # Stopped, the tty is free again.
    SerialAudio(modem.path).start().stop()


def test_in_band_digits_reach_the_listeners(modem: PcmModem) -> None:
    from hw.modemsim.audio import dtmf_pcm

    pcm = bytes(3200) + dtmf_pcm("159#", 8000) + bytes(3200)
    modem.source = lambda n: pcm[n * FRAME:(n + 1) * FRAME].ljust(FRAME, b"\0")
    digits: queue.SimpleQueue[str] = queue.SimpleQueue()
    with SerialAudio(modem.path, detect_dtmf=True) as pump:
        remove = pump.add_digit_listener(digits.put)

        def broken(_digit: str) -> None:
            raise RuntimeError("a failing listener harms nobody")

        pump.add_digit_listener(broken)
        modem.start()
        assert "".join(digits.get(timeout=3) for _ in range(4)) == "159#"
        remove()
        assert pump.stats().digits == 4 and pump.detects_dtmf


@pytest.mark.parametrize("profile", ["huawei-e1550", "quectel-ec25"])
def test_the_simulators_call_audio_and_in_band_digits(profile: str) -> None:
    """A real simulated call, path armed: the pump hears the far end's tone and digits, and
    the far end hears what the bridge pushed."""
    arm = {"huawei-e1550": "AT^DDSETEX=2", "quectel-ec25": "AT+QPCMV=1,0"}[profile]
    with sim_session(profile) as (sim, at):
        assert sim.audio_path is not None
        digits: queue.SimpleQueue[str] = queue.SimpleQueue()
        got, on_state = states()
        with SerialAudio(sim.audio_path, detect_dtmf=True,
                         on_state=on_state) as pump:
            pump.add_digit_listener(digits.put)
            bridge = FakeBridge(pump).start()
            idx = sim.ring()
            at.wait_line("RING")
            assert at.command("ATA") == ["OK"]
            assert at.command(arm) == ["OK"]
            assert sim.audio.wait_flowing(timeout=2)
            assert next_state(got) is AudioState.IDLE
            assert next_state(got) is AudioState.FLOWING
            sim.remote_dtmf(idx, "42*")
            assert "".join(digits.get(timeout=5) for _ in range(3)) == "42*"
            assert sim.audio.wait_captured(40 * FRAME, timeout=5)
            up = sim.audio.captured()
            numbers = [number_of(up[i:i + FRAME]) for i in range(0, len(up) - FRAME + 1, FRAME)]
            assert sum(n is not None for n in numbers) >= 20
            bridge.stop()
            sim.remote_hangup(idx)
            assert next_state(got) is AudioState.IDLE


def test_a_pty_opened_elsewhere_is_not_disturbed() -> None:
    """open_audio (the simulator tests' reader) and the pump agree on the flags."""
    with sim_session("quectel-ec25") as (sim, _at):
        assert sim.audio_path is not None
        fd = open_audio(sim.audio_path)
        os.close(fd)
        SerialAudio(sim.audio_path).start().stop()


# --- drift, simulated on a fake clock --------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def simulate(ppm: float, seconds: float, jitter_ms: float, seed: int) -> dict[str, float]:
    """A modem whose clock is off by ppm against a 20 ms bridge, through the real pump code."""
    rng = random.Random(seed)
    clock = FakeClock()
    pump = SerialAudio("/nonexistent", clock=clock)  # never started: driven directly
    sink_r, sink_w = os.pipe()
    os.set_blocking(sink_r, False)
    os.set_blocking(sink_w, False)
    period = 0.020 / (1 + ppm * 1e-6)
    events: list[tuple[float, int, int]] = []
    offset = rng.uniform(0, 0.02)
    n_modem = int(seconds / period)
    for k in range(n_modem):
        heapq.heappush(events, (1000 + k * period + rng.uniform(0, jitter_ms / 1000), 0, k))
    for j in range(int(seconds / 0.020)):
        heapq.heappush(events, (1000 + offset + j * 0.020, 1, j))
    warm = 1000 + 3.0
    max_depth = 0
    underruns_at_warm = trimmed_at_warm = repeated_at_warm = None
    up_numbers: list[int] = []
    try:
        while events:
            t, kind, n = heapq.heappop(events)
            clock.t = t
            if t >= warm and underruns_at_warm is None:
                underruns_at_warm = pump.downlink.underruns
                trimmed_at_warm = pump.downlink.trimmed
                repeated_at_warm = pump.downlink.repeated
            if kind == 0:
                assert pump.received(sink_w, numbered(n), t) == ""
                while True:
                    try:
                        data = os.read(sink_r, 65536)
                    except BlockingIOError:
                        break
                    up_numbers += [x for x in (number_of(data[i:i + FRAME]) for i in
                                               range(0, len(data), FRAME)) if x is not None]
            else:
                if t >= warm:
                    max_depth = max(max_depth, len(pump.downlink))
                pump.downlink.pop()
                pump.uplink.push(numbered(n))
    finally:
        os.close(sink_r)
        os.close(sink_w)
    assert up_numbers == sorted(up_numbers)
    down = pump.downlink
    return {"excess": n_modem - int(seconds / 0.020), "max_depth": max_depth,
            "underruns": down.underruns - (underruns_at_warm or 0),
            "overruns": down.overruns,
            "trimmed": down.trimmed - (trimmed_at_warm or 0),
            "repeated": down.repeated - (repeated_at_warm or 0),
            "up_trimmed": pump.uplink.trimmed, "up_repeated": pump.uplink.repeated,
            "concealed": pump.concealed, "frames_out": pump.frames_out,
            "frames_in": pump.frames_in}


@pytest.mark.parametrize("ppm", [+1000, -1000, +300, 0])
@pytest.mark.parametrize("jitter_ms", [0, 4])
def test_clock_drift_is_absorbed_in_whole_frames(ppm: int, jitter_ms: float) -> None:
    r = simulate(ppm, seconds=120, jitter_ms=jitter_ms, seed=ppm + 7)
    # 120 s at 1000 ppm is 6 frames the two clocks disagree on.
    assert r["overruns"] == 0
    assert r["underruns"] <= 1
    assert r["max_depth"] <= 3  # the downlink never holds more than 60 ms
    assert r["frames_out"] == r["frames_in"]  # the modem is fed at its own pace
    excess = r["excess"]
    assert min(r["trimmed"], r["repeated"]) <= 1  # no hunting back and forth
    if ppm > 0:
        assert excess - 2 <= r["trimmed"] - r["repeated"] <= excess + 2
    elif ppm < 0:
        assert -excess - 2 <= r["repeated"] + r["underruns"] - r["trimmed"] <= -excess + 2
    else:
        assert r["trimmed"] + r["repeated"] <= 2
    # The uplink absorbs the same drift the other way round.
    assert r["up_trimmed"] + r["up_repeated"] + r["concealed"] <= abs(excess) + 6


def test_a_backlog_when_audio_starts_is_skipped(modem: PcmModem) -> None:
    """Frames queued when audio (re)starts are stale (opening the tty flushes the rest):
    answering each would park as many uplink frames in the modem's buffer for the call."""
    got, on_state = states()
    with SerialAudio(modem.path, on_state=on_state) as pump:
        assert next_state(got) is AudioState.IDLE
        modem.start()
        assert next_state(got) is AudioState.FLOWING
        modem.sending.clear()
        assert next_state(got) is AudioState.IDLE
        first = modem.sent
        modem.source = lambda n: (b"".join(numbered(1000 + k) for k in range(5)) if n == first
                                  else numbered(n))
        modem.sending.set()
        assert next_state(got) is AudioState.FLOWING
        assert modem.wait(lambda m: m.sent >= first + 5)
        modem.sending.clear()
        # 4 frames more were written than ticks counted, and those 4 are not answered.
        assert modem.wait(lambda m: len(m.received) >= m.sent * FRAME)
        stats = pump.stats()
        assert stats.skipped == 4
        assert stats.frames_out == stats.frames_in == modem.sent
