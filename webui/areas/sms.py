"""SMS: every line's inbox and outbox (admin), sending, and a user's own sent messages.

The sender of a message sent from the web UI is stored in `sms.employee_id` (a column the
table always had): a user sees exactly the messages they sent, without a new migration.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.control import ControlError, EngineDownError

from ..auth import admin_required, audit, current_user, login_required
from ..context import web
from . import NavItem
from .lines import config_lines

bp = Blueprint("sms", __name__, url_prefix="/sms")
NAV = [NavItem("sms.index", _l("SMS"), "lines", order=20)]

PER_PAGE = 50
MAX_TEXT = 1530
_COLUMNS = ("id", "line_key", "direction", "peer", "text", "parts", "status", "partial",
            "error", "created_at", "sent_at", "delivered_at", "employee")


def page_number(raw: str | None) -> int:
    """A page number from the query string (1 for anything odd)."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        return 1
    return max(1, int(raw))


def messages_page(where: str, args: list[Any], page: int) -> tuple[list[dict[str, Any]], int]:
    conn = web().db.read().conn
    total = conn.execute(f"SELECT count(*) FROM sms {where}", args).fetchone()[0]
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(page, pages)
    rows = conn.execute(
        "SELECT sms.id, line_key, direction, peer, text, parts, status, partial, error,"
        " sms.created_at, sent_at, delivered_at, e.name FROM sms"
        f" LEFT JOIN employees e ON e.id = sms.employee_id {where}"
        " ORDER BY sms.id DESC LIMIT ? OFFSET ?", [*args, PER_PAGE, (page - 1) * PER_PAGE],
    ).fetchall()
    return [dict(zip(_COLUMNS, r, strict=True)) for r in rows], pages


def sms_lines() -> list[str]:
    return [str(line["key"]) for line in config_lines()
            if line["kind"] == "sim" and line["sms"] and line["enabled"]]


@bp.get("/")
@admin_required
def index() -> str:
    """Received and sent messages of every line, newest first, filtered and paginated."""
    line = request.args.get("line", "")[:40]
    direction = request.args.get("direction", "")
    clauses, args = [], []
    if line:
        clauses.append("line_key = ?")
        args.append(line)
    if direction in ("in", "out"):
        clauses.append("direction = ?")
        args.append(direction)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    page = page_number(request.args.get("page"))
    messages, pages = messages_page(where, args, page)
    return render_template("lines/sms.html", messages=messages, page=min(page, pages),
                           pages=pages, lines=sms_lines(), line=line, direction=direction,
                           args={"line": line, "direction": direction}, mine=False)


def employee_id(extension: str | None) -> int | None:
    if extension is None:
        return None
    row = web().db.read().conn.execute(
        "SELECT id FROM employees WHERE extension = ?", (extension,)).fetchone()
    return None if row is None else int(row[0])


@bp.post("/send")
@login_required
def send() -> Any:
    """Send an SMS through a SIM line; the sender is recorded with the message."""
    user = current_user()
    assert user is not None
    back = url_for("sms.index" if user.role == "administrator" else "mysms.mine")
    employee = employee_id(user.employee_extension)
    if user.role != "administrator" and employee is None:
        abort(403)
    line = request.form.get("line", "").strip()
    to = request.form.get("to", "").strip()
    text = request.form.get("text", "").replace("\r\n", "\n")
    if line not in sms_lines():
        flash(_("Choose a SIM line that sends SMS."), "error")
        return redirect(back)
    if not to or not text.strip() or len(to) > 21 or len(text) > MAX_TEXT:
        flash(_("Give a phone number and a text of at most %(n)d characters.", n=MAX_TEXT),
              "error")
        return redirect(back)
    try:
        reply = web().engine("POST", "/sms", {"line": line, "to": to, "text": text},
                             timeout=60.0)
    except EngineDownError:
        flash(_("The engine is not running: the SMS was not sent."), "error")
        return redirect(back)
    except ControlError as exc:
        flash(_("The SMS was not sent: %(error)s", error=str(exc)), "error")
        return redirect(back)
    sms_id = reply.get("id") if isinstance(reply, dict) else None
    if isinstance(sms_id, int) and employee is not None:
        web().db.write(lambda c: c.conn.execute(
            "UPDATE sms SET employee_id = ? WHERE id = ? AND direction = 'out'",
            (employee, sms_id)))
    audit("sms", "send", line, after={"to": to, "id": sms_id})
    status = reply.get("status") if isinstance(reply, dict) else None
    if status == "failed":
        flash(_("The SMS failed: %(error)s", error=str(reply.get("error") or "")), "error")
    else:
        flash(_("SMS to %(to)s: %(status)s", to=to, status=status or "?"), "ok")
    return redirect(back)


@bp.app_template_filter("box_time")
def box_time(value: Any) -> str:
    """A stored UTC timestamp in the box's time zone, to the minute (for the templates)."""
    if not isinstance(value, str) or not value:
        return ""
    zone = g.get("box_zone")
    if zone is None:
        try:
            zone = ZoneInfo(str(web().box_value("time_zone", "Europe/Moscow")))
        except (ValueError, KeyError):
            zone = ZoneInfo("UTC")
        g.box_zone = zone
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:16]
    if moment.tzinfo is None:
        return value[:16].replace("T", " ")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
