"""Tone detection for audio checks: Goertzel power at chosen frequencies."""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path


def read_wav(path: Path) -> tuple[list[float], int]:
    """Mono 16-bit PCM samples (scaled to -1..1) and the sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(raw)
    return [s / 32768.0 for s in samples], rate


def goertzel_power(samples: list[float], rate: int, freq: float) -> float:
    """Normalised power of one frequency in the samples."""
    n = len(samples)
    if n == 0:
        return 0.0
    k = round(n * freq / rate)
    w = 2 * math.pi * k / n
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return power / (n * n)


def _blocks(samples: list[float], rate: int, block_s: float) -> list[list[float]]:
    size = max(int(rate * block_s), 1)
    if len(samples) < 2 * size:
        return [samples]
    return [samples[i:i + size] for i in range(0, len(samples) - size + 1, size)]


def tone_ratio(samples: list[float], rate: int, freq: float, block_s: float = 0.1) -> float:
    """Share of the signal's energy that sits at freq (1.0 = a pure tone).

    Measured over 100 ms blocks and summed without phase: a jitter buffer that drops or
    repeats a 10 ms frame shifts a tone's phase (by 180 degrees for odd multiples of
    50 Hz), which would cancel a single long window although every block is clean.
    """
    blocks = _blocks(samples, rate, block_s)
    energy = sum(sum(x * x for x in b) / len(b) for b in blocks)
    if energy == 0:
        return 0.0
    # A pure sine of amplitude A has mean energy A^2/2 and Goertzel power A^2/4.
    power = sum(goertzel_power(b, rate, freq) for b in blocks)
    return min(2 * power / energy, 1.0)


def dominant(samples: list[float], rate: int, candidates: list[float],
             block_s: float = 0.1) -> tuple[float, float]:
    """The candidate frequency with the most energy, and its energy share."""
    blocks = _blocks(samples, rate, block_s)
    best = max(candidates, key=lambda f: sum(goertzel_power(b, rate, f) for b in blocks))
    return best, tone_ratio(samples, rate, best, block_s)


def middle(samples: list[float], rate: int, seconds: float) -> list[float]:
    """Up to `seconds` of audio from the middle (skips set-up and tear-down)."""
    want = int(rate * seconds)
    if len(samples) <= want:
        return samples
    start = (len(samples) - want) // 2
    return samples[start:start + want]


def mulaw_tone(freq: float, seconds: float, rate: int = 8000, amplitude: float = 0.5) -> bytes:
    """Raw G.711 u-law samples of a sine (what SIPp's rtp_stream plays)."""
    out = bytearray()
    for n in range(int(seconds * rate)):
        sample = int(amplitude * 32767 * math.sin(2 * math.pi * freq * n / rate))
        out.append(_linear_to_ulaw(sample))
    return bytes(out)


def _linear_to_ulaw(sample: int) -> int:
    """ITU-T G.711 u-law encoding of one 16-bit sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = 7
    for exp in range(7, -1, -1):
        if sample & (0x4000 >> (7 - exp)):
            exponent = exp
            break
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def write_wav(path: Path, freq: float, seconds: float, rate: int = 8000,
              amplitude: float = 0.5) -> None:
    """A mono 16-bit PCM WAV file holding a sine (a tone source for softphones)."""
    samples = array.array("h", (int(amplitude * 32767 * math.sin(2 * math.pi * freq * n / rate))
                                for n in range(int(seconds * rate))))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def timeline(samples: list[float], rate: int, labels: dict[float, str],
             frame_s: float = 0.1, share: float = 0.6) -> list[tuple[str, float]]:
    """What was heard over time: runs of (label, seconds), frame by frame.

    A frame is labelled by its dominant candidate frequency when that holds at
    least `share` of the frame's energy; quiet or mixed frames are "-".
    """
    size = int(rate * frame_s)
    runs: list[tuple[str, float]] = []
    for start in range(0, len(samples) - size + 1, size):
        frame = samples[start:start + size]
        energy = sum(x * x for x in frame) / size
        label = "-"
        if energy > 1e-5:
            freq, part = dominant(frame, rate, list(labels))
            if part >= share:
                label = labels[freq]
        if runs and runs[-1][0] == label:
            runs[-1] = (label, round(runs[-1][1] + frame_s, 3))
        else:
            runs.append((label, frame_s))
    return runs


def heard_in_order(runs: list[tuple[str, float]], expected: list[str],
                   min_s: float = 0.5) -> bool:
    """True if the labels in `expected` each last at least min_s, in that order.

    Gaps of up to 0.3 s inside a label (a note change, a re-INVITE) do not split it.
    """
    merged: list[tuple[str, float]] = []
    for label, seconds in runs:
        if label == "-" and seconds <= 0.3:
            continue
        if merged and merged[-1][0] == label:
            merged[-1] = (label, merged[-1][1] + seconds)
        else:
            merged.append((label, seconds))
    long = [label for label, seconds in merged if seconds >= min_s and label != "-"]
    it = iter(long)
    return all(any(label == want for label in it) for want in expected)


def tone_presence(samples: list[float], rate: int, freq: float, share: float = 0.8,
                  block_s: float = 0.1) -> float:
    """Fraction of 100 ms blocks in which freq holds at least `share` of the energy.

    Robust to the odd block a loaded machine spoils (a late packet concealed by the jitter
    buffer) while silence, another call's tone or noise still score near zero.
    """
    blocks = _blocks(samples, rate, block_s)
    good = sum(1 for b in blocks if tone_ratio(b, rate, freq, block_s) >= share)
    return good / len(blocks)
