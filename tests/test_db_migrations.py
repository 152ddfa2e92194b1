"""Schema migrations: empty -> latest, every earlier version -> latest, refusals, registry."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from appliance.db import Database, MigrationError, SchemaTooNewError
from appliance.db import migrations as mig
from appliance.db.migrations import MIGRATIONS, Migration, check_registry, latest_version

LATEST = latest_version()

# Everything DESIGN.md section 2 needs a place for.
EXPECTED_TABLES = {
    "schema_migrations", "web_sessions", "login_failures",
    # people
    "box_settings", "prompts", "employees", "employee_mobiles", "employee_route_permissions",
    "devices", "voicemail_boxes",
    # lines, schedules, policies
    "lines", "webhooks", "holiday_sets", "holiday_dates", "schedules", "schedule_hours",
    "schedule_dates", "schedule_holiday_sets", "blacklist", "outbound_routes",
    "outbound_route_lines", "caller_id_rules",
    # routing
    "departments", "department_members", "voice_menus", "menu_keys", "queues", "queue_agents",
    "queue_key_options", "forwarding_chains", "chain_steps", "call_flows", "flow_branches",
    "numbers",
    # history
    "recordings", "call_records", "call_legs", "voicemail_messages", "blocked_calls",
    "missed_calls", "sms", "ussd_history", "sms_parts",
    # integration and administration
    "crm_connections", "crm_user_map", "crm_contacts", "crm_contact_phones", "event_outbox",
    "repeat_caller_settings", "repeat_caller_sources", "repeat_caller_exceptions",
    "notification_settings", "notification_rules", "web_users", "api_tokens", "audit_log",
    # the SIP edge
    "registrations",
}

HA1_MD5 = "0" * 32
HA1_SHA = "a" * 64
TS = "2025-01-31T09:15:02.123Z"


def _v1(db: sqlite_utils.Database) -> None:
    db["box_settings"].insert({"key": "name", "value": '"Офис"'})
    db["prompts"].insert({"id": 1, "key": "welcome", "path": "prompts/welcome.wav"})
    db["employees"].insert({"id": 1, "extension": "101", "name": "Иван", "role": "administrator"})
    db["employees"].insert({"id": 2, "extension": "102", "name": "Мария"})
    db["employee_mobiles"].insert({"employee_id": 1, "position": 0, "number": "+79161234567"})
    db["employee_route_permissions"].insert({"employee_id": 1, "route_class": "mobile"})
    db["devices"].insert({"id": 1, "employee_id": 1, "username": "101", "realm": "pbx",
                          "ha1_md5": HA1_MD5, "ha1_sha256": HA1_SHA})
    db["devices"].insert({"id": 2, "employee_id": 2, "username": "102",
                          "static_contact": "sip:102@10.0.0.2"})
    db["voicemail_boxes"].insert({"id": 1, "key": "general", "employee_id": 1,
                                  "greeting_prompt_id": 1})


def _v2(db: sqlite_utils.Database) -> None:
    db["lines"].insert({"id": 1, "key": "sim1", "kind": "sim", "sim_simulated": 1,
                        "sim_imei": "356938035643809"})
    db["lines"].insert({"id": 2, "key": "trunk1", "kind": "sip_trunk", "channels": 4,
                        "sip_host": "sip.example.net", "sip_secret": "s"})
    db["webhooks"].insert({"id": 1, "key": "hook", "url": "https://example.net/hook"})
    db["holiday_sets"].insert({"id": 1, "key": "ru"})
    db["holiday_dates"].insert({"set_id": 1, "date": "2026-01-01", "name": "Новый год"})
    db["schedules"].insert({"id": 1, "key": "office", "time_zone": "Europe/Moscow"})
    db["schedule_hours"].insert({"schedule_id": 1, "weekday": 0, "opens": "09:00",
                                 "closes": "18:00"})
    db["schedule_dates"].insert({"schedule_id": 1, "date": "2026-12-31"})
    db["schedule_holiday_sets"].insert({"schedule_id": 1, "set_id": 1})
    db["blacklist"].insert({"id": 1, "number": "+79990000000", "reason": "спам"})
    db["outbound_routes"].insert({"id": 1, "key": "mobile", "position": 0,
                                  "pattern": "+79XXXXXXXXX", "route_class": "mobile"})
    db["outbound_route_lines"].insert({"route_id": 1, "line_id": 1, "position": 0})
    db["caller_id_rules"].insert({"position": 0, "route_id": 1, "mode": "line_number"})


def _v3(db: sqlite_utils.Database) -> None:
    db["departments"].insert({"id": 1, "key": "sales", "extension": "500",
                              "overflow_kind": "voicemail", "overflow_voicemail_id": 1})
    db["department_members"].insert({"department_id": 1, "employee_id": 1, "position": 0})
    db["voice_menus"].insert({"id": 1, "key": "main", "default_kind": "department",
                              "default_department_id": 1})
    db["menu_keys"].insert({"menu_id": 1, "digit": "1", "dest_kind": "external",
                            "dest_text": "+79161234567", "dest_line_id": 1})
    db["queues"].insert({"id": 1, "key": "support", "overflow_kind": "hangup"})
    db["queue_agents"].insert({"queue_id": 1, "employee_id": 2, "position": 0, "paused": 1})
    db["queue_key_options"].insert({"queue_id": 1, "digit": "1", "dest_kind": "callback"})
    db["forwarding_chains"].insert({"id": 1, "key": "duty", "final_kind": "voicemail",
                                    "final_voicemail_id": 1})
    db["chain_steps"].insert({"chain_id": 1, "position": 0, "timeout_s": 15,
                              "dest_kind": "employee", "dest_employee_id": 1})
    db["call_flows"].insert({"id": 1, "key": "main", "schedule_id": 1})
    db["flow_branches"].insert({"flow_id": 1, "position": 0, "condition": "open",
                                "greeting_prompt_id": 1, "dest_kind": "voice_menu",
                                "dest_menu_id": 1})
    db["flow_branches"].insert({"flow_id": 1, "position": 1, "condition": "closed",
                                "dest_kind": "chain", "dest_chain_id": 1})
    db["numbers"].insert({"id": 1, "number": "+74951234567", "line_id": 2, "flow_id": 1})


def _v4(db: sqlite_utils.Database) -> None:
    db["recordings"].insert({"id": 1, "path": "rec/1.wav", "duration_s": 12.5})
    db["call_records"].insert({"id": 1, "uuid": "c0ffee00-0001", "direction": "inbound",
                               "line_id": 2, "number_id": 1, "caller": "+79161234567",
                               "dialled": "+74951234567", "started_at": TS, "ended_at": TS,
                               "disposition": "answered", "route": '{"steps": []}',
                               "recording_id": 1})
    db["call_legs"].insert({"call_id": 1, "position": 0, "party_kind": "employee",
                            "employee_id": 1, "device_id": 1, "disposition": "answered"})
    db["voicemail_messages"].insert({"box_id": 1, "call_id": 1, "path": "vm/1.wav"})
    db["blocked_calls"].insert({"caller": "+79990000000", "blacklist_id": 1, "reason": "спам"})
    db["missed_calls"].insert({"call_id": 1, "caller": "+79161234567", "reason": "no_answer"})
    db["sms"].insert({"line_id": 1, "direction": "in", "peer": "+79161234567", "text": "Привет",
                      "status": "received"})
    db["ussd_history"].insert({"line_id": 1, "request": "*100#", "response": "Баланс 10 р",
                               "balance": 10.0})


def _v5(db: sqlite_utils.Database) -> None:
    db["crm_connections"].insert({"id": 1, "key": "amo", "adapter": "amocrm",
                                  "base_url": "https://example.amocrm.ru"})
    db["crm_user_map"].insert({"crm_id": 1, "external_user_id": "42", "employee_id": 1})
    db["crm_contacts"].insert({"id": 1, "crm_id": 1, "external_id": "c1",
                               "responsible_employee_id": 1})
    db["crm_contact_phones"].insert({"contact_id": 1, "phone": "+79161234567"})
    db["event_outbox"].insert({"kind": "call.ended", "crm_id": 1, "call_id": 1,
                               "payload": '{"a": 1}'})
    db["repeat_caller_settings"].insert({"id": 1, "enabled": 1})
    db["repeat_caller_sources"].insert({"position": 0, "source": "crm", "crm_id": 1})
    db["repeat_caller_exceptions"].insert({"employee_id": 2})
    db["notification_settings"].insert({"id": 1, "sms_line_id": 1})
    db["notification_rules"].insert({"position": 0, "event": "missed_call", "channel": "sms",
                                     "recipients": '["+79161234567"]'})
    db["web_users"].insert({"id": 1, "username": "admin", "password_hash": "$argon2id$x",
                            "role": "administrator", "employee_id": 1})
    db["api_tokens"].insert({"name": "crm", "token_hash": "b" * 64, "token_prefix": "pbx_ab",
                             "scopes": '["read"]', "created_by_user_id": 1})
    db["audit_log"].insert({"actor": "admin", "user_id": 1, "area": "config", "action": "x"})


def _v6(db: sqlite_utils.Database) -> None:
    device = db.execute("SELECT min(id) FROM devices").fetchone()[0]
    db["registrations"].insert({"device_id": device, "contact": "sip:101@192.168.1.50:5060",
                                "transport": "UDP", "source_host": "192.168.1.50",
                                "source_port": 5060, "call_id": "abc", "cseq": 7,
                                "expires_at": TS, "user_agent": "Yealink T31P"})


def _v7(db: sqlite_utils.Database) -> None:
    db.execute("UPDATE devices SET auth = 'md5' WHERE id = (SELECT min(id) FROM devices)")


def _v8(db: sqlite_utils.Database) -> None:
    db.execute("UPDATE employees SET confirm_mobile = 1 WHERE id = (SELECT min(id) FROM employees)")


def _v9(db: sqlite_utils.Database) -> None:
    sms = db["sms"].insert({"line_id": 1, "line_key": "mts", "direction": "in",
                            "peer": "+79161234567", "text": "При[…]", "status": "received",
                            "parts": 3, "partial": 1, "missing_parts": "[2, 3]"}).last_pk
    db["sms_parts"].insert({"line_key": "mts", "pdu": "07919700000000F0", "sms_id": sms})
    db["sms_parts"].insert({"line_key": "mts", "pdu": "0791970000"})
    db["sms"].insert({"line_id": 1, "line_key": "mts", "direction": "out",
                      "peer": "+79161234567", "text": "x", "status": "sent",
                      "part_refs": "[7, 8]", "delivered_parts": "[7]"})
    db["ussd_history"].insert({"line_id": 1, "line_key": "mts", "request": "*100#"})


def _v10(db: sqlite_utils.Database) -> None:
    db.execute("UPDATE voicemail_boxes SET language = 'en', pin_hash = ? WHERE key = 'general'",
                ["pbkdf2_sha256$20000$" + "0" * 32 + "$" + "1" * 64])
    box = db.execute("SELECT id FROM voicemail_boxes WHERE key = 'general'").fetchone()[0]
    db["voicemail_messages"].insert({"box_id": box, "box_key": "general", "caller": "+79161234567",
                                     "path": "voicemail/general/2026/11/c0ffee00-0002.wav",
                                     "call_uuid": "c0ffee00-0002", "duration_s": 4.5})


def _v11(db: sqlite_utils.Database) -> None:
    user = db.execute("SELECT id FROM web_users ORDER BY id LIMIT 1").fetchone()[0]
    db["web_sessions"].insert({"id": "ab" * 32, "user_id": user, "address": "192.168.1.20",
                               "user_agent": "Mozilla/5.0"})
    db["login_failures"].insert({"address": "192.168.1.66", "username": "admin"})


def _v12(db: sqlite_utils.Database) -> None:
    db.execute("UPDATE employees SET daily_call_plan = 60 "
               "WHERE id = (SELECT min(id) FROM employees)")


def _v13(db: sqlite_utils.Database) -> None:
    # Indexes only: rows the report indexes cover (an outgoing call, an open missed call).
    employee = db.execute("SELECT min(id) FROM employees").fetchone()[0]
    call = db["call_records"].insert({
        "uuid": "c0ffee00-0013", "direction": "outbound", "caller": "101",
        "dialled": "89161234567", "employee_id": employee, "started_at": TS, "ended_at": TS,
        "disposition": "no_answer"}).last_pk
    db["missed_calls"].insert({"call_id": call, "caller": "+79161234567", "reason": "busy",
                               "created_at": TS})


SAMPLES: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7, 8: _v8, 9: _v9, 10: _v10,
    11: _v11, 12: _v12, 13: _v13,
}


def _open_raw(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None),
                               execute_plugins=False)
    db.conn.execute("PRAGMA foreign_keys = ON")
    return db


def _counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in db.table_names() if t != "schema_migrations"}


def test_samples_cover_every_migration() -> None:
    assert sorted(SAMPLES) == [m.number for m in MIGRATIONS]


def test_registry_has_no_gaps_or_duplicates() -> None:
    check_registry(MIGRATIONS)
    assert [m.number for m in MIGRATIONS] == list(range(1, LATEST + 1))
    noop = MIGRATIONS[0].apply
    with pytest.raises(MigrationError, match="numbers"):
        check_registry([Migration(1, "a", noop), Migration(3, "b", noop)])
    with pytest.raises(MigrationError, match="numbers"):
        check_registry([Migration(1, "a", noop), Migration(1, "b", noop)])
    with pytest.raises(MigrationError, match="numbers"):
        check_registry([Migration(2, "a", noop), Migration(1, "b", noop)])
    with pytest.raises(MigrationError, match="duplicate"):
        check_registry([Migration(1, "a", noop), Migration(2, "a", noop)])


def test_empty_database_to_latest(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        assert db.schema_version() == LATEST
        assert db.pending_migrations() == []
        tables = set(db.read().table_names())
        assert tables >= EXPECTED_TABLES, EXPECTED_TABLES - tables
        assert db.integrity_check() == []
        applied = mig.applied_migrations(db.read())
        assert [a.number for a in applied] == list(range(1, LATEST + 1))
        assert all(a.applied_at.endswith("Z") for a in applied)
        assert db.read().execute("PRAGMA user_version").fetchone()[0] == LATEST


@pytest.mark.parametrize("version", range(LATEST))
def test_upgrade_from_every_earlier_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    old = _open_raw(path)
    assert mig.migrate(old, target=version) == list(range(1, version + 1))
    assert mig.current_version(old) == version
    for number in range(1, version + 1):
        SAMPLES[number](old)
    before = _counts(old)
    # Later migrations may add columns: compare the columns the old schema had.
    columns = {t: ", ".join(c.name for c in old[t].columns) for t in before}
    snapshot = {t: list(old.conn.execute(f"SELECT {columns[t]} FROM {t} ORDER BY rowid"))
                for t in before}
    old.close()

    with Database.open(path) as db:
        assert db.schema_version() == LATEST
        reader = db.read()
        after = _counts(reader)
        for table, rows in snapshot.items():
            assert list(reader.conn.execute(
                f"SELECT {columns[table]} FROM {table} ORDER BY rowid")) == rows
            assert after[table] == before[table]
        assert db.integrity_check() == []
        assert reader.execute("PRAGMA foreign_key_check").fetchall() == []
        # The tables the upgrade added take data that refers to the old rows.
        for number in range(version + 1, LATEST + 1):
            db.write(SAMPLES[number])
        assert db.integrity_check() == []


def test_database_newer_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    raw = _open_raw(path)
    mig.migrate(raw)
    raw.conn.execute("INSERT INTO schema_migrations (number, name) VALUES (?, 'future')",
                     (LATEST + 1,))
    raw.close()
    for migrate in (True, False):
        with pytest.raises(SchemaTooNewError, match=f"version {LATEST + 1}"):
            Database.open(path, migrate=migrate)
    raw = _open_raw(path)
    with pytest.raises(SchemaTooNewError):
        mig.migrate(raw)
    raw.close()


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "pbx.db"
    with Database.open(path) as db:
        schema = db.read().execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        first = schema.fetchall()
        assert db.migrate() == []
    with Database.open(path) as db:
        assert db.migrate() == []
        again = db.read().execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        assert again.fetchall() == first


def test_open_without_migrating_then_migrate(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db", migrate=False) as db:
        assert db.schema_version() == 0
        assert db.pending_migrations() == list(range(1, LATEST + 1))
        assert db.migrate() == list(range(1, LATEST + 1))
        assert db.schema_version() == LATEST


def test_failed_migration_is_rolled_back(tmp_path: Path) -> None:
    def half_done(db: sqlite_utils.Database) -> None:
        db.conn.execute("CREATE TABLE half (x)")
        db.conn.execute("INSERT INTO nowhere VALUES (1)")  # fails

    registry = (*MIGRATIONS, Migration(LATEST + 1, "broken", half_done))
    raw = _open_raw(tmp_path / "pbx.db")
    with pytest.raises(MigrationError, match=f"migration {LATEST + 1} .broken. failed"):
        mig.migrate(raw, migrations=registry)
    assert mig.current_version(raw) == LATEST
    assert "half" not in raw.table_names()
    assert not raw.conn.in_transaction
    raw.close()


def test_rebuild_migration_runs_with_foreign_keys_off(tmp_path: Path) -> None:
    def rebuild(db: sqlite_utils.Database) -> None:
        # The documented 12-step table rebuild: new table, copy, drop, rename.
        sql = db.conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'prompts'").fetchone()[0]
        db.conn.execute(sql.replace("CREATE TABLE prompts", "CREATE TABLE prompts_new", 1)
                        .replace("language TEXT", "language TEXT, extra TEXT", 1))
        db.conn.execute("INSERT INTO prompts_new (id, key, name, path, language, duration_s, "
                        "created_at) SELECT id, key, name, path, language, duration_s, "
                        "created_at FROM prompts")
        db.conn.execute("DROP TABLE prompts")
        db.conn.execute("ALTER TABLE prompts_new RENAME TO prompts")

    registry = (*MIGRATIONS, Migration(LATEST + 1, "rebuild", rebuild, foreign_keys_off=True))
    raw = _open_raw(tmp_path / "pbx.db")
    mig.migrate(raw)
    _v1(raw)
    assert mig.migrate(raw, migrations=registry) == [LATEST + 1]
    assert "extra" in raw["prompts"].columns_dict
    assert raw.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert raw.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()


def test_two_processes_migrating_at_once(tmp_path: Path) -> None:
    path = tmp_path / "pbx.db"
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=10)

    def opener() -> None:
        try:
            start.wait()
            Database.open(path).close()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with Database.open(path) as db:
        assert db.schema_version() == LATEST
        assert len(mig.applied_migrations(db.read())) == LATEST


def _write_error(db: Database, fn: Callable[[sqlite_utils.Database], object]) -> str:
    with pytest.raises(sqlite3.IntegrityError) as info:
        db.write(fn)
    return str(info.value)


def test_constraints_guard_the_data_model(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        db.write(_v1)
        db.write(_v2)
        db.write(_v3)
        assert "CHECK" in _write_error(db, lambda c: c["blacklist"].insert(
            {"number": "+79990000001", "reason": "   "}))
        assert "NOT NULL" in _write_error(db, lambda c: c["blacklist"].insert(
            {"number": "+79990000001"}))
        assert "CHECK" in _write_error(db, lambda c: c["employees"].insert(
            {"extension": "1", "name": "x"}))
        assert "CHECK" in _write_error(db, lambda c: c["employees"].insert(
            {"extension": "103", "name": "x", "role": "root"}))
        # a plain password is impossible: a registering device needs both digests
        assert "CHECK" in _write_error(db, lambda c: c["devices"].insert(
            {"employee_id": 1, "username": "x", "realm": "pbx", "ha1_md5": HA1_MD5}))
        assert "CHECK" in _write_error(db, lambda c: c["devices"].insert(
            {"employee_id": 1, "username": "y"}))
        # destination kind and reference must agree
        assert "CHECK" in _write_error(db, lambda c: c["chain_steps"].insert(
            {"chain_id": 1, "position": 5, "timeout_s": 5, "dest_kind": "department",
             "dest_employee_id": 1}))
        assert "CHECK" in _write_error(db, lambda c: c["forwarding_chains"].insert(
            {"key": "x", "final_kind": "hangup", "final_text": "boo"}))
        assert "NOT NULL" in _write_error(db, lambda c: c["forwarding_chains"].insert(
            {"key": "y"}))
        assert "FOREIGN KEY" in _write_error(db, lambda c: c["chain_steps"].insert(
            {"chain_id": 1, "position": 6, "timeout_s": 5, "dest_kind": "queue",
             "dest_queue_id": 99}))
        # a finished call needs a disposition; timestamps are UTC ISO-8601
        assert "CHECK" in _write_error(db, lambda c: c["call_records"].insert(
            {"uuid": "abcdefgh1", "direction": "inbound", "ended_at": TS}))
        assert "CHECK" in _write_error(db, lambda c: c["call_records"].insert(
            {"uuid": "abcdefgh2", "direction": "inbound", "started_at": "31.01.2025 09:15"}))
        assert "CHECK" in _write_error(db, lambda c: c["call_records"].insert(
            {"uuid": "abcdefgh3", "direction": "inbound",
             "started_at": "2025-01-31T12:15:02+03:00"}))
        db.write(lambda c: c["call_records"].insert(
            {"uuid": "abcdefgh4", "direction": "inbound",
             "started_at": "2025-01-31T09:15:02.123456+00:00"}))
        assert "CHECK" in _write_error(db, lambda c: c["schedule_hours"].insert(
            {"schedule_id": 1, "weekday": 7, "opens": "09:00", "closes": "18:00"}))
        assert "CHECK" in _write_error(db, lambda c: c["schedule_hours"].insert(
            {"schedule_id": 1, "weekday": 1, "opens": "24:00", "closes": "18:00"}))
        assert "CHECK" in _write_error(db, lambda c: c["lines"].insert(
            {"key": "sim2", "kind": "sim", "channels": 2}))


def test_history_survives_removal_of_config(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        for number in range(1, LATEST + 1):
            db.write(SAMPLES[number])

        def remove(c: sqlite_utils.Database) -> None:
            c.conn.execute("PRAGMA defer_foreign_keys = ON")
            for table in ("numbers", "outbound_route_lines", "menu_keys", "notification_settings",
                          "repeat_caller_sources"):
                c.conn.execute(f"DELETE FROM {table}")
            c.conn.execute("DELETE FROM lines")

        db.write(remove)
        row = db.read().execute("SELECT line_id, number_id, caller FROM call_records").fetchone()
        assert row == (None, None, "+79161234567")
        assert db.read().execute("SELECT count(*) FROM sms").fetchone()[0] == 3
        # The line's key stays on its messages (migration 8) after the line is removed.
        assert db.read().execute(
            "SELECT count(*) FROM sms WHERE line_id IS NULL AND line_key = 'mts'"
        ).fetchone()[0] == 2
        assert db.integrity_check() == []
