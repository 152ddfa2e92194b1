"""The config editor under the pages and the API: one item at a time, validated, audited."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from appliance.config import ConfigError
from appliance.config.edit import Actor, ConfigEditor, NotFoundError
from appliance.db import Database

ADMIN = Actor("admin", None)


@pytest.fixture
def editor(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database.open(tmp_path / "box.sqlite3")
    reloads: list[int] = []
    ed = ConfigEditor(db, on_change=lambda: reloads.append(1))
    ed.reloads = reloads  # type: ignore[attr-defined]
    yield ed
    db.close()


def test_create_update_keeps_the_phone_password_and_hides_digests(editor: ConfigEditor) -> None:
    editor.save("employees", {"extension": "101", "name": "Anna", "devices": [
        {"username": "anna", "password": "Secr3t-pass"}]}, key=None, actor=ADMIN)
    raw = editor.data()["employees"][0]["devices"][0]
    digest = raw["ha1_sha256"]
    after = editor.save("employees", {"extension": "101", "name": "Anna K", "devices": [
        {"username": "anna"}]}, key="101", actor=ADMIN)
    assert after["name"] == "Anna K"
    assert "ha1_sha256" not in after["devices"][0]  # never shown by the pages or the API
    assert editor.data()["employees"][0]["devices"][0]["ha1_sha256"] == digest
    assert editor.reloads == [1, 1]  # type: ignore[attr-defined]


def test_errors_point_at_the_field_of_the_item(editor: ConfigEditor) -> None:
    with pytest.raises(ConfigError) as bad:
        editor.save("employees", {"extension": "1x", "name": ""}, key=None, actor=ADMIN)
    assert {p.path for p in bad.value.problems} == {"extension", "name"}
    editor.save("employees", {"extension": "101", "name": "Anna"}, key=None, actor=ADMIN)
    with pytest.raises(ConfigError) as dangling:
        editor.save("departments", {"key": "sales", "name": "Sales", "members": ["101", "999"]},
                    key=None, actor=ADMIN)
    assert [p.path for p in dangling.value.problems] == ["members[1]"]
    with pytest.raises(ConfigError) as twice:
        editor.save("employees", {"extension": "101", "name": "Boris"}, key=None, actor=ADMIN)
    assert twice.value.problems[0].path == "extension"


def test_delete_refuses_what_is_still_used_and_audits_changes(editor: ConfigEditor) -> None:
    editor.save("employees", {"extension": "101", "name": "Anna"}, key=None, actor=ADMIN)
    editor.save("departments", {"key": "sales", "name": "Sales", "members": ["101"]},
                key=None, actor=Actor("boss", None))
    with pytest.raises(ConfigError):
        editor.delete("employees", "101", actor=ADMIN)
    editor.delete("departments", "sales", actor=ADMIN)
    editor.delete("employees", "101", actor=ADMIN)
    with pytest.raises(NotFoundError):
        editor.delete("employees", "101", actor=ADMIN)
    rows = editor.db.read().conn.execute(
        "SELECT actor, area, action, object, before, after FROM audit_log ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("admin", "employees", "create", "101"), ("boss", "departments", "create", "sales"),
        ("admin", "departments", "delete", "sales"), ("admin", "employees", "delete", "101")]
    assert json.loads(rows[1][5])["members"] == ["101"] and rows[2][5] is None


def test_settings_sections(editor: ConfigEditor) -> None:
    box = editor.set_settings("box", {"name": "Офис", "language": "en"}, actor=ADMIN)
    assert box["name"] == "Офис" and editor.settings("box")["language"] == "en"
    with pytest.raises(ConfigError) as bad:
        editor.set_settings("box", {"time_zone": "Mars/Base"}, actor=ADMIN)
    assert bad.value.problems[0].path == "time_zone"


def test_concurrent_saves_lose_nothing(editor: ConfigEditor) -> None:
    def add(n: int) -> None:
        editor.save("employees", {"extension": str(200 + n), "name": f"E{n}"}, key=None,
                    actor=ADMIN)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(e["extension"] for e in editor.items("employees")) == [
        str(200 + n) for n in range(12)]


def test_odd_device_fields_on_update_are_refused_not_crashed(editor: ConfigEditor) -> None:
    # Found by schemathesis: a list as a device's user name crashed the secret keeping.
    editor.save("employees", {"extension": "101", "name": "Anna", "devices": [
        {"username": "anna", "password": "Secr3t-pass"}]}, key=None, actor=ADMIN)
    for odd in ([["anna"]], [{"username": ["anna"]}], [{"username": {"a": 1}}], ["x"]):
        with pytest.raises(ConfigError):
            editor.save("employees", {"extension": "101", "name": "Anna", "devices": odd},
                        key="101", actor=ADMIN)


def test_move_reorders_rules_where_the_first_match_wins(editor: ConfigEditor) -> None:
    for n in ("1", "2", "3"):
        editor.save("caller_id_rules", {"pattern": f"+7916{n}XXXXXX", "mode": "withheld"},
                    key=None, actor=ADMIN)
    assert editor.move("caller_id_rules", "2", -1, actor=ADMIN) == "1"
    assert [r["pattern"][5] for r in editor.items("caller_id_rules")] == ["1", "3", "2"]
    assert editor.move("caller_id_rules", "0", -1, actor=ADMIN) == "0"  # already first
    with pytest.raises(NotFoundError):
        editor.move("caller_id_rules", "9", 1, actor=ADMIN)
    last = editor.db.read().conn.execute(
        "SELECT action, before, after FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert last == ("move", '{"position": 2}', '{"position": 1}')


def test_line_errors_name_the_field_without_the_kind(editor: ConfigEditor) -> None:
    with pytest.raises(ConfigError) as bad:
        editor.save("lines", {"key": "sim1", "kind": "sim", "ussd_balance": "abc"}, key=None,
                    actor=ADMIN)
    assert [p.path for p in bad.value.problems] == ["ussd_balance"]
