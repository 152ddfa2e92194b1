"""Importing the admin's audio: real WAVs made by sox and a real MP3 made by lame, converted
to the engine's 8 kHz mono 16-bit WAV; what cannot be used is refused with PromptError."""

from __future__ import annotations

import os
import struct
import subprocess
import wave
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.prompts import PromptError, convert_audio, duration_s
from appliance.prompts.convert import MAX_BYTES, resample
from appliance.prompts.wavfile import wav_bytes
from tests.support.tones import read_wav, tone_ratio

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=int(os.environ.get("PBX_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def sox(out: Path, *args: str) -> Path:
    """Make a file with sox (`args` go between the output options and the effects)."""
    subprocess.run(["sox", "-n", *args, str(out)], check=True, capture_output=True, timeout=60)
    return out


def tone_file(tmp: Path, name: str, *fmt: str, seconds: float = 1.5, freq: int = 1000) -> Path:
    """A sine of `seconds` at `freq` Hz in the format that the sox options `fmt` give."""
    out = tmp / name
    subprocess.run(["sox", "-n", *fmt, str(out), "synth", str(seconds), "sine", str(freq),
                    "vol", "0.5"], check=True, capture_output=True, timeout=60)
    return out


def engine_samples(tmp: Path, wav: bytes) -> list[float]:
    """The converted file, read back by the stdlib's wave module: 8 kHz mono 16-bit."""
    path = tmp / "converted.wav"
    path.write_bytes(wav)
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    samples, _rate = read_wav(path)
    return samples


def rms(samples: list[float]) -> float:
    return (sum(x * x for x in samples) / len(samples)) ** 0.5


def test_cd_quality_stereo_wav_from_sox(tmp_path: Path) -> None:
    # 44.1 kHz stereo: 1 kHz on the left, 600 Hz on the right; both survive the mixdown.
    src = tmp_path / "greeting.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(src), "synth", "2",
                    "sine", "1000", "sine", "600", "vol", "0.5"], check=True, timeout=60)
    samples = engine_samples(tmp_path, convert_audio(src.read_bytes(), src.name))
    assert len(samples) == pytest.approx(16000, abs=2)
    middle = samples[2000:14000]
    assert tone_ratio(middle, 8000, 1000) == pytest.approx(0.5, abs=0.05)
    assert tone_ratio(middle, 8000, 600) == pytest.approx(0.5, abs=0.05)
    # Each channel was a 0.5 sine; their average has an RMS of 0.5/sqrt(2)/sqrt(2).
    assert rms(middle) == pytest.approx(0.25, rel=0.03)


@pytest.mark.parametrize("fmt", [
    ("-r", "48000", "-c", "1", "-b", "24"),             # 24-bit (sox writes WAVE_FORMAT_EXTENSIBLE)
    ("-r", "32000", "-c", "2", "-b", "32"),             # 32-bit integer
    ("-r", "22050", "-c", "1", "-b", "8"),              # 8-bit unsigned
    ("-r", "16000", "-c", "1", "-b", "16"),             # wideband phone recording
    ("-r", "44100", "-c", "2", "-e", "floating-point", "-b", "32"),  # Audacity's default
    ("-r", "8000", "-c", "1", "-e", "a-law"),           # old PBX prompts
    ("-r", "8000", "-c", "1", "-e", "mu-law"),
    ("-r", "11025", "-c", "1", "-b", "16"),
], ids=["24bit-48k", "32bit-32k-stereo", "8bit-22k", "16k", "float-44k", "alaw", "mulaw",
        "11k"])
def test_wav_formats_from_sox(tmp_path: Path, fmt: tuple[str, ...]) -> None:
    src = tone_file(tmp_path, "in.wav", *fmt)
    samples = engine_samples(tmp_path, convert_audio(src.read_bytes(), src.name))
    assert len(samples) == pytest.approx(12000, abs=2)
    assert tone_ratio(samples[1000:11000], 8000, 1000) > 0.97
    assert rms(samples[1000:11000]) == pytest.approx(0.5 / 2 ** 0.5, rel=0.05)


def test_mp3_from_lame(tmp_path: Path) -> None:
    src = tone_file(tmp_path, "in.wav", "-r", "44100", "-c", "2", "-b", "16", seconds=3)
    mp3 = tmp_path / "greeting.mp3"
    subprocess.run(["lame", "--quiet", "-b", "128", str(src), str(mp3)], check=True, timeout=60)
    data = mp3.read_bytes()
    assert data[:3] == b"ID3" or data[0] == 0xFF  # a real MP3, not a renamed WAV
    samples = engine_samples(tmp_path, convert_audio(data, mp3.name))
    assert len(samples) / 8000 == pytest.approx(3.0, abs=0.08)
    assert tone_ratio(samples[4000:20000], 8000, 1000) > 0.97
    # A lossy codec: the level within 1 dB.
    assert rms(samples[4000:20000]) == pytest.approx(0.5 / 2 ** 0.5, rel=0.11)
    # Named differently, it is still found by its content.
    assert convert_audio(data, "upload.bin") == convert_audio(data, mp3.name)


def test_not_pcm_is_refused_with_its_name(tmp_path: Path) -> None:
    src = tone_file(tmp_path, "adpcm.wav", "-r", "8000", "-c", "1", "-e", "ima-adpcm")
    with pytest.raises(PromptError, match="IMA ADPCM WAV files are not supported"):
        convert_audio(src.read_bytes(), src.name)
    gsm = tone_file(tmp_path, "gsm.wav", "-r", "8000", "-c", "1", "-e", "gsm-full-rate")
    with pytest.raises(PromptError, match=r"GSM 6\.10"):
        convert_audio(gsm.read_bytes(), gsm.name)


