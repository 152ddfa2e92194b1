"""The audit log: who changed what and when, with a readable diff; filtered and paginated."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from ..auth import admin_required
from ..context import web
from . import NavItem
from .sms import page_number

bp = Blueprint("audit", __name__, url_prefix="/audit")
NAV = [NavItem("audit.index", _l("Audit log"), "system", order=50)]

PER_PAGE = 50
MAX_DIFF = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested data as {path: leaf} (`devices[0].username`). Pure."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        if not value and prefix:
            out[prefix] = []
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
    else:
        out[prefix] = value
    return out


def diff(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """What changed between two versions: (path, old, new), None for a side without it. Pure."""
    old = {} if before is None else flatten(before)  # None: created or deleted
    new = {} if after is None else flatten(after)
    changes = []
    for path in sorted(set(old) | set(new)):
        if old.get(path, ...) != new.get(path, ...):
            changes.append((path, old.get(path), new.get(path)))
    return changes[:MAX_DIFF]


def _json(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def filters(args: Any) -> tuple[str, list[Any], dict[str, str]]:
    """The WHERE clause for the query string's area/user/date filters (bad values ignored)."""
    clauses: list[str] = []
    params: list[Any] = []
    shown: dict[str, str] = {}
    area = str(args.get("area", ""))[:40]
    if area:
        clauses.append("area = ?")
        params.append(area)
        shown["area"] = area
    who = str(args.get("actor", ""))[:100]
    if who:
        clauses.append("actor = ?")
        params.append(who)
        shown["actor"] = who
    for name, op, suffix in (("from", ">=", "T00:00:00"), ("to", "<=", "T23:59:59.999")):
        value = str(args.get(name, ""))
        if _DATE.match(value):
            clauses.append(f"at {op} ?")
            params.append(value + suffix)
            shown[name] = value
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params, shown


@bp.get("/")
@admin_required
def index() -> str:
    """The audit log, newest first."""
    conn = web().db.read().conn
    where, params, shown = filters(request.args)
    total = conn.execute(f"SELECT count(*) FROM audit_log {where}", params).fetchone()[0]
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(pages, page_number(request.args.get("page")))
    rows = conn.execute(
        "SELECT id, at, actor, area, action, object, before, after FROM audit_log"
        f" {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, PER_PAGE, (page - 1) * PER_PAGE]).fetchall()
    entries = [{"id": r[0], "at": r[1], "actor": r[2], "area": r[3], "action": r[4],
                "object": r[5], "changes": diff(_json(r[6]), _json(r[7]))} for r in rows]
    areas = [r[0] for r in conn.execute("SELECT DISTINCT area FROM audit_log ORDER BY area")]
    actors = [r[0] for r in conn.execute(
        "SELECT DISTINCT actor FROM audit_log ORDER BY actor LIMIT 200")]
    return render_template("system/audit.html", entries=entries, page=page, pages=pages,
                           args=shown, areas=areas, actors=actors)
