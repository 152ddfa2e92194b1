"""Factory reset on a real SQLite file: users, tokens and configuration gone, history gone,
recordings kept or wiped; from the button (10 s of fake time on MockFactory pins), from
`pbx factory-reset` with no engine, and through a running engine with a GPIO board."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import given
from hypothesis import strategies as st

from appliance import cli
from appliance.accounts import (
    create_api_token,
    create_web_user,
    has_web_users,
    verify_web_user,
)
from appliance.config.model import BoxConfig
from appliance.config.read import export_config
from appliance.config.yamlio import import_yaml
from appliance.control import BadRequest
from appliance.db import Database
from appliance.factory_reset import factory_reset, keep_recordings_of
from appliance.frontpanel import FrontPanel, PanelInputs, PanelTimes
from appliance.panel import Phase
from appliance.settings import Settings
from hw.gpio import patterns
from hw.gpio.boards import board
from tests.support.fakeclock import FakeClock
from tests.support.harness import EngineProcess, pbx

pytestmark = pytest.mark.timeout(120)

OFFICE = """\
version: 1
box: {name: Acme, language: en, day_night: night}
employees:
  - extension: "101"
    name: Anna
    devices: [{username: "101", password: "Kx7-desk-alpha"}]
voicemail_boxes:
  - {key: "101", name: Anna, owner: "101"}
lines:
  - {key: mts, kind: sim, simulated: true}
"""
PASSWORD = "correct horse battery staple"


def owner_data(db: Database, data_dir: Path) -> None:
    """An office that has been in use: an admin, a token, calls, recordings, voicemail."""
    import_yaml(db, OFFICE)
    create_web_user(db, "admin", PASSWORD, "administrator")
    create_api_token(db, "CRM", ["read"])
    files = {"recordings/2026/11/call-1.wav": b"RIFF-rec", "voicemail/101/2026/11/vm-1.wav":
             b"RIFF-vm", "prompts/greeting-101.wav": b"RIFF-greeting"}
    for rel, data in files.items():
        (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / rel).write_bytes(data)

    def history(conn: object) -> None:
        c = conn.conn  # type: ignore[attr-defined]
        c.execute("INSERT INTO recordings (path) VALUES ('recordings/2026/11/call-1.wav')")
        c.execute("INSERT INTO call_records (uuid, direction, caller, dialled, ended_at,"
                  " disposition, recording_id) VALUES ('call-0001', 'inbound', '+79001112233',"
                  " '101', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'answered', 1)")
        c.execute("INSERT INTO call_legs (call_id, position, party_kind, extension)"
                  " VALUES (1, 0, 'employee', '101')")
        c.execute("INSERT INTO missed_calls (call_id, caller, reason)"
                  " VALUES (1, '+79001112233', 'no_answer')")
        c.execute("INSERT INTO voicemail_messages (box_key, caller, path) VALUES"
                  " ('101', '+79001112233', 'voicemail/101/2026/11/vm-1.wav')")
        c.execute("INSERT INTO sms (direction, peer, text, status) VALUES"
                  " ('in', '+79001112233', 'hello', 'received')")
        c.execute("INSERT INTO prompts (key, name, path) VALUES"
                  " ('greeting-101', 'Anna', 'prompts/greeting-101.wav')")
        # The admin is logged in in a browser; someone guessed passwords once.
        c.execute("INSERT INTO web_sessions (id, user_id) VALUES (?, 1)", ["ab" * 32])
        c.execute("INSERT INTO login_failures (address, username) VALUES ('10.0.0.9', 'root')")

    db.write(history)


def count(db: Database, table: str) -> int:
    """Rows in table."""
    return int(db.read().execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])


def assert_first_run(db: Database) -> None:
    """What the wizard needs: nobody, nothing configured, no history, one audit row."""
    assert not has_web_users(db)  # the web UI shows its first-run wizard
    for table in ("web_users", "web_sessions", "login_failures", "api_tokens", "employees",
                  "devices", "lines", "voicemail_boxes", "prompts", "call_records",
                  "call_legs", "missed_calls", "sms", "registrations"):
        assert count(db, table) == 0, table
    assert export_config(db) == BoxConfig(version=1)
    audit = db.read().execute("SELECT area, action, after FROM audit_log").fetchall()
    assert [(a[0], a[1]) for a in audit] == [("box", "factory_reset")]
    assert verify_web_user(db, "admin", PASSWORD) is None


@pytest.fixture
def office(tmp_path: Path) -> Iterator[tuple[Database, Path]]:
    """A used office's database file and data directory."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = Database.open(data_dir / "pbx.sqlite3")
    owner_data(db, data_dir)
    yield db, data_dir
    db.close()


def test_reset_keeps_recordings(office: tuple[Database, Path]) -> None:
    db, data_dir = office
    assert count(db, "web_users") == 1 and count(db, "call_records") == 1
    report = factory_reset(db, data_dir, keep_recordings=True, actor="test")
    assert_first_run(db)
    assert report.keep_recordings and report.rows["web_users"] == 1
    assert report.rows["call_records"] == 1 and report.files == 1  # the greeting
    assert count(db, "recordings") == 1 and count(db, "voicemail_messages") == 1
    assert (data_dir / "recordings/2026/11/call-1.wav").read_bytes() == b"RIFF-rec"
    assert (data_dir / "voicemail/101/2026/11/vm-1.wav").read_bytes() == b"RIFF-vm"
    assert list((data_dir / "prompts").iterdir()) == []
    assert db.read().execute("SELECT value FROM box_settings WHERE key = 'name'").fetchone() \
        == ('"Office PBX"',)
    assert db.integrity_check() == []


