"""The engine daemon's lifecycle: one `Box` context object passed down.

`pbx run` builds a Box and runs `Box.main()`: open the database, start the
call engine, attach the switchboard, serve the control API, tell systemd
READY=1 once SIP and lines are up, ping the watchdog from the event loop,
reload on SIGHUP without touching calls, and on SIGTERM stop taking calls,
complete call records, hang up and exit 0 within 5 s.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import calllog, directory
from .control import BadRequest, ControlServer, Request
from .db import Database
from .edge import Edge, EdgeConfig
from .engine import Engine, EngineConfig
from .service import Notifier
from .settings import Settings
from .switchboard import Switchboard

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 4.0

Cleanup = Callable[[], Awaitable[None] | None]


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
        self.control = ControlServer(settings.control_socket)
        self.started_at = time.time()
        self.reloads = 0
        self.state = "starting"
        self._stop = asyncio.Event()
        self._cleanups: list[Cleanup] = []

    def on_shutdown(self, cleanup: Cleanup) -> None:
        """Register a cleanup; they run in reverse order at shutdown."""
        self._cleanups.append(cleanup)

    # --- start ---------------------------------------------------------------------
    async def start(self) -> None:
        """Bring everything up; raises if the box cannot run at all."""
        s = self.settings
        for path in (s.data_dir, s.recordings_dir, s.voicemail_dir, s.control_socket.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.notifier.status("opening the database")
        self.engine = Engine(EngineConfig(
            sip_port=s.engine_sip_port,
            rtp_port_min=s.rtp_port_min,
            rtp_port_max=s.rtp_port_max,
            max_calls=s.max_calls,
            clock_rate=s.bridge_clock_rate,
            outbound_proxy=f"sip:127.0.0.1:{s.sip_port};lr",
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
        self.edge = Edge(EdgeConfig(bind=s.sip_bind, port=s.sip_port,
                                    engine_port=s.engine_sip_port), db)
        await self.edge.start()
        self.on_shutdown(self.edge.stop)

        self.calllog = calllog.DbCallLog(db)
        self.switchboard = Switchboard(self.engine, self._directory(), self.calllog)
        self.on_shutdown(self.switchboard.attach())

        self._control_routes()
        await self.control.start()
        self.on_shutdown(self.control.stop)

        # Lines (modems, trunks) arrive with the lines issue; none to wait for yet.
        self.state = "ready"
        self.notifier.ready(self.status_text())
        self.notifier.start_watchdog(self.healthy)
        log.info("box ready: SIP edge on %s:%d, engine on 127.0.0.1:%d, control %s",
                 s.sip_bind, s.sip_port, s.engine_sip_port, s.control_socket)

    def _directory(self) -> directory.DirectorySnapshot:
        assert self.db is not None and self.edge is not None
        return directory.load(self.db, self.edge.contacts_for)

    def healthy(self) -> bool:
        """The watchdog's question: is the engine still polling?"""
        return self.engine is not None and self.engine.healthy()

    def status_text(self) -> str:
        """One line for systemd's STATUS=."""
        calls = len(self.switchboard.active_calls()) if self.switchboard else 0
        return f"{self.state}; {calls} call(s) in progress; reloads {self.reloads}"

    # --- reload --------------------------------------------------------------------
    async def reload(self) -> dict[str, Any]:
        """Re-read the configuration; calls in progress are not touched."""
        assert self.db is not None and self.switchboard is not None
        self.notifier.reloading()
        assert self.edge is not None
        new_directory = await asyncio.get_running_loop().run_in_executor(None, self._directory)
        # Swapping the snapshots only affects calls and requests from now on.
        self.switchboard.directory = new_directory
        self.edge.reload()
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

    async def _status(self, _req: Request) -> dict[str, Any]:
        assert self.engine is not None and self.switchboard is not None
        legs = await self.engine.legs()
        return {
            "state": self.state,
            "uptime_s": round(time.time() - self.started_at, 1),
            "reloads": self.reloads,
            "engine": {**self.engine.info, "healthy": self.engine.healthy(),
                       "legs": len(legs)},
            "calls": len(self.switchboard.active_calls()),
            "sip": {"engine": f"127.0.0.1:{self.settings.engine_sip_port}",
                    "edge": f"{self.settings.sip_bind}:{self.settings.sip_port}",
                    "registrations": len(self.edge.location.all()) if self.edge else 0,
                    "bans": len(self.edge.guard.bans()) if self.edge else 0,
                    **(self.edge.stats if self.edge else {})},
            "lines": [],
        }

    async def _bans(self, _req: Request) -> list[dict[str, Any]]:
        assert self.edge is not None
        return [{"host": b.host, "until": b.until, "reason": b.reason}
                for b in self.edge.guard.bans()]

    async def _calls(self, req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /calls takes no body")
        assert self.switchboard is not None
        return [
            {"call_id": c.call_id, "caller": c.caller, "dialled": c.dialled,
             "started_at": c.started_at.isoformat(),
             "answered": c.answered_at is not None}
            for c in self.switchboard.active_calls()
        ]

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
