"""Logging in and out, the current user, role checks, password change, the audit helper."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from appliance.accounts import (
    AccountError,
    User,
    set_web_user_password,
    verify_web_user,
    web_user_by_id,
)
from appliance.config.edit import Actor

from .context import web
from .sessions import COOKIE

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])

# Pages a visitor may open without logging in.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "status.health", "status.language",
                              "setup.wizard"})


def client_address() -> str:
    """The client's address (the box serves the LAN directly: no proxy headers trusted)."""
    return request.remote_addr or ""


def current_user() -> User | None:
    """The logged-in user of this request, or None."""
    return cast(User | None, g.get("user"))


def actor() -> Actor:
    """The current user (or API token) as the author of a change, for the audit log."""
    token = g.get("api_token")
    if token is not None:
        return Actor(f"token:{token.name}", token_id=token.id)
    user = current_user()
    if user is None:
        return Actor("system")
    return Actor(user.username, user_id=user.id)


def audit(area: str, action: str, obj: str | None, *, before: Any = None,
          after: Any = None) -> None:
    """Write one audit row for a change that does not go through the config editor."""
    who = actor()

    def job(c: Any) -> None:
        c.conn.execute(
            "INSERT INTO audit_log (actor, user_id, token_id, area, action, object, before, after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (who.name, who.user_id, who.token_id, area, action, obj,
             None if before is None else json.dumps(before, ensure_ascii=False),
             None if after is None else json.dumps(after, ensure_ascii=False)))

    web().db.write(job)


def login_required(view: F) -> F:
    """Only for a logged-in user (any role)."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)
    return cast(F, wrapper)


def admin_required(view: F) -> F:
    """Only for an administrator; a user gets 403 whatever the URL."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("auth.login", next=request.full_path))
        if user.role != "administrator":
            abort(403)
        return view(*args, **kwargs)
    wrapper.pbx_admin_only = True  # type: ignore[attr-defined]  # the security sweep reads it
    return cast(F, wrapper)


def own_extension_or_admin(extension: str | None) -> None:
    """403 unless the user is an administrator or `extension` is the user's own."""
    user = current_user()
    if user is None:
        abort(401)
    if user.role != "administrator" and (extension is None
                                         or extension != user.employee_extension):
        abort(403)


def load_user() -> Response | None:
    """Before each request: who is logged in; first run goes to the wizard."""
    g.user = None
    ctx = web()
    endpoint = request.endpoint or ""
    # The REST API authenticates by token itself and answers JSON, even for unknown paths.
    if endpoint.startswith("api.") or endpoint == "static" or (
            request.path.startswith("/api/") and endpoint != "status.health"):
        return None
    found = ctx.sessions.user_of(request.cookies.get(COOKIE))
    if found is not None:
        user_id, sid = found
        g.user = web_user_by_id(ctx.db, user_id)
        g.session_id = sid
    if endpoint not in PUBLIC_ENDPOINTS and ctx.needs_setup():
        return redirect(url_for("setup.wizard"))
    if g.user is None and endpoint not in PUBLIC_ENDPOINTS and endpoint:
        return redirect(url_for("auth.login", next=request.full_path))
    return None


def _safe_next(target: str | None) -> str:
    """Only a path on this box (no //evil.example or scheme) may be the next page."""
    if target and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target:
        return target
    return url_for("status.index")


def set_session_cookie(response: Response, token: str | None) -> Response:
    """Set (or clear, with None) the session cookie with the box's cookie rules."""
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    if token is None:
        response.delete_cookie(COOKIE, httponly=True, secure=secure, samesite="Lax")
    else:
        response.set_cookie(COOKIE, token, httponly=True, secure=secure, samesite="Lax",
                            max_age=7 * 24 * 3600)
    return response


def log_in(user: User) -> str:
    """Start a fresh session for `user` (old cookie data dropped); returns its token."""
    session.clear()  # a fresh CSRF token and nothing carried over from before the login
    return web().sessions.start(user, client_address(), request.user_agent.string or "")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; throttled per address and per user name."""
    ctx = web()
    if ctx.needs_setup():
        return redirect(url_for("setup.wizard"))
    error = None
    status = 200
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")[:64]
        password = request.form.get("password", "")
        throttle = ctx.sessions.may_try(client_address(), username)
        if not throttle.allowed:
            error = _("Too many failed logins. Try again in %(minutes)d min.",
                      minutes=(throttle.retry_after_s + 59) // 60)
            status = 429
        else:
            user = verify_web_user(ctx.db, username, password, hasher=ctx.hasher)
            if user is None:
                ctx.sessions.failed(client_address(), username)
                error = _("Wrong user name or password.")
                status = 401
            else:
                ctx.sessions.succeeded(username)
                token = log_in(user)
                target = _safe_next(request.args.get("next"))
                return set_session_cookie(redirect(target), token)
    response = current_app.make_response(
        (render_template("auth/login.html", error=error, username=username), status))
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response


@bp.post("/logout")
def logout() -> Response:
    """End this session."""
    token = request.cookies.get(COOKIE)
    if token:
        web().sessions.end(token)
    session.clear()
    return set_session_cookie(redirect(url_for("auth.login")), None)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    """Change one's own password; every other session of the user ends."""
    user = current_user()
    assert user is not None
    error = None
    if request.method == "POST":
        ctx = web()
        current = request.form.get("current", "")
        new = request.form.get("new", "")
        if verify_web_user(ctx.db, user.username, current, hasher=ctx.hasher) is None:
            error = _("The current password is wrong.")
        elif new != request.form.get("repeat", ""):
            error = _("The new passwords differ.")
        else:
            try:
                set_web_user_password(ctx.db, user.username, new, hasher=ctx.hasher)
            except AccountError as exc:
                error = str(exc)
            else:
                ctx.sessions.end_all(user.id, keep=g.get("session_id"))
                audit("accounts", "set_password", user.username)
                flash(_("Password changed. Other sessions were logged out."), "ok")
                return redirect(url_for("status.index"))
    return render_template("auth/password.html", error=error)
