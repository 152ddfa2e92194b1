"""Which file to play for a prompt key, and importing the admin's recordings.

Lookup order for `PromptLibrary.path(key, language)`: the admin's prompt of that key (table
`prompts`, a file under the data directory) when its language matches or is unset; the
built-in prompt in that language; the built-in in the other language; the admin's prompt
in the other language (a Russian greeting beats silence); else None, logged once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..db import Database, DatabaseError
from .catalogue import ALIASES, BY_KEY, DEFAULT_LANGUAGE, KEYS, LANGUAGES
from .wavfile import PromptError, info_of_bytes, write_atomic

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)

PROMPTS_SUBDIR = "prompts"  # the admin's converted files: <data_dir>/prompts/<key>.wav


def box_language(db: Database) -> str:
    """The box's language (box setting `language`: ru or en); ru when unset or unreadable."""
    try:
        row = db.read().execute(
            "SELECT value FROM box_settings WHERE key = 'language'").fetchone()
        value = json.loads(row[0]) if row else None
    except (sqlite3.Error, DatabaseError, ValueError) as exc:
        log.warning("cannot read the box language (%s); using %s", exc, DEFAULT_LANGUAGE)
        return DEFAULT_LANGUAGE
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def _other(language: str) -> str:
    return "en" if language == "ru" else "ru"


def _is_key(key: str) -> bool:
    """A key that is safe as a file name (the config's key syntax)."""
    return (0 < len(key) <= 40 and key[0] not in "-_"
            and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-_" for c in key))


class PromptLibrary:
    """Finds the WAV file of a prompt key; cached until `reload()`."""

    def __init__(self, db: Database, data_dir: Path, builtin_dir: Path, language: str) -> None:
        """A library over the box's database, its data directory and the built-in set."""
        self._db = db
        self._data_dir = Path(data_dir)
        self._builtin_dir = Path(builtin_dir)
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Path | None] = {}
        self._admin: dict[str, tuple[str, str | None]] | None = None  # key -> (path, language)
        self._warned: set[tuple[str, ...]] = set()

    def reload(self, language: str | None = None) -> None:
        """Forget every cached answer (the admin's prompts changed); maybe a new language."""
        with self._lock:
            self._cache.clear()
            self._admin = None
            if language in LANGUAGES:
                self.language = str(language)

    def path(self, key: str, language: str | None = None) -> Path | None:
        """The file to play for `key`, or None when there is none (never raises)."""
        lang = language if language in LANGUAGES else self.language
        with self._lock:
            if (key, lang) in self._cache:
                return self._cache[(key, lang)]
        found = self._lookup(key, str(lang))
        with self._lock:
            self._cache[(key, str(lang))] = found
        return found

    def builtin_path(self, key: str, language: str) -> Path | None:
        """The built-in file of a key in one language, if it exists."""
        key = ALIASES.get(key, key)
        if key not in BY_KEY or language not in LANGUAGES:
            return None
        candidate = self._builtin_dir / language / f"{key}.wav"
        return candidate if candidate.is_file() else None

    def _lookup(self, key: str, lang: str) -> Path | None:
        rows = self._admin_rows()
        admin = rows.get(key) or rows.get(ALIASES.get(key, key))
        if admin is not None and admin[1] in (None, lang):
            found = self._admin_file(key, admin[0])
            if found is not None:
                return found
        for language in (lang, _other(lang)):
            builtin = self.builtin_path(key, language)
            if builtin is not None:
                return builtin
        if admin is not None and admin[1] not in (None, lang):
            found = self._admin_file(key, admin[0])
            if found is not None:
                return found
        self._warn_once(("none", key, lang), "no prompt %r (%s): neither the admin's nor a "
                        "built-in one (run `make prompts`?)", key, lang)
        return None

    def _admin_file(self, key: str, rel: str) -> Path | None:
        candidate = self._data_dir / rel
        if candidate.is_file():
            return candidate
        self._warn_once(("missing", key, rel), "prompt %r: the admin's file %s is missing",
                        key, candidate)
        return None

    def _admin_rows(self) -> dict[str, tuple[str, str | None]]:
        with self._lock:
            if self._admin is not None:
                return self._admin
        try:
            rows = self._db.read().execute("SELECT key, path, language FROM prompts").fetchall()
            admin = {str(k): (str(p), lang) for k, p, lang in rows}
        except (sqlite3.Error, DatabaseError) as exc:
            # Calls still get the built-in prompts; the next reload tries the table again.
            self._warn_once(("db",), "cannot read the prompts table: %s", exc)
            admin = {}
        with self._lock:
            self._admin = admin
        return admin

    def _warn_once(self, what: tuple[str, ...], msg: str, *args: Any) -> None:
        with self._lock:
            if what in self._warned:
                return
            self._warned.add(what)
        log.warning(msg, *args)


