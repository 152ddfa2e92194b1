"""The line manager: hot-plug, retries with backoff (fake clock), reload without dropping a
call, and the control API and CLI through a real control socket."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from appliance import cli
from appliance.control import ControlError, ControlServer, call
from appliance.db import Database
from appliance.lines import api as lines_api
from appliance.lines.base import LineCallState, LineState
from appliance.lines.context import LineContext
from appliance.lines.manager import LineManager
from appliance.lines.sim import SimSettings
from hw.modemsim import FakeModem
from tests.support.lines import FAST, line_rig

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    """Time that moves only when the test says; sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._waiting: list[tuple[float, asyncio.Event]] = []
        self.slept = asyncio.Event()

    def monotonic(self) -> float:
        """The fake now."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Wait until advance() passes now + seconds."""
        self.sleeps.append(seconds)
        event = asyncio.Event()
        self._waiting.append((self.now + seconds, event))
        self.slept.set()
        await event.wait()

    def advance(self, seconds: float) -> None:
        """Move time on and wake the sleepers that are due."""
        self.now += seconds
        for due, event in list(self._waiting):
            if due <= self.now:
                self._waiting.remove((due, event))
                event.set()


async def test_missing_modem_is_retried_with_backoff(tmp_path: Path) -> None:
    links = tmp_path / "by-path"
    links.mkdir()
    # Something that is not a modem at an AT interface: opening it as a serial port fails.
    os.symlink("/dev/null", links / "pci-usb-0:1.1:1.2-port0")
    clock = FakeClock()
    timers = replace(FAST, backoff_base_s=1.0, backoff_cap_s=4.0)
    manager = LineManager(LineContext(clock=clock, timers=timers, modem_dirs=(links,)))
    await manager.start([SimSettings("sim1", imei="860000000000001")])
    try:
        line = manager.get("sim1")
        assert line is not None and line.state is LineState.DOWN
        for expected in ([1.0], [1.0, 2.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0, 4.0]):
            await asyncio.wait_for(_until(lambda e=expected: clock.sleeps == e), 10)
            clock.advance(10.0)
        assert line.state is LineState.DOWN
    finally:
        await manager.stop()


async def _until(predicate: object) -> None:
    while not predicate():  # type: ignore[operator]
        await asyncio.sleep(0.02)


async def test_hot_plugged_modem_is_configured(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "simcom-7600"}, start_modems=False) as rig:
        line = rig.line()
        assert line.state is LineState.DOWN and line.port is None
        await rig.modems["sim1"].a_start()
        await rig.ready()


async def test_unknown_modem_waits_until_configured(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}) as rig:
        await rig.ready()
        stranger = FakeModem("huawei-e1550", imei="860000000000777",
                             links_dir=rig.modems["sim1"].links_dir)
        await stranger.a_start()
        try:
            await rig.until(lambda: rig.manager.unassigned, what="unassigned modem")
            listed = rig.manager.summary()
            assert listed[-1]["state"] == "unassigned" and listed[-1]["imei"] == stranger.imei
            rig.db.write(lambda c: c["lines"].insert(
                {"key": "sim9", "kind": "sim", "sim_imei": stranger.imei}))
            settings = [rig.line().settings, SimSettings("sim9", imei=stranger.imei)]
            changes = await rig.manager.reload(settings)
            assert changes["added"] == ["sim9"]
            await rig.ready("sim9")
            assert not rig.manager.unassigned
        finally:
            await rig.manager.reload([rig.line().settings])
            await stranger.a_stop()


