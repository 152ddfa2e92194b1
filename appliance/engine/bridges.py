"""Who hears what in the conference bridge: bridged pairs, hold music, ringback, recorders.

Every leg hears exactly one source at a time: its bridged peer, the music
on hold (while that peer has put the call on hold), the ringback tone (while
a transfer target rings), a prompt (a voice menu, a greeting) or nothing.
`feed` makes the bridge match that model; it runs after every media change,
because pjsua2 gives a leg a new bridge slot whenever its stream restarts
(re-INVITE, codec change), which silently drops the slot's connections.
Runs in the owner thread only.

A leg is anything with a `leg_id` and `audio_port()`: a SIP call (`legs.Leg`)
or a modem's audio port (`ports.PortLeg`), so a GSM line is bridged, played
to and recorded exactly like a SIP leg.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj

from .config import EngineError

log = logging.getLogger(__name__)

MUSIC = "@music"
RINGBACK = "@ringback"
PROMPT = "@prompt"

# Russian/CIS ringback (GOST): 425 Hz, one second on, four off.
RINGBACK_HZ = 425
RINGBACK_ON_MS = 1000
RINGBACK_OFF_MS = 4000


@dataclass
class Playing:
    """A prompt a leg hears: its player, its length, and when it started flowing."""

    play_id: int
    player: Any
    seconds: float
    started: float | None = None  # monotonic time of its first connection to the leg
    reported: bool = False  # its end was reported (it stays connected, silent, until replaced)


class Leg(Protocol):
    """What the bridge needs of a leg (a SIP call or a modem port)."""

    @property
    def leg_id(self) -> str:
        """The engine's id of the leg."""
        ...

    def audio_port(self) -> tuple[Any | None, bool]:
        """Its AudioMedia (None before media is up) and whether the far end holds it."""
        ...


