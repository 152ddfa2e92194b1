"""Departments: a short number ringing several employees by a strategy, and an overflow."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from webui.auth import actor, admin_required
from webui.context import web
from webui.destination import picker
from webui.forms import FormError, field_errors, parse_form

from . import NavItem

bp = Blueprint("departments", __name__, url_prefix="/departments")
NAV = [NavItem("departments.index", _l("Departments"), "people", order=20)]
NEW: dict[str, Any] = {"strategy": "all_at_once", "members": [], "ring_delay": 10,
                       "member_timeout": 20, "timeout": 60, "call_waiting": "skip_busy",
                       "recording": "default"}


def _labels() -> dict[str, Any]:
    return {
        "strategies": [
            ("all_at_once", _("All at once")),
            ("one_after_another", _("One after another (in this order)")),
            ("cascading", _("Cascading (each one joins the ringing in turn)")),
            ("longest_idle", _("Longest idle first")), ("fewest_calls", _("Fewest calls first")),
            ("random", _("Random")), ("round_robin_memory", _("Round robin (remembers)")),
            ("fixed_order", _("Fixed order"))],
        "waiting": [("skip_busy", _("Skip busy members")),
                    ("ring_busy", _("Ring busy members too (call waiting)"))],
        "recording": [("default", _("As the box decides")), ("always", _("Always")),
                      ("never", _("Never"))],
    }


def _render(dep: dict[str, Any], errors: dict[str, str], key: str | None,
            status: int = 200) -> Any:
    config = web().editor.data()
    employees = [(str(e["extension"]), f"{e['extension']} · {e['name']}")
                 for e in config.get("employees", [])]
    return render_template("departments/form.html", dep=dep, errors=errors, key=key,
                           employees=employees, labels=_labels(), dest=picker(config)), status


def _save(key: str | None) -> Any:
    try:
        data = parse_form(request.form)
    except FormError as exc:
        return _render({**NEW}, {"": str(exc)}, key, 400)
    data.setdefault("members", [])
    try:
        saved = web().editor.save("departments", data, key=key, actor=actor())
    except ConfigError as exc:
        return _render(data, field_errors(exc), key, 422)
    flash(_("Department %(key)s saved.", key=saved["key"]), "ok")
    return redirect(url_for("departments.index"))


@bp.get("/")
@admin_required
def index() -> str:
    """Every department with its number, strategy and members."""
    config = web().editor.data()
    names = {str(e["extension"]): e["name"] for e in config.get("employees", [])}
    return render_template("departments/list.html", departments=config.get("departments", []),
                           names=names, labels=dict(_labels()["strategies"]))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create() -> Any:
    """A new department."""
    if request.method == "POST":
        return _save(None)
    return _render({**NEW}, {}, None)


@bp.route("/<key>/edit", methods=["GET", "POST"])
@admin_required
def edit(key: str) -> Any:
    """Change a department (members in ringing order, overflow)."""
    try:
        dep = web().editor.item("departments", key)
    except NotFoundError:
        abort(404)
    if request.method == "POST":
        return _save(key)
    return _render(dep, {}, key)


@bp.post("/<key>/delete")
@admin_required
def delete(key: str) -> Response:
    """Remove a department unless a flow, menu or another department still sends calls to it."""
    try:
        web().editor.delete("departments", key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash(_("Department %(key)s is still in use: %(why)s", key=key,
                why="; ".join(p.message for p in exc.problems)), "error")
        return redirect(url_for("departments.edit", key=key))
    flash(_("Department %(key)s deleted.", key=key), "ok")
    return redirect(url_for("departments.index"))
