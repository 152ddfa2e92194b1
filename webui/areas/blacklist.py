"""The blacklist (read straight from its table: it can hold 100 000 numbers) and blocked calls."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from webui.auth import actor, admin_required, current_user
from webui.context import web
from webui.forms import field_errors

from . import NavItem
from ._people import PER_PAGE, like, page_number, pages_of

bp = Blueprint("blacklist", __name__, url_prefix="/blacklist")
NAV = [NavItem("blacklist.index", _l("Blacklist"), "people", order=40)]
MAX_NUMBER = 32
MAX_REASON = 500


def _listing(q: str, page: int) -> dict[str, Any]:
    conn = web().db.read().conn
    where, params = "", []
    if q:
        where = "WHERE number LIKE ? ESCAPE '\\' OR reason LIKE ? ESCAPE '\\'"
        params = [like(q), like(q)]
    total = conn.execute(f"SELECT count(*) FROM blacklist {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT number, reason, added_by, created_at FROM blacklist {where} "
        "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        [*params, PER_PAGE, (page - 1) * PER_PAGE]).fetchall()
    entries = [dict(zip(("number", "reason", "added_by", "created_at"), r, strict=True))
               for r in rows]
    return {"entries": entries, "total": total, "pages": pages_of(total)}


def _render(form: dict[str, str], errors: dict[str, str], status: int = 200) -> Any:
    q = request.args.get("q", "")[:100].strip()
    page = page_number(request.args.get("page"))
    return render_template("blacklist/list.html", q=q, page=page, form=form, errors=errors,
                           args={"q": q} if q else {}, **_listing(q, page)), status


@bp.get("/")
@admin_required
def index() -> Any:
    """Blocked numbers, newest first, searchable by number or reason."""
    return _render({}, {})


@bp.post("/")
@admin_required
def add() -> Any:
    """Block a number; the reason is mandatory."""
    number = request.form.get("number", "").strip()
    reason = request.form.get("reason", "").strip()
    form = {"number": number[:MAX_NUMBER], "reason": reason[:MAX_REASON]}
    if len(number) > MAX_NUMBER:
        return _render(form, {"number": _("The number is too long.")}, 422)
    user = current_user()
    entry = {"number": number, "reason": reason,
             "added_by": user.username if user is not None else None}
    try:
        web().editor.save("blacklist", entry, key=None, actor=actor())
    except ConfigError as exc:
        return _render(form, field_errors(exc), 422)
    flash(_("%(number)s is blocked.", number=number), "ok")
    return redirect(url_for("blacklist.index"))


@bp.post("/remove")
@admin_required
def remove() -> Response:
    """Unblock a number."""
    number = request.form.get("number", "")[:MAX_NUMBER]
    try:
        web().editor.delete("blacklist", number, actor=actor())
    except NotFoundError:
        abort(404)
    flash(_("%(number)s is no longer blocked.", number=number), "ok")
    return redirect(url_for("blacklist.index"))


@bp.get("/blocked")
@admin_required
def blocked() -> str:
    """Calls the box refused, newest first, with the reason."""
    page = page_number(request.args.get("page"))
    conn = web().db.read().conn
    total = conn.execute("SELECT count(*) FROM blocked_calls").fetchone()[0]
    rows = conn.execute(
        "SELECT b.at, b.caller, b.dialled, b.reason, l.key FROM blocked_calls b "
        "LEFT JOIN lines l ON l.id = b.line_id ORDER BY b.at DESC, b.id DESC LIMIT ? OFFSET ?",
        (PER_PAGE, (page - 1) * PER_PAGE)).fetchall()
    calls = [dict(zip(("at", "caller", "dialled", "reason", "line"), r, strict=True))
             for r in rows]
    return render_template("blacklist/blocked.html", calls=calls, page=page,
                           pages=pages_of(total), total=total)