class Bridges:
    """The bridge wiring of the engine's legs."""

    def __init__(self, legs: Mapping[str, Leg]) -> None:
        self._legs = legs
        self._hears: dict[str, str] = {}  # leg id -> peer leg id, MUSIC or RINGBACK
        self._feeding: dict[str, Any] = {}  # leg id -> the AudioMedia now sent to it
        self._recorders: dict[str, Any] = {}  # by the leg that owns the recording
        self._recorded_by: dict[str, str] = {}
        self._music: Any = None
        self._ringback: Any = None
        self._prompts: dict[str, Playing] = {}  # by leg id

    # --- the model ------------------------------------------------------------------
    def peer(self, leg_id: str) -> str | None:
        """The leg bridged with leg_id, if any."""
        what = self._hears.get(leg_id)
        return what if what is not None and not what.startswith("@") else None

    def pair(self, a: Leg, b: Leg, record_to: str | None = None) -> None:
        """Bridge a and b both ways; with record_to, mix both into that WAV file."""
        if record_to:
            recorder = pj.AudioMediaRecorder()
            try:
                recorder.createRecorder(record_to)
            except pj.Error as exc:
                raise EngineError(f"cannot record to {record_to}: {exc.info()}") from None
            self._recorders[a.leg_id] = recorder
            self._recorded_by[a.leg_id] = a.leg_id
            self._recorded_by[b.leg_id] = a.leg_id
        self._hears[a.leg_id] = b.leg_id
        self._hears[b.leg_id] = a.leg_id
        for leg in (a, b):
            self.feed(leg)
            self._record(leg)
            self._prompts.pop(leg.leg_id, None)
        log.info("bridge %s <-> %s", a.leg_id, b.leg_id)

    def play(self, leg: Leg, source: str) -> None:
        """Let leg hear MUSIC or RINGBACK (it leaves any bridge it was in)."""
        self._unpair_peer(leg.leg_id)
        self._hears[leg.leg_id] = source
        self.feed(leg)
        self._prompts.pop(leg.leg_id, None)

    def announce(self, leg: Leg, player: Any, play_id: int, seconds: float) -> None:
        """Let leg hear a prompt player (it leaves any bridge it was in).

        The player is pulled by the bridge only once it is connected, so a prompt started
        before the leg's media is up begins when it comes up (`media_changed`).
        """
        self._unpair_peer(leg.leg_id)
        old = self._prompts.get(leg.leg_id)
        self._prompts[leg.leg_id] = Playing(play_id, player, seconds)
        self._hears[leg.leg_id] = PROMPT
        if old is not None:
            # The same marker names a new player: disconnect the old one by hand.
            self._feeding.pop(leg.leg_id, None)
            dst, _held = leg.audio_port()
            if dst is not None:
                with contextlib.suppress(pj.Error):
                    old.player.stopTransmit(dst)
        self.feed(leg)

    def prompt_playing(self, leg_id: str) -> int | None:
        """The play id of the prompt leg_id hears, if any."""
        found = self._prompts.get(leg_id)
        return found.play_id if found is not None else None

    def prompts_done(self, now: float) -> list[tuple[str, int]]:
        """(leg id, play id) of the prompts that have played to their end by `now`."""
        done = [(leg_id, p) for leg_id, p in self._prompts.items()
                if not p.reported and p.started is not None and now >= p.started + p.seconds]
        for _leg_id, p in done:
            p.reported = True
        return [(leg_id, p.play_id) for leg_id, p in done]

    def silence(self, leg: Leg) -> None:
        """Let leg hear nothing (ends a prompt, music or ringback; not a bridge)."""
        if self.peer(leg.leg_id) is not None:
            return
        self._hears.pop(leg.leg_id, None)
        self.feed(leg)
        self._prompts.pop(leg.leg_id, None)

    def record_alone(self, leg: Leg, path: str) -> None:
        """Record what leg says (not what it hears) into a WAV file: a voice message."""
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except pj.Error as exc:
            raise EngineError(f"cannot record to {path}: {exc.info()}") from None
        self.release(leg.leg_id)
        self._recorders[leg.leg_id] = recorder
        self._recorded_by[leg.leg_id] = leg.leg_id
        self._record(leg)

    def gone(self, leg_id: str) -> str | None:
        """Forget a disconnected leg; returns the peer it was bridged with."""
        peer_id = self.peer(leg_id)
        if peer_id is not None:
            fed = self._feeding.get(peer_id)
            if fed is not None and fed is not self._music and fed is not self._ringback:
                # The leg's stream is already torn down: pjsua removed its bridge slot and
                # every connection with it, so there is nothing to disconnect (trying
                # logs a PJ_EINVAL error on every call).
                del self._feeding[peer_id]
        peer = self._unpair_peer(leg_id)
        self._hears.pop(leg_id, None)
        self._feeding.pop(leg_id, None)
        self._prompts.pop(leg_id, None)
        return peer

    def _unpair_peer(self, leg_id: str) -> str | None:
        peer = self.peer(leg_id)
        if peer is not None and self._hears.get(peer) == leg_id:
            del self._hears[peer]
            leg = self._legs.get(peer)
            if leg is not None:
                self.feed(leg)  # stop sending the old source to the peer
        return peer

    def replace(self, old_id: str, new: Leg) -> None:
        """new takes old's place: its peer, what it hears, its share of a recording."""
        what = self._hears.pop(old_id, None)
        self._feeding.pop(old_id, None)
        if what is not None:
            self._hears[new.leg_id] = what
            if self._hears.get(what) == old_id:
                self._hears[what] = new.leg_id
        if old_id in self._recorders:
            self._recorders[new.leg_id] = self._recorders.pop(old_id)
            for leg_id, owner in list(self._recorded_by.items()):
                if owner == old_id:
                    self._recorded_by[leg_id] = new.leg_id
        if old_id in self._recorded_by:
            self._recorded_by[new.leg_id] = self._recorded_by.pop(old_id)
        self.feed(new)
        self._record(new)
        if what is not None and not what.startswith("@"):
            peer = self._legs.get(what)
            if peer is not None:
                self.feed(peer)

    def release(self, leg_id: str) -> None:
        """Drop the recording a freed leg owned (closing the WAV file writes its length)."""
        owner = self._recorded_by.pop(leg_id, None)
        if owner is not None:
            self._recorders.pop(owner, None)
            for other in [k for k, v in self._recorded_by.items() if v == owner]:
                del self._recorded_by[other]

    def clear(self) -> None:
        """Drop every pjsua2 object (at shutdown, before the library goes)."""
        self._hears.clear()
        self._feeding.clear()
        self._recorders.clear()
        self._recorded_by.clear()
        self._prompts.clear()
        self._music = None
        self._ringback = None

    # --- sources --------------------------------------------------------------------
    def set_music(self, path: str) -> None:
        """Loop this WAV file as the music on hold (legs hearing it switch at once)."""
        player = pj.AudioMediaPlayer()
        try:
            player.createPlayer(path, 0)
        except pj.Error as exc:
            raise EngineError(f"cannot play {path}: {exc.info()}") from None
        listeners = [lid for lid, src in self._feeding.items() if src is self._music]
        self._music = player
        for leg_id in listeners:
            leg = self._legs.get(leg_id)
            if leg is not None:
                self.feed(leg)
        log.info("music on hold: %s", path)

    def _ringback_tone(self) -> Any:
        if self._ringback is None:
            tone = pj.ToneGenerator()
            tone.createToneGenerator(8000, 1)
            desc = pj.ToneDesc()
            desc.freq1 = RINGBACK_HZ
            desc.freq2 = 0
            desc.on_msec = RINGBACK_ON_MS
            desc.off_msec = RINGBACK_OFF_MS
            desc.volume = 0
            tones = pj.ToneDescVector()
            tones.append(desc)
            tone.play(tones, True)
            self._ringback = tone
        return self._ringback

    def _source_for(self, leg: Leg) -> Any:
        what = self._hears.get(leg.leg_id)
        if what is None:
            return None
        if what == MUSIC:
            return self._music
        if what == RINGBACK:
            return self._ringback_tone()
        if what == PROMPT:
            found = self._prompts.get(leg.leg_id)
            return found.player if found is not None else None
        peer = self._legs.get(what)
        if peer is None:
            return None
        port, held = peer.audio_port()
        if held:
            return self._music  # the peer put the call on hold
        return port

    # --- wiring ---------------------------------------------------------------------
    def media_changed(self, leg: Leg) -> None:
        """A leg's stream started, restarted, held or resumed: rewire it and its listeners."""
        self.feed(leg)
        self._record(leg)
        for other_id, what in list(self._hears.items()):
            if what == leg.leg_id:
                other = self._legs.get(other_id)
                if other is not None:
                    self.feed(other)

    def feed(self, leg: Leg) -> None:
        """Send leg whatever it should hear now."""
        dst, _held = leg.audio_port()
        old = self._feeding.pop(leg.leg_id, None)
        if dst is None:
            return
        src = self._source_for(leg)
        if old is not None and (src is None or _slot(old) != _slot(src)):
            # The old source's slot may be gone with its stream.
            with contextlib.suppress(pj.Error):
                old.stopTransmit(dst)
        if src is None:
            return
        try:
            src.startTransmit(dst)
        except pj.Error as exc:
            log.warning("connecting audio to %s failed: %s", leg.leg_id, exc.info())
            return
        self._feeding[leg.leg_id] = src
        playing = self._prompts.get(leg.leg_id)
        if playing is not None and playing.started is None and src is playing.player:
            playing.started = time.monotonic()

    def _record(self, leg: Leg) -> None:
        owner = self._recorded_by.get(leg.leg_id)
        recorder = self._recorders.get(owner) if owner is not None else None
        port, held = leg.audio_port()
        if recorder is not None and port is not None and not held:
            try:
                port.startTransmit(recorder)
            except pj.Error as exc:
                log.warning("recording %s failed: %s", leg.leg_id, exc.info())


def _slot(media: Any) -> int:
    with contextlib.suppress(pj.Error):
        return int(media.getPortId())
    return -1
