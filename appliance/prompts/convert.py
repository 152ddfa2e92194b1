"""The admin's audio to the engine's format: WAV or MP3 in, 8 kHz mono 16-bit WAV out.

numpy does the sample work (a 10-minute 48 kHz stereo upload is 57 million samples; pure
Python would take minutes), and soundfile's bundled libsndfile decodes MP3 (it ships wheels
with MP3 support for x86_64 and aarch64). Both are imported only here, so the engine, which
only looks prompts up, never loads them.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from .wavfile import (
    FORMAT_ALAW,
    FORMAT_FLOAT,
    FORMAT_MULAW,
    RATE,
    PromptError,
    WavInfo,
    info_of_bytes,
    wav_bytes,
)

MAX_BYTES = 20 * 1024 * 1024
MAX_SECONDS = 600.0
# Zero crossings of the resampling kernel on each side: ~30 dB of alias rejection more per
# ten; twelve keeps telephone-band images well below the line noise at modest cost.
ZERO_CROSSINGS = 12
KAISER_BETA = 8.0
CHUNK = 8192  # output samples resampled per numpy step (bounds the temporary matrix)

# A 1-D float32 numpy array in -1..1 (numpy's own types are too loose to help). float32, not
# float64: a 20 MB upload of 8-bit samples is 20 million of them, and this runs on a Pi.
Samples = Any
FLOAT = np.float32


def convert_audio(data: bytes, filename: str) -> bytes:
    """An 8 kHz mono s16le WAV from an uploaded WAV or MP3; PromptError if it cannot be used."""
    return engine_wav(decode_to_rate(data, filename))


def engine_wav(samples: Samples) -> bytes:
    """The engine's WAV file (8 kHz mono 16-bit) of float samples at 8 kHz."""
    pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
    return wav_bytes(pcm.tobytes())


def decode_to_rate(data: bytes, filename: str, rate_out: int = RATE) -> Samples:
    """Mono float samples at `rate_out` from a WAV or MP3 file in memory."""
    name = filename or "the file"
    if len(data) > MAX_BYTES:
        raise PromptError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is "
                          f"{MAX_BYTES // (1024 * 1024)} MB (an MP3, or a mono 8 or 16 kHz "
                          "WAV, of the same recording is much smaller)")
    if not data:
        raise PromptError(f"{name} is empty")
    if data[:4] in (b"RIFF", b"RIFX"):
        samples, rate = _decode_wav(data, name)
    elif _looks_like_mp3(data) or filename.lower().endswith(".mp3"):
        samples, rate = _decode_mp3(data, name)
    else:
        raise PromptError(f"{name} is neither a WAV nor an MP3 file")
    if samples.size == 0:
        raise PromptError(f"{name} contains no audio")
    return resample(samples, rate, rate_out)


def _check_length(frames: int, rate: int, name: str) -> None:
    if frames / rate > MAX_SECONDS:
        raise PromptError(f"{name} lasts {frames / rate / 60:.1f} minutes; a prompt may last "
                          f"at most {MAX_SECONDS / 60:.0f}")


def _decode_wav(data: bytes, name: str) -> tuple[Samples, int]:
    """Mono float samples and the rate of a WAV file in memory."""
    info = info_of_bytes(data, name)
    _check_length(info.frames, info.rate, name)
    raw = memoryview(data)[info.data_offset:info.data_offset + info.frames * info.block_align]
    return _mono(_pcm_to_float(raw, info), info.channels), info.rate


def _pcm_to_float(raw: memoryview, info: WavInfo) -> Samples:
    """Interleaved samples in -1..1 from a data chunk of the header's format."""
    if info.format_tag == FORMAT_FLOAT:
        values = np.frombuffer(raw, dtype="<f4" if info.bits == 32 else "<f8")
        return np.clip(np.nan_to_num(values.astype(FLOAT)), -1.0, 1.0)
    if info.format_tag in (FORMAT_ALAW, FORMAT_MULAW):
        table = _ALAW if info.format_tag == FORMAT_ALAW else _MULAW
        return table[np.frombuffer(raw, dtype=np.uint8)]
    if info.bits == 8:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(raw, dtype=np.uint8).astype(FLOAT) - 128) / FLOAT(128)
    if info.bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(FLOAT) / FLOAT(32768)
    if info.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return ((v ^ 0x800000) - 0x800000).astype(FLOAT) / FLOAT(8388608)
    return np.frombuffer(raw, dtype="<i4").astype(FLOAT) / FLOAT(2147483648)


