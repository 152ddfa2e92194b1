"""My settings (any logged-in employee): forwarding to mobiles, do-not-disturb, the greeting
of my voicemail box and my messages. Only these fields of one's own employee change."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from appliance.prompts import PromptError, store_prompt
from appliance.voicemail import list_messages
from webui.auth import actor, audit, current_user, login_required
from webui.context import web
from webui.forms import FormError, field_errors, parse_form

from . import NavItem
from .voicemail import owned_boxes, with_local_times

bp = Blueprint("mine", __name__, url_prefix="/mine")
NAV = [NavItem("mine.index", _l("My settings"), "mine", admin_only=False, order=10)]
# The fields of their own employee a user may change here.
OWN_FIELDS = ("mobiles", "ring_mobile_after", "confirm_mobile", "dnd")
MAX_GREETING_BYTES = 10 * 1024 * 1024
_DIGESTS = ("realm", "ha1_md5", "ha1_sha256")


def _own() -> tuple[str, dict[str, Any]]:
    """The user's extension and stored employee; 404 when no employee is linked."""
    user = current_user()
    ext = user.employee_extension if user is not None else None
    if not ext:
        abort(404, _("Your web login is not linked to an employee."))
    try:
        return ext, web().editor.item("employees", ext)
    except NotFoundError:
        abort(404, _("Your web login is not linked to an employee."))


def changed_employee(stored: dict[str, Any], posted: dict[str, Any]) -> dict[str, Any]:
    """The stored employee with only OWN_FIELDS taken from `posted` (the devices keep their
    stored passwords: the editor restores them by user name)."""
    item = {k: v for k, v in stored.items() if k not in OWN_FIELDS}
    item["devices"] = [{k: v for k, v in d.items() if k not in _DIGESTS}
                       for d in stored.get("devices", [])]
    for name in OWN_FIELDS:
        if name in posted:
            item[name] = posted[name]
    item.setdefault("mobiles", [])
    return item


def _render(emp: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    ext = str(emp.get("extension", ""))
    boxes = owned_boxes(ext)
    conn = web().db.read().conn
    messages = {box: with_local_times(list_messages(conn, box)) for box in boxes}
    return render_template("mine/index.html", emp=emp, errors=errors, boxes=boxes,
                           messages=messages, max_mb=MAX_GREETING_BYTES // (1024 * 1024)), status


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    """My forwarding settings and do-not-disturb; my voicemail."""
    ext, stored = _own()
    if request.method == "GET":
        return _render(stored, {})
    try:
        posted = parse_form(request.form)
    except FormError as exc:
        return _render(stored, {"": str(exc)}, 400)
    posted.setdefault("mobiles", [])
    after = str(posted.get("ring_mobile_after", "")).strip().lower()
    if after in ("never", "никогда"):
        posted["ring_mobile_after"] = "never"
    item = changed_employee(stored, posted)
    try:
        web().editor.save("employees", item, key=ext, actor=actor())
    except ConfigError as exc:
        return _render({**stored, **{k: item.get(k) for k in OWN_FIELDS}},
                       field_errors(exc), 422)
    flash(_("Saved."), "ok")
    return redirect(url_for("mine.index"))


@bp.post("/dnd")
@login_required
def dnd() -> Response:
    """Turn do-not-disturb on or off with one button."""
    ext, stored = _own()
    item = changed_employee(stored, {"dnd": request.form.get("dnd") == "true"})
    web().editor.save("employees", item, key=ext, actor=actor())
    flash(_("Do not disturb is on.") if item["dnd"] else _("Do not disturb is off."), "ok")
    return redirect(url_for("mine.index"))


def greeting_error(box: str, boxes: list[str], data: bytes | None) -> str | None:
    """Why an uploaded greeting is refused before converting it, or None."""
    if box not in boxes:
        return _("That is not your voicemail box.")
    if not data:
        return _("Choose a WAV or MP3 file.")
    if len(data) > MAX_GREETING_BYTES:
        return _("The file is larger than %(mb)d MB.", mb=MAX_GREETING_BYTES // (1024 * 1024))
    return None


@bp.post("/greeting")
@login_required
def greeting() -> Response:
    """Upload my voicemail box's greeting (WAV or MP3, converted for the phones)."""
    ext, _stored = _own()
    box = request.form.get("box", "")[:64]
    upload = request.files.get("file")
    data = upload.stream.read(MAX_GREETING_BYTES + 1) if upload is not None else None
    filename = (upload.filename or "greeting")[:200] if upload is not None else ""
    why = greeting_error(box, owned_boxes(ext), data)
    if why is None:
        ctx = web()
        key = f"greeting-{box}"
        user = current_user()
        try:
            store_prompt(ctx.db, ctx.settings.data_dir, key, data or b"", filename,
                         name=f"Greeting of mailbox {box}",
                         actor=user.username if user else "web")
        except PromptError as exc:
            why = str(exc)
        else:
            ctx.db.write(lambda c: c.conn.execute(
                "UPDATE voicemail_boxes SET greeting_prompt_id ="
                " (SELECT id FROM prompts WHERE key = ?) WHERE key = ?", (key, box)))
            audit("voicemail_boxes", "upload_greeting", box, after={"greeting": key})
            ctx.reload_engine()
    if why is not None:
        flash(why, "error")
    else:
        flash(_("The new greeting is saved."), "ok")
    return redirect(url_for("mine.index"))