def test_reset_wipes_recordings(office: tuple[Database, Path]) -> None:
    db, data_dir = office
    report = factory_reset(db, data_dir, keep_recordings=False, actor="test")
    assert_first_run(db)
    assert count(db, "recordings") == 0 and count(db, "voicemail_messages") == 0
    assert report.files == 3
    assert [p for p in data_dir.rglob("*") if p.is_file() and p.suffix == ".wav"] == []
    after = json.loads(db.read().execute("SELECT after FROM audit_log").fetchone()[0])
    assert after["keep_recordings"] is False and after["rows"]["recordings"] == 1


async def test_holding_the_button_ten_seconds_resets_the_box(
        office: tuple[Database, Path]) -> None:
    db, data_dir = office
    factory = MockFactory(pin_class=MockPWMPin)
    clock = FakeClock()
    done = asyncio.Event()

    async def reset() -> object:
        report = await asyncio.to_thread(factory_reset, db, data_dir, keep_recordings=False,
                                         actor="button")
        done.set()
        return report

    front = FrontPanel(board("pi-sim7600-hat"), factory,
                       PanelInputs(phase=lambda: Phase.READY, factory_reset=reset), clock,
                       PanelTimes(refresh_s=1000.0))
    await front.start()
    try:
        assert front.leds is not None
        button, status = factory.pin(26), factory.pin(17)
        button.drive_low()
        await clock.asleep_until(10.0)  # the hold is being timed
        clock.advance(10.0)
        while front.leds.shown["status"] != patterns.CONFIRM:
            await asyncio.sleep(0)
        # The confirmation on the pins: every LED flashes together, 4 times a second.
        seen = []
        for t in (0.1, 0.3, 0.6, 0.8):
            clock.now = 10.0 + t
            front.leds.tick()
            seen.append((status.state, factory.pin(27).state, factory.pin(22).state))
        assert seen == [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)] * 2
        assert count(db, "web_users") == 1  # nothing reset yet
        clock.now = 10.0
        clock.advance(2.0)
        button.drive_high()
        await done.wait()
        while front.resets != 1:
            await asyncio.sleep(0)
        assert_first_run(db)
        assert count(db, "recordings") == 0
        assert front.leds.shown["status"] == patterns.ON
    finally:
        await front.stop()
        factory.reset()


def test_cli_without_an_engine(office: tuple[Database, Path],
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    db, data_dir = office
    db.close()
    monkeypatch.setenv("PBX_RUN_DIR", str(data_dir / "run"))
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115 (closed by pytest)
    # Not a terminal and no --yes: refused, nothing changed.
    assert cli.main(["--data-dir", str(data_dir), "factory-reset"]) == cli.EXIT_USAGE
    assert "--yes" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(data_dir), "factory-reset", "--yes",
                     "--wipe-recordings"]) == 0
    out = capsys.readouterr().out
    assert "engine not running" in out and "recordings deleted" in out
    with Database.open(data_dir / "pbx.sqlite3") as again:
        assert_first_run(again)
        assert count(again, "recordings") == 0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings on a two-modem Pi board, with simulated modems."""
    return replace(settings, board="pi-2usb", simulate=True)


def _panel_until(settings: Settings, done: Callable[[dict[str, str]], bool],
                 timeout: float = 30.0) -> dict[str, Any]:
    """GET /status's panel once done(leds) (the engine is another process: ask again)."""
    deadline = time.monotonic() + timeout
    while True:
        panel: dict[str, Any] = json.loads(pbx(settings, "status", "--json").stdout)["panel"]
        if done(panel["leds"]) or time.monotonic() > deadline:
            return panel
        time.sleep(0.3)


def test_through_a_running_engine_with_a_gpio_board(
        start_box: Callable[..., EngineProcess], settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine runs the front panel of a two-modem Pi on mock pins, as it would on a box.
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    start_box(OFFICE)
    # The engine's panel shows the box ready and, once its modem registers, the line.
    panel = _panel_until(settings, lambda leds: leds.get("line1") == "on")
    assert panel == {"board": "pi-2usb", "leds": {"status": "on", "call": "off",
                                                  "line1": "on", "line2": "off"}}
    with Database.open(settings.db_path) as db:
        create_web_user(db, "admin", PASSWORD, "administrator")
    listed = json.loads(pbx(settings, "ext", "list", "--json").stdout)
    assert [e["extension"] for e in listed] == ["101"]
    reset = pbx(settings, "factory-reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert "through the engine" in reset.stdout and "recordings kept" in reset.stdout
    assert json.loads(pbx(settings, "ext", "list", "--json").stdout) == []
    # The SIM line is gone; its modem is still there, matching no line.
    lines = json.loads(pbx(settings, "lines", "--json").stdout)
    assert all(line["key"] is None for line in lines)
    status = json.loads(pbx(settings, "status", "--json").stdout)
    assert status["state"] == "ready" and status["reloads"] == 1
    # No line any more: its LED is dark; the box is ready again.
    panel = _panel_until(settings, lambda leds: leds.get("line1") == "off")
    assert panel["leds"] == {"status": "on", "call": "off", "line1": "off", "line2": "off"}
    with Database.open(settings.db_path) as db:
        assert_first_run(db)
    log = (tmp_path / "engine0.log").read_text()
    assert "factory reset by control-api" in log
    assert "no GPIO for board" not in log and "did not start" not in log


@given(body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["keep_recordings", "wipe", ""]) | st.text(max_size=10), inner,
        max_size=3), max_leaves=8), default=st.booleans())
def test_reset_request_bodies(body: object, default: bool) -> None:
    try:
        keep = keep_recordings_of(body, default)
    except BadRequest as exc:
        assert exc.status == 400
        return
    if isinstance(body, dict) and "keep_recordings" in body:
        assert keep is body["keep_recordings"]
    else:
        assert body in (None, {}) and keep is default
