"""A rig for line tests: simulated modems, a real database, a LineManager over ptys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from appliance.db import Database
from appliance.lines.base import LineState
from appliance.lines.context import LineContext, LineTimers
from appliance.lines.discovery import ModemPort
from appliance.lines.manager import LineManager, read_sim_settings
from appliance.lines.sim import SimLine
from hw.modemsim import FakeModem

# Short enough for tests, long enough that a loaded 2-core machine does not trip them.
FAST = LineTimers(ping_idle_s=2.0, ping_timeout_s=2.0, poll_s=5.0, call_poll_s=0.5,
                  clip_wait_s=1.0, end_grace_s=0.4, reset_wait_s=20.0, backoff_base_s=0.5,
                  backoff_cap_s=2.0, pin_settle_s=5.0, balance_first_s=3600.0,
                  ussd_timeout_s=5.0, sms_part_limit_s=600.0, scan_s=0.3)


@dataclass
class Rig:
    """Modems by line key, the manager, the database and every event seen."""

    manager: LineManager
    db: Database
    modems: dict[str, FakeModem]
    events: list[Any] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def line(self, key: str = "sim1") -> SimLine:
        """The line called key."""
        line = self.manager.get(key)
        assert line is not None
        return line

    def on_event(self, event: Any) -> None:
        """Record an event and wake waiters."""
        self.events.append(event)
        self._changed.set()

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0,
                    what: str = "condition") -> Any:
        """Wait (on line events, re-checking at least every 0.2 s) until predicate is true."""
        async def loop() -> Any:
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.2)

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; events: "
                                 f"{self.events[-15:]}") from None

    async def ready(self, key: str = "sim1", timeout: float = 15.0) -> SimLine:
        """Wait for the line to be READY."""
        line = self.line(key)
        await self.until(lambda: line.state is LineState.READY, timeout, f"{key} READY")
        return line

    def of(self, kind: type) -> list[Any]:
        """Events of one type."""
        return [e for e in self.events if isinstance(e, kind)]


def add_sim_line(db: Database, key: str, **columns: Any) -> None:
    """A SIM line row in the configuration tables."""
    db.write(lambda c: c["lines"].insert({"key": key, "kind": "sim", **columns}))


@contextlib.asynccontextmanager
async def line_rig(tmp_path: Path, profiles: dict[str, str] | None = None, *,
                   timers: LineTimers = FAST, sim_args: dict[str, dict[str, Any]] | None = None,
                   columns: dict[str, dict[str, Any]] | None = None,
                   threshold: float | None = None,
                   start_modems: bool = True) -> AsyncIterator[Rig]:
    """Modems (profile per line key), one by-imei directory, a manager with FAST timers."""
    profiles = profiles or {"sim1": "quectel-ec25"}
    links = tmp_path / "by-imei"
    db = Database.open(tmp_path / "pbx.sqlite3")
    modems: dict[str, FakeModem] = {}
    for n, (key, profile) in enumerate(sorted(profiles.items()), start=1):
        imei = f"86000000000{n:04d}"
        args = {"imei": imei, "reboot_s": 1.0, **(sim_args or {}).get(key, {})}
        modems[key] = FakeModem(profile, links_dir=links, **args)
        add_sim_line(db, key, sim_imei=args["imei"], **(columns or {}).get(key, {}))
    if threshold is not None:
        db.write(lambda c: c["notification_settings"].insert(
            {"id": 1, "low_balance_threshold": threshold}))

    by_imei = {m.imei: m for m in modems.values()}

    async def usb_reset(port: ModemPort) -> bool:
        """The simulator's reboot plays the USB power cycle."""
        modem = by_imei.get(port.imei)
        if modem is None:
            return False
        await asyncio.to_thread(modem.reboot)
        return True

    ctx = LineContext(db=db, timers=timers, modem_dirs=(links,), usb_reset=usb_reset)
    manager = LineManager(ctx)
    rig = Rig(manager, db, modems)
    manager.subscribe(rig.on_event)
    try:
        if start_modems:
            for modem in modems.values():
                await modem.a_start()
        settings, ctx.low_balance_threshold = read_sim_settings(db.read())
        await manager.start(settings)
        yield rig
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(manager.stop(), 10)
        for modem in modems.values():
            with contextlib.suppress(Exception):
                await modem.a_stop()
        db.close()


def settings_of(rig: Rig, key: str, **changes: Any) -> Any:
    """A line's settings with fields changed."""
    return replace(rig.line(key).settings, **changes)
