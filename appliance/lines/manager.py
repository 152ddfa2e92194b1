"""The line manager: owns every line, finds their modems, and is what the box talks to.

`start()` reads the SIM lines from the configuration, scans for modems once (so READY means
"lines attempted", never "lines up": a missing modem is retried, never a crash) and keeps
polling for hot-plugged, vanished and re-enumerated ones. `reload()` adds, updates and
removes lines; a line in a call is removed only after the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

import sqlite_utils

from appliance.db import Database
from hw.modem.channel import ModemLink
from hw.modem.port import open_channel

from . import store
from .base import EventHub, LineState, LineStateChanged, backoff_delay
from .context import LineContext
from .discovery import (
    AT_INTERFACES,
    DeviceLinks,
    Discovery,
    ModemPort,
    ProbeError,
    match_line,
    probe,
)
from .sim import SimLine, SimSettings

log = logging.getLogger(__name__)

Opener = Callable[[str], Awaitable[ModemLink]]
Cleanup = Callable[[], Awaitable[None] | None]


async def _open(path: str) -> ModemLink:
    return await open_channel(path, default_timeout=5.0)


def read_sim_settings(conn: sqlite_utils.Database) -> tuple[list[SimSettings], float | None]:
    """The configured SIM lines (PIN included) and the low-balance threshold."""
    rows = conn.execute(
        "SELECT key, name, enabled, sim_imei, sim_iccid, sim_pin, sim_usb_path, sim_simulated,"
        " sim_sms, sim_ussd_balance, operator FROM lines WHERE kind = 'sim' ORDER BY key"
    ).fetchall()
    lines = [SimSettings(key=r[0], name=r[1] or "", enabled=bool(r[2]), imei=r[3], iccid=r[4],
                         pin=r[5], usb_path=r[6], simulated=bool(r[7]), sms=bool(r[8]),
                         ussd_balance=r[9], operator=r[10]) for r in rows]
    row = conn.execute("SELECT low_balance_threshold FROM notification_settings LIMIT 1")\
        .fetchone()
    return lines, (None if row is None or row[0] is None else float(row[0]))


class LineManager:
    """All lines of the box (SIM lines today; trunks and gateways share the interface)."""

    def __init__(self, ctx: LineContext, *, opener: Opener = _open) -> None:
        self.ctx = ctx
        self.events = EventHub()
        self.discovery = Discovery(ctx.modem_dirs)
        self.unassigned: dict[str, ModemPort] = {}
        self._lines: dict[str, SimLine] = {}
        self._undo: dict[str, Callable[[], None]] = {}
        self._retiring: set[str] = set()
        self._opener = opener
        self._failures: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.Task[None]] = set()
        self._cleanups: list[Cleanup] = []
        self._scan_now = asyncio.Event()
        self._lock = asyncio.Lock()

    # -- lines -----------------------------------------------------------------------------

    def lines(self) -> list[SimLine]:
        """Every line, by key."""
        return [self._lines[k] for k in sorted(self._lines)]

    def get(self, key: str) -> SimLine | None:
        """The line called key."""
        return self._lines.get(key)

    def subscribe(self, handler: Callable[[Any], None]) -> Callable[[], None]:
        """Events of every line to handler until the returned function is called."""
        return self.events.subscribe(handler)

    def on_stop(self, cleanup: Cleanup) -> None:
        """Run cleanup when the manager stops (reverse order)."""
        self._cleanups.append(cleanup)

    # -- life cycle ------------------------------------------------------------------------

    async def start(self, settings: Sequence[SimSettings] = ()) -> None:
        """Create the lines, look for modems once, then keep looking in the background."""
        for item in settings:
            self._add(item)
        await self.scan()
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="line-discovery")

    async def stop(self) -> None:
        """Stop discovery, every line and every port; run the registered cleanups."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for timer in list(self._timers):
            timer.cancel()
        for key in list(self._lines):
            await self._remove(key)
        for port in self.unassigned.values():
            with contextlib.suppress(Exception):
                await port.channel.close()
        self.unassigned.clear()
        for cleanup in reversed(self._cleanups):
            try:
                result = cleanup()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("line manager cleanup %r failed", cleanup)
        self._cleanups.clear()

    async def reload(self, settings: Sequence[SimSettings],
                     low_balance_threshold: float | None = None) -> dict[str, list[str]]:
        """Bring the lines in line with the configuration; calls in progress are kept."""
        self.ctx.low_balance_threshold = low_balance_threshold
        wanted = {s.key: s for s in settings}
        added: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        for key in list(self._lines):
            if key not in wanted:
                removed.append(key)
                line = self._lines[key]
                if line.call is not None:
                    self._retiring.add(key)  # removed when its call ends
                else:
                    await self._remove(key)
        for key, item in wanted.items():
            current = self._lines.get(key)
            if current is None:
                self._add(item)
                added.append(key)
            elif current.settings != item:
                current.update(item)
                updated.append(key)
                port = current.port
                moved = port is not None and match_line(port, [item.wish()], set()) is None
                if (moved or not item.enabled) and port is not None and current.call is None:
                    # A switched-off line, or one now configured for another modem, lets
                    # its modem go (probed again: it may belong to another line).
                    device = port.device
                    current.detach("line disabled" if not item.enabled
                                   else "configured for another modem")
                    self.discovery.forget(device)
        self._scan_now.set()
        self._match_unassigned()
        return {"added": added, "updated": updated, "removed": removed}

    def _add(self, item: SimSettings) -> SimLine:
        line = SimLine(item, self.ctx, released=self._released)
        self._lines[item.key] = line
        self._undo[item.key] = line.subscribe(self._forward)
        return line

    async def _remove(self, key: str) -> None:
        line = self._lines.pop(key, None)
        self._retiring.discard(key)
        undo = self._undo.pop(key, None)
        if line is not None:
            device = line.port.device if line.port is not None else None
            await line.stop()
            if device is not None:
                # Its modem is free again: probed anew, it may belong to another line.
                self.discovery.forget(device)
                self._scan_now.set()
        if undo is not None:
            undo()

    def _forward(self, event: Any) -> None:
        self.events.emit(event)
        db = self.ctx.db
        if isinstance(event, LineStateChanged) and db is not None:
            key, state, detail = event.line, event.new.value, event.detail
            self._later(0.0, self._write_state(db, key, state, detail))
        retiring = getattr(event, "line", None)
        if isinstance(retiring, str) and retiring in self._retiring:
            line = self._lines.get(retiring)
            if line is not None and line.call is None:
                self._later(0.0, self._remove(retiring))

    # -- discovery -------------------------------------------------------------------------

    async def scan(self) -> None:
        """One discovery pass: probe new devices, detach vanished ones."""
        async with self._lock:
            appeared, vanished = self.discovery.poll()
            for device in vanished:
                self._vanished(device)
            for dev in appeared:
                await self._probe(dev)

    async def _poll(self) -> None:
        while True:
            self._scan_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_now.wait(), self.ctx.timers.scan_s)
            try:
                await self.scan()
            except Exception:  # discovery must go on whatever one device does
                log.exception("modem discovery pass failed")

    def _vanished(self, device: str) -> None:
        port = self.unassigned.pop(device, None)
        if port is not None:
            self._later(0.0, port.channel.close())
        for line in self._lines.values():
            if line.port is not None and line.port.device == device:
                line.detach(f"modem {line.port.imei} unplugged")

    async def _probe(self, dev: DeviceLinks) -> None:
        if dev.port(AT_INTERFACES) is None:
            # Not shaped like our modems (a USB-serial adapter, a GPS): never sent an AT.
            log.debug("%s has no AT interface; left alone", dev.device)
            return
        try:
            port = await probe(dev, self._opener)
        except (ProbeError, OSError) as exc:
            failures = self._failures.get(dev.device, 0)
            self._failures[dev.device] = failures + 1
            delay = backoff_delay(failures, self.ctx.timers.backoff_base_s,
                                  self.ctx.timers.backoff_cap_s)
            log.warning("modem at %s: %s (trying again in %.0f s)", dev.device, exc, delay)
            self._later(delay, self._forget(dev.device))
            return
        self._failures.pop(dev.device, None)
        self._assign(port)

    def _assign(self, port: ModemPort) -> None:
        taken = {k for k, line in self._lines.items() if line.port is not None}
        wishes = [line.settings.wish() for line in self._lines.values()
                  if line.settings.enabled]
        key = match_line(port, wishes, taken)
        if key is None:
            log.info("modem %s (%s %s) on %s matches no configured SIM line", port.imei,
                     port.manufacturer, port.model, port.usb_path)
            self.unassigned[port.device] = port
            return
        self.unassigned.pop(port.device, None)
        log.info("modem %s on %s -> line %s", port.imei, port.usb_path, key)
        self._lines[key].attach(port)

    def _match_unassigned(self) -> None:
        for port in list(self.unassigned.values()):
            self.unassigned.pop(port.device, None)
            self._assign(port)

    def _released(self, port: ModemPort, delay: float) -> None:
        """A line let its modem go (reset): probe that device again after delay."""
        self._later(delay, self._forget(port.device))

    @staticmethod
    async def _write_state(db: Database, key: str, state: str, detail: str) -> None:
        try:
            await db.awrite(lambda c: store.set_line_state(c, key, state, detail))
        except Exception as exc:  # a closing database must not break the line
            log.info("line %s: state not recorded: %s", key, exc)

    async def _forget(self, device: str) -> None:
        self.discovery.forget(device)
        self._scan_now.set()

    def _later(self, delay: float, coro: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            try:
                if delay > 0:
                    await self.ctx.clock.sleep(delay)
                await coro
            finally:
                coro.close()  # cancelled while sleeping: never "never awaited"

        task = asyncio.get_running_loop().create_task(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    # -- actions for the API -----------------------------------------------------------------

    def summary(self) -> list[dict[str, Any]]:
        """Every line's health, then modems that match no line."""
        out = [line.health() for line in self.lines()]
        for port in self.unassigned.values():
            out.append({"key": None, "kind": "sim", "state": "unassigned",
                        "imei": port.imei, "modem": {"profile": port.profile.name,
                                                     "usb_path": port.usb_path,
                                                     "at_path": port.at_path}})
        return out

    def routing_status(self) -> dict[str, dict[str, Any]]:
        """Each SIM line as outbound routing weighs it: up, busy, signal (CSQ), registered."""
        out: dict[str, dict[str, Any]] = {}
        for line in self._lines.values():
            state = line.state
            out[line.key] = {
                "up": state in (LineState.READY, LineState.IN_CALL),
                "busy": state is LineState.IN_CALL or line.call is not None,
                "signal": line.info.get("signal"),
                "registered": line.info.get("registration") in ("home", "roaming"),
            }
        return out

    def counts(self) -> dict[str, int]:
        """Lines per state (for /status)."""
        out: dict[str, int] = {}
        for line in self._lines.values():
            out[line.state.value] = out.get(line.state.value, 0) + 1
        return out

    def _sms_line(self, key: str) -> SimLine:
        line = self._lines.get(key)
        if line is None:
            raise KeyError(f"no line {key!r}")
        if not line.settings.sms:
            raise ValueError(f"line {key!r} has SMS switched off")
        return line

    async def send_sms(self, key: str, to: str, text: str) -> dict[str, Any]:
        """Store the message, send it through the line; returns its id and status."""
        line = self._sms_line(key)
        db = self.ctx.db
        if db is None:
            raise RuntimeError("no database")
        sms_id = await db.awrite(lambda c: store.add_outgoing(c, key, to, text))
        if line.port is None or line.state not in (LineState.READY, LineState.IN_CALL):
            error = f"line {key} is {line.state.value}"
            await db.awrite(lambda c: store.mark_failed(c, sms_id, error))
            return {"id": sms_id, "status": "failed", "error": error}
        line.sms.start()
        try:
            status = await line.sms.send(sms_id, to, text)
        except Exception as exc:
            error = str(exc)
            await db.awrite(lambda c: store.mark_failed(c, sms_id, error))
            return {"id": sms_id, "status": "failed", "error": error}
        return {"id": sms_id, "status": status}

    async def list_sms(self, key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Stored messages, newest first."""
        db = self.ctx.db
        if db is None:
            return []
        return await db.awrite(lambda c: store.list_sms(c, key, limit))


def with_settings(items: Sequence[SimSettings], **changes: Any) -> list[SimSettings]:
    """Copies of items with fields changed (tests, `pbx dev`)."""
    return [replace(item, **changes) for item in items]
