"""The `pbx` command end to end (real subprocesses, a real SQLite file)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from appliance.config.yamlio import parse_yaml
from appliance.db.migrations import latest_version
from appliance.settings import Settings
from tests.support.harness import pbx

DEMO = Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml"


def test_db_migrate_creates_then_is_a_no_op(settings: Settings) -> None:
    first = pbx(settings, "db", "migrate")
    assert first.returncode == 0, first.stderr
    latest = latest_version()
    assert f"schema 0 -> {latest}" in first.stdout
    again = pbx(settings, "db", "migrate")
    assert f"schema {latest} -> {latest}" in again.stdout
    db = sqlite3.connect(settings.db_path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_config_round_trips_through_the_cli(settings: Settings, tmp_path: Path) -> None:
    imported = pbx(settings, "config", "import", str(DEMO))
    assert imported.returncode == 0, imported.stderr
    exported = pbx(settings, "config", "export")
    assert exported.returncode == 0
    assert "demo-only" not in exported.stdout  # passwords leave only as digests
    (tmp_path / "out.yaml").write_text(exported.stdout)
    again = pbx(settings, "config", "import", str(tmp_path / "out.yaml"))
    assert again.returncode == 0, again.stderr
    assert pbx(settings, "config", "export").stdout == exported.stdout
    cfg = parse_yaml(exported.stdout)
    assert {e.extension for e in cfg.employees} >= {"101", "102", "103"}


def test_bad_config_is_refused_and_nothing_changes(settings: Settings) -> None:
    assert pbx(settings, "config", "import", str(DEMO)).returncode == 0
    before = pbx(settings, "config", "export").stdout
    bad = ("version: 1\nemployees:\n"
           "  - {extension: '101', name: A}\n  - {extension: '101', name: B}\n")
    result = pbx(settings, "config", "import", "-", stdin=bad)
    assert result.returncode == 1
    assert "not imported" in result.stderr and "101" in result.stderr
    assert pbx(settings, "config", "export").stdout == before


def test_unreadable_config_files(settings: Settings, tmp_path: Path) -> None:
    missing = pbx(settings, "config", "import", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = pbx(settings, "config", "import", str(binary))
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_admin_create_refuses_weak_passwords(settings: Settings) -> None:
    weak = pbx(settings, "admin", "create", "admin", stdin="admin\n")
    assert weak.returncode == 1
    assert "error" in weak.stderr
    ok = pbx(settings, "admin", "create", "admin", stdin="correct horse battery staple 7\n")
    assert ok.returncode == 0, ok.stderr
    row = sqlite3.connect(settings.db_path).execute(
        "SELECT username, role, password_hash FROM web_users").fetchone()
    assert row[0] == "admin" and row[1] == "administrator"
    assert row[2].startswith("$argon2id$")  # hashed, never the password


def test_status_without_an_engine(settings: Settings) -> None:
    result = pbx(settings, "status")
    assert result.returncode == 3
    assert "not running" in result.stderr


def test_settings_errors_are_clear(settings: Settings) -> None:
    result = pbx(settings, "--config", "/nonexistent/pbx.toml", "status")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_doctor_reports_our_build(settings: Settings) -> None:
    assert pbx(settings, "db", "migrate").returncode == 0
    result = pbx(settings, "doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    facts = report["facts"]["pjsua2"]
    assert facts["max_calls"] >= 256
    assert int(facts["build"]["limits"]["PJSUA_MAX_ACC"]) >= 64
    assert int(facts["build"]["limits"]["PJ_IOQUEUE_MAX_HANDLES"]) >= 1024
    assert int(facts["build"]["limits"]["PJSUA_MAX_PLAYERS"]) >= 256
    codecs = " ".join(facts["codecs"])
    for codec in ("PCMA/8000", "PCMU/8000", "G722/16000", "opus/48000"):
        assert codec in codecs
    assert facts["openssl"].startswith("OpenSSL 3")
    assert report["facts"]["database"]["journal_mode"] == "wal"
    text = pbx(settings, "doctor")
    assert "all checks passed" in text.stdout
    assert "1024 calls" in text.stdout


def test_doctor_fails_on_a_missing_database(settings: Settings) -> None:
    result = pbx(settings, "doctor")
    assert result.returncode == 1
    assert "FAIL  data dir" in result.stdout or "FAIL  database" in result.stdout
