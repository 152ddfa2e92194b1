"""Extensions one at a time (appliance/extensions.py) on a real SQLite file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import extensions as ext
from appliance.config import ConfigError
from appliance.config.yamlio import export_yaml, import_yaml
from appliance.db import Database
from appliance.sip.digest import ha1

pytestmark = pytest.mark.timeout(60)

OFFICE = """\
version: 1
box: {sip_realm: acme-pbx}
employees:
  - extension: "101"
    name: Иван Петров
    devices:
      - {username: "101", password: "Kx7-desk-alpha"}
      - {username: 101-soft, kind: softphone, password: "Kx7-soft-alpha"}
  - extension: "102"
    name: Мария Сидорова
    dnd: true
    devices: [{username: "102", password: "Kx7-desk-bravo"}]
  - extension: "99"
    name: Gate
    devices: [{username: gate, static_contact: "sip:gate@192.0.2.10"}]
departments:
  - {key: sales, name: Продажи, extension: "500", members: ["101", "102"]}
voicemail_boxes:
  - {key: ivan, name: Ivan's box, owner: "101"}
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    import_yaml(database, OFFICE)
    yield database
    database.close()


def rows(db: Database, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return db.read().execute(sql, params).fetchall()


def audit(db: Database) -> list[tuple[Any, ...]]:
    return rows(db, "SELECT actor, action, object, before, after FROM audit_log "
                    "WHERE area = 'extensions' ORDER BY id")


def test_list_shows_extensions_in_numeric_order_with_devices(db: Database) -> None:
    items = ext.list_extensions(db)
    assert [i.extension for i in items] == ["99", "101", "102"]
    ivan = items[1]
    assert ivan.name == "Иван Петров" and ivan.role == "user" and not ivan.dnd
    assert [(d.username, d.kind) for d in ivan.devices] == [
        ("101", "desk_phone"), ("101-soft", "softphone")]
    assert items[0].devices[0].static_contact == "sip:gate@192.0.2.10"
    assert items[2].dnd
    assert json.loads(json.dumps(ivan.as_dict()))["devices"][1]["kind"] == "softphone"


def test_add_generates_a_strong_password_that_is_never_stored(db: Database,
                                                             tmp_path: Path) -> None:
    result = ext.add_extension(db, "105", "Анна Смирнова", email="anna@example.ru",
                               actor="tester")
    assert (result.extension, result.username, result.realm) == ("105", "105", "acme-pbx")
    password = result.password
    assert password is not None
    assert re.fullmatch(r"([A-Za-z2-9]{5}-){3}[A-Za-z2-9]{5}", password)
    assert not set(password) & set("0O1lI")  # nothing to misread when typing it in
    digests = rows(db, "SELECT d.realm, d.ha1_md5, d.ha1_sha256, d.kind FROM devices d "
                       "JOIN employees e ON e.id = d.employee_id WHERE e.extension = '105'")
    assert digests == [("acme-pbx", ha1("105", "acme-pbx", password, "MD5"),
                        ha1("105", "acme-pbx", password, "SHA-256"), "desk_phone")]
    assert "105" in export_yaml(db) and password not in export_yaml(db)
    (actor, action, obj, before, after), = audit(db)
    assert (actor, action, obj, before) == ("tester", "add", "105", None)
    assert json.loads(after) == {
        "extension": "105", "name": "Анна Смирнова", "role": "user",
        "email": "anna@example.ru",
        "devices": [{"username": "105", "kind": "desk_phone", "auth": "sha256"}],
        "password_generated": True}
    db.close()
    for path in tmp_path.glob("pbx.db*"):  # the database, its WAL and anything else
        assert password.encode() not in path.read_bytes(), path


def test_generated_passwords_are_distinct_and_pass_the_rules() -> None:
    from appliance.config.model import check_sip_password

    seen = {ext.generate_password("a") for _ in range(200)}
    assert len(seen) == 200
    for password in seen:
        check_sip_password(password, "a")
        assert "a" not in password.lower()
    # A user name made of the separator still gets a password (no endless retry).
    check_sip_password(ext.generate_password("-"), "-")


def test_add_with_a_given_password_and_user_name(db: Database) -> None:
    result = ext.add_extension(db, "106", "Олег", username="oleg.desk",
                               password="Brown-table-93", role="administrator", auth="md5")
    assert result.password is None  # the admin knows it: never echoed back
    assert rows(db, "SELECT e.role, d.username, d.ha1_md5, d.auth FROM employees e JOIN "
                    "devices d ON d.employee_id = e.id WHERE e.extension = '106'") == [
        ("administrator", "oleg.desk", ha1("oleg.desk", "acme-pbx", "Brown-table-93"), "md5")]
    assert ext.list_extensions(db)[-1].devices[0].auth == "md5"
    assert json.loads(audit(db)[0][4])["password_generated"] is False


def test_add_keeps_everything_else_as_it_was(db: Database) -> None:
    before = rows(db, "SELECT id, username, ha1_md5 FROM devices ORDER BY id")
    db.write(lambda c: c.execute(
        "INSERT INTO registrations (device_id, contact, transport, source_host, source_port,"
        " call_id, cseq, expires_at) VALUES (?, 'sip:101@192.0.2.5:5060', 'UDP',"
        " '192.0.2.5', 5060, 'c1', 1, '2099-01-01T00:00:00.000Z')", [before[0][0]]))
    ext.add_extension(db, "107", "Пётр")
    assert rows(db, "SELECT id, username, ha1_md5 FROM devices ORDER BY id")[:4] == before
    assert rows(db, "SELECT count(*) FROM registrations") == [(1,)]
    # Defaults are the import's: every route class an employee gets by default.
    assert rows(db, "SELECT count(*) FROM employee_route_permissions p JOIN employees e "
                    "ON e.id = p.employee_id WHERE e.extension = '107'") == [(6,)]


def import_problem(employee: dict[str, Any]) -> str:
    """The message `pbx config import` gives for one bad employee."""
    from appliance.config.yamlio import parse_config

    with pytest.raises(ConfigError) as info:
        parse_config({"version": 1, "employees": [employee]})
    return info.value.problems[0].message


@pytest.mark.parametrize(("args", "kwargs", "field"), [
    (("1x", "Bad"), {}, "extension"),
    (("1234567", "Bad"), {}, "extension"),
    (("108", "   "), {}, "name"),
    (("108", "Bad"), {"role": "root"}, "role"),
    (("108", "Bad"), {"email": "not-an-address"}, "email"),
    (("108", "Bad"), {"auth": "sha1"}, "auth"),
])
def test_bad_fields_get_the_import_messages(db: Database, args: tuple[str, str],
                                            kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ext.ExtensionError) as info:
        ext.add_extension(db, *args, **kwargs)
    problem = info.value.problems[0]
    assert info.value.kind == "invalid"
    assert problem.path == field
    bad: dict[str, Any] = {"extension": args[0], "name": args[1], **kwargs}
    if "auth" in bad:  # a device field
        bad["devices"] = [{"username": "x", "password": "Strong-pass-11",
                           "auth": bad.pop("auth")}]
    assert problem.message == import_problem(bad)
    assert rows(db, "SELECT count(*) FROM employees") == [(3,)]
    assert audit(db) == []


@pytest.mark.parametrize(("password", "username"), [
    ("short1", None), ("my-108-password", None), ("Пароль-секрет-1", None),
    ("oleg-is-here-1", "oleg"),
])
def test_weak_passwords_are_refused_like_on_import(db: Database, password: str,
                                                   username: str | None) -> None:
    with pytest.raises(ext.ExtensionError) as info:
        ext.add_extension(db, "108", "Олег", password=password, username=username)
    device = {"username": username or "108", "password": password}
    assert str(info.value) == import_problem({"extension": "108", "name": "x",
                                              "devices": [device]})
    assert rows(db, "SELECT count(*) FROM employees WHERE extension = '108'") == [(0,)]


def test_taken_numbers_and_user_names_are_refused(db: Database) -> None:
    with pytest.raises(ext.ExtensionError, match=r"extension 101 already exists \(Иван") as i:
        ext.add_extension(db, "101", "Someone")
    assert i.value.kind == "conflict"
    with pytest.raises(ext.ExtensionError, match="'101-soft' is already used by a device "
                                                 "of extension 101"):
        ext.add_extension(db, "109", "Someone", username="101-soft")
    # The department's number: refused by the import's own cross-checks.
    with pytest.raises(ext.ExtensionError) as info:
        ext.add_extension(db, "500", "Someone")
    assert info.value.kind == "conflict"
    assert str(info.value).startswith("extension 500 was not added:\n")
    assert "500 is already used by" in str(info.value)
    assert rows(db, "SELECT count(*) FROM employees") == [(3,)]
    assert audit(db) == []


def test_set_password_replaces_the_digests(db: Database) -> None:
    old = rows(db, "SELECT ha1_md5, ha1_sha256 FROM devices WHERE username = '102'")
    new = ext.set_password(db, "102", actor="tester")
    assert re.fullmatch(r"[A-Za-z2-9-]{23}", new)
    stored = rows(db, "SELECT realm, ha1_md5, ha1_sha256 FROM devices WHERE username = '102'")
    assert stored == [("acme-pbx", ha1("102", "acme-pbx", new, "MD5"),
                       ha1("102", "acme-pbx", new, "SHA-256"))]
    assert stored[0][1:] != old[0]
    given = ext.set_password(db, "102", "Green-lamp-77")
    assert given == "Green-lamp-77"
    assert rows(db, "SELECT ha1_md5 FROM devices WHERE username = '102'") == [
        (ha1("102", "acme-pbx", "Green-lamp-77"),)]
    entries = audit(db)
    assert [(e[1], e[2]) for e in entries] == [("set_password", "102")] * 2
    assert json.loads(entries[0][4]) == {"extension": "102", "realm": "acme-pbx",
                                         "password_generated": True}
    text = json.dumps(entries)
    assert new not in text and "Green-lamp-77" not in text and stored[0][1] not in text


def test_set_password_gives_credentials_to_a_static_device(db: Database) -> None:
    ext.set_password(db, "gate", "Strong-door-51")
    assert rows(db, "SELECT realm, static_contact FROM devices WHERE username = 'gate'") == [
        ("acme-pbx", "sip:gate@192.0.2.10")]


def test_set_password_refusals(db: Database) -> None:
    with pytest.raises(ext.ExtensionError, match="no device with SIP user name 'nobody'") as i:
        ext.set_password(db, "nobody", "Strong-pass-11")
    assert i.value.kind == "unknown"
    with pytest.raises(ext.ExtensionError, match="must not contain the user name"):
        ext.set_password(db, "102", "x-102-x-102")
    with pytest.raises(ext.ExtensionError, match="at least 8"):
        ext.set_password(db, "102", "")
    assert audit(db) == []


def add_call_history(db: Database) -> None:
    """A finished call 102 -> 101 with one leg per device that rang."""
    def write(conn: Any) -> None:
        emp = conn.execute("SELECT id FROM employees WHERE extension = '102'").fetchone()[0]
        dev = conn.execute("SELECT id FROM devices WHERE username = '102'").fetchone()[0]
        conn.execute(
            "INSERT INTO call_records (uuid, direction, caller, dialled, employee_id,"
            " answered_by_employee_id, answered_by, started_at, answered_at, ended_at,"
            " disposition) VALUES ('call-0001', 'internal', '101', '102', ?, ?, 'Мария',"
            " '2026-01-01T10:00:00.000Z', '2026-01-01T10:00:05.000Z',"
            " '2026-01-01T10:01:00.000Z', 'answered')", [emp, emp])
        conn.execute(
            "INSERT INTO call_legs (call_id, position, party_kind, employee_id, device_id,"
            " extension, target) VALUES (1, 0, 'device', ?, ?, '102', 'sip:102@192.0.2.7')",
            [emp, dev])
        conn.execute(
            "INSERT INTO registrations (device_id, contact, transport, source_host,"
            " source_port, call_id, cseq, expires_at) VALUES (?, 'sip:102@192.0.2.7:5060',"
            " 'UDP', '192.0.2.7', 5060, 'c2', 1, '2099-01-01T00:00:00.000Z')", [dev])

    db.write(write)


def test_remove_keeps_call_history_with_its_snapshots(db: Database) -> None:
    add_call_history(db)
    result = ext.remove_extension(db, "102", actor="tester")
    assert result.usernames == ("102",)
    assert result.left == ("department 'sales'",)
    assert rows(db, "SELECT count(*) FROM employees WHERE extension = '102'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM devices WHERE username = '102'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM registrations") == [(0,)]  # cascaded
    assert rows(db, "SELECT caller, dialled, employee_id, answered_by, disposition "
                    "FROM call_records") == [("101", "102", None, "Мария", "answered")]
    assert rows(db, "SELECT employee_id, device_id, extension, target FROM call_legs") == [
        (None, None, "102", "sip:102@192.0.2.7")]
    assert "  members:\n  - '101'\n  ring_delay" in export_yaml(db)
    (_, action, obj, before, after), = audit(db)
    assert (action, obj, after) == ("remove", "102", None)
    assert json.loads(before) == {
        "extension": "102", "name": "Мария Сидорова", "role": "user", "email": None,
        "devices": [{"username": "102", "kind": "desk_phone"}],
        "left": ["department 'sales'"]}
    assert db.integrity_check() == []


def test_remove_refuses_while_calls_are_still_sent_there(db: Database) -> None:
    with pytest.raises(ext.ExtensionError) as info:
        ext.remove_extension(db, "101")
    assert info.value.kind == "conflict"
    assert [str(p) for p in info.value.problems] == [
        "extension 101 was not removed:",
        "voicemail_boxes[0].owner: no employee with extension 101"]
    assert rows(db, "SELECT count(*) FROM devices") == [(4,)]
    assert audit(db) == []


def test_remove_refusals(db: Database) -> None:
    with pytest.raises(ext.ExtensionError, match="no extension 404") as info:
        ext.remove_extension(db, "404")
    assert info.value.kind == "unknown"
    with pytest.raises(ext.ExtensionError, match="an extension is 2-6 digits") as info:
        ext.remove_extension(db, "nope")
    assert info.value.kind == "invalid"


def test_a_removed_number_can_be_added_again(db: Database) -> None:
    ext.remove_extension(db, "99")
    again = ext.add_extension(db, "99", "New Gate", username="gate")
    assert again.password is not None
    assert [a[1] for a in audit(db)] == ["remove", "add"]
