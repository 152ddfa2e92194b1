"""The pjsua2 owner thread: the only code in the box that touches pjsua2.

The rules (shared/reference/pjsua2-notes.md) this module exists to keep:
one thread creates the library, polls it, runs every command and frees every
object; callbacks never raise and only copy data out; finished calls are
released by the loop, never inside their own callback; each Python thread
that may run the garbage collector is registered with pjlib; shutdown goes
hangup -> drain -> drop references -> gc -> libDestroy.
"""

from __future__ import annotations

import collections
import concurrent.futures
import gc
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from .bridges import MUSIC, RINGBACK, Bridges
from .config import EngineConfig, EngineError
from .events import (
    DtmfEvent,
    EngineEvent,
    LegEvent,
    LegInfo,
    LegState,
    MediaStats,
    PromptEvent,
    ReplacedEvent,
    TransferEvent,
)
from .legs import Leg, headers_of, request_user_of
from .players import open_player, wav_seconds
from .ports import PortAudio, PortLeg
from .quiet import stdout_silenced

log = logging.getLogger(__name__)

REAP_EVERY_S = 2.0  # how often legs pjsua forgot are looked for (see _reap_lost)
# Poll interval of libHandleEvents: the worst-case latency of a command (pjsua2 has no
# way to wake the poll). 2 ms keeps post-dial delay near 5 ms; idle it costs ~1 % of a
# core on the 2-core x86 development machine (10 ms gave 14 ms post-dial delay).
POLL_MS = 2
LIBRARY_WAIT_S = 30.0
# Held by the owner thread from creating pjsua2's Endpoint to destroying it (see run()).
_LIBRARY = threading.Lock()
PREFERRED_CODECS = ("PCMA/8000", "PCMU/8000", "G722/16000", "opus/48000")


