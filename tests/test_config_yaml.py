"""YAML export/import against a real database: round trips, atomicity, hostile input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config import ConfigError
from appliance.config import write as config_write
from appliance.config.safeyaml import MAX_DOCUMENT_BYTES, load_yaml
from appliance.config.yamlio import export_config, export_yaml, import_yaml
from appliance.db import Database

DEMO_TEXT = (Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml"
             ).read_text(encoding="utf-8")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    yield database
    database.close()


def demo() -> dict[str, Any]:
    data = yaml.safe_load(DEMO_TEXT)
    assert isinstance(data, dict)
    return data


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def scalar(db: Database, sql: str, *params: Any) -> Any:
    return db.read().execute(sql, params).fetchone()[0]


def test_round_trip_is_stable(db: Database) -> None:
    first = import_yaml(db, DEMO_TEXT)
    assert first.changed
    assert first.changes["employees"].created == 5
    exported = export_yaml(db)
    second = import_yaml(db, exported)
    assert str(second) == "no changes"
    assert export_yaml(db) == exported
    assert db.integrity_check() == []


def test_export_has_no_plain_secrets(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    exported = export_yaml(db)
    assert "demo-only-password" not in exported
    assert "demo-only-trunk-secret" not in exported
    assert "ha1_md5" in exported and "ha1_sha256" in exported
    stored = db.read().execute("SELECT * FROM devices").fetchall()
    assert "demo-only-password" not in repr(stored)
    # Importing the export keeps the trunk secret it did not carry.
    import_yaml(db, exported)
    assert scalar(db, "SELECT sip_secret FROM lines WHERE key = 'trunk1'") == (
        "demo-only-trunk-secret")
    # ... and an export imported elsewhere lets phones log in with the same passwords.
    assert export_config(db).employees[0].devices[0].ha1_md5 == scalar(
        db, "SELECT ha1_md5 FROM devices WHERE username = '101'")


def test_secret_can_be_replaced_and_is_dropped_with_a_kind_change(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    data = demo()
    data["lines"][1]["secret"] = "new-secret-value"
    import_yaml(db, dump(data))
    assert scalar(db, "SELECT sip_secret FROM lines WHERE key = 'trunk1'") == "new-secret-value"
    data["lines"][1] = {"key": "trunk1", "kind": "fxo_gateway", "username": "gw"}
    import_yaml(db, dump(data))
    assert scalar(db, "SELECT sip_secret FROM lines WHERE key = 'trunk1'") is None


def test_nothing_is_written_when_validation_fails(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    before = export_yaml(db)
    data = demo()
    data["employees"] = data["employees"][:2]  # 103-105 still referenced elsewhere
    data["box"]["name"] = "Changed"
    with pytest.raises(ConfigError) as info:
        import_yaml(db, dump(data))
    assert "departments[0].members[1]: no employee with extension 103" in str(info.value)
    assert export_yaml(db) == before


def test_nothing_is_written_when_the_database_step_fails(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import_yaml(db, DEMO_TEXT)
    before = export_yaml(db)
    audit = scalar(db, "SELECT count(*) FROM audit_log")
    data = demo()
    data["employees"][0]["name"] = "Другое имя"
    data["box"]["name"] = "Changed"

    def explode(*args: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(config_write, "_single_rows", explode)
    with pytest.raises(RuntimeError, match="power cut"):
        import_yaml(db, dump(data))
    assert export_yaml(db) == before
    assert scalar(db, "SELECT count(*) FROM audit_log") == audit


def test_history_and_accounts_are_untouched(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    ids = dict(db.read().execute("SELECT extension, id FROM employees").fetchall())

    def history(conn: Any) -> None:
        c = conn.conn
        c.execute("INSERT INTO call_records (uuid, direction, caller, employee_id, line_id, "
                  "number_id) VALUES ('call-0001', 'inbound', '+79161234567', ?, "
                  "(SELECT id FROM lines WHERE key = 'trunk1'), (SELECT min(id) FROM numbers))",
                  (ids["101"],))
        c.execute("INSERT INTO call_records (uuid, direction, caller, employee_id) "
                  "VALUES ('call-0002', 'inbound', '+79161234568', ?)", (ids["105"],))
        c.execute("INSERT INTO web_users (username, password_hash, role, employee_id) "
                  "VALUES ('boss', '$argon2id$x', 'administrator', ?)", (ids["105"],))
        c.execute("INSERT INTO voicemail_messages (box_id, path) VALUES "
                  "((SELECT id FROM voicemail_boxes WHERE key = 'general'), 'vm/1.wav')")
        c.execute("UPDATE queue_agents SET paused = 1, paused_reason = 'обед' "
                  "WHERE employee_id = ?", (ids["104"],))

    db.write(history)
    data = demo()
    data["employees"] = [e for e in data["employees"] if e["extension"] != "105"]
    data["flows"][0]["branches"].pop(0)  # the duty chain rang 105
    data["forwarding_chains"] = []
    data["repeat_caller"]["exceptions"] = []
    data["employees"].append({"extension": "106", "name": "Новенький"})
    report = import_yaml(db, dump(data))
    assert report.changes["employees"].deleted == 1
    assert report.changes["employees"].created == 1
    new_ids = dict(db.read().execute("SELECT extension, id FROM employees").fetchall())
    assert all(new_ids[ext] == ids[ext] for ext in ("101", "102", "103", "104"))
    rows = db.read().execute(
        "SELECT uuid, employee_id, line_id IS NOT NULL, number_id IS NOT NULL "
        "FROM call_records ORDER BY uuid").fetchall()
    assert rows == [("call-0001", ids["101"], 1, 1), ("call-0002", None, 0, 0)]
    assert db.read().execute("SELECT username, employee_id FROM web_users").fetchall() == [
        ("boss", None)]
    assert scalar(db, "SELECT count(*) FROM voicemail_messages WHERE box_id IS NOT NULL") == 1
    assert db.read().execute(
        "SELECT paused, paused_reason FROM queue_agents WHERE employee_id = ?",
        (ids["104"],)).fetchall() == [(1, "обед")]
    assert db.integrity_check() == []


def test_entities_can_move_within_one_import(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    data = demo()
    # a device moves to another employee; the department and the queue swap extensions;
    # the removed employee's old extension is taken by a new voicemail box
    device = data["employees"][0]["devices"].pop()
    data["employees"][3]["devices"].append(device)
    data["departments"][0]["extension"] = "700"
    data["queues"][0]["extension"] = "500"
    data["voicemail_boxes"][1]["extension"] = "600"
    data["voice_menus"][0]["extension"] = "590"
    device_id = scalar(db, "SELECT id FROM devices WHERE username = '101-soft'")
    import_yaml(db, dump(data))
    assert db.read().execute(
        "SELECT d.id, e.extension FROM devices d JOIN employees e ON e.id = d.employee_id "
        "WHERE username = '101-soft'").fetchall() == [(device_id, "104")]
    assert scalar(db, "SELECT extension FROM queues") == "500"
    assert scalar(db, "SELECT extension FROM departments") == "700"
    assert export_yaml(db) == export_yaml(db)
    assert db.integrity_check() == []


def test_an_import_replaces_everything(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    minimal = "version: 1\nbox: {name: Пусто}\nemployees:\n  - {extension: '201', name: Один}\n"
    report = import_yaml(db, minimal)
    assert report.changes["employees"].deleted == 5
    assert scalar(db, "SELECT count(*) FROM employees") == 1
    for table in ("devices", "departments", "lines", "numbers", "call_flows", "voice_menus",
                  "queues", "blacklist", "menu_keys", "flow_branches", "schedule_hours"):
        assert scalar(db, f"SELECT count(*) FROM {table}") == 0, table
    assert scalar(db, "SELECT value FROM box_settings WHERE key = 'name'") == '"Пусто"'
    assert db.integrity_check() == []
    audit = db.read().execute("SELECT actor, area, action FROM audit_log").fetchall()
    assert audit[-1] == ("system", "config", "import")


def test_empty_and_fresh_database_export(db: Database) -> None:
    text = export_yaml(db)
    assert text.startswith("# Office PBX configuration")
    cfg = load_yaml(text)
    assert cfg["version"] == 1
    import_yaml(db, text)  # a fresh box's export is itself importable
    with pytest.raises(ConfigError, match="empty"):
        import_yaml(db, "")
    with pytest.raises(ConfigError, match="empty"):
        import_yaml(db, "# only a comment\n")


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nemployees: [", "not valid YAML"),
    ("- 1\n- 2\n", "mapping"),
    ("just text", "mapping"),
    ("version: 1\nversion: 1\n", "duplicate key 'version'"),
    ("version: !!python/object/apply:os.system ['true']\n", "tag"),
    ("version: !!binary aGVsbG8=\n", "tag"),
    ("version: 1\nbox: &a {name: x}\nother: *a\n", "unknown field"),
    ("version: 1\nbox: &a [*a]\n", "loop"),
    ("version: 1\nemployees: " + "[" * 100 + "]" * 100 + "\n", "nested"),
    ("version: 1\nemployees: " + "[" * 5000, "nested"),
    ("version: 1\nemployees:\n  - extension: 101\n    name: [1, 2]\n", "employees[0].name"),
    ("version: 1\n<<: {box: {name: x}}\n", "unknown field"),
    ("\tversion: 1", "not valid YAML"),
])
def test_hostile_or_broken_documents(db: Database, text: str, message: str) -> None:
    import_yaml(db, DEMO_TEXT)
    before = export_yaml(db)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        import_yaml(db, text)
    assert export_yaml(db) == before


def test_alias_bomb_is_refused_quickly(db: Database) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="alias"):
        import_yaml(db, "\n".join(lines))
    assert time.monotonic() - started < 5
    # a milder blow-up is refused too, by ratio
    mild = ["a: &a [" + ",".join(["1"] * 100) + "]",
            "b: &b [" + ",".join(["*a"] * 100) + "]",
            "c: [" + ",".join(["*b"] * 100) + "]"]
    with pytest.raises(ConfigError, match="alias"):
        load_yaml("\n".join(mild))


def test_oversized_documents_are_refused_before_parsing(db: Database) -> None:
    huge = "version: 1\n" + "#" * MAX_DOCUMENT_BYTES
    started = time.monotonic()
    with pytest.raises(ConfigError, match="larger than"):
        import_yaml(db, huge)
    with pytest.raises(ConfigError, match="larger than"):
        import_yaml(db, huge.encode())
    assert time.monotonic() - started < 5
    with pytest.raises(ConfigError, match="UTF-8"):
        import_yaml(db, b"version: 1\nbox: {name: \xff\xfe}\n")


def test_yaml_1_1_traps_are_defused() -> None:
    data = load_yaml("a: NO\nb: yes\nc: 0101\nd: 18:00\ne: 2026-01-01\nf: 1_000\ng: 0x1F\n"
                     "h: true\ni: null\nj: 12\nk: -1.5\nl: .inf\n")
    assert data == {"a": "NO", "b": "yes", "c": "0101", "d": "18:00", "e": "2026-01-01",
                    "f": "1_000", "g": "0x1F", "h": True, "i": None, "j": 12, "k": -1.5,
                    "l": ".inf"}


def test_exported_yaml_reads_back_with_any_yaml_parser(db: Database) -> None:
    import_yaml(db, DEMO_TEXT)
    exported = export_yaml(db)
    # Values that YAML 1.1 would misread (extensions, times) are quoted in the export.
    assert yaml.safe_load(exported) == load_yaml(exported)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def _docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```yaml", text.index("## A complete example")) + len("```yaml")
    return text[start:text.index("```", start)]


def test_documented_example_imports_and_round_trips(db: Database) -> None:
    report = import_yaml(db, _docs_example())
    assert report.changes["lines"].created == 3
    exported = export_yaml(db)
    assert str(import_yaml(db, exported)) == "no changes"
    assert "provider-password" not in exported and "smtp-password" not in exported
    assert scalar(db, "SELECT smtp_password FROM notification_settings") == "smtp-password"


def test_every_field_is_documented() -> None:
    from pydantic import BaseModel

    from appliance.config import model

    text = DOCS.read_text(encoding="utf-8")
    missing = []
    for name in model.__all__:
        cls = getattr(model, name)
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            missing += [f"{name}.{field}" for field in cls.model_fields
                        if f"`{field}`" not in text and f"{field}:" not in text]
    assert missing == []
