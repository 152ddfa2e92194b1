"""`pbx run` as systemd runs it: READY, WATCHDOG, reload with a call up, SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from appliance.control import call as control
from appliance.db import Database
from appliance.settings import Settings
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess
from tests.support.tones import dominant, read_wav

pytestmark = pytest.mark.timeout(180)


def add_extension(settings: Settings, extension: str, contact: str) -> None:
    """Provision one employee whose desk device is reached at a static contact."""
    db = Database.open(settings.db_path)
    try:
        def write(conn: object) -> None:
            emp = conn["employees"].insert(  # type: ignore[index]
                {"extension": extension, "name": f"Test {extension}"}).last_pk
            conn["devices"].insert(  # type: ignore[index]
                {"employee_id": emp, "username": f"dev{extension}", "static_contact": contact})
        db.write(write)
    finally:
        db.close()


@pytest.fixture
def engine(settings: Settings, unix_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    proc = EngineProcess(settings, unix_dir / "notify", log_path=tmp_path / "engine.log")
    yield proc
    proc.close()


def test_ready_watchdog_and_clean_sigterm(engine: EngineProcess, settings: Settings) -> None:
    ready = engine.wait_ready()
    assert "STATUS=ready" in ready
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
        engine: EngineProcess, settings: Settings, tmp_path: Path) -> None:
    callee_port = free_port()
    recordings = tmp_path / "rec"
    recordings.mkdir()
    add_extension(settings, "200", f"sip:200@127.0.0.1:{callee_port}")
    engine.wait_ready()
    callee = PhoneProcess(callee_port, free_port_block(20), "--tone", "1400",
                          "--record-dir", str(recordings))
    caller = PhoneProcess(free_port(), free_port_block(20))
    try:
        cid = caller.call(f"sip:200@127.0.0.1:{settings.engine_sip_port}", tone=700)
        caller.wait(lambda e: e.get("event") == "state" and e.get("id") == cid
                    and e.get("state") == "CONFIRMED")
        callee.wait(lambda e: e.get("state") == "CONFIRMED")

        # Reload twice, by signal and over the control API, while the call is up.
        engine.proc.send_signal(signal.SIGHUP)
        engine.wait_notify(lambda m: "RELOADING=1" in m, timeout=10)
        engine.wait_ready(timeout=10)
        assert control(settings.control_socket, "POST", "/reload")["reloads"] == 2
        assert control(settings.control_socket, "GET", "/status")["calls"] == 1
        assert caller.states() == {str(cid): "CONFIRMED"}
        assert list(callee.states().values()) == ["CONFIRMED"]

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
    [wav] = list(recordings.glob("*.wav"))
    samples, rate = read_wav(wav)
    tail = samples[-int(1.2 * rate):-int(0.2 * rate)]  # a second after both reloads
    freq, share = dominant(tail, rate, [700.0, 1400.0, 1000.0])
    assert freq == 700.0 and share > 0.8

    rows = sqlite3.connect(settings.db_path).execute(
        "SELECT disposition, hangup_side, answered_at IS NOT NULL, ended_at IS NOT NULL"
        " FROM call_records").fetchall()
    assert rows == [("answered", "system", 1, 1)]


def test_crash_leaves_a_record_the_next_start_closes(
        engine: EngineProcess, settings: Settings, unix_dir: Path, tmp_path: Path) -> None:
    callee_port = free_port()
    add_extension(settings, "201", f"sip:201@127.0.0.1:{callee_port}")
    engine.wait_ready()
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
    again = EngineProcess(settings, unix_dir / "notify2", log_path=tmp_path / "engine2.log")
    try:
        again.wait_ready()
        assert db.execute("SELECT disposition, hangup_side FROM call_records").fetchall() == [
            ("interrupted", "system")]
        assert again.terminate()[0] == 0
    finally:
        again.close()
