"""WAV headers: find the format and the audio data of a RIFF/WAVE file; write the engine's WAV.

Pure Python without numpy, because the engine imports it (for `duration_s`) and must stay
small; decoding the samples themselves is in `convert.py`.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The engine's format: what the conference bridge runs at, so players need no resampling.
RATE = 8000

FORMAT_PCM = 0x0001
FORMAT_FLOAT = 0x0003
FORMAT_ALAW = 0x0006
FORMAT_MULAW = 0x0007
FORMAT_EXTENSIBLE = 0xFFFE

FORMAT_NAMES = {
    0x0002: "Microsoft ADPCM", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0055: "MP3",
    0x0050: "MPEG", 0x0064: "G.726", 0x0067: "G.722", 0x00FF: "AAC",
}
# Chunks walked before giving up: a real file has a handful; garbage must not loop for long.
MAX_CHUNKS = 512


class PromptError(ValueError):
    """Audio that cannot be used as a prompt, with a message for the admin."""


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says: the sample format and where the samples are."""

    format_tag: int  # PCM, float, A-law or mu-law (EXTENSIBLE is resolved to its subformat)
    channels: int
    rate: int
    bits: int
    block_align: int
    data_offset: int
    data_size: int  # clipped to the bytes actually present

    @property
    def frames(self) -> int:
        """Sample frames in the data chunk."""
        return self.data_size // self.block_align

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return self.frames / self.rate


def read_header(f: BinaryIO, size: int, name: str = "the file") -> WavInfo:
    """Walk the RIFF chunks of a WAV of `size` bytes; raise PromptError if it is not usable."""
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        raise PromptError(f"{name} is not a WAV file (no RIFF/WAVE header)")
    if head[:4] == b"RIFX":
        raise PromptError(f"{name} is a big-endian WAV (RIFX); save it as an ordinary WAV")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    for _ in range(MAX_CHUNKS):
        f.seek(pos)
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt = _parse_fmt(f.read(min(csize, 64)), name)
        elif cid == b"data":
            if fmt is None:
                raise PromptError(f"{name}: the audio data comes before its format (fmt chunk)")
            tag, channels, rate, bits, align = fmt
            # Recorders that stream often leave the size at 0 or 0xFFFFFFFF; a cut file
            # declares more than it has. Either way: what is really there counts.
            present = max(size - body, 0)
            declared = csize if 0 < csize < 0xFFFFFFFF else present
            return WavInfo(tag, channels, rate, bits, align, body, min(declared, present))
        pos = body + csize + (csize & 1)  # chunks are padded to an even length
        if pos > size:
            break
    if fmt is None:
        raise PromptError(f"{name}: the WAV file has no format (fmt) chunk")
    raise PromptError(f"{name}: the WAV file has no audio data (data chunk)")


def _parse_fmt(raw: bytes, name: str) -> tuple[int, int, int, int, int]:
    """(format tag, channels, rate, bits, block align) from a fmt chunk, checked."""
    if len(raw) < 16:
        raise PromptError(f"{name}: the WAV format chunk is truncated")
    tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", raw[:16])
    if tag == FORMAT_EXTENSIBLE:
        if len(raw) < 26:
            raise PromptError(f"{name}: the WAV extensible format chunk is truncated")
        tag = struct.unpack("<H", raw[24:26])[0]  # the first two bytes of the subformat GUID
    if tag not in (FORMAT_PCM, FORMAT_FLOAT, FORMAT_ALAW, FORMAT_MULAW):
        what = FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
        raise PromptError(f"{name}: {what} WAV files are not supported; save the recording as "
                          "PCM WAV (16-bit is best) or as MP3")
    allowed = {FORMAT_PCM: (8, 16, 24, 32), FORMAT_FLOAT: (32, 64),
               FORMAT_ALAW: (8,), FORMAT_MULAW: (8,)}[tag]
    if bits not in allowed:
        raise PromptError(f"{name}: {bits}-bit samples are not supported in this WAV format "
                          f"(use {', '.join(map(str, allowed))}-bit)")
    if not 1 <= channels <= 8:
        raise PromptError(f"{name}: {channels} channels; a prompt needs mono or stereo")
    if not 4000 <= rate <= 192000:
        raise PromptError(f"{name}: a sample rate of {rate} Hz is not supported (4-192 kHz)")
    if align != channels * bits // 8:
        raise PromptError(f"{name}: the WAV header is inconsistent (block align {align} for "
                          f"{channels} x {bits}-bit)")
    return tag, channels, rate, bits, align


def info_of_bytes(data: bytes, name: str = "the file") -> WavInfo:
    """The header of a WAV file held in memory."""
    return read_header(io.BytesIO(data), len(data), name)


def duration_s(path: Path) -> float:
    """Seconds of audio in a WAV file, from its header; PromptError if it is not a usable WAV."""
    try:
        with open(path, "rb") as f:
            return read_header(f, os.fstat(f.fileno()).st_size, str(path)).duration_s
    except OSError as exc:
        raise PromptError(f"cannot read {path}: {exc.strerror or exc}") from None


def wav_bytes(pcm: bytes, rate: int = RATE) -> bytes:
    """A mono 16-bit PCM WAV file (44-byte header) around little-endian samples."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16,
                         FORMAT_PCM, 1, rate, rate * 2, 2, 16, b"data", len(pcm))
    return header + pcm


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
