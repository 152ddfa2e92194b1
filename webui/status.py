"""Box status: the landing page and the health endpoint."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template

from appliance.control import ControlError, call

bp = Blueprint("status", __name__)


def engine_status() -> tuple[dict[str, Any] | None, str]:
    """The engine's live status over the control socket, or the reason it is missing."""
    settings = current_app.config["PBX_SETTINGS"]
    try:
        return call(settings.control_socket, "GET", "/status", timeout=3.0), ""
    except ControlError as exc:
        return None, str(exc)


@bp.get("/")
def index() -> str:
    """Landing page: is the engine up, how many calls."""
    status, error = engine_status()
    return render_template("status.html", status=status, error=error)


@bp.get("/api/v1/health")
def health() -> Any:
    """Liveness for monitoring: 200 with the engine state, 503 when it is down."""
    status, error = engine_status()
    if status is None:
        return jsonify({"web": "ok", "engine": "down", "error": error}), 503
    return jsonify({"web": "ok", "engine": status["state"], "calls": status["calls"]})
