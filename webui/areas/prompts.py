"""Prompts: the built-in voice prompts and the admin's recordings per language; upload a WAV
or MP3 (converted for the engine), play any of them in the browser, delete a recording.

The stored file is always `<data_dir>/prompts/<key>.wav`, named by the validated key the
admin typed, never by the uploaded file's name; playback serves only files inside the
built-in prompts directory or the data directory's prompts folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from appliance.config.types import normalize_key
from appliance.prompts.library import PROMPTS_SUBDIR, PromptError, list_prompts, store_prompt

from ..auth import actor, admin_required
from ..context import web
from . import NavItem

bp = Blueprint("prompts", __name__, url_prefix="/prompts")
NAV = [NavItem("prompts.index", _l("Prompts"), "routing", order=50)]

MAX_AUDIO = 20 * 1024 * 1024  # about 20 minutes of MP3; a greeting is seconds long
LANGUAGES = ("ru", "en")


def _is_key(key: str) -> bool:
    """A prompt key (the configuration's key syntax), which is also a safe file name."""
    try:
        normalize_key(key)
    except ValueError:
        return False
    return True


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def prompt_file(key: str, language: str | None) -> Path | None:
    """The file to play for a key: the admin's recording, or the built-in one in `language`."""
    ctx = web()
    if not _is_key(key):
        return None
    settings = ctx.settings
    if language is None:
        row = ctx.db.read().execute("SELECT path FROM prompts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        path = settings.data_dir / str(row[0])
        root = settings.data_dir / PROMPTS_SUBDIR
    elif language in LANGUAGES:
        root = settings.builtin_prompts_dir
        path = root / language / f"{key}.wav"
    else:
        return None
    return path if _inside(path, root) and path.is_file() else None


@bp.get("/")
@admin_required
def index(errors: dict[str, str] | None = None, status: int = 200) -> Any:
    """Every prompt key: built-in files per language and the admin's recording."""
    ctx = web()
    rows = list_prompts(ctx.db, ctx.settings.data_dir, ctx.settings.builtin_prompts_dir)
    return render_template("routing/prompts.html", rows=rows, errors=errors or {},
                           form=request.form if request.method == "POST" else {}), status


@bp.post("/upload")
@admin_required
def upload() -> Any:
    """Convert an uploaded WAV or MP3 into the prompt named by the key the admin gave."""
    ctx = web()
    key = request.form.get("key", "").strip()
    language = request.form.get("language") or None
    name = request.form.get("name", "").strip()
    upload_file = request.files.get("file")
    errors: dict[str, str] = {}
    if not _is_key(key):
        errors["key"] = _("Use 1-40 lower-case latin letters, digits, - and _, e.g. welcome.")
    if language not in (None, *LANGUAGES):
        errors["language"] = _("Russian or English.")
    if len(name) > 100:
        errors["name"] = _("At most 100 characters.")
    if upload_file is None or not upload_file.filename:
        errors["file"] = _("Choose a WAV or MP3 file.")
    if errors or upload_file is None:
        return index(errors, 400)
    data = upload_file.stream.read(MAX_AUDIO + 1)
    if len(data) > MAX_AUDIO:
        return index({"file": _("The file is larger than 20 MB.")}, 400)
    # The uploaded name only hints at the format; the file is stored under the key.
    hint = "upload.mp3" if (upload_file.filename or "").lower().endswith(".mp3") else "upload.wav"
    try:
        store_prompt(ctx.db, ctx.settings.data_dir, key, data, hint, language=language,
                     name=name, actor=actor().name)
    except PromptError as exc:
        return index({"file": str(exc)}, 400)
    ctx.reload_engine()
    flash(_("Prompt %(key)s saved.", key=key), "ok")
    return redirect(url_for(".index"))


@bp.get("/play/<key>")
@admin_required
def play(key: str) -> Any:
    """The audio of a prompt (Range requests work, so the player can seek)."""
    language = request.args.get("lang") or None
    path = prompt_file(key, language)
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


@bp.post("/<key>/delete")
@admin_required
def delete(key: str) -> Any:
    """Delete the admin's recording of a key (refused while a menu or flow uses it)."""
    ctx = web()
    if not _is_key(key):
        abort(404)
    path = prompt_file(key, None)
    try:
        ctx.editor.delete("prompts", key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash(_("Not deleted: %(problems)s",
                problems="; ".join(p.message for p in exc.problems[:3])), "error")
        return redirect(url_for(".index"))
    if path is not None:
        path.unlink(missing_ok=True)
    flash(_("Deleted."), "ok")
    return redirect(url_for(".index"))