def convert_audio(data: bytes, filename: str) -> bytes:
    """An 8 kHz mono s16le WAV from an uploaded WAV or MP3; PromptError if it cannot be used."""
    from .convert import convert_audio as convert

    return convert(data, filename)


@dataclass(frozen=True)
class StoredPrompt:
    """An imported prompt as stored: its row's fields."""

    key: str
    name: str
    path: str  # relative to the data directory
    language: str | None
    duration_s: float


def store_prompt(db: Database, data_dir: Path, key: str, data: bytes, filename: str, *,
                 language: str | None = None, name: str = "",
                 actor: str = "system") -> StoredPrompt:
    """Convert an upload, write <data_dir>/prompts/<key>.wav and upsert its `prompts` row."""
    if not _is_key(key):
        raise PromptError(f"{key!r} is not a prompt key: use lower-case latin letters, digits, "
                          "'-' and '_' (up to 40), e.g. welcome or sales-menu")
    if language not in (None, *LANGUAGES):
        raise PromptError(f"language must be ru or en, not {language!r}")
    if len(name) > 100:
        raise PromptError("the name is longer than 100 characters")
    wav = convert_audio(data, filename)
    return store_engine_wav(db, data_dir, key, wav, language=language, name=name,
                            actor=actor, source=filename)


def store_engine_wav(db: Database, data_dir: Path, key: str, wav: bytes, *,
                     language: str | None = None, name: str = "", actor: str = "system",
                     source: str = "") -> StoredPrompt:
    """Store a WAV already in the engine's format (a greeting recorded from a phone) as the
    prompt `key`, without converting it (the engine process has no numpy)."""
    if not _is_key(key):
        raise PromptError(f"{key!r} is not a prompt key")
    seconds = round(info_of_bytes(wav).duration_s, 3)
    rel = f"{PROMPTS_SUBDIR}/{key}.wav"
    # The file first: a row must never point at nothing. Replacing the file is atomic, so a
    # call playing the old recording keeps its open copy.
    write_atomic(Path(data_dir) / rel, wav)
    stored = StoredPrompt(key, name, rel, language, seconds)

    def txn(conn: sqlite_utils.Database) -> None:
        raw = conn.conn
        before = raw.execute("SELECT name, path, language, duration_s FROM prompts WHERE key = ?",
                             (key,)).fetchone()
        raw.execute(
            "INSERT INTO prompts (key, name, path, language, duration_s) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET name = excluded.name, path = excluded.path,"
            " language = excluded.language, duration_s = excluded.duration_s",
            (key, name, rel, language, seconds))
        raw.execute(
            "INSERT INTO audit_log (actor, area, action, object, before, after)"
            " VALUES (?, 'prompts', 'import', ?, ?, ?)",
            (actor, key,
             None if before is None else json.dumps(dict(zip(
                 ("name", "path", "language", "duration_s"), before, strict=True))),
             json.dumps({"name": name, "path": rel, "language": language,
                         "duration_s": seconds, "source": source})))

    db.write(txn)
    return stored


@dataclass(frozen=True)
class PromptRow:
    """One line of `pbx prompts list`: a key's built-in files and the admin's recording."""

    key: str
    builtin: tuple[str, ...]  # languages with a generated file
    path: str | None = None  # the admin's file, relative to the data directory
    name: str = ""
    language: str | None = None
    duration_s: float | None = None
    present: bool = False  # the admin's file exists

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"key": self.key, "builtin": list(self.builtin), "path": self.path,
                "name": self.name, "language": self.language, "duration_s": self.duration_s,
                "present": self.present}


def list_prompts(db: Database, data_dir: Path, builtin_dir: Path) -> list[PromptRow]:
    """Every built-in key (catalogue order), then the admin's other keys (by key)."""
    admin = {str(r[0]): r for r in db.read().execute(
        "SELECT key, path, name, language, duration_s FROM prompts ORDER BY key").fetchall()}
    rows = []
    for key in [*KEYS, *(k for k in admin if k not in BY_KEY)]:
        builtin = tuple(lang for lang in LANGUAGES
                        if (Path(builtin_dir) / lang / f"{key}.wav").is_file())
        row = admin.get(key)
        if row is None:
            rows.append(PromptRow(key, builtin))
        else:
            rows.append(PromptRow(key, builtin, str(row[1]), str(row[2] or ""), row[3], row[4],
                                  (Path(data_dir) / str(row[1])).is_file()))
    return rows
