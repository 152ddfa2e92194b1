"""Prompt players: WAV files played once to a leg.

A prompt's end is timed, not taken from pjsua2's end-of-file callback: that callback comes
when the player has *read* the last of the file into its buffer (a quarter of a second or
more before the caller has heard it), and it runs on the conference bridge's clock thread.
The bridge notes when a prompt really starts flowing to its leg (`bridges.Playing`), and
the owner's loop reports the end once the files' length has passed.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence

import pjsua2 as pj

from .config import EngineError


def wav_seconds(paths: Sequence[str]) -> float:
    """The total length of these WAV files (EngineError if one cannot be read)."""
    total = 0.0
    for path in paths:
        try:
            with wave.open(path, "rb") as w:
                total += w.getnframes() / float(w.getframerate() or 8000)
        except (OSError, EOFError, wave.Error) as exc:
            raise EngineError(f"cannot play {path}: {exc}") from None
    return total


def open_player(paths: Sequence[str]) -> pj.AudioMediaPlayer:
    """A player for these WAV files, once (8 kHz mono 16-bit is what the bridge runs at)."""
    if not paths:
        raise EngineError("play_prompt needs at least one file")
    player = pj.AudioMediaPlayer()
    try:
        if len(paths) == 1:
            player.createPlayer(paths[0], pj.PJMEDIA_FILE_NO_LOOP)
        else:
            files = pj.StringVector()
            for path in paths:
                files.append(path)
            player.createPlaylist(files, "prompts", pj.PJMEDIA_FILE_NO_LOOP)
    except pj.Error as exc:
        raise EngineError(f"cannot play {', '.join(paths)}: {exc.info()}") from None
    return player