async def test_reload_keeps_the_call(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25", "sim2": "huawei-e1550"}) as rig:
        line = await rig.ready("sim1")
        await rig.ready("sim2")
        sim = rig.modems["sim1"]
        call_ = await line.dial("+79005550020")
        await call_.wait_state(LineCallState.ACTIVE, timeout=5)
        one, two = line.settings, rig.line("sim2").settings
        # A changed balance code and a removed line: the call goes on through both.
        changes = await rig.manager.reload([replace(one, ussd_balance="*102#")])
        assert changes == {"added": [], "updated": ["sim1"], "removed": ["sim2"]}
        assert rig.manager.get("sim2") is None
        changes = await rig.manager.reload([replace(two, enabled=True)])
        assert changes["removed"] == ["sim1"] and changes["added"] == ["sim2"]
        assert rig.manager.get("sim1") is line  # kept until its call ends
        assert call_.state is LineCallState.ACTIVE and sim.calls()[0].stat == 0
        await call_.hangup()
        await rig.until(lambda: rig.manager.get("sim1") is None, what="sim1 retired")
        await rig.ready("sim2")


async def test_control_api_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    socket_path = data / "run" / "control.sock"
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"},
                        columns={"sim1": {"sim_ussd_balance": "*100#"}}) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_set_ussd("*100#", "Баланс: 77,00 р.", dcs=72)
        server = ControlServer(socket_path)
        lines_api.register(server, rig.manager)
        await server.start()
        try:
            def api(method: str, path: str, body: object = None) -> object:
                return call(socket_path, method, path, body)

            listed = await asyncio.to_thread(api, "GET", "/lines")
            assert isinstance(listed, list) and listed[0]["key"] == "sim1"
            for field in ("state", "signal", "registration", "operator", "sim", "imei", "imsi",
                          "iccid", "own_number", "balance"):
                assert field in listed[0], field
            assert listed[0]["state"] == "ready" and listed[0]["imsi"] == "250990000000001"

            answer = await asyncio.to_thread(api, "POST", "/lines/sim1/ussd",
                                             {"code": "*100#"})
            assert answer == {"line": "sim1", "code": "*100#", "text": "Баланс: 77,00 р.",
                              "status": 0, "balance": 77.0, "currency": "RUB"}
            with pytest.raises(ControlError, match="404"):
                await asyncio.to_thread(api, "POST", "/lines/nope/ussd", {"code": "*100#"})
            with pytest.raises(ControlError, match="400"):
                await asyncio.to_thread(api, "POST", "/lines/sim1/ussd", {"code": "AT"})
            with pytest.raises(ControlError, match="405"):
                await asyncio.to_thread(api, "GET", "/lines/sim1/ussd")

            sent = await asyncio.to_thread(api, "POST", "/sms",
                                           {"line": "sim1", "to": "+79001234567",
                                            "text": "Привет из API"})
            assert isinstance(sent, dict) and sent["status"] == "sent"
            assert sim.sent_messages() == [("+79001234567", "Привет из API")]

            # The CLI, as a person would run it, against the same socket.
            argv = ["--data-dir", str(data)]
            assert await asyncio.to_thread(cli.main, [*argv, "lines"]) == 0
            out = capsys.readouterr().out
            assert "sim1" in out and "ready" in out and "SimNet" in out and "77.0" in out
            assert await asyncio.to_thread(
                cli.main, [*argv, "sms", "send", "--line", "sim1", "+79001230000",
                           "тест из CLI"]) == 0
            assert "sent" in capsys.readouterr().out
            await sim.a_deliver_sms("+79001234567", "входящее")
            await rig.until(lambda: len(rig.manager.summary()) and any(
                r["direction"] == "in" for r in _sms(rig)), what="incoming stored")
            assert await asyncio.to_thread(cli.main, [*argv, "sms", "list", "--json"]) == 0
            items = json.loads(capsys.readouterr().out)
            assert [i["text"] for i in items][:3] == ["входящее", "тест из CLI",
                                                      "Привет из API"]
            assert await asyncio.to_thread(
                cli.main, [*argv, "sms", "list", "--line", "sim1"]) == 0
            assert "входящее" in capsys.readouterr().out
            assert await asyncio.to_thread(cli.main, [*argv, "ussd", "sim1", "*100#"]) == 0
            assert "balance: 77.0 RUB" in capsys.readouterr().out
            assert await asyncio.to_thread(
                cli.main, [*argv, "sms", "send", "--line", "nope", "+79001230000", "x"]) == 3
        finally:
            await server.stop()


def _sms(rig: object) -> list[dict[str, object]]:
    db: Database = rig.db  # type: ignore[attr-defined]
    rows = db.read().execute("SELECT direction FROM sms").fetchall()
    return [{"direction": r[0]} for r in rows]


async def test_disabled_line_lets_its_modem_go_and_gets_it_back(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "huawei-e1550"}) as rig:
        line = await rig.ready()
        await rig.manager.reload([replace(line.settings, enabled=False)])
        assert line.state is LineState.DISABLED and line.port is None
        await rig.until(lambda: rig.manager.unassigned, what="modem unassigned")
        call_ = await line.dial("+79005550030")
        assert call_.ended and call_.outcome.sip_code == 480  # type: ignore[union-attr]
        await rig.manager.reload([replace(line.settings, enabled=True)])
        await rig.ready()
        assert not rig.manager.unassigned
