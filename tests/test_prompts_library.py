"""Prompt lookup (the admin's recording, then the built-ins, language fallback), importing
recordings into a real SQLite database, and `pbx prompts list|import` as subprocesses."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import settings as settings_mod
from appliance.config.yamlio import export_yaml, import_yaml
from appliance.db import Database
from appliance.prompts import (
    KEYS,
    PromptError,
    PromptLibrary,
    box_language,
    duration_s,
    list_prompts,
    store_prompt,
)
from appliance.prompts.wavfile import wav_bytes
from appliance.settings import Settings
from tests.support.harness import ROOT, pbx

pytestmark = pytest.mark.timeout(60)


def tone_wav(seconds: float, freq: float = 440.0) -> bytes:
    """An 8 kHz mono WAV of a sine (a stand-in for a recording)."""
    n = int(8000 * seconds)
    return wav_bytes(struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * freq * i / 8000))
                                              for i in range(n))))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "data" / "pbx.sqlite3") as database:
        yield database


@pytest.fixture
def builtin(tmp_path: Path) -> Path:
    """A built-in set: every catalogue key in both languages (different lengths per language,
    so a test can tell which one it got)."""
    root = tmp_path / "builtin"
    for lang, seconds in (("ru", 0.5), ("en", 0.25)):
        (root / lang).mkdir(parents=True)
        for key in KEYS:
            (root / lang / f"{key}.wav").write_bytes(tone_wav(seconds))
    return root


def library(db: Database, tmp_path: Path, builtin: Path, language: str = "ru") -> PromptLibrary:
    return PromptLibrary(db, tmp_path / "data", builtin, language)


def test_builtin_in_the_box_language_then_the_other(db: Database, tmp_path: Path,
                                                    builtin: Path) -> None:
    lib = library(db, tmp_path, builtin)
    assert lib.path("welcome") == builtin / "ru" / "welcome.wav"
    assert lib.path("welcome", "en") == builtin / "en" / "welcome.wav"
    assert lib.path("welcome", "de") == builtin / "ru" / "welcome.wav"  # unknown: the box's
    (builtin / "ru" / "goodbye.wav").unlink()
    assert lib.path("goodbye") == builtin / "en" / "goodbye.wav"
    # The name routing/mobile.py uses for the "press 1" prompt.
    assert lib.path("confirm-mobile") == builtin / "ru" / "mobile-confirm.wav"


def test_admin_recording_beats_the_builtin(db: Database, tmp_path: Path,
                                           builtin: Path) -> None:
    data = tmp_path / "data"
    store_prompt(db, data, "welcome", tone_wav(1.0), "welcome.wav")  # any language
    store_prompt(db, data, "after-hours", tone_wav(1.0), "ah.wav", language="en")
    lib = library(db, tmp_path, builtin)
    assert lib.path("welcome") == data / "prompts" / "welcome.wav"
    assert lib.path("welcome", "en") == data / "prompts" / "welcome.wav"
    # An English recording is not played to a Russian box while a Russian built-in exists...
    assert lib.path("after-hours") == builtin / "ru" / "after-hours.wav"
    assert lib.path("after-hours", "en") == data / "prompts" / "after-hours.wav"
    # ...but a key of the admin's own (a menu greeting) is played in any case.
    store_prompt(db, data, "sales-menu", tone_wav(1.0), "menu.mp3.wav", language="en")
    store_prompt(db, data, "mobile-confirm", tone_wav(1.0), "press1.wav")
    lib.reload()
    assert lib.path("sales-menu") == data / "prompts" / "sales-menu.wav"
    assert lib.path("confirm-mobile") == data / "prompts" / "mobile-confirm.wav"


def test_cached_until_reload(db: Database, tmp_path: Path, builtin: Path) -> None:
    data = tmp_path / "data"
    lib = library(db, tmp_path, builtin)
    assert lib.path("holiday") == builtin / "ru" / "holiday.wav"
    store_prompt(db, data, "holiday", tone_wav(0.5), "h.wav", language="ru")
    assert lib.path("holiday") == builtin / "ru" / "holiday.wav"  # the cached answer
    lib.reload()
    assert lib.path("holiday") == data / "prompts" / "holiday.wav"
    lib.reload(language="en")
    assert lib.language == "en"
    assert lib.path("holiday") == builtin / "en" / "holiday.wav"


def test_missing_files_fall_back_and_are_logged_once(
        db: Database, tmp_path: Path, builtin: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    store_prompt(db, data, "goodbye", tone_wav(0.5), "g.wav")
    (data / "prompts" / "goodbye.wav").unlink()
    lib = library(db, tmp_path, builtin)
    caplog.set_level(logging.WARNING, logger="appliance.prompts.library")
    for _ in range(2):
        assert lib.path("goodbye") == builtin / "ru" / "goodbye.wav"
        assert lib.path("no-such-prompt") is None
        assert lib.path("../../etc/passwd") is None
        lib.reload()
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("goodbye" in w and "missing" in w for w in warnings) == 1
    assert sum("'no-such-prompt'" in w for w in warnings) == 1


def test_no_builtins_and_a_closed_database_never_raise(db: Database, tmp_path: Path) -> None:
    lib = library(db, tmp_path, tmp_path / "nowhere")
    db.close()
    assert lib.path("welcome") is None
    assert box_language(db) == "ru"


def test_box_language(db: Database) -> None:
    assert box_language(db) == "ru"
    db.write(lambda c: c.conn.execute(
        "INSERT INTO box_settings (key, value) VALUES ('language', '\"en\"')"))
    assert box_language(db) == "en"
    db.write(lambda c: c.conn.execute("UPDATE box_settings SET value = '\"de\"'"))
    assert box_language(db) == "ru"


def test_store_prompt_row_file_and_audit(db: Database, tmp_path: Path) -> None:
    data = tmp_path / "data"
    stored = store_prompt(db, data, "welcome", tone_wav(1.5), "hello.wav", language="ru",
                          name="Приветствие", actor="cli:test")
    assert stored.path == "prompts/welcome.wav"
    assert duration_s(data / stored.path) == pytest.approx(1.5)
    again = store_prompt(db, data, "welcome", tone_wav(2.0), "hello2.wav")
    conn = sqlite3.connect(db.path)
    rows = conn.execute("SELECT key, name, path, language, duration_s FROM prompts").fetchall()
    assert rows == [("welcome", "", "prompts/welcome.wav", None, 2.0)]
    assert again.duration_s == 2.0
    audit = conn.execute("SELECT actor, area, action, object, before, after FROM audit_log"
                         " ORDER BY id").fetchall()
    assert [(a[0], a[1], a[2], a[3]) for a in audit] == [
        ("cli:test", "prompts", "import", "welcome"), ("system", "prompts", "import", "welcome")]
    assert json.loads(audit[1][4])["name"] == "Приветствие"
    assert json.loads(audit[1][5])["source"] == "hello2.wav"


def test_store_prompt_refusals_leave_nothing(db: Database, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for key, language, blob, message in (
            ("Welcome", None, tone_wav(0.2), "not a prompt key"),
            ("../x", None, tone_wav(0.2), "not a prompt key"),
            ("welcome", "de", tone_wav(0.2), "language must be ru or en"),
            ("welcome", None, b"RIFF....WAVEnope", "no format"),
    ):
        with pytest.raises(PromptError, match=message):
            store_prompt(db, data, key, blob, "x.wav", language=language)
    assert not (data / "prompts").exists()
    assert sqlite3.connect(db.path).execute("SELECT count(*) FROM prompts").fetchone() == (0,)


def test_imported_prompt_survives_config_export_and_import(db: Database,
                                                           tmp_path: Path) -> None:
    store_prompt(db, tmp_path / "data", "sales-menu", tone_wav(0.5), "m.wav", language="en",
                 name="Sales menu")
    text = export_yaml(db)
    assert "sales-menu" in text and "prompts/sales-menu.wav" in text
    import_yaml(db, text)
    row = sqlite3.connect(db.path).execute(
        "SELECT key, name, path, language FROM prompts").fetchone()
    assert row == ("sales-menu", "Sales menu", "prompts/sales-menu.wav", "en")


def test_list_prompts(db: Database, tmp_path: Path, builtin: Path) -> None:
    store_prompt(db, tmp_path / "data", "welcome", tone_wav(0.5), "w.wav", name="Hi")
    store_prompt(db, tmp_path / "data", "zz-custom", tone_wav(0.5), "z.wav", language="en")
    (builtin / "en" / "holiday.wav").unlink()
    rows = {r.key: r for r in list_prompts(db, tmp_path / "data", builtin)}
    assert list(rows)[:len(KEYS)] == list(KEYS) and list(rows)[-1] == "zz-custom"
    assert rows["holiday"].builtin == ("ru",) and rows["holiday"].path is None
    assert rows["welcome"].path == "prompts/welcome.wav" and rows["welcome"].present
    assert rows["zz-custom"].builtin == () and rows["zz-custom"].language == "en"


def test_builtin_dir_setting(tmp_path: Path) -> None:
    assert settings_mod.load(environ={}).builtin_prompts_dir == ROOT / "share" / "prompts"
    chosen = settings_mod.load(environ={"PBX_PROMPTS_DIR": str(tmp_path)})
    assert chosen.builtin_prompts_dir == tmp_path


def test_cli_import_and_list(settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "greeting.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(src), "synth", "1.2", "sine",
                    "700"], check=True, timeout=60)
    done = pbx(settings, "prompts", "import", "welcome", str(src), "--language", "ru",
               "--name", "Приветствие")
    assert done.returncode == 0, done.stderr
    assert "prompt welcome: 1.2 s, ru" in done.stdout
    # No engine is running: the reload is only a warning.
    assert "engine picks the change up" in done.stderr
    stored = settings.data_dir / "prompts" / "welcome.wav"
    assert duration_s(stored) == pytest.approx(1.2, abs=0.001)

    listed = pbx(settings, "prompts", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("welcome "))
    assert 'prompts/welcome.wav (ru, 1.2 s) "Приветствие"' in line
    rows = json.loads(pbx(settings, "prompts", "list", "--json").stdout)
    assert {r["key"] for r in rows} >= set(KEYS)

    (tmp_path / "notes.txt").write_text("not audio")
    bad = pbx(settings, "prompts", "import", "welcome", str(tmp_path / "notes.txt"))
    assert bad.returncode == 1 and "neither a WAV nor an MP3" in bad.stderr
    missing = pbx(settings, "prompts", "import", "welcome", str(tmp_path / "gone.wav"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert duration_s(stored) == pytest.approx(1.2, abs=0.001)  # the good one is kept
