"""The in-band DTMF detector: synthesised digits, noise, speech-like sounds, fuzzing, and
the modem simulator's own in-band digits."""

from __future__ import annotations

import array
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.audio.dtmf import COLS, DIGITS, KEYS, ROWS, DtmfDetector, DtmfParams, KeyState
from hw.modemsim.audio import dtmf_pcm

pytestmark = pytest.mark.timeout(120)

RATE = 8000
FREQS = {KEYS[r][c]: (ROWS[r], COLS[c]) for r in range(4) for c in range(4)}


def pcm(samples: list[float]) -> bytes:
    """Floats in full-scale units as s16le, clipped."""
    return array.array("h", (max(-32768, min(32767, round(s))) for s in samples)).tobytes()


def pair(digit: str, seconds: float, row_dbfs: float = -10.0, twist_db: float = 0.0,
         phases: tuple[float, float] = (0.0, 0.0)) -> list[float]:
    """A DTMF tone pair; the column tone is twist_db louder than the row tone."""
    low, high = FREQS[digit]
    a_low = 32767 * 10 ** (row_dbfs / 20)
    a_high = a_low * 10 ** (twist_db / 20)
    return [a_low * math.sin(2 * math.pi * low * n / RATE + phases[0])
            + a_high * math.sin(2 * math.pi * high * n / RATE + phases[1])
            for n in range(int(seconds * RATE))]


def silence(seconds: float) -> list[float]:
    return [0.0] * int(seconds * RATE)


def run(detector: DtmfDetector, data: bytes, frame: int = 320) -> str:
    """Feed whole frames (plus trailing silence so the last key is released)."""
    data += bytes(4 * frame)
    out = []
    for i in range(0, len(data) - frame + 1, frame):
        digit = detector.feed(data[i:i + frame])
        if digit:
            out.append(digit)
    return "".join(out)


def speech_like(seconds: float, rng: random.Random, level_dbfs: float = -12.0) -> list[float]:
    """A voiced sound: harmonics of a gliding pitch shaped by three formants (no digit)."""
    formants = [(rng.uniform(300, 900), 90.0), (rng.uniform(900, 2300), 120.0),
                (rng.uniform(2300, 3200), 160.0)]
    f0_start, f0_end = rng.uniform(85, 260), rng.uniform(85, 260)
    amp = 32767 * 10 ** (level_dbfs / 20) / 3
    n = int(seconds * RATE)
    phase = 0.0
    out = []
    harmonic_phases = [rng.uniform(0, 2 * math.pi) for _ in range(60)]
    for i in range(n):
        f0 = f0_start + (f0_end - f0_start) * i / n + 6 * math.sin(2 * math.pi * 5 * i / RATE)
        phase += 2 * math.pi * f0 / RATE
        value = 0.0
        k = 1
        while k * f0 < 3600 and k <= 60:
            f = k * f0
            gain = sum(1 / (1 + ((f - fc) / bw) ** 2) for fc, bw in formants)
            value += gain * math.sin(k * phase + harmonic_phases[k - 1])
            k += 1
        out.append(amp * value)
    return out


def test_every_digit_of_the_keypad() -> None:
    audio: list[float] = []
    for digit in "1234567890*#ABCD":
        audio += pair(digit, 0.08) + silence(0.08)
    assert run(DtmfDetector(), pcm(audio)) == "1234567890*#ABCD"


@pytest.mark.parametrize("offset", [0, 1, 37, 80, 159, 160, 233, 319])
def test_the_simulators_in_band_digits_at_any_frame_alignment(offset: int) -> None:
    # The same PCM the modem simulator puts on the downlink for remote_dtmf().
    data = bytes(2 * offset) + dtmf_pcm("0123456789*#", RATE)
    assert run(DtmfDetector(), data) == "0123456789*#"


def test_a_held_key_is_one_digit_and_two_presses_are_two() -> None:
    detector = DtmfDetector()
    assert run(detector, pcm(pair("5", 1.5))) == "5"
    assert run(detector, pcm(pair("5", 0.1) + silence(0.04) + pair("5", 0.1))) == "55"
    assert run(detector, pcm(pair("5", 0.1) + pair("6", 0.1))) == "56"


