"""Call history: filters, pages, CSV export, a call's route, its recording in the browser.

Administrators see every call; a user sees only their own (their employee, answered by them,
or their extension calling or dialled), enforced in the query, so another user's call is 404
and another user's recording 403 whatever the URL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask import send_file as flask_send_file
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance import reports
from appliance.reports import DIRECTIONS, OUTCOMES, Filters

from ..auth import current_user, login_required
from ..context import web
from . import NavItem
from ._callshared import (
    DIRECTION_LABELS,
    MISSED_REASONS,
    OUTCOME_LABELS,
    LocalTimes,
    box_zone,
    duration,
    local,
    parse_query,
)

bp = Blueprint("history", __name__, url_prefix="/history")
NAV = [NavItem("history.index", _l("Call history"), "calls", admin_only=False, order=20)]


def viewer() -> dict[str, Any]:
    """The restriction of the current user: nothing for an administrator."""
    user = current_user()
    if user is None or user.role == "administrator":
        return {}
    ext = user.employee_extension
    row = web().db.read().conn.execute(
        "SELECT id FROM employees WHERE extension = ?", [ext]).fetchone() if ext else None
    return {"restricted": True, "viewer_extension": ext,
            "viewer_employee_id": int(row[0]) if row else None}


def employees() -> list[tuple[int, str]]:
    """(id, 'ext · name') of every employee, for the filter list."""
    rows = web().db.read().conn.execute(
        "SELECT id, extension, name FROM employees ORDER BY extension")
    return [(r[0], f"{r[1]} · {r[2]}") for r in rows]


def _row_id(value: int) -> None:
    """404 for an id no SQLite row can have (it would not fit in an INTEGER)."""
    if not 0 < value < 2**63:
        abort(404)


def _helpers() -> dict[str, Any]:
    tz = box_zone(web().box_value("time_zone", "UTC"))
    return {"tz": tz, "local": lambda text, fmt="%Y-%m-%d %H:%M:%S": local(text, tz, fmt),
            "duration": duration, "direction_labels": DIRECTION_LABELS,
            "outcome_labels": OUTCOME_LABELS, "missed_reasons": MISSED_REASONS}


@bp.get("/")
@login_required
def index() -> Any:
    """The call history with filters and pages."""
    ctx = web()
    helpers = _helpers()
    query = parse_query(request.args, ctx.now().astimezone(helpers["tz"]).date())
    page = reports.history(ctx.db.read().conn, query.filters(helpers["tz"], **viewer()),
                           query.page)
    user = current_user()
    is_admin = user is not None and user.role == "administrator"
    return render_template(
        "calls/history.html", query=query, result=page, args=query.args(),
        errors=query.errors, employees=employees() if is_admin else [], is_admin=is_admin,
        directions=[(d, DIRECTION_LABELS[d]) for d in DIRECTIONS],
        outcomes=[(o, OUTCOME_LABELS[o]) for o in OUTCOMES], **helpers)


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula ('=...', '@...', '+x' not a
    number); phone numbers like +74951234567 stay as they are."""
    if not value or not isinstance(value, str) or value[0] not in "=@\t\r+-":
        return value
    if value[0] in "+-" and value[1:].replace(".", "", 1).isdigit():
        return value
    return "'" + value


CSV_COLUMNS = (
    ("started", _l("Started")), ("direction", _l("Direction")), ("caller", _l("From")),
    ("caller_name", _l("Caller name")), ("dialled", _l("Dialled")), ("did", _l("Our number")),
    ("line", _l("Line")), ("employee", _l("Employee")), ("answered_by", _l("Answered by")),
    ("outcome", _l("Outcome")), ("missed", _l("Missed because")), ("wait", _l("Wait, s")),
    ("talk", _l("Talk, s")), ("recording", _l("Recording")), ("id", _l("Call ID")))


def csv_rows(rows: Iterator[Any], helpers: dict[str, Any]) -> Iterator[str]:
    """The CSV export, line by line: UTF-8 with a BOM and ';' between cells, which is what
    Excel opens correctly in Russian and most European locales."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([str(label) for _key, label in CSV_COLUMNS])
    yield "\ufeff" + flush()
    when = LocalTimes(helpers["tz"])
    for n, r in enumerate(rows):
        # Only text from outside (numbers, names, keys) can look like a formula.
        writer.writerow((
            when(r["started_at"]), r["direction"], _cell(r["caller"]), _cell(r["caller_name"]),
            _cell(r["dialled"]), _cell(r["did"]), _cell(r["line_key"]),
            r["employee_extension"] and _cell(f"{r['employee_extension']} {r['employee_name']}"),
            r["answered_extension"] and _cell(f"{r['answered_extension']} {r['answered_name']}"),
            r["disposition"], r["missed_reason"], r["wait_s"], r["talk_s"],
            "yes" if r["recording_id"] else "", r["uuid"]))
        if n % 200 == 199:  # a few hundred rows per chunk: fewer writes, still streamed
            yield flush()
    yield flush()


@bp.get("/export.csv")
@login_required
def export() -> Response:
    """Every call matching the filters as CSV, streamed."""
    ctx = web()
    helpers = _helpers()
    query = parse_query(request.args, ctx.now().astimezone(helpers["tz"]).date())
    filters = query.filters(helpers["tz"], **viewer())
    rows = reports.export(ctx.db.read().conn, filters)
    name = f"calls-{query.first.isoformat()}-{query.last.isoformat()}.csv"
    response = Response(stream_with_context(csv_rows(rows, helpers)),
                        mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/<int:call_id>")
@login_required
def detail(call_id: int) -> Any:
    """One call: who, when, the route it took, the legs rung, the recording."""
    _row_id(call_id)
    call = reports.call_detail(web().db.read().conn, call_id, Filters(**viewer()))
    if call is None:
        abort(404)
    return render_template("calls/detail.html", call=call, **_helpers())


def recording_file(stored: str) -> Path | None:
    """The file of a stored recording path, only if it lies inside the recordings folder."""
    settings = web().settings
    root = settings.recordings_dir.resolve()
    try:
        path = (settings.data_dir / stored).resolve()
        path.relative_to(root)
    except (ValueError, OSError):
        return None
    return path if path.is_file() else None


@bp.get("/recordings/<int:recording_id>")
@login_required
def recording(recording_id: int) -> Any:
    """A recording for the <audio> element (Range requests answered with 206)."""
    _row_id(recording_id)
    conn = web().db.read().conn
    stored = reports.recording_path(conn, recording_id, Filters(**viewer()))
    if stored is None:
        exists = conn.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]
                              ).fetchone()
        abort(403 if exists else 404)
    path = recording_file(stored)
    if path is None:
        abort(404, _("The recording file is missing."))
    mimetype = "audio/mpeg" if path.suffix == ".mp3" else "audio/wav"
    return flask_send_file(path, mimetype=mimetype, conditional=True, max_age=0)