def _mono(interleaved: Samples, channels: int) -> Samples:
    """The channels averaged into one."""
    if channels == 1:
        return interleaved
    return interleaved.reshape(-1, channels).mean(axis=1)


def _looks_like_mp3(data: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame sync at the start."""
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _decode_mp3(data: bytes, name: str) -> tuple[Samples, int]:
    """Mono float samples and the rate of an MP3 file in memory."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            if f.format != "MP3":
                raise PromptError(f"{name} is not an MP3 file (it looks like {f.format})")
            rate, channels = int(f.samplerate), int(f.channels)
            if not 4000 <= rate <= 192000 or not 1 <= channels <= 8:
                raise PromptError(f"{name}: an MP3 of {rate} Hz, {channels} channel(s) "
                                  "cannot be used")
            # Read in blocks and stop at the limit: the header's length is only an estimate
            # for MP3, and a decoder must not be led through hours of audio.
            blocks: list[Samples] = []
            got = 0
            while True:
                block = f.read(65536, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                got += block.shape[0]
                _check_length(got, rate, name)
                blocks.append(block.mean(axis=1))
    except PromptError:
        raise
    except Exception as exc:  # libsndfile's errors and anything its decoder trips on
        raise PromptError(f"{name} could not be decoded as MP3: {exc}") from None
    return (np.concatenate(blocks) if blocks else np.zeros(0, FLOAT)), rate


def resample(x: Samples, rate_in: int, rate_out: int) -> Samples:
    """Band-limited resampling (windowed sinc, polyphase) of mono float samples."""
    if rate_in == rate_out or x.size == 0:
        return x
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    taps, half = _kernel(up, rate_in, rate_out)
    n_out = (x.size * up) // down
    padded = np.concatenate([np.zeros(half, FLOAT), x.astype(FLOAT, copy=False),
                             np.zeros(half + 1, FLOAT)])
    offsets = np.arange(-half + 1, half + 1)
    out = np.empty(n_out, FLOAT)
    for start in range(0, n_out, CHUNK):
        n = np.arange(start, min(start + CHUNK, n_out), dtype=np.int64)
        base = (n * down) // up
        phase = (n * down) % up
        window = padded[base[:, None] + offsets[None, :] + half]
        out[start:start + n.size] = np.einsum("ij,ij->i", window, taps[phase])
    return out


def _kernel(up: int, rate_in: int, rate_out: int) -> tuple[Samples, int]:
    """Per-phase filter taps (up x 2*half) and the half width, in input samples."""
    # Cut off at 90% of the lower Nyquist frequency, in cycles per input sample.
    cutoff = 0.45 * min(rate_in, rate_out) / rate_in
    half = math.ceil(ZERO_CROSSINGS / (2 * cutoff))
    offsets = np.arange(-half + 1, half + 1)
    # Output sample at input time base + p/up takes input base + j: the distance is p/up - j.
    d = np.arange(up)[:, None] / up - offsets[None, :]
    reach = ZERO_CROSSINGS / (2 * cutoff)
    inside = np.clip(1.0 - (d / reach) ** 2, 0.0, None)
    taps = 2 * cutoff * np.sinc(2 * cutoff * d) * np.i0(KAISER_BETA * np.sqrt(inside))
    taps = np.where(np.abs(d) < reach, taps, 0.0)
    taps /= taps.sum(axis=1, keepdims=True)  # unity gain at DC in every phase
    return taps.astype(FLOAT), half


def _g711_tables() -> tuple[Samples, Samples]:
    """Linear values (-1..1) of every A-law and mu-law byte (ITU-T G.711 expansion)."""
    codes = np.arange(256)
    # mu-law: bits are inverted; segment (exponent) in bits 4-6, step in bits 0-3.
    u = ~codes & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    mulaw = np.where(u & 0x80, -magnitude, magnitude) / 32768.0
    # A-law: even bits are inverted; a set sign bit means positive.
    a = codes ^ 0x55
    exponent, mantissa = (a >> 4) & 7, a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8,
                         ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    alaw = np.where(a & 0x80, magnitude, -magnitude) / 32768.0
    return alaw.astype(FLOAT), mulaw.astype(FLOAT)


_ALAW, _MULAW = _g711_tables()
