"""Security: addresses the SIP edge has banned (with unban) and the registered phones."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.control import ControlError, EngineDownError

from ..auth import admin_required, audit
from ..context import web
from . import NavItem

bp = Blueprint("security", __name__, url_prefix="/security")
NAV = [NavItem("security.index", _l("Security"), "system", order=45)]
MAX_ROWS = 2000  # a big office has a few hundred phones; more is an attack, not a list


def ban_rows(bans: Any, now: float) -> list[dict[str, Any]]:
    """GET /bans as rows with seconds left; malformed entries are skipped. Pure."""
    rows = []
    for ban in bans if isinstance(bans, list) else []:
        if not isinstance(ban, dict) or not isinstance(ban.get("host"), str):
            continue
        until = ban.get("until")
        left = max(0, int(until - now)) if isinstance(until, int | float) else None
        rows.append({"host": ban["host"], "left": left, "reason": str(ban.get("reason", ""))})
    return rows[:MAX_ROWS]


@bp.get("/")
@admin_required
def index() -> str:
    """Bans and registrations, live from the engine."""
    ctx = web()
    error = ""
    bans: list[dict[str, Any]] = []
    registrations: list[Any] = []
    try:
        bans = ban_rows(ctx.engine("GET", "/bans"), ctx.now().timestamp())
        found = ctx.engine("GET", "/registrations")
        registrations = [r for r in found if isinstance(r, dict)][:MAX_ROWS] \
            if isinstance(found, list) else []
    except EngineDownError:
        error = _("The engine is not running: live state is unknown.")
    except ControlError as exc:
        error = str(exc)
    return render_template("system/security.html", bans=bans, registrations=registrations,
                           error=error)


@bp.post("/unban")
@admin_required
def unban() -> Any:
    """Lift one ban."""
    host = request.form.get("host", "").strip()[:256]
    try:
        reply = web().engine("POST", "/bans/remove", {"host": host})
    except EngineDownError:
        flash(_("The engine is not running."), "error")
    except ControlError as exc:
        flash(str(exc), "error")
    else:
        if isinstance(reply, dict) and reply.get("lifted"):
            audit("security", "unban", host)
            flash(_("%(host)s is no longer banned.", host=host), "ok")
        else:
            flash(_("%(host)s was not banned.", host=host), "error")
    return redirect(url_for("security.index"))