def test_debounce_states() -> None:
    detector = DtmfDetector()
    tone, quiet = pcm(pair("9", 0.06)), bytes(320)
    t0, t1, t2 = tone[:320], tone[320:640], tone[640:960]
    assert detector.feed(t0) is None and detector.state is KeyState.PRESSING
    # The second frame brings two windows: the one across the frames confirms the key.
    assert detector.feed(t1) == "9" and detector.state is KeyState.PRESSED
    assert detector.feed(t2) is None
    detector.feed(quiet)
    assert detector.state is KeyState.PRESSED  # one quiet window is not a release
    detector.feed(quiet)
    assert detector.state is KeyState.RELEASED
    assert detector.digits == 1 and detector.frames == 5
    # A frame on its own (after a reset) is one window: not enough for a key.
    detector.reset()
    assert detector.feed(t1) is None and detector.state is KeyState.PRESSING


def test_too_quiet_too_twisted_and_single_tones_are_not_digits() -> None:
    d = DtmfDetector()
    assert run(d, pcm(pair("1", 0.2, row_dbfs=-42))) == ""
    assert run(d, pcm(pair("1", 0.2, twist_db=12))) == ""
    assert run(d, pcm(pair("1", 0.2, twist_db=-12))) == ""
    single = [8000 * math.sin(2 * math.pi * f * n / RATE) for n in range(1600)
              for f in (697,)]
    assert run(d, pcm(single)) == ""
    # Two row tones at once, or dial tone (425 Hz): not a key.
    rows = [8000 * (math.sin(2 * math.pi * 697 * n / RATE) + math.sin(2 * math.pi * 770 * n / RATE))
            for n in range(1600)]
    assert run(d, pcm(rows)) == ""
    dial = [8000 * math.sin(2 * math.pi * 425 * n / RATE) for n in range(4000)]
    assert run(d, pcm(dial)) == ""


def test_noise_alone_gives_nothing_and_digits_survive_noise() -> None:
    rng = random.Random(7)
    noise = [rng.gauss(0, 32767 * 10 ** (-20 / 20)) for _ in range(RATE * 5)]
    assert run(DtmfDetector(), pcm(noise)) == ""
    audio: list[float] = []
    for digit in "147*2580369#":
        audio += pair(digit, 0.07, row_dbfs=-12) + silence(0.07)
    noisy = [s + rng.gauss(0, 32767 * 10 ** (-35 / 20)) for s in audio]  # ~20 dB SNR
    assert run(DtmfDetector(), pcm(noisy)) == "147*2580369#"


@pytest.mark.parametrize("seed", range(8))
def test_speech_like_sounds_give_no_digit(seed: int) -> None:
    rng = random.Random(seed)
    audio: list[float] = []
    for _ in range(4):  # syllables with pauses, 2.4 s in all
        audio += speech_like(0.5, rng, level_dbfs=rng.uniform(-20, -6)) + silence(0.1)
    assert run(DtmfDetector(), pcm(audio)) == ""


def test_a_click_of_a_tone_pair_is_not_a_digit() -> None:
    for offset in range(0, 320, 20):
        data = bytes(offset) + pcm(pair("8", 0.010))
        assert run(DtmfDetector(), data) == ""


@settings(max_examples=60, deadline=None)
@given(digits=st.text(alphabet=sorted(DIGITS), min_size=1, max_size=5),
       seed=st.integers(0, 2**32 - 1))
def test_key_presses_as_users_make_them(digits: str, seed: int) -> None:
    """Any digits, 40-200 ms tones, 40-200 ms pauses, -6..-28 dBFS, twist up to 6 dB,
    random phases, any frame alignment, a little noise: exactly those digits."""
    rng = random.Random(seed)
    audio = silence(rng.uniform(0, 0.04))
    for digit in digits:
        audio += pair(digit, rng.uniform(0.040, 0.2), row_dbfs=rng.uniform(-28, -6),
                      twist_db=rng.uniform(-6, 6),
                      phases=(rng.uniform(0, 6.3), rng.uniform(0, 6.3)))
        audio += silence(rng.uniform(0.040, 0.2))
    noise = 32767 * 10 ** (-50 / 20)
    audio = [s + rng.gauss(0, noise) for s in audio]
    assert run(DtmfDetector(), pcm(audio)) == digits


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=700), max_size=12))
def test_garbage_never_raises(frames: list[bytes]) -> None:
    detector = DtmfDetector()
    for frame in frames:
        got = detector.feed(frame)
        assert got is None or got in DIGITS
        assert detector.classify(memoryview(frame)) in (None, *DIGITS)


def test_16khz_frames() -> None:
    params = DtmfParams(rate=16000)
    low, high = FREQS["7"]
    audio = [8000 * (math.sin(2 * math.pi * low * n / 16000)
                     + math.sin(2 * math.pi * high * n / 16000)) for n in range(1600)]
    assert run(DtmfDetector(params), pcm(audio), frame=640) == "7"
