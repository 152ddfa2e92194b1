"""Voicemail in the running box and the `pbx voicemail` commands (real processes, real DB).

A pjsua2 desk phone subscribed to its message-summary sees the counts the engine loaded at
start, and the change a reload picks up; `pbx voicemail list/pin` work on the database;
a box's `language` survives the YAML round trip.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import pytest

from appliance import vmparts
from appliance.settings import Settings
from tests.support.harness import EngineProcess, pbx
from tests.test_edge_calls import desk_phone, registered

pytestmark = pytest.mark.timeout(120)

OFFICE = """\
version: 1
employees:
  - extension: "101"
    name: Иван Петров
    email: ivan@office.example
    devices: [{username: "101", password: "Kx7-desk-alpha"}]
voicemail_boxes:
  - {key: ivan, name: Иван Петров, owner: "101", language: en}
  - {key: sales, name: Продажи, extension: "600", email: [sales@office.example]}
"""


def add_messages(settings: Settings, box: str, new: int, old: int, minute: int = 0
                 ) -> list[int]:
    ids = []
    with sqlite3.connect(settings.db_path) as db:
        for n in range(new + old):
            cur = db.execute(
                "INSERT INTO voicemail_messages (box_id, box_key, caller, path, duration_s, "
                "created_at, is_read) VALUES ((SELECT id FROM voicemail_boxes WHERE key = ?), "
                "?, ?, ?, 12.5, ?, ?)",
                (box, box, f"+7916000000{n}", f"voicemail/{box}/2026/11/call-{n}.wav",
                 f"2026-11-23T16:{20 + minute + n}:00.000Z", int(n >= new)))
            ids.append(int(cur.lastrowid or 0))
    return ids


def test_a_desk_phone_lamp_shows_the_box_counts(
        start_box: Callable[..., EngineProcess], settings: Settings) -> None:
    imported = pbx(settings, "config", "import", "-", stdin=OFFICE)
    assert imported.returncode == 0, imported.stderr
    ids = add_messages(settings, "ivan", new=2, old=1)
    add_messages(settings, "sales", new=1, old=0)  # not 101's box: not on its lamp
    start_box()
    phone = desk_phone(settings, "101", "Kx7-desk-alpha", "--mwi")
    try:
        phone.wait(registered(phone))
        event = phone.wait(lambda e: e.get("event") == "mwi")
        assert "Messages-Waiting: yes" in event["body"], event
        assert "Voice-Message: 2/1" in event["body"], event
        # Someone heard a message elsewhere (the web UI's process); a reload relights.
        with sqlite3.connect(settings.db_path) as db:
            db.execute("UPDATE voicemail_messages SET is_read = 1 WHERE id = ?", (ids[0],))
        assert pbx(settings, "reload").returncode == 0
        event = phone.wait(lambda e: e.get("event") == "mwi"
                           and "Voice-Message: 1/2" in e.get("body", ""))
        assert "Messages-Waiting: yes" in event["body"]
    finally:
        phone.close()


def test_voicemail_list(settings: Settings) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    assert pbx(settings, "voicemail", "list").stdout == "no messages\n"
    ivan = add_messages(settings, "ivan", new=1, old=1)
    sales = add_messages(settings, "sales", new=1, old=0, minute=5)
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE voicemail_messages SET deleted_at = created_at WHERE id = ?",
                   (ivan[1],))
    out = pbx(settings, "voicemail", "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [sales[0], ivan[0]]  # newest first
    assert lines[1].split() == [str(ivan[0]), "2026-11-23T16:20:00", "ivan", "+79160000000",
                                "12", "s", "NEW", "-", "voicemail/ivan/2026/11/call-0.wav"]
    only = json.loads(pbx(settings, "voicemail", "list", "ivan", "--all", "--json").stdout)
    assert [(m["id"], m["read"], m["deleted_at"] is not None) for m in only] == [
        (ivan[1], True, True), (ivan[0], False, False)]
    unknown = pbx(settings, "voicemail", "list", "nobody")
    assert unknown.returncode == 1 and "no voicemail box 'nobody'" in unknown.stderr


def test_voicemail_pin(settings: Settings) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    done = pbx(settings, "voicemail", "pin", "ivan", stdin="4711\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "voicemail box ivan: PIN set\n"

    def stored() -> str | None:
        with sqlite3.connect(settings.db_path) as db:
            return db.execute("SELECT pin_hash FROM voicemail_boxes WHERE key = 'ivan'"
                              ).fetchone()[0]

    assert vmparts.verify_pin("4711", stored()) and not vmparts.verify_pin("4712", stored())
    bad = pbx(settings, "voicemail", "pin", "ivan", stdin="12\n")
    assert bad.returncode == 1 and "4-12 digits" in bad.stderr
    assert vmparts.verify_pin("4711", stored())
    nobody = pbx(settings, "voicemail", "pin", "nobody", stdin="1234\n")
    assert nobody.returncode == 1 and "no voicemail box" in nobody.stderr
    # Importing the configuration again keeps the PIN (it is not part of the file).
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    assert vmparts.verify_pin("4711", stored())
    cleared = pbx(settings, "voicemail", "pin", "ivan", "--clear")
    assert cleared.returncode == 0 and stored() is None


def test_box_language_round_trips(settings: Settings) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    exported = pbx(settings, "config", "export").stdout
    assert "language: en" in exported
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("SELECT key, language FROM voicemail_boxes ORDER BY key"
                          ).fetchall() == [("ivan", "en"), ("sales", None)]
    refused = pbx(settings, "config", "import", "-",
                  stdin=OFFICE.replace("language: en", "language: de"))
    assert refused.returncode == 1 and "language" in refused.stderr
