"""`pbx ext add|list|passwd|remove` end to end (real subprocesses, a real SQLite file)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from appliance.settings import Settings
from appliance.sip.digest import ha1
from tests.support.harness import ROOT, engine_env, pbx

pytestmark = pytest.mark.timeout(120)

OFFICE = """\
version: 1
employees:
  - extension: "101"
    name: Иван Петров
    devices: [{username: "101", password: "Kx7-desk-alpha"}]
departments:
  - {key: sales, name: Продажи, extension: "500", members: ["101"]}
"""


def digests(settings: Settings, username: str) -> tuple[str, str, str] | None:
    row = sqlite3.connect(settings.db_path).execute(
        "SELECT realm, ha1_md5, ha1_sha256 FROM devices WHERE username = ?",
        (username,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def md5_digest(settings: Settings, username: str) -> str | None:
    found = digests(settings, username)
    return None if found is None else found[1]


def shown_password(stdout: str) -> str:
    found = re.search(r"password:\s+(\S+)\s+\(shown only now", stdout) or re.search(
        r"new SIP password of \S+: (\S+)", stdout)
    assert found, stdout
    return found.group(1)


def test_add_list_passwd_remove(settings: Settings) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0

    added = pbx(settings, "ext", "add", "105", "Анна Смирнова", "--email", "anna@example.ru")
    assert added.returncode == 0, added.stderr
    password = shown_password(added.stdout)
    assert added.stdout.count(password) == 1  # shown once
    assert f"registrar / server: 127.0.0.1:{settings.sip_port}" in added.stdout
    assert "user name:          105" in added.stdout and "office-pbx" in added.stdout
    assert "engine picks the change up when it starts" in added.stderr  # no engine running
    assert digests(settings, "105") == ("office-pbx", ha1("105", "office-pbx", password),
                                       ha1("105", "office-pbx", password, "SHA-256"))

    listed = pbx(settings, "ext", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("101") and "101 (desk_phone)" in lines[0]
    assert lines[1].startswith("105") and "Анна Смирнова" in lines[1]
    as_json = json.loads(pbx(settings, "ext", "list", "--json").stdout)
    assert [(e["extension"], e["email"], e["devices"][0]["username"]) for e in as_json] == [
        ("101", None, "101"), ("105", "anna@example.ru", "105")]

    renewed = pbx(settings, "ext", "passwd", "105")
    assert renewed.returncode == 0, renewed.stderr
    new = shown_password(renewed.stdout)
    assert new != password
    assert digests(settings, "105") == ("office-pbx", ha1("105", "office-pbx", new),
                                       ha1("105", "office-pbx", new, "SHA-256"))

    chosen = pbx(settings, "ext", "passwd", "105", "--password-stdin", stdin="Green-lamp-77\n")
    assert chosen.returncode == 0, chosen.stderr
    assert "Green-lamp-77" not in chosen.stdout
    assert md5_digest(settings, "105") == ha1("105", "office-pbx", "Green-lamp-77")

    removed = pbx(settings, "ext", "remove", "101", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "device(s) 101" in removed.stdout and "department 'sales'" in removed.stdout
    assert [e["extension"] for e in json.loads(pbx(settings, "ext", "list", "--json").stdout)
            ] == ["105"]

    actions = sqlite3.connect(settings.db_path).execute(
        "SELECT actor, action, object FROM audit_log WHERE area = 'extensions' ORDER BY id"
    ).fetchall()
    assert [(a, o) for _, a, o in actions] == [
        ("add", "105"), ("set_password", "105"), ("set_password", "105"), ("remove", "101")]
    assert all(actor.startswith("cli") for actor, _, _ in actions)


def test_add_with_a_password_from_stdin(settings: Settings) -> None:
    added = pbx(settings, "ext", "add", "20", "Reception", "--username", "reception",
                "--role", "administrator", "--auth", "md5", "--password-stdin",
                stdin="Quiet-harbour-39\n")
    assert added.returncode == 0, added.stderr
    assert "Quiet-harbour-39" not in added.stdout and "the one you gave" in added.stdout
    assert md5_digest(settings, "reception") == ha1("reception", "office-pbx",
                                                    "Quiet-harbour-39")
    listed = pbx(settings, "ext", "list").stdout
    assert "reception (desk_phone, md5)" in listed and "[administrator]" in listed


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("add", "1x", "Bad"), None, "extension: an extension is 2-6 digits, got '1x'"),
    (("add", "101", "Twin"), None, "extension 101 already exists (Иван Петров)"),
    (("add", "500", "Clash"), None, "500 is already used by"),
    (("add", "106", "Weak", "--password-stdin"), "my-106-pass\n",
     "a SIP password must not contain the user name"),
    (("add", "106", "Nothing", "--password-stdin"), "", "no password on standard input"),
    (("passwd", "nobody"), None, "no device with SIP user name 'nobody'"),
    (("passwd", "101", "--password-stdin"), "short\n", "at least 8 characters"),
    (("remove", "404", "--yes"), None, "no extension 404"),
])
def test_refusals_are_clear_and_change_nothing(settings: Settings, args: tuple[str, ...],
                                               stdin: str | None, message: str) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    before = pbx(settings, "config", "export").stdout
    result = pbx(settings, "ext", *args, stdin=stdin)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr
    assert pbx(settings, "config", "export").stdout == before


def test_remove_without_yes_and_without_a_terminal_refuses(settings: Settings) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    result = pbx(settings, "ext", "remove", "101", stdin="y\n")
    assert result.returncode == 2
    assert "needs --yes" in result.stderr
    assert digests(settings, "101") is not None


def test_list_on_an_empty_box(settings: Settings) -> None:
    result = pbx(settings, "ext", "list")
    assert result.returncode == 0 and "no extensions yet" in result.stdout
    assert json.loads(pbx(settings, "ext", "list", "--json").stdout) == []


@pytest.mark.parametrize(("answer", "code", "kept"), [("n\n", 1, True), ("y\n", 0, False)])
def test_remove_asks_on_a_terminal(settings: Settings, answer: str, code: int,
                                   kept: bool) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    primary, secondary = os.openpty()
    try:
        os.write(primary, answer.encode())  # typed ahead: the terminal keeps the line
        result = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "ext", "remove", "101"], cwd=ROOT,
            env=engine_env(settings), stdin=secondary, capture_output=True, text=True,
            timeout=60, check=False)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == code, result.stderr
    assert "remove extension 101 (Иван Петров) and its devices (101)?" in result.stdout
    assert (digests(settings, "101") is not None) == kept
