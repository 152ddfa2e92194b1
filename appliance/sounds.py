"""The box's own sounds: the default music on hold, and which file to play.

The default music is synthesised at first start (a slow arpeggio, no
licence to worry about); an admin replaces it by naming a prompt in
`box.music_on_hold`.
"""

from __future__ import annotations

import logging
import math
import struct
import wave
from pathlib import Path

from .db import Database

log = logging.getLogger(__name__)

RATE = 8000
# A C major arpeggio, up and down, each note 400 ms with soft edges. The pitches are
# rounded to 10 Hz (a few cents flat) so that tone detectors find them exactly.
MELODY_HZ = (520.0, 660.0, 780.0, 1040.0, 780.0, 660.0)
NOTE_S = 0.4
DEFAULT_MUSIC = "sounds/music-on-hold.wav"


def melody_samples(rounds: int = 4) -> list[int]:
    """16-bit samples of the default music: the arpeggio `rounds` times."""
    per_note = int(RATE * NOTE_S)
    fade = int(RATE * 0.03)
    out: list[int] = []
    for _ in range(rounds):
        for freq in MELODY_HZ:
            for i in range(per_note):
                edge = min(1.0, i / fade, (per_note - 1 - i) / fade)
                out.append(int(9000 * edge * math.sin(2 * math.pi * freq * i / RATE)))
    return out


def write_default_music(path: Path) -> None:
    """Write the default music on hold (8 kHz mono WAV) to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = melody_samples()
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    tmp.replace(path)


def music_on_hold(db: Database, data_dir: Path) -> Path:
    """The WAV file to play to held callers: the configured prompt, else the default."""
    conn = db.read()
    row = conn.execute(
        "SELECT p.path FROM box_settings s JOIN prompts p ON p.key = json_extract(s.value, '$')"
        " WHERE s.key = 'music_on_hold'").fetchone()
    if row is not None:
        chosen = data_dir / row[0]
        if chosen.is_file():
            return chosen
        log.warning("music on hold %s is missing; playing the default", chosen)
    default = data_dir / DEFAULT_MUSIC
    if not default.is_file():
        write_default_music(default)
    return default
