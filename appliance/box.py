"""The engine daemon's lifecycle: one `Box` context object passed down.

`pbx run` builds a Box and runs `Box.main()`: open the database, start the
call engine, attach the switchboard, serve the control API, tell systemd
READY=1 once SIP and lines are up, ping the watchdog from the event loop,
reload on SIGHUP without touching calls, and on SIGTERM stop taking calls,
complete call records, hang up and exit 0 within 5 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from . import calllog, directory, extensions, factory_reset, frontpanel, sounds, trunktest
from .config import ConfigError
from .control import BadRequest, ControlServer, Request
from .db import Database
from .edge import Edge, EdgeConfig
from .edge.firewall import Firewall, NullFirewall, open_firewall
from .edge.registrar import load_devices
from .edge.security import GuardConfig
from .edge.trunkconf import load_trunks
from .engine import Engine, EngineConfig, EngineError
from .history import managers_from_history
from .lines import api as lines_api
from .lines.context import LineContext, LineTimers
from .lines.discovery import sysfs_usb_reset
from .lines.legs import LineLegs, SimLineTargets
from .lines.manager import LineManager, read_sim_settings
from .lines.simulated import SimulatedModems
from .mailer import Mailer
from .outside import LineTargets, OutboundRouting, SipLineTargets
from .prompts import PromptLibrary, box_language, store_engine_wav
from .routing.plan import ManagerFact
from .routing.snapshot import Snapshot, load_snapshot
from .service import Notifier
from .settings import Settings
from .switchboard import CallRecord, Switchboard, originate
from .switchboard.live import user_of
from .voicemail import Voicemail

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 4.0
MAX_EXT_FIELD = 256  # longer than any valid extension field (names 100, passwords 128)
_EXT_STATUS = {"invalid": 400, "unknown": 404, "conflict": 409}
T = TypeVar("T")

Cleanup = Callable[[], Awaitable[None] | None]


def live_call(c: CallRecord) -> dict[str, Any]:
    """A call in progress for `GET /calls` (the dashboard): who talks to whom, on which
    line, since when, at which routing step."""
    plan = c.plan
    return {"call_id": c.call_id, "caller": user_of(c.caller), "dialled": c.dialled,
            "started_at": c.started_at.isoformat(),
            "answered": c.answered_at is not None,
            "answered_at": c.answered_at.isoformat() if c.answered_at else None,
            "answered_by": c.answered_extension or (
                user_of(c.answered_contact) if c.answered_contact else None),
            "direction": c.direction, "line": c.line or None,
            "step": str(plan.step.why) if plan is not None and plan.step is not None
            and not plan.finished else None}


class Box:
    """Everything one running engine has, passed explicitly (no globals)."""

    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.db: Database | None = None
        self.engine: Engine | None = None
        self.switchboard: Switchboard | None = None
        self.calllog: calllog.DbCallLog | None = None
        self.edge: Edge | None = None
        self.firewall: Firewall = NullFirewall("not started")
        self.lines: LineManager | None = None
        self.voicemail: Voicemail | None = None
        self.prompts: PromptLibrary | None = None
        self.panel: frontpanel.FrontPanel | None = None  # LEDs, button (settings.board)
        self.control = ControlServer(settings.control_socket)
        self.started_at = time.time()
        self.reloads = 0
        self.state = "starting"
        self._stop = asyncio.Event()
        self._cleanups: list[Cleanup] = []
        # Who reports lines' live state (SIM lines, trunks): key -> status mapping.
        self.line_sources: list[Callable[[], Mapping[str, dict[str, Any]]]] = []
        self.line_targets: dict[str, LineTargets] = {}  # how each kind of line is dialled

    def on_shutdown(self, cleanup: Cleanup) -> None:
        """Register a cleanup; they run in reverse order at shutdown."""
        self._cleanups.append(cleanup)

    # --- start ---------------------------------------------------------------------
    async def start(self) -> None:
        """Bring everything up; raises if the box cannot run at all."""
        s = self.settings
        for path in (s.data_dir, s.recordings_dir, s.voicemail_dir, s.control_socket.parent):
            path.mkdir(parents=True, exist_ok=True)
        # The front panel first (status LED: booting) and stopped last.
        self.panel = await frontpanel.start_panel(self)
        self.on_shutdown(self.panel.stop)
        self.notifier.status("opening the database")
        self.engine = Engine(EngineConfig(
            sip_port=s.engine_sip_port,
            rtp_port_min=s.rtp_port_min,
            rtp_port_max=s.rtp_port_max,
            max_calls=s.max_calls,
            clock_rate=s.bridge_clock_rate,
            log_level=s.pjsua_log_level,
            outbound_proxy=f"sip:127.0.0.1:{s.sip_port};lr",
            media_bind=s.rtp_bind or s.sip_bind,
            media_address=s.rtp_address or None,
        ))
        self.notifier.status("starting the call engine")
        info = await self.engine.start()
        self.on_shutdown(self.engine.stop)
        log.info("call engine up: pjsua2 %s, %s calls, codecs %s", info["pjsua2_version"],
                 info["max_calls_compiled"], ", ".join(info["codecs"]))
        engine = self.engine
        loop = asyncio.get_running_loop()
        # Executor threads may run gc over pjsua2 objects: register each one.
        executor = ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="pbx-exec",
            initializer=lambda: engine.register_thread("executor"))
        loop.set_default_executor(executor)

        db = await loop.run_in_executor(
            None, lambda: Database.open(s.db_path,
                                        thread_init=lambda: engine.register_thread("db")))
        self.db = db
        self.on_shutdown(db.close)
        closed = await db.awrite(calllog.close_interrupted)
        if closed:
            log.warning("closed %d call record(s) left open by a crash", closed)

        self.notifier.status("starting the SIP edge")
        # Registered before the edge, so it is removed after the edge has stopped.
        self.firewall = await open_firewall(s.firewall, (s.sip_port,))
        self.on_shutdown(self.firewall.stop)
        guard = GuardConfig(auth_failures=s.sip_ban_failures, ban_s=s.sip_ban_seconds,
                            rate_limit=s.sip_rate_limit or 10**9)
        self.edge = Edge(EdgeConfig(bind=s.sip_bind, port=s.sip_port,
                                    engine_port=s.engine_sip_port, guard=guard,
                                    keepalive_s=s.sip_keepalive_s), db,
                         firewall=self.firewall)
        await self.edge.start()
        self.line_sources.append(self.edge.trunks.routing_status)
        self.on_shutdown(self.edge.stop)
        self.engine.set_transfer_policy(self.edge.is_box_uri)

        # Voicemail: stored messages, their e-mails, and the edge's message-waiting lamps.
        self.voicemail = Voicemail(db, s.data_dir, Mailer(db), lambda: datetime.now(UTC))
        await self.voicemail.start()
        self.edge.subscriptions.mailbox = self.voicemail.counts
        self.voicemail.attach(self.edge.subscriptions.mailbox_changed)
        self.on_shutdown(self.voicemail.stop)

        self.calllog = calllog.DbCallLog(db)
        language = await loop.run_in_executor(None, lambda: box_language(db))
        self.prompts = PromptLibrary(db, s.data_dir, s.builtin_prompts_dir, language)
        # The switchboard reports its calls to the edge's notifier (busy lamps).
        snapshot = await loop.run_in_executor(None, self._routing)
        self.switchboard = Switchboard(self.engine, self._directory(), self.calllog,
                                       data_dir=s.data_dir,
                                       presence=self.edge.subscriptions.lines,
                                       snapshot=snapshot, mailboxes=self.voicemail,
                                       prompts=self.prompts, history=self._history)
        sip_lines = SipLineTargets("127.0.0.1", s.sip_port)
        self.line_targets.update({"sip_trunk": sip_lines, "fxo_gateway": sip_lines})
        self.switchboard.outside = OutboundRouting(
            lambda: self.switchboard.snapshot if self.switchboard else None,
            self.line_status, self.line_targets)
        self.switchboard.services.set_day_night = self.set_day_night
        self.switchboard.services.voicemail = self.voicemail
        self.switchboard.services.save_greeting = self.save_greeting
        self.on_shutdown(self.switchboard.attach())
        await self._load_music()

        # Lines after the engine (they stop before it); READY waits for every line to have
        # been attempted, never for it to be up: a missing modem is retried in the background.
        self.notifier.status("starting the lines")
        await self._start_lines()

        self._control_routes()
        await self.control.start()
        self.on_shutdown(self.control.stop)

        self.state = "ready"
        if self.panel is not None:
            frontpanel.watch_box(self.panel, self)  # status LED steady; lines, calls follow
        self.notifier.ready(self.status_text())
        self.notifier.start_watchdog(self.healthy)
        log.info("box ready: SIP edge on %s:%d, engine on 127.0.0.1:%d, control %s",
                 s.sip_bind, s.sip_port, s.engine_sip_port, s.control_socket)

    async def _start_lines(self) -> None:
        """Create the line manager, look for modems once, keep looking in the background."""
        assert self.db is not None
        s, db = self.settings, self.db
        loop = asyncio.get_running_loop()
        sims, threshold = await loop.run_in_executor(None, lambda: read_sim_settings(db.read()))
        # A HAT modem is reset through the board's GPIO pins, a USB one through sysfs.
        usb_reset = self.panel.modem_reset(sysfs_usb_reset) if self.panel else sysfs_usb_reset
        ctx = LineContext(db=db, timers=LineTimers(balance_interval_s=s.ussd_balance_interval_s),
                          modem_dirs=(s.modem_dir,), usb_reset=usb_reset,
                          low_balance_threshold=threshold)
        self.lines = LineManager(ctx)
        if s.simulate:
            simulated = SimulatedModems(s.data_dir / "run" / "modems")
            ctx.modem_dirs = (*ctx.modem_dirs, simulated.directory)
            ctx.usb_reset = simulated.reset
            self.lines.discovery.directories = ctx.modem_dirs
            self.lines.on_stop(simulated.stop)
            try:
                await simulated.start(sims)
            except Exception:  # a simulator problem is not worth a box that won't start
                log.exception("simulated modems did not start")
        await self.lines.start(sims)
        self.on_shutdown(self.lines.stop)
        self.line_sources.append(self.lines.routing_status)
        # SIM calls become engine legs the switchboard routes and bridges like SIP calls.
        assert self.engine is not None
        legs = LineLegs(self.engine, self.lines)
        self.on_shutdown(legs.attach())
        self.on_shutdown(legs.stop)
        self.line_targets["sim"] = SimLineTargets(self.lines)

    async def _load_music(self) -> None:
        """Give the engine the music on hold (a missing or unplayable file is not fatal)."""
        assert self.db is not None and self.engine is not None
        db, data_dir = self.db, self.settings.data_dir
        path = await asyncio.get_running_loop().run_in_executor(
            None, lambda: sounds.music_on_hold(db, data_dir))
        try:
            await self.engine.set_music(str(path))
        except EngineError as exc:
            log.error("no music on hold: %s", exc)

    def _directory(self) -> directory.DirectorySnapshot:
        assert self.db is not None and self.edge is not None
        return directory.load(self.db, self.edge.contacts_for)

    def _routing(self) -> Snapshot:
        """The routing configuration, read in one transaction."""
        assert self.db is not None
        return load_snapshot(self.db.read().conn, now=datetime.now(UTC))

    def _history(self, caller: str, now: datetime, snap: Snapshot) -> tuple[ManagerFact, ...]:
        """Who last spoke with a caller, from the call history (indexed: well under 1 ms)."""
        assert self.db is not None
        settings = snap.repeat_caller
        return managers_from_history(self.db.read(), caller, now, settings.lookback_days,
                                     local_area_code=settings.local_area_code)

    def line_status(self) -> dict[str, dict[str, Any]]:
        """Every line's live state as outbound routing reads it (up, busy, channels...)."""
        status: dict[str, dict[str, Any]] = {}
        for source in self.line_sources:
            status.update(source())
        return status

    def healthy(self) -> bool:
        """The watchdog's question: is the engine still polling?"""
        return self.engine is not None and self.engine.healthy()

    def status_text(self) -> str:
        """One line for systemd's STATUS=."""
        calls = len(self.switchboard.active_calls()) if self.switchboard else 0
        return f"{self.state}; {calls} call(s) in progress; reloads {self.reloads}"

    async def set_day_night(self, mode: str) -> None:
        """The manual day/night switch ('auto', 'day', 'night'), stored and applied now."""
        assert self.db is not None and self.switchboard is not None
        value = json.dumps(mode)

        def write(conn: sqlite_utils.Database) -> None:
            conn.execute(
                "INSERT INTO box_settings (key, value) VALUES ('day_night', ?) ON CONFLICT(key)"
                " DO UPDATE SET value = excluded.value,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [value])

        await self.db.awrite(write)
        loop = asyncio.get_running_loop()
        self.switchboard.snapshot = await loop.run_in_executor(None, self._routing)

    async def save_greeting(self, box: str, path: Path) -> None:
        """A mailbox greeting recorded from a phone becomes the box's greeting prompt."""
        assert self.db is not None and self.switchboard is not None
        db, data_dir = self.db, self.settings.data_dir
        key = f"greeting-{box}"
        wav = await asyncio.to_thread(path.read_bytes)
        await asyncio.to_thread(store_engine_wav, db, data_dir, key, wav,
                                name=f"Greeting of mailbox {box} (recorded from a phone)",
                                actor="phone", source=path.name)

        def point(conn: sqlite_utils.Database) -> None:
            conn.execute("UPDATE voicemail_boxes SET greeting_prompt_id ="
                         " (SELECT id FROM prompts WHERE key = ?) WHERE key = ?", [key, box])

        await db.awrite(point)
        if self.prompts is not None:
            self.prompts.reload()
        loop = asyncio.get_running_loop()
        self.switchboard.snapshot = await loop.run_in_executor(None, self._routing)

    # --- reload --------------------------------------------------------------------
    async def reload(self) -> dict[str, Any]:
        """Re-read the configuration; calls in progress are not touched."""
        assert self.db is not None and self.switchboard is not None
        self.notifier.reloading()
        assert self.edge is not None
        loop = asyncio.get_running_loop()
        db = self.db
        # Both snapshots are read in an executor: the event loop also carries the SIP edge.
        new_directory = await loop.run_in_executor(None, self._directory)
        devices = await loop.run_in_executor(None, lambda: load_devices(db))
        trunks = await loop.run_in_executor(None, lambda: load_trunks(db))
        snapshot = await loop.run_in_executor(None, self._routing)
        # Swapping the snapshots only affects calls and requests from now on.
        self.switchboard.directory = new_directory
        self.switchboard.snapshot = snapshot
        self.edge.reload(devices, trunks)
        await self.edge.reload_trunks(trunks)
        if self.lines is not None:
            sims, threshold = await loop.run_in_executor(
                None, lambda: read_sim_settings(db.read()))
            await self.lines.reload(sims, threshold)
        await self._load_music()
        if self.voicemail is not None:
            await self.voicemail.reload()
        if self.prompts is not None:
            language = await loop.run_in_executor(None, lambda: box_language(db))
            self.prompts.reload(language)
        self.reloads += 1
        self.notifier.notify(f"READY=1\nSTATUS={self.status_text()}")
        log.info("configuration reloaded (%d)", self.reloads)
        return {"reloaded": True, "reloads": self.reloads}

    # --- control API ---------------------------------------------------------------
    def _control_routes(self) -> None:
        self.control.route("GET", "/status", self._status)
        self.control.route("POST", "/reload", lambda _req: self.reload())
        self.control.route("GET", "/calls", self._calls)
        self.control.route("GET", "/bans", self._bans)
        self.control.route("POST", "/bans/remove", self._unban)
        self.control.route("GET", "/registrations", self._registrations)
        self.control.route("GET", "/subscriptions", self._subscriptions)
        self.control.route("GET", "/trunks", self._trunks)
        self.control.route("POST", "/trunks/test-call", self._trunk_test_call)
        self.control.route("GET", "/legs", self._legs)
        self.control.route("GET", "/extensions", self._ext_list)
        self.control.route("POST", "/extensions", self._ext_add)
        self.control.route("POST", "/extensions/passwd", self._ext_passwd)
        self.control.route("POST", "/extensions/remove", self._ext_remove)
        if self.lines is not None:
            lines_api.register(self.control, self.lines)
        factory_reset.register(self.control, self)  # POST /factory-reset
        # Click-to-call and hang-up (POST /originate, POST /calls/{call_id}/hangup).
        originate.register(self.control, lambda: self.switchboard)

    async def _status(self, _req: Request) -> dict[str, Any]:
        assert self.engine is not None and self.switchboard is not None
        legs = await self.engine.legs()
        slots = await self.engine.run("call_slots")
        return {
            "state": self.state,
            "uptime_s": round(time.time() - self.started_at, 1),
            "reloads": self.reloads,
            "engine": {**self.engine.info, "healthy": self.engine.healthy(),
                       "legs": len(legs), "call_slots": slots},
            "calls": len(self.switchboard.active_calls()),
            "sip": {"engine": f"127.0.0.1:{self.settings.engine_sip_port}",
                    "edge": f"{self.settings.sip_bind}:{self.settings.sip_port}",
                    "registrations": len(self.edge.location.all()) if self.edge else 0,
                    **(self.edge.keepalive.counts() if self.edge else {}),
                    **(self.edge.subscriptions.counts() if self.edge else {}),
                    "bans": len(self.edge.guard.bans()) if self.edge else 0,
                    # Where bans are enforced: "nftables" (the kernel, and the edge too)
                    # or "in-process" (the edge alone; firewall_reason says why).
                    "firewall": self.firewall.name,
                    **({"firewall_reason": self.firewall.reason} if self.firewall.reason
                       else {}),
                    "firewall_errors": self.firewall.errors,
                    **(self.edge.stats if self.edge else {}),
                    **(self.edge.trunks.stats if self.edge else {}),
                    **(self.edge.keepalive.stats if self.edge else {})},
            "lines": self.lines.counts() if self.lines else {},
            "panel": self.panel.snapshot() if self.panel else {},  # what the LEDs show
        }

    async def _legs(self, _req: Request) -> list[dict[str, Any]]:
        assert self.engine is not None
        legs = await self.engine.legs()
        media = {m.leg_id: m for m in await self.engine.media()}
        out = []
        for leg in legs:
            m = media.get(leg.leg_id)
            out.append({
                "leg": leg.leg_id, "direction": leg.direction.value, "state": leg.state.value,
                "remote": leg.remote_uri, "codec": leg.codec, "seconds": leg.duration_s,
                "held": leg.held,
                "media": None if m is None or m.slot < 0 else {
                    "slot": m.slot, "listeners": list(m.listeners),
                    "rx_packets": m.rx_packets, "tx_packets": m.tx_packets,
                    "rx_lost": m.rx_lost, "jitter_ms": m.jitter_ms,
                    "rtp": {"local": m.local_rtp, "remote": m.remote_rtp,
                            "source": m.source_rtp}}})
        return out

    async def _registrations(self, req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /registrations takes no body")
        assert self.edge is not None
        now = self.edge.clock()
        out = []
        for b in sorted(self.edge.location.all(), key=lambda b: (b.username, b.contact)):
            state, rtt_ms = self.edge.keepalive.state(b)
            out.append({"user": b.username, "contact": b.contact,
                        "transport": b.source.transport,
                        "source": (f"[{b.source.host}]" if ":" in b.source.host
                                   else b.source.host) + f":{b.source.port}",
                        "expires": b.remaining(now), "state": state.value, "rtt_ms": rtt_ms,
                        "user_agent": b.user_agent})
        return out

    async def _subscriptions(self, req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /subscriptions takes no body")
        assert self.edge is not None
        return self.edge.subscriptions.snapshot()

    async def _trunks(self, req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /trunks takes no body")
        assert self.edge is not None
        return self.edge.trunks.snapshot()

    async def _trunk_test_call(self, req: Request) -> dict[str, Any]:
        f = self._ext_body(req, ("line", "number"), ("caller_id", "hold_s"))
        assert self.edge is not None and self.engine is not None
        if f["line"] not in self.edge.trunkset.lines:
            raise BadRequest(f"no SIP trunk or FXO gateway {f['line'][:64]!r}", 404)
        if not trunktest.NUMBER.fullmatch(f["number"]):
            raise BadRequest("'number' is digits, with an optional leading '+'")
        hold = f.get("hold_s", "2")
        if not hold.isdigit() or int(hold) > 60:
            raise BadRequest("'hold_s' is a whole number of seconds, at most 60")
        return await trunktest.place_test_call(
            self.engine, self.settings.sip_port, f["line"], f["number"],
            caller_id=f.get("caller_id"), hold_s=float(hold))

    async def _bans(self, _req: Request) -> list[dict[str, Any]]:
        assert self.edge is not None
        return [{"host": b.host, "until": b.until, "reason": b.reason}
                for b in self.edge.guard.bans()]

    async def _unban(self, req: Request) -> dict[str, Any]:
        body = req.body
        if not isinstance(body, dict) or not isinstance(body.get("host"), str) \
                or not 0 < len(body["host"]) <= MAX_EXT_FIELD:
            raise BadRequest("POST /bans/remove takes {\"host\": \"<address>\"}")
        assert self.edge is not None
        host = body["host"].strip()
        return {"host": host, "lifted": self.edge.unban(host)}

    async def _ext_list(self, req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /extensions takes no body")
        assert self.db is not None
        items = await asyncio.get_running_loop().run_in_executor(
            None, extensions.list_extensions, self.db)
        return [item.as_dict() for item in items]

    async def _ext_add(self, req: Request) -> dict[str, Any]:
        f = self._ext_body(req, ("extension", "name"),
                           ("username", "password", "role", "email", "auth"))
        done = await self._ext_change(lambda: extensions.add_txn(
            f["extension"], f["name"], password=f.get("password"), username=f.get("username"),
            role=f.get("role", "user"), email=f.get("email"), auth=f.get("auth"),
            actor="control-api"))
        out = {"extension": done.extension, "name": done.name, "username": done.username,
               "realm": done.realm}
        return out if done.password is None else {**out, "password": done.password}

    async def _ext_passwd(self, req: Request) -> dict[str, Any]:
        f = self._ext_body(req, ("username",), ("password",))
        new = await self._ext_change(lambda: extensions.passwd_txn(
            f["username"], f.get("password"), actor="control-api"))
        username = f["username"].strip()
        self._ext_forget([username])  # a phone holding the old password must log in again
        out = {"username": username, "changed": True}
        return out if "password" in f else {**out, "password": new}

    async def _ext_remove(self, req: Request) -> dict[str, Any]:
        f = self._ext_body(req, ("extension",), ())
        done = await self._ext_change(lambda: extensions.remove_txn(
            f["extension"], actor="control-api"))
        self._ext_forget(done.usernames)
        return {"extension": done.extension, "name": done.name,
                "devices": list(done.usernames), "left": list(done.left)}

    async def _ext_change(self, make: Callable[[], extensions.Txn[T]]) -> T:
        """Validate, run the change in the writer, then reload (devices and directory)."""
        assert self.db is not None
        try:
            result = await extensions.arun(self.db, make())
        except ConfigError as exc:
            kind = exc.kind if isinstance(exc, extensions.ExtensionError) else "invalid"
            raise BadRequest(str(exc), _EXT_STATUS[kind]) from None
        await self.reload()
        return result

    def _ext_forget(self, usernames: Iterable[str]) -> None:
        """Drop the edge's live registrations of devices removed or given a new password."""
        if self.edge is not None:
            location = self.edge.location
            for binding in [b for u in usernames for b in location.bindings(u)]:
                location.remove(binding)

    @staticmethod
    def _ext_body(req: Request, required: tuple[str, ...],
                  optional: tuple[str, ...]) -> dict[str, str]:
        """The body's text fields, strictly: an object, known keys, bounded strings."""
        expected = ", ".join([*required, *(f"{k} (optional)" for k in optional)])
        body = req.body
        if not isinstance(body, dict):
            raise BadRequest(f"the body must be a JSON object with: {expected}")
        unknown = sorted(k for k in body if k not in required and k not in optional)
        if unknown:
            shown = ", ".join(repr(k[:40]) for k in unknown[:5])
            raise BadRequest(f"unknown field(s) {shown}; expected: {expected}")
        out: dict[str, str] = {}
        for key in (*required, *optional):
            value = body.get(key)
            if value is None:
                if key in required:
                    raise BadRequest(f"missing field {key!r}; expected: {expected}")
                continue
            if not isinstance(value, str):
                raise BadRequest(f"{key!r} must be a string")
            if len(value) > MAX_EXT_FIELD:
                raise BadRequest(f"{key!r} is too long (at most {MAX_EXT_FIELD} characters)")
            if not value.isprintable():  # also refuses lone surrogates (not UTF-8)
                raise BadRequest(f"{key!r} must be printable text")
            out[key] = value
        return out

    async def _calls(self, req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /calls takes no body")
        assert self.switchboard is not None
        return [live_call(c) for c in self.switchboard.active_calls()]

    # --- run and stop --------------------------------------------------------------
    async def main(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload_logged()))
        code = 0
        try:
            await self.start()
            await self._stop.wait()
        except Exception:
            log.exception("the box failed")
            code = 1
        finally:
            # Whatever happened, pjsua2 must be shut down before the
            # interpreter exits, or its threads abort the process.
            await self.shutdown()
        return code

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("reload failed; the previous configuration stays in force")

    def request_stop(self) -> None:
        """Ask main() to shut down (tests, `pbx dev`)."""
        self._stop.set()

    async def shutdown(self) -> None:
        """Stop taking calls, close records, hang up, release everything."""
        self.state = "stopping"
        self.notifier.stop_watchdog()
        self.notifier.stopping()
        started = time.monotonic()
        if self.switchboard is not None:
            try:
                await asyncio.wait_for(self.switchboard.shutdown(), SHUTDOWN_BUDGET_S / 2)
            except (TimeoutError, Exception):
                log.exception("switchboard shutdown did not finish cleanly")
        if self.calllog is not None:
            # Call records are complete on disk before anything else closes.
            try:
                await asyncio.wait_for(self.calllog.flush(), SHUTDOWN_BUDGET_S / 4)
            except TimeoutError:
                log.error("call records were still being written at shutdown")
        for cleanup in reversed(self._cleanups):
            try:
                result = cleanup()
                if asyncio.iscoroutine(result):
                    await asyncio.wait_for(result, SHUTDOWN_BUDGET_S / 2)
            except Exception:
                log.exception("cleanup %r failed", cleanup)
        self._cleanups.clear()
        log.info("stopped in %.2f s", time.monotonic() - started)
