"""Russian and English: catalogs per admin area, merged and compiled when the app starts.

Each area keeps its Russian translations in `webui/i18n/ru/<area>.po` (English is the source
language), so areas are translated independently. At start the files are merged into one
catalog and compiled into a private directory that Flask-Babel reads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, request, session
from flask_babel import Babel

LANGUAGES = ("ru", "en")
SOURCE_DIR = Path(__file__).parent / "i18n"


def merged_catalog(language: str, source: Path = SOURCE_DIR) -> Catalog:
    """Every area's catalog for `language` in one (later files win on a clash)."""
    merged = Catalog(locale=language, domain="messages")
    for po in sorted((source / language).glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        for message in catalog:
            if message.id and message.string:
                merged[message.id] = message
    return merged


def compile_catalogs(target: Path, source: Path = SOURCE_DIR) -> Path:
    """Write `<target>/<lang>/LC_MESSAGES/messages.mo` for each translated language."""
    for language in LANGUAGES:
        if not (source / language).is_dir():
            continue
        out = target / language / "LC_MESSAGES"
        out.mkdir(parents=True, exist_ok=True)
        with (out / "messages.mo").open("wb") as fh:
            write_mo(fh, merged_catalog(language, source))
    return target


def select_locale() -> str:
    """The user's choice, else the box's language, else the browser's."""
    from .context import web

    chosen = session.get("lang") or request.args.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    cached = g.get("box_language")
    if cached is None:
        try:
            cached = web().box_value("language") or ""
        except Exception:
            cached = ""
        g.box_language = cached
    if cached in LANGUAGES:
        return str(cached)
    return request.accept_languages.best_match(LANGUAGES) or "ru"


def catalog_dir(source: Path = SOURCE_DIR) -> Path:
    """The compiled catalogs for the current sources (compiled once per content)."""
    digest = hashlib.sha256()
    for po in sorted(source.glob("*/*.po")):
        digest.update(po.name.encode() + b"\0" + po.read_bytes())
    target = Path(tempfile.gettempdir()) / f"pbx-i18n-{os.getuid()}-{digest.hexdigest()[:16]}"
    if not (target / "done").exists():
        # Built aside and renamed, so processes starting together never read half a file.
        work = Path(tempfile.mkdtemp(prefix="pbx-i18n-build-"))
        compile_catalogs(work, source)
        (work / "done").touch()
        try:
            work.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(work, ignore_errors=True)
    return target


def init_app(app: Flask) -> None:
    """Compile the catalogs (once per content) and attach Flask-Babel."""
    target = catalog_dir()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    Babel(app, locale_selector=select_locale)


def extract_messages(root: Path = Path(__file__).parent) -> dict[str, str]:
    """Every translatable English text in the web UI's code and templates -> where it is."""
    from babel.messages.extract import extract_from_dir

    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.do"}}
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root), method_map, options_map=options,
            keywords={"_": None, "gettext": None, "lazy_gettext": None, "_l": None,
                      "ngettext": (1, 2)}):
        ids = message if isinstance(message, tuple) else (message,)
        for text in ids:
            if text:
                found.setdefault(text, f"{filename}:{lineno}")
    return found


def untranslated(language: str = "ru") -> dict[str, str]:
    """English texts with no translation into `language` (should be none)."""
    catalog = merged_catalog(language)
    missing = {}
    for text, where in extract_messages().items():
        message = catalog.get(text)
        if message is None or not message.string:
            missing[text] = where
    return missing


if __name__ == "__main__":
    # `python -m webui.i18n`: list what still needs a Russian translation, as PO entries.
    for text, where in sorted(untranslated().items(), key=lambda kv: kv[1]):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        print(f'#: {where}\nmsgid "{escaped}"\nmsgstr ""\n')
