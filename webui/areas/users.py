"""Web users: list, password reset (shown once), disable/enable, delete; the last
administrator and one's own account are protected."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from appliance.accounts import (
    User,
    list_web_users,
    set_web_user_disabled,
    set_web_user_password,
    web_user_by_id,
)
from webui.auth import admin_required, audit, current_user
from webui.context import web

from . import NavItem
from ._people import generate_password, show_once, take_once

bp = Blueprint("users", __name__, url_prefix="/users")
NAV = [NavItem("users.index", _l("Web users"), "system", order=20)]


def refusal(target: User, users: list[User], me: User | None) -> str | None:
    """Why `target` may not be disabled or deleted by `me`, or None."""
    if me is not None and target.id == me.id:
        return _("You cannot do this to your own account.")
    admins = [u for u in users if u.role == "administrator" and not u.disabled]
    if target.role == "administrator" and not target.disabled and len(admins) <= 1:
        return _("This is the last active administrator.")
    return None


def _target(user_id: int) -> User:
    user = web_user_by_id(web().db, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@admin_required
def index() -> str:
    """Every web user with role, linked employee, last login, state."""
    return render_template("users/list.html", users=list_web_users(web().db),
                           me=current_user())


@bp.post("/<int:user_id>/password")
@admin_required
def reset(user_id: int) -> Response:
    """A new generated password, shown once; the user's sessions end."""
    user = _target(user_id)
    password = generate_password(user.username)
    set_web_user_password(web().db, user.username, password, hasher=web().hasher)
    me = current_user()
    # Resetting one's own password keeps this session (like the password page does).
    web().sessions.end_all(user.id, keep=g.get("session_id") if me and me.id == user.id else None)
    audit("accounts", "reset_password", user.username)
    show_once({"login": user.username, "password": password})
    return redirect(url_for("users.password_shown"))


@bp.get("/password")
@admin_required
def password_shown() -> Response:
    """The password just generated, once (reloading shows it no more)."""
    response = make_response(render_template("users/password.html", secret=take_once()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:user_id>/disabled/<any(on, off):state>")
@admin_required
def disabled(user_id: int, state: str) -> Response:
    """Disable (state on) or re-enable (off) a user."""
    user = _target(user_id)
    disable = state == "on"
    if disable:
        why = refusal(user, list_web_users(web().db), current_user())
        if why:
            flash(why, "error")
            return redirect(url_for("users.index"))
    set_web_user_disabled(web().db, user.username, disable)
    if disable:
        web().sessions.end_all(user.id)
    audit("accounts", "disable" if disable else "enable", user.username)
    flash(_("%(user)s disabled.", user=user.username) if disable
          else _("%(user)s enabled.", user=user.username), "ok")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/delete")
@admin_required
def delete(user_id: int) -> Response:
    """Delete a user (their sessions go with them)."""
    user = _target(user_id)
    why = refusal(user, list_web_users(web().db), current_user())
    if why:
        flash(why, "error")
        return redirect(url_for("users.index"))

    def job(c: Any) -> None:
        # Checked again inside the writer, so two admins deleting each other keep one.
        if user.role == "administrator":
            left = c.conn.execute(
                "SELECT count(*) FROM web_users WHERE role = 'administrator' AND disabled = 0 "
                "AND id != ?", (user.id,)).fetchone()[0]
            if left == 0:
                raise LastAdminError
        c.conn.execute("DELETE FROM web_users WHERE id = ?", (user.id,))

    try:
        web().db.write(job)
    except LastAdminError:
        flash(_("This is the last active administrator."), "error")
        return redirect(url_for("users.index"))
    audit("accounts", "delete_user", user.username,
          before={"role": user.role, "employee": user.employee_extension})
    flash(_("%(user)s deleted.", user=user.username), "ok")
    return redirect(url_for("users.index"))


class LastAdminError(Exception):
    """Deleting would leave the box without an active administrator."""
