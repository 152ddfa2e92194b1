"""The live dashboard: lines, registered phones, calls in progress (with a hang-up button) and
today's counters. The live part is one htmx fragment polled every 3 s; with the engine down it
says so and today's counters (from the database) still show."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance import reports
from appliance.control import ControlError, EngineDownError

from ..auth import admin_required, audit
from ..context import web
from . import NavItem
from ._callshared import DIRECTION_LABELS, box_zone, duration, local, parse_time
from ._linestate import STATE_LABELS

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
NAV = [NavItem("dashboard.index", _l("Dashboard"), "calls", order=10)]

# Line and trunk states as the engine names them: label and badge colour.
_COLOURS = {"ready": "ok", "registered": "ok", "in_call": "warn", "starting": "warn",
            "resetting": "warn", "registering": "warn", "unassigned": "warn", "down": "bad",
            "failed": "bad", "disabled": "bad", "unregistered": "bad"}
STATES = {state: (STATE_LABELS[state], colour) for state, colour in _COLOURS.items()}

# What the engine's call ids look like (uuid-ish); anything else never reaches its socket.
CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")


@dataclass
class Live:
    """The engine's live state as the fragment shows it."""

    up: bool = True
    error: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    trunks: list[dict[str, Any]] = field(default_factory=list)
    phones: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def _list(path: str, live: Live) -> list[dict[str, Any]]:
    """One list from the engine; a route the engine does not have (no lines manager) is []."""
    if not live.up:
        return []
    try:
        found = web().engine("GET", path, timeout=2.0)
    except EngineDownError as exc:
        live.up, live.error = False, str(exc)
        return []
    except ControlError:
        return []
    return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []


def call_view(call: dict[str, Any], names: dict[str, str], now: datetime) -> dict[str, Any]:
    """A call in progress with names for extensions and its running time."""
    started = parse_time(str(call.get("started_at") or ""))
    answered = parse_time(str(call.get("answered_at") or ""))

    def who(value: Any) -> str:
        text = str(value or "")
        return f"{text} {names[text]}" if text in names else text

    return {
        "call_id": str(call.get("call_id", "")), "caller": who(call.get("caller")),
        "dialled": who(call.get("dialled")),
        "talking_to": who(call.get("answered_by")) if call.get("answered_by") else "",
        "direction": call.get("direction") or "", "line": call.get("line") or "",
        "step": call.get("step") or "", "answered": bool(call.get("answered")),
        "for": duration((now - started).total_seconds()) if started else "",
        "talk": duration((now - answered).total_seconds()) if answered else "",
        "hangup_ok": bool(CALL_ID.fullmatch(str(call.get("call_id", "")))),
    }


def live_state() -> Live:
    """Lines, trunks, phones and calls from the engine (stops asking once it is down)."""
    live = Live()
    live.calls = _list("/calls", live)
    live.lines = _list("/lines", live)
    live.trunks = _list("/trunks", live)
    live.phones = _list("/registrations", live)
    return live


def _names() -> dict[str, str]:
    rows = web().db.read().conn.execute("SELECT extension, name FROM employees")
    return {str(r[0]): str(r[1]) for r in rows}


def _today() -> dict[str, Any]:
    ctx = web()
    tz = box_zone(ctx.box_value("time_zone", "UTC"))
    counters = reports.today(ctx.db.read().conn, ctx.now(), tz)
    counters["avg_wait"] = duration(counters["avg_wait_s"])
    return counters


@bp.get("/")
@admin_required
def index() -> Any:
    """The dashboard page (the live parts load themselves)."""
    return render_template("calls/dashboard.html", live=_live_context(), today=_today())


def _live_context() -> dict[str, Any]:
    live = live_state()
    now = web().now()
    names = _names() if live.calls else {}
    return {"state": live, "calls": [call_view(c, names, now) for c in live.calls],
            "direction_labels": DIRECTION_LABELS, "states": STATES,
            "phones_online": len({p.get("user") for p in live.phones})}


@bp.get("/live")
@admin_required
def live_fragment() -> Any:
    """The live part (htmx polls it)."""
    return render_template("calls/_live.html", live=_live_context())


@bp.get("/today")
@admin_required
def today_fragment() -> Any:
    """Today's counters (htmx polls them less often)."""
    tz = box_zone(web().box_value("time_zone", "UTC"))
    return render_template("calls/_today.html", today=_today(),
                           now=local(web().now().isoformat(), tz, "%H:%M"))


@bp.post("/calls/<call_id>/hangup")
@admin_required
def hangup(call_id: str) -> Any:
    """Hang up a call in progress through the engine."""
    if not CALL_ID.fullmatch(call_id):
        abort(404)
    try:
        web().engine("POST", f"/calls/{quote(call_id, safe='')}/hangup")
    except EngineDownError:
        message, category = _("The engine is not running."), "bad"
    except ControlError as exc:
        message = (_("That call has already ended.") if exc.status == 404
                   else _("The engine refused: %(error)s", error=str(exc)))
        category = "bad"
    else:
        audit("calls", "hangup", call_id)
        message, category = _("The call was hung up."), "ok"
    if request.headers.get("HX-Request"):
        response = render_template("calls/_live.html", live=_live_context(),
                                   message=message, category=category)
        return response
    flash(message, category)
    return redirect(url_for("dashboard.index"))
