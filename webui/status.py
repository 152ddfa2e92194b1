"""Box status: the start page, the health endpoint, the language switch."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from appliance.control import ControlError

from .context import web

bp = Blueprint("status", __name__)


def engine_status() -> tuple[dict[str, Any] | None, str]:
    """The engine's live status over the control socket, or the reason it is missing."""
    try:
        return web().engine("GET", "/status"), ""
    except ControlError as exc:
        return None, str(exc)


@bp.get("/")
def index() -> Any:
    """The start page: the live dashboard for an administrator, one's own page for a user."""
    user = g.get("user")
    views = current_app.view_functions
    if user is not None and user.role != "administrator" and "mine.index" in views:
        return redirect(url_for("mine.index"))
    if "dashboard.index" in views:
        return redirect(url_for("dashboard.index"))
    return status_page()


@bp.get("/status")
def status_page() -> str:
    """Is the engine up, how many calls (also when the dashboard cannot be drawn)."""
    status, error = engine_status()
    return render_template("status.html", status=status, error=error)


@bp.get("/lang/<code>")
def language(code: str) -> Any:
    """Switch the pages' language for this browser, then go back."""
    if code in ("ru", "en"):
        session["lang"] = code
    target = request.args.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return redirect(target)


@bp.get("/api/v1/health")
def health() -> Any:
    """Liveness for monitoring: 200 with the engine state, 503 when it is down."""
    status, error = engine_status()
    if status is None:
        return jsonify({"web": "ok", "engine": "down", "error": error}), 503
    return jsonify({"web": "ok", "engine": status["state"], "calls": status["calls"]})
