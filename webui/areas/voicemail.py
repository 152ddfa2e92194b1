"""Voicemail boxes (admin) and their messages (admin: any box; a user: the boxes they own)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from appliance import vmparts
from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from appliance.voicemail import VoicemailError, list_messages, load_counts, set_pin
from webui.auth import actor, admin_required, audit, current_user, login_required
from webui.context import web
from webui.forms import FormError, field_errors, parse_form

from . import NavItem

bp = Blueprint("voicemail", __name__, url_prefix="/voicemail")
NAV = [NavItem("voicemail.index", _l("Voicemail"), "people", order=30)]
NEW: dict[str, Any] = {"attach_audio": True, "max_message": 180, "email": []}


def owned_boxes(extension: str | None) -> list[str]:
    """Keys of the voicemail boxes whose owner is the employee with `extension`."""
    if not extension:
        return []
    rows = web().db.read().conn.execute(
        "SELECT b.key FROM voicemail_boxes b JOIN employees e ON e.id = b.employee_id "
        "WHERE e.extension = ? ORDER BY b.key", (extension,)).fetchall()
    return [r[0] for r in rows]


def may_open(box: str | None) -> bool:
    """Whether the current user may see the messages of `box` (admin, or its owner)."""
    user = current_user()
    if user is None or box is None:
        return False
    return user.role == "administrator" or box in owned_boxes(user.employee_extension)


def _message(message_id: int) -> tuple[str, Path]:
    """The box and absolute file of a live message the user may open; 404/403 otherwise."""
    row = web().db.read().conn.execute(
        "SELECT box_key, path FROM voicemail_messages WHERE id = ? AND deleted_at IS NULL",
        (message_id,)).fetchone()
    if row is None:
        abort(404)
    if not may_open(row[0]):
        abort(403)
    return row[0], inside_voicemail(row[1])


def inside_voicemail(relative: str) -> Path:
    """A message's file from its row (relative to the data directory); 404 unless it stays
    inside the voicemail directory (a tampered row must not serve /etc/passwd)."""
    settings = web().settings
    path = (settings.data_dir / relative).resolve()
    if not path.is_relative_to(settings.voicemail_dir.resolve()):
        abort(404)
    return path


def with_local_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with `when`: the time received in the box's time zone ("2026-11-23 14:05")."""
    name = web().box_value("time_zone", "Europe/Moscow")
    try:
        zone: Any = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    for row in rows:
        try:
            moment = datetime.fromisoformat(str(row["created_at"]).replace("Z", "+00:00"))
            row["when"] = moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            row["when"] = str(row["created_at"])
    return rows


def _stamp() -> str:
    now = web().now().astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _back(box: str) -> Response:
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return redirect(target)
    return redirect(url_for("voicemail.messages", box=box))


def _choices() -> dict[str, Any]:
    config = web().editor.data()
    return {
        "employees": [(str(e["extension"]), f"{e['extension']} · {e['name']}")
                      for e in config.get("employees", [])],
        "prompts": [(str(p["key"]), str(p.get("name") or p["key"]))
                    for p in config.get("prompts", [])],
        "languages": [("ru", _("Russian")), ("en", _("English"))],
    }


def _render(box: dict[str, Any], errors: dict[str, str], key: str | None,
            status: int = 200) -> Any:
    has_pin = False
    if key is not None:
        row = web().db.read().conn.execute(
            "SELECT pin_hash IS NOT NULL FROM voicemail_boxes WHERE key = ?", (key,)).fetchone()
        has_pin = bool(row and row[0])
    return render_template("voicemail/form.html", box=box, errors=errors, key=key,
                           has_pin=has_pin, choices=_choices()), status


def _save(key: str | None) -> Any:
    try:
        data = parse_form(request.form)
    except FormError as exc:
        return _render({**NEW}, {"": str(exc)}, key, 400)
    data.setdefault("email", [])
    try:
        saved = web().editor.save("voicemail_boxes", data, key=key, actor=actor())
    except ConfigError as exc:
        return _render(data, field_errors(exc), key, 422)
    flash(_("Voicemail box %(key)s saved.", key=saved["key"]), "ok")
    return redirect(url_for("voicemail.index"))


