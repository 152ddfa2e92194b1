"""`pbx run` as systemd runs it: READY, WATCHDOG, reload with a call up, SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.control import call as control
from appliance.settings import Settings
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess, pbx
from tests.support.tones import dominant, read_wav

pytestmark = pytest.mark.timeout(180)


def provision(settings: Settings, extensions: dict[str, str], *, reload: bool = False) -> None:
    """Import a configuration whose extensions ring fixed contacts (no registration)."""
    lines = ["version: 1", "employees:"]
    for number, contact in extensions.items():
        lines += [f'  - extension: "{number}"', f"    name: Test {number}", "    devices:",
                  f'      - {{username: "{number}", static_contact: "{contact}"}}']
    args = ["config", "import", "-"] + (["--reload"] if reload else [])
    result = pbx(settings, *args, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    if reload:
        assert "engine reloaded" in result.stdout


def add_extension(settings: Settings, extension: str, contact: str) -> None:
    """Provision one employee whose desk device is reached at a static contact."""
    provision(settings, {extension: contact})


def test_ready_watchdog_and_clean_sigterm(start_box: Callable[..., EngineProcess],
                                          settings: Settings) -> None:
    engine = start_box()
    assert any("READY=1" in m and "STATUS=ready" in m for m in engine.messages)
    # WATCHDOG_USEC=400000: a ping every 0.2 s from the event loop.
    engine.wait_notify(lambda m: m == "WATCHDOG=1", timeout=5)
    engine.wait_notify(lambda m: m == "WATCHDOG=1", timeout=5)
    status = control(settings.control_socket, "GET", "/status")
    assert status["state"] == "ready"
    assert status["engine"]["healthy"] is True
    assert status["engine"]["max_calls_compiled"] >= 256
    code, seconds = engine.terminate()
    assert code == 0
    assert seconds < 5
    assert "STOPPING=1" in "\n".join(engine.drain())
    assert not settings.control_socket.exists()


def test_reload_keeps_the_call_and_sigterm_completes_it(
        start_box: Callable[..., EngineProcess], settings: Settings, tmp_path: Path) -> None:
    callee_port = free_port()
    recordings = tmp_path / "rec"
    recordings.mkdir()
    add_extension(settings, "200", f"sip:200@127.0.0.1:{callee_port}")
    engine = start_box()
    callee = PhoneProcess(callee_port, free_port_block(20), "--tone", "1400",
                          "--record-dir", str(recordings))
    caller = PhoneProcess(free_port(), free_port_block(20))
    try:
        cid = caller.call(f"sip:200@127.0.0.1:{settings.engine_sip_port}", tone=700)
        caller.wait(lambda e: e.get("event") == "state" and e.get("id") == cid
                    and e.get("state") == "CONFIRMED")
        callee.wait(lambda e: e.get("state") == "CONFIRMED")

        # Reload twice while the call is up: by signal, then by importing a new
        # configuration with `pbx config import --reload` (control API).
        engine.proc.send_signal(signal.SIGHUP)
        engine.wait_notify(lambda m: "RELOADING=1" in m, timeout=10)
        engine.wait_ready(timeout=10)
        provision(settings, {"200": f"sip:200@127.0.0.1:{callee_port}",
                             "201": f"sip:201@127.0.0.1:{callee_port}"}, reload=True)
        status = control(settings.control_socket, "GET", "/status")
        assert status["reloads"] == 2
        assert status["calls"] == 1
        assert caller.states() == {str(cid): "CONFIRMED"}
        assert list(callee.states().values()) == ["CONFIRMED"]

        # The reload took effect: the new extension answers, beside the old call.
        second = caller.call(f"sip:201@127.0.0.1:{settings.engine_sip_port}", tone=700)
        caller.wait(lambda e: e.get("id") == second and e.get("state") == "CONFIRMED")
        assert control(settings.control_socket, "GET", "/status")["calls"] == 2

        # Audio still flows after the reloads: let 1.5 s of it through (audio
        # needs wall-clock time), then SIGTERM ends the call and the callee's
        # recording, closed at hang-up, must hold the caller's tone at its end.
        time.sleep(1.5)
        code, seconds = engine.terminate()
        assert code == 0 and seconds < 5
        caller.wait(lambda e: e.get("state") == "DISCONNECTED")
        callee.wait(lambda e: e.get("state") == "DISCONNECTED")
    finally:
        caller.close()
        callee.close()
    wav = min(recordings.glob("*.wav"))  # the first call, up through both reloads
    samples, rate = read_wav(wav)
    tail = samples[-int(1.2 * rate):-int(0.2 * rate)]  # a second after both reloads
    freq, share = dominant(tail, rate, [700.0, 1400.0, 1000.0])
    assert freq == 700.0 and share > 0.8

    rows = sqlite3.connect(settings.db_path).execute(
        "SELECT disposition, hangup_side, answered_at IS NOT NULL, ended_at IS NOT NULL"
        " FROM call_records").fetchall()
    assert rows == [("answered", "system", 1, 1)] * 2


def test_crash_leaves_a_record_the_next_start_closes(
        start_box: Callable[..., EngineProcess], settings: Settings) -> None:
    callee_port = free_port()
    add_extension(settings, "201", f"sip:201@127.0.0.1:{callee_port}")
    engine = start_box()
    callee = PhoneProcess(callee_port, free_port_block(20))
    caller = PhoneProcess(free_port(), free_port_block(20))
    try:
        caller.call(f"sip:201@127.0.0.1:{settings.engine_sip_port}")
        caller.wait(lambda e: e.get("state") == "CONFIRMED")
        engine.proc.kill()  # a power cut, as far as the database can tell
        engine.proc.wait()
    finally:
        caller.close()
        callee.close()
    db = sqlite3.connect(settings.db_path)
    assert db.execute("SELECT count(*) FROM call_records WHERE ended_at IS NULL"
                      ).fetchone() == (1,)
    again = start_box()
    assert db.execute("SELECT disposition, hangup_side FROM call_records").fetchall() == [
        ("interrupted", "system")]
    assert again.terminate()[0] == 0