def test_limits(tmp_path: Path) -> None:
    long = tone_file(tmp_path, "long.wav", "-r", "4000", "-c", "1", "-b", "8", seconds=601)
    with pytest.raises(PromptError, match=r"lasts 10\.0 minutes"):
        convert_audio(long.read_bytes(), long.name)
    with pytest.raises(PromptError, match="the limit is 20 MB"):
        convert_audio(wav_bytes(bytes(MAX_BYTES)), "big.wav")
    with pytest.raises(PromptError, match="is empty"):
        convert_audio(b"", "empty.wav")
    with pytest.raises(PromptError, match="neither a WAV nor an MP3"):
        convert_audio("Здравствуйте".encode(), "notes.txt")
    with pytest.raises(PromptError, match="could not be decoded as MP3"):
        convert_audio(b"\x00" * 4000, "broken.mp3")
    with pytest.raises(PromptError, match="contains no audio"):
        convert_audio(wav_bytes(b""), "silent.wav")


def test_streamed_wav_with_unknown_length(tmp_path: Path) -> None:
    # Recorders writing to a pipe leave the sizes at 0xFFFFFFFF; the bytes present count.
    pcm = struct.pack("<4000h", *([1000, -1000] * 2000))
    header = bytearray(wav_bytes(pcm))
    header[4:8] = header[40:44] = b"\xff\xff\xff\xff"
    samples = engine_samples(tmp_path, convert_audio(bytes(header), "stream.wav"))
    assert len(samples) == 4000


def test_duration_from_header(tmp_path: Path) -> None:
    path = tone_file(tmp_path, "d.wav", "-r", "16000", "-c", "2", "-b", "24", seconds=2.5)
    assert duration_s(path) == pytest.approx(2.5, abs=0.001)
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(PromptError, match="no format"):
        duration_s(tmp_path / "junk.wav")
    with pytest.raises(PromptError, match="cannot read"):
        duration_s(tmp_path / "missing.wav")


def test_resampler_keeps_the_band_and_stops_aliases() -> None:
    import numpy as np

    t = np.arange(44100) / 44100
    for freq, lo, hi in ((300, 0.99, 1.01), (3000, 0.97, 1.01), (5000, 0.0, 1e-3)):
        out = resample(np.sin(2 * np.pi * freq * t), 44100, 8000)[800:-800]
        gain = float(np.sqrt(np.mean(out ** 2)) * 2 ** 0.5)
        assert lo <= gain <= hi, (freq, gain)


# -- fuzzing: anything at all in, PromptError or a valid WAV out ------------------------------

def _outcome(data: bytes, name: str) -> None:
    try:
        out = convert_audio(data, name)
    except PromptError:
        return
    assert out[:4] == b"RIFF" and out[22:24] == b"\x01\x00" and out[24:28] == b"\x40\x1f\x00\x00"


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(["a.wav", "a.mp3", "a", ""]))
def test_fuzz_garbage(data: bytes, name: str) -> None:
    _outcome(data, name)


@FUZZ
@given(tag=st.sampled_from([1, 3, 6, 7, 0xFFFE, 2, 0x55, 0]),
       channels=st.integers(0, 10), rate=st.sampled_from([0, 1, 4000, 8000, 44100, 2**32 - 1]),
       bits=st.sampled_from([0, 4, 8, 16, 24, 32, 64, 65535]),
       align=st.one_of(st.none(), st.integers(0, 65535)),
       declared=st.sampled_from([0, 1, 7, 2**31, 2**32 - 1]),
       fmt_size=st.sampled_from([0, 14, 16, 18, 40, 2**32 - 1]),
       body=st.binary(max_size=600), cut=st.integers(0, 700))
def test_fuzz_wav_headers(tag: int, channels: int, rate: int, bits: int, align: int | None,
                          declared: int, fmt_size: int, body: bytes, cut: int) -> None:
    # align None: consistent with channels and bits, so the samples get decoded too.
    align = (channels * bits // 8) & 0xFFFF if align is None else align
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * max(align, 1) & 0xFFFFFFFF,
                      align, bits)
    if tag == 0xFFFE:
        fmt += struct.pack("<HHIH", 22, bits, 0, 1) + bytes(14)
    data = (b"RIFF" + struct.pack("<I", 2**32 - 1) + b"WAVE" + b"fmt " +
            struct.pack("<I", fmt_size) + fmt + b"data" + struct.pack("<I", declared) + body)
    _outcome(data[:cut] if cut < len(data) else data, "h.wav")


@pytest.fixture(scope="module")
def real_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("mp3")
    src = tone_file(tmp, "in.wav", "-r", "22050", "-c", "1", "-b", "16", seconds=0.5)
    subprocess.run(["lame", "--quiet", str(src), str(tmp / "in.mp3")], check=True, timeout=60)
    return (tmp / "in.mp3").read_bytes()


@FUZZ
@given(cut=st.integers(0, 10000), flips=st.lists(st.tuples(st.integers(0, 10000),
                                                           st.integers(1, 255)), max_size=20))
def test_fuzz_damaged_mp3(real_mp3: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(real_mp3[:cut] if cut < len(real_mp3) else real_mp3)
    for pos, xor in flips:
        if pos < len(data):
            data[pos] ^= xor
    _outcome(bytes(data), "d.mp3")