@bp.get("/")
@admin_required
def index() -> str:
    """Every voicemail box with its new and old messages."""
    ctx = web()
    boxes = ctx.editor.items("voicemail_boxes")
    counts = load_counts(ctx.db.read().conn)
    return render_template("voicemail/list.html", boxes=boxes, counts=counts)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create() -> Any:
    """A new voicemail box."""
    if request.method == "POST":
        return _save(None)
    return _render({**NEW}, {}, None)


@bp.route("/<key>/edit", methods=["GET", "POST"])
@admin_required
def edit(key: str) -> Any:
    """Change a voicemail box."""
    try:
        box = web().editor.item("voicemail_boxes", key)
    except NotFoundError:
        abort(404)
    if request.method == "POST":
        return _save(key)
    return _render(box, {}, key)


@bp.post("/<key>/delete")
@admin_required
def delete(key: str) -> Response:
    """Remove a voicemail box unless something still sends calls to it."""
    try:
        web().editor.delete("voicemail_boxes", key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash(_("Voicemail box %(key)s is still in use: %(why)s", key=key,
                why="; ".join(p.message for p in exc.problems)), "error")
        return redirect(url_for("voicemail.edit", key=key))
    flash(_("Voicemail box %(key)s deleted.", key=key), "ok")
    return redirect(url_for("voicemail.index"))


@bp.post("/<key>/pin")
@admin_required
def pin(key: str) -> Response:
    """Set or clear the PIN for listening from a phone."""
    clear = request.form.get("clear") == "true"
    value = None if clear else request.form.get("pin", "").strip()
    if value is not None and not vmparts.valid_pin(value):
        flash(_("A PIN is 4-12 digits."), "error")
        return redirect(url_for("voicemail.edit", key=key))
    try:
        web().db.write(lambda c: set_pin(c, key, value))
    except VoicemailError:
        abort(404)
    audit("voicemail_boxes", "clear_pin" if clear else "set_pin", key)
    flash(_("PIN removed.") if clear else _("PIN set."), "ok")
    return redirect(url_for("voicemail.edit", key=key))


@bp.get("/<box>/messages")
@login_required
def messages(box: str) -> str:
    """A box's messages, newest first, with a player."""
    if not may_open(box):
        abort(403)
    rows = with_local_times(list_messages(web().db.read().conn, box))
    return render_template("voicemail/messages.html", box=box, messages=rows)


@bp.get("/messages/<int:message_id>/audio")
@login_required
def audio(message_id: int) -> Response:
    """The message's WAV for the browser's player (Range requests answered)."""
    _box, path = _message(message_id)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="audio/wav", conditional=True,
                         download_name=f"voicemail-{message_id}.wav")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/messages/<int:message_id>/read")
@login_required
def mark_read(message_id: int) -> Response:
    """Mark a message heard; the phones' message lamps follow."""
    box, _path = _message(message_id)
    stamp = _stamp()
    web().db.write(lambda c: c.conn.execute(
        "UPDATE voicemail_messages SET is_read = 1, read_at = ? "
        "WHERE id = ? AND is_read = 0 AND deleted_at IS NULL", (stamp, message_id)))
    web().reload_engine()  # the engine re-reads the counts behind the lamps
    return _back(box)


@bp.post("/messages/<int:message_id>/delete")
@login_required
def delete_message(message_id: int) -> Response:
    """Delete a message: its row keeps the time, its file is removed."""
    box, path = _message(message_id)
    stamp = _stamp()
    web().db.write(lambda c: c.conn.execute(
        "UPDATE voicemail_messages SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
        (stamp, message_id)))
    path.unlink(missing_ok=True)
    audit("voicemail", "delete_message", str(message_id), before={"box": box})
    web().reload_engine()
    flash(_("Message deleted."), "ok")
    return _back(box)
