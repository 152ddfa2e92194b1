"""Prompt players: WAV files played once to a leg, with an end-of-file notice.

pjsua2 calls `onEof2` on the conference bridge's clock thread. That thread must never
wait on Python work (see pjsua2-notes: a Python port couples the bridge to the GIL), so the
callback only queues a command for the owner thread, which reports the end as a
`PromptEvent` and drops the player there: a player is never destroyed in its own callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pjsua2 as pj

from .config import EngineError

log = logging.getLogger(__name__)


class PromptPlayer(pj.AudioMediaPlayer):
    """One prompt (or a list of them, played in order), once."""

    def __init__(self, on_end: Callable[[], None]) -> None:
        super().__init__()
        self._on_end = on_end
        self._ended = False

    def onEof2(self) -> None:
        """End of the file (of the last file of a list): tell the owner, once."""
        try:
            if not self._ended:
                self._ended = True
                self._on_end()
        except Exception:
            log.exception("prompt end callback failed")


def open_player(paths: Sequence[str], on_end: Callable[[], None]) -> PromptPlayer:
    """A player for these WAV files (8 kHz mono 16-bit is what the bridge runs at)."""
    if not paths:
        raise EngineError("play_prompt needs at least one file")
    player = PromptPlayer(on_end)
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