class Owner(threading.Thread):
    """Owns pjsua2: runs commands from a queue and reports events out."""

    def __init__(self, config: EngineConfig, emit: Callable[[EngineEvent], None]) -> None:
        super().__init__(name="pjsua2-owner", daemon=True)
        self.config = config
        self._emit = emit
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._commands = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.started = concurrent.futures.Future[dict[str, Any]]()
        self._ids = itertools.count(1)
        self.ep: pj.Endpoint | None = None
        self._account: _Account | None = None
        self._legs: dict[str, Leg] = {}
        # Modem audio ports: legs of the bridge that are no SIP call (ports.py).
        self._ports: dict[str, PortLeg] = {}
        self._next_reap = 0.0
        self._lost: set[str] = set()  # legs pjsua no longer knew at the last check
        self._finished: list[str] = []
        every: collections.ChainMap[str, Leg | PortLeg] = collections.ChainMap(
            self._legs, self._ports)
        self.bridges = Bridges(every)
        self._replacing: dict[str, Leg] = {}  # old leg id -> the Leg replacing it
        # The files of a prompt still to come, by leg: (play id, paths).
        self._prompt_queue: dict[str, tuple[int, list[str]]] = {}
        # Set by the box once the SIP edge runs: does a Refer-To name the box itself?
        self.transfer_target_ok: Callable[[str], bool] = lambda _uri: False
        self.last_poll = time.monotonic()

    # --- called from other threads -------------------------------------------------
    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Queue fn to run in the owner thread; the future gets its result."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._stopping.is_set() or not self.is_alive():
            fut.set_exception(EngineError("the engine is not running"))
        else:
            self._commands.put((fn, fut))
        return fut

    def register_thread(self, name: str) -> None:
        """Register the calling Python thread with pjlib (gc may free objects there)."""
        if self.ep is not None and not self.ep.libIsThreadRegistered():
            self.ep.libRegisterThread(name)

    def stop(self) -> None:
        """Ask the loop to shut the library down and exit."""
        self._stopping.set()

    # --- the owner thread ------------------------------------------------------------
    def run(self) -> None:
        # pjsua2's Endpoint is one per process, and creating a second while the first is
        # still being destroyed aborts the process: an engine started right after another
        # one stopped (tests, a restart in place) waits for the old one to be gone.
        if not _LIBRARY.acquire(timeout=LIBRARY_WAIT_S):
            self.started.set_exception(EngineError("the previous engine is still shutting down"))
            return
        try:
            self._run()
        finally:
            _LIBRARY.release()

    def _run(self) -> None:
        try:
            info = self._start_library()
        except pj.Error as exc:
            # pjsua2's Error has an empty str(); info() says what failed (a port in use...).
            log.error("pjsua2 failed to start: %s", exc.info())
            self.started.set_exception(EngineError(exc.info()))
            self._shutdown()
            return
        except Exception as exc:
            log.exception("pjsua2 failed to start")
            self.started.set_exception(exc)
            return
        self.started.set_result(info)
        try:
            while not self._stopping.is_set():
                self.ep_handle_events()
                self._run_commands()
                self._release_finished()
                self.last_poll = time.monotonic()
                for leg_id, play_id in self.bridges.prompts_done(self.last_poll):
                    self._prompt_ended(leg_id, play_id)
                if self.last_poll >= self._next_reap:
                    self._next_reap = self.last_poll + REAP_EVERY_S
                    self._reap_lost()
        except Exception:
            log.exception("pjsua2 owner loop crashed")
        finally:
            self._shutdown()

    def ep_handle_events(self) -> None:
        """Poll SIP and timers for up to POLL_MS."""
        assert self.ep is not None
        self.ep.libHandleEvents(POLL_MS)

    def _run_commands(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except Exception as exc:
                fut.set_exception(exc)

    def _start_library(self) -> dict[str, Any]:
        cfg = self.config
        ep = pj.Endpoint()
        with stdout_silenced():
            ep.libCreate()
        self.ep = ep
        ep_cfg = pj.EpConfig()
        # One thread polls everything (this one); callbacks arrive here only.
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.maxCalls = cfg.max_calls
        ep_cfg.uaConfig.userAgent = "office-pbx engine"
        ep_cfg.logConfig.level = cfg.log_level
        ep_cfg.logConfig.consoleLevel = cfg.log_level
        ep_cfg.logConfig.msgLogging = 0
        # The bridge at 8 kHz unless wideband calls need it: 16 kHz resamples
        # every G.711 port and costs ~4.5x CPU.
        ep_cfg.medConfig.clockRate = cfg.clock_rate
        ep_cfg.medConfig.sndClockRate = cfg.clock_rate
        ep_cfg.medConfig.maxMediaPorts = cfg.max_calls * 2 + 64
        ep_cfg.medConfig.noVad = True
        ep_cfg.medConfig.ecTailLen = 0
        # No media worker thread: the owner thread alone polls the ioqueue. With two pollers,
        # pjlib's epoll (EPOLLEXCLUSIVE/ONESHOT) sometimes never re-armed an RTP socket: its
        # packets piled up unread (ss showed a full Recv-Q) and that leg went silent.
        ep_cfg.medConfig.threadCnt = 0
        ep.libInit(ep_cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = cfg.sip_port
        tcfg.boundAddress = cfg.bind
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcfg)
        ep.audDevManager().setNullDev()
        ep.libStart()
        self._set_codec_priorities()

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:engine@{cfg.bind}:{cfg.sip_port}"
        acfg.mediaConfig.transportConfig.port = cfg.rtp_port_min
        acfg.mediaConfig.transportConfig.portRange = cfg.rtp_port_max - cfg.rtp_port_min
        acfg.mediaConfig.transportConfig.boundAddress = cfg.media_bind or cfg.bind
        if cfg.media_address:
            acfg.mediaConfig.transportConfig.publicAddress = cfg.media_address
        acfg.natConfig.sdpNatRewriteUse = 0
        if cfg.outbound_proxy:
            acfg.sipConfig.proxies.append(cfg.outbound_proxy)
        # IPv4 only. Left at its default, pjsua probes IPv6 for every
        # call by resolving the host name, which stalls the owner thread for
        # the resolver timeout (5 s) on a box whose name is not in DNS.
        acfg.mediaConfig.ipv6Use = pj.PJSUA_IPV6_DISABLED
        self._account = _Account(self)
        self._account.create(acfg, True)
        return self.describe()

    def _set_codec_priorities(self) -> None:
        assert self.ep is not None
        for codec in self.ep.codecEnum2():
            name = codec.codecId
            prio = 0
            for rank, wanted in enumerate(PREFERRED_CODECS):
                if name.lower().startswith(wanted.lower()):
                    prio = 250 - rank
            self.ep.codecSetPriority(name, prio)

    def describe(self) -> dict[str, Any]:
        """Version, effective limits and codecs of the running library."""
        assert self.ep is not None
        return {
            "pjsua2_version": self.ep.libVersion().full,
            **compiled_limits(),
            "max_calls": self.config.max_calls,
            "codecs": [c.codecId for c in self.ep.codecEnum2() if c.priority > 0],
            "clock_rate": self.config.clock_rate,
        }

    # --- leg bookkeeping (owner thread only) -----------------------------------------
    def new_leg_id(self) -> str:
        """A leg id that is never reused (pjsua call ids are)."""
        return f"L{next(self._ids)}"

    def adopt(self, leg: Leg) -> None:
        """Keep a leg alive until it is DISCONNECTED."""
        self._legs[leg.leg_id] = leg

    def leg(self, leg_id: str) -> Leg:
        """The live leg with that id, or EngineError."""
        try:
            return self._legs[leg_id]
        except KeyError:
            raise EngineError(f"no such leg {leg_id}") from None

    def bridge_leg(self, leg_id: str) -> Leg | PortLeg:
        """A live SIP leg or modem port with that id, or EngineError."""
        found: Leg | PortLeg | None = self._legs.get(leg_id)
        if found is None:
            found = self._ports.get(leg_id)
        if found is None:
            raise EngineError(f"no such leg {leg_id}")
        return found

    def legs(self) -> list[LegInfo]:
        """Snapshots of every live SIP leg."""
        return [leg.snapshot() for leg in self._legs.values()]

    def call_slots(self) -> int:
        """pjsua call slots in use: our legs plus calls still closing (BYE in flight)."""
        # pjsua2 does not wrap pjsua_call_get_count(); the C symbol is in the module.
        import ctypes

        import _pjsua2

        return int(ctypes.CDLL(_pjsua2.__file__).pjsua_call_get_count())

    def media(self) -> list[MediaStats]:
        """RTP counters and bridge wiring of every live leg, modem ports included."""
        return ([leg.media_stats() for leg in self._legs.values()]
                + [port.media_stats() for port in self._ports.values()])

    def emit(self, event: EngineEvent) -> None:
        """Send an event to the asyncio side (never raises into pjsua2)."""
        try:
            self._emit(event)
        except Exception:
            log.exception("dropping engine event %r", event)

    def on_leg_state(self, leg: Leg, info: LegInfo) -> None:
        """Called by a leg's callback with its fresh snapshot."""
        if info.state is LegState.DISCONNECTED:
            # Freed by the loop after this callback returns: deleting a Call
            # inside its own callback frees the object under its own feet.
            self._finished.append(leg.leg_id)
            self.bridges.gone(leg.leg_id)
        self.emit(LegEvent(info))

    def on_leg_media(self, leg: Leg, info: LegInfo) -> None:
        """Media of a leg changed (up, restarted, held, resumed): rewire the bridge."""
        self.bridges.media_changed(leg)
        self.emit(LegEvent(info, media_changed=True))

    def on_dtmf(self, leg: Leg | PortLeg, digit: str) -> None:
        """A digit arrived on a leg: pass it to the bridged peer (RFC 4733), and report it.

        A modem port as the peer gets no RFC 4733 (it has no RTP): whoever runs the line
        sends the digit with the modem's own command on the DtmfEvent.
        """
        peer_id = self.bridges.peer(leg.leg_id)
        peer = self._legs.get(peer_id) if peer_id is not None else None
        if peer is not None:
            try:
                peer.dialDtmf(digit)
            except pj.Error as exc:
                log.warning("DTMF %r to %s failed: %s", digit, peer_id, exc.info())
        self.emit(DtmfEvent(leg.leg_id, digit))

    def _port_digit(self, leg_id: str, digit: str) -> None:
        """An in-band digit detected on a port (sent over from its pump thread)."""
        port = self._ports.get(leg_id)
        if port is not None:
            self.on_dtmf(port, digit)

    def on_transfer_request(self, leg: Leg, prm: Any) -> None:
        """A REFER on a bridged leg: accept it and let pjsua2 dial the target as a new leg.

        The new leg goes out through the SIP edge, which turns a call to the box itself
        back into an inbound call, so the switchboard routes it like any other.
        """
        if self.bridges.peer(leg.leg_id) is None:
            prm.statusCode = 403  # nothing to transfer: the leg is in no bridge
            return
        target = str(prm.dstUri)
        if not self.transfer_target_ok(target):
            # Only the box routes transfers: a Refer-To elsewhere would make the engine
            # dial any host on the internet on a phone's say-so.
            log.warning("transfer from %s to %s refused: not an address of the box",
                        leg.leg_id, target[:120])
            prm.statusCode = 403
            return
        assert self._account is not None
        new = Leg(self, self._account, pj.PJSUA_INVALID_ID, outbound=True)
        self.adopt(new)
        prm.newCall = new
        log.info("transfer: %s asks for %s (new leg %s)", leg.leg_id, prm.dstUri, new.leg_id)
        self.emit(TransferEvent(leg.leg_id, new.leg_id, target))

    def on_replace_request(self, leg: Leg, prm: Any) -> None:
        """An INVITE with Replaces for this leg: give pjsua2 the Leg that takes over."""
        assert self._account is not None
        new = Leg(self, self._account, pj.PJSUA_INVALID_ID, outbound=False,
                  request_user=leg.request_user)
        self.adopt(new)
        self._replacing[leg.leg_id] = new
        prm.newCall = new

    def on_replaced(self, old: Leg) -> None:
        """pjsua2 answered the replacing INVITE and is ending old: move old's bridge over."""
        new = self._replacing.pop(old.leg_id, None)
        if new is None:
            log.warning("leg %s replaced by a call the engine did not see", old.leg_id)
            return
        self.bridges.replace(old.leg_id, new)
        log.info("leg %s replaced by %s", old.leg_id, new.leg_id)
        self.emit(ReplacedEvent(old.leg_id, new.leg_id))

    def _reap_lost(self) -> None:
        """Release legs whose call pjsua has freed without telling us.

        Seen under overload (calls refused with PJ_ETOOMANY, hang-ups racing the far end's
        BYE): pjsua freed the call slot but the leg never got its DISCONNECTED callback, so
        the switchboard kept the call, the bridge kept the port, and the slot number could
        be given to a new call that a late release of the old leg would hang up. A leg lost
        at two checks in a row is reported DISCONNECTED and dropped without touching pjsua.
        """
        lost: set[str] = set()
        for leg in list(self._legs.values()):
            call_id = leg.getId()
            if call_id == pj.PJSUA_INVALID_ID or leg.leg_id in self._finished:
                continue
            try:
                alive = pj.Call.lookup(call_id) is leg and leg.isActive()
            except pj.Error:
                alive = False
            if alive:
                continue
            if leg.leg_id not in self._lost:
                lost.add(leg.leg_id)
                continue
            log.warning("leg %s: pjsua freed its call without a DISCONNECTED event; "
                        "releasing it", leg.leg_id)
            self._finished.append(leg.leg_id)
            self.bridges.gone(leg.leg_id)
            self.emit(LegEvent(LegInfo(leg.leg_id, leg.direction, LegState.DISCONNECTED,
                                       "", "", leg.request_user, sip_code=500,
                                       reason="call lost by pjsua", hangup_side="local")))
        self._lost = lost

    def _release_finished(self) -> None:
        while self._finished:
            leg_id = self._finished.pop()
            self._prompt_queue.pop(leg_id, None)
            self.bridges.release(leg_id)
            self._legs.pop(leg_id, None)

    # --- commands (run via submit) ---------------------------------------------------
    def answer(self, leg_id: str, code: int = 200) -> None:
        """Answer an inbound leg with code (180/183 ring, 200 answer)."""
        prm = call_param()
        prm.statusCode = code
        self.leg(leg_id).answer(prm)

    def hangup(self, leg_id: str, code: int = 0, reason: str = "") -> None:
        """End a leg; code is the SIP reply for an unanswered inbound leg."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.hanging_up:
            return
        prm = pj.CallOpParam(True)
        if code:
            prm.statusCode = code
        if reason:
            prm.reason = reason
        leg.hanging_up = True
        leg.local_hangup = True
        leg.hangup(prm)

    def dial(self, uri: str, *, leg_id: str | None = None,
             headers: dict[str, str] | None = None) -> str:
        """Start an outbound leg to uri and return its leg id.

        The caller may choose the id, so it can expect the leg's events
        before this command's result reaches it.
        """
        assert self._account is not None
        if leg_id is not None and leg_id in self._legs:
            raise EngineError(f"leg id {leg_id} is in use")
        leg = Leg(self, self._account, pj.PJSUA_INVALID_ID, outbound=True, leg_id=leg_id)
        prm = call_param()
        for name, value in (headers or {}).items():
            hdr = pj.SipHeader()
            hdr.hName = name
            hdr.hValue = value
            prm.txOption.headers.append(hdr)
        self.adopt(leg)
        try:
            leg.makeCall(uri, prm)
        except pj.Error as exc:
            self._legs.pop(leg.leg_id, None)
            raise EngineError(f"dial {uri}: {exc.info()}") from None
        return leg.leg_id

    def bridge(self, a_id: str, b_id: str, record_to: str | None = None) -> None:
        """Connect two legs' audio both ways, now and after any re-INVITE or hold.

        With record_to, both parties are mixed into that WAV file until either leg ends.
        Either leg may be a modem port.
        """
        self.bridges.pair(self.bridge_leg(a_id), self.bridge_leg(b_id), record_to)

    def play(self, leg_id: str, source: str) -> None:
        """Let a leg hear music on hold ("music") or the ringback tone ("ringback")."""
        sources = {"music": MUSIC, "ringback": RINGBACK}
        if source not in sources:
            raise EngineError(f"unknown source {source!r}")
        self.bridges.play(self.bridge_leg(leg_id), sources[source])

    def play_prompt(self, leg_id: str, paths: list[str], play_id: int) -> None:
        """Play WAV files once to a leg; PromptEvent(leg_id, play_id) when they end."""
        leg = self.bridge_leg(leg_id)
        if not paths:
            raise EngineError("play_prompt needs at least one file")
        first, *rest = paths
        wav_seconds(paths)  # every file readable, or none is played
        # One player per file, one after the other: pjmedia's playlist loses a tenth of a
        # second or more where one file ends and the next begins (a beep comes out clipped).
        self.bridges.announce(leg, open_player([first]), play_id, wav_seconds([first]))
        self._prompt_queue[leg_id] = (play_id, rest)

    def _prompt_ended(self, leg_id: str, play_id: int) -> None:
        # The player stays connected (it has nothing more to say): the bridge pulls a prompt
        # a little behind its connection, so cutting it now would clip its last frames.
        # The next prompt, bridge or silence replaces it.
        if self.bridges.prompt_playing(leg_id) != play_id:
            return
        queued = self._prompt_queue.get(leg_id)
        leg = self._legs.get(leg_id) or self._ports.get(leg_id)
        if queued is not None and queued[0] == play_id and queued[1] and leg is not None:
            path = queued[1].pop(0)
            try:
                self.bridges.announce(leg, open_player([path]), play_id, wav_seconds([path]))
                return
            except EngineError as exc:
                log.warning("prompt for %s: %s; skipping the rest", leg_id, exc)
        self._prompt_queue.pop(leg_id, None)
        self.emit(PromptEvent(leg_id, play_id))

    def silence(self, leg_id: str, play_id: int | None = None) -> None:
        """Stop what a leg hears alone (a prompt, music, ringback); idempotent.

        With play_id, only while that prompt is the one playing.
        """
        if play_id is not None and self.bridges.prompt_playing(leg_id) != play_id:
            return
        leg = self._legs.get(leg_id) or self._ports.get(leg_id)
        if leg is not None:
            self.bridges.silence(leg)

    def record(self, leg_id: str, path: str) -> None:
        """Record what the leg says into a WAV file until stop_record or its end."""
        self.bridges.record_alone(self.bridge_leg(leg_id), path)

    def stop_record(self, leg_id: str) -> None:
        """Close a leg's recording (the WAV file is complete when this returns)."""
        self.bridges.release(leg_id)

    def open_port(self, leg_id: str, audio: PortAudio) -> str:
        """Put a modem's audio (the rings of its pump) into the bridge as leg leg_id."""
        if not leg_id or leg_id in self._legs or leg_id in self._ports:
            raise EngineError(f"leg id {leg_id!r} is in use")
        port = PortLeg(leg_id, audio)
        try:
            port.open()
        except pj.Error as exc:
            port.destroy()
            raise EngineError(f"port {leg_id}: {exc.info()}") from None
        self._ports[leg_id] = port

        def digit(d: str) -> None:
            # Called in the pump's thread: the rest happens in this one.
            self.submit(lambda: self._port_digit(leg_id, d))

        port.remove_digits = audio.add_digit_listener(digit)
        log.info("port %s open (slot %d)", leg_id, port.getPortId())
        return leg_id

    def close_port(self, leg_id: str) -> None:
        """Take a modem port out of the bridge (its peer then hears nothing); idempotent."""
        port = self._ports.get(leg_id)
        if port is None:
            return
        self.bridges.gone(leg_id)
        self.bridges.release(leg_id)
        del self._ports[leg_id]
        port.destroy()
        log.info("port %s closed", leg_id)

    def set_music(self, path: str) -> None:
        """Use this WAV file as the music on hold."""
        self.bridges.set_music(path)

    def hangup_all(self) -> int:
        """Hang up every leg; returns how many were live."""
        count = len(self._legs)
        for leg_id in list(self._legs):
            try:
                self.hangup(leg_id)
            except pj.Error:
                log.warning("hangup of %s failed during hangup_all", leg_id)
        return count

    # --- shutdown --------------------------------------------------------------------
    def _shutdown(self) -> None:
        ep = self.ep
        if ep is None:
            return
        try:
            if self._legs:
                ep.hangupAllCalls()
                deadline = time.monotonic() + 0.5
                while self._legs and time.monotonic() < deadline:
                    ep.libHandleEvents(POLL_MS)
                    self._release_finished()
            # Fail whatever is still queued so nobody waits forever.
            while True:
                try:
                    _, fut = self._commands.get_nowait()
                except queue.Empty:
                    break
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(EngineError("the engine stopped"))
            for port_id in list(self._ports):
                self.close_port(port_id)
            self._legs.clear()
            self.bridges.clear()
            gc.collect()
            if self._account is not None:
                self._account.shutdown()
                self._account = None
            gc.collect()
            ep.libDestroy()
        except Exception:
            log.exception("pjsua2 shutdown failed")
        finally:
            self.ep = None


def call_param() -> Any:
    """Options for a leg: audio only.

    pjsua offers a real-time text stream (RFC 4103) in every call by default;
    desk phones do not use it, and each one costs two more sockets.
    """
    prm = pj.CallOpParam(True)
    prm.opt.textCount = 0
    prm.opt.videoCount = 0
    return prm


def compiled_limits() -> dict[str, int]:
    """Limits compiled into this pjsua2 (config defaults equal the compile-time maxima)."""
    cfg = pj.EpConfig()
    return {
        "max_calls_compiled": int(cfg.uaConfig.maxCalls),
        "max_media_ports_compiled": int(cfg.medConfig.maxMediaPorts),
    }


class _Account(pj.Account):
    """The engine's one local account: receives every inbound INVITE."""

    def __init__(self, owner: Owner) -> None:
        super().__init__()
        self._owner = owner

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            owner = self._owner
            message = prm.rdata.wholeMsg
            leg = Leg(owner, self, prm.callId, outbound=False,
                      request_user=request_user_of(message), headers=headers_of(message))
            owner.adopt(leg)
            info = leg.snapshot()
            owner.emit(LegEvent(info))
        except Exception:
            log.exception("onIncomingCall failed")
