"""The missed-and-not-called-back list: why each call was missed, who is responsible, when.
A call leaves it when the call log sees the client reached (appliance.calllog)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from appliance import reports

from ..auth import admin_required
from ..context import web
from . import NavItem
from ._callshared import MISSED_REASONS, box_zone, duration, local, parse_time

bp = Blueprint("missed", __name__, url_prefix="/missed")
NAV = [NavItem("missed.index", _l("Missed calls"), "calls", order=40)]


def ago(then: datetime | None, now: datetime) -> str:
    """How long ago, in the largest sensible unit (translated)."""
    if then is None:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 3600:
        return str(_l("%(n)d min ago", n=seconds // 60))
    if seconds < 2 * 86400:
        return str(_l("%(n)d h ago", n=seconds // 3600))
    return str(_l("%(n)d days ago", n=seconds // 86400))


@bp.get("/")
@admin_required
def index() -> Any:
    """Missed calls nobody has called back yet; a later answered call from or to the
    number clears them (the call log does it)."""
    ctx = web()
    tz = box_zone(ctx.box_value("time_zone", "UTC"))
    raw = request.args.get("page") or "1"
    page_no = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1
    page = reports.missed_open(ctx.db.read().conn, page_no)
    now = ctx.now()
    for row in page.rows:
        row["ago"] = ago(parse_time(row["created_at"]), now)
    return render_template("calls/missed.html", result=page, reasons=MISSED_REASONS,
                           local=lambda text, fmt="%d.%m %H:%M": local(text, tz, fmt),
                           duration=duration)
