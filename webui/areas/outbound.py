"""Outbound routes (dial patterns to ordered lines), caller-ID rules (an ordered list edited
by position) and the repeat-caller settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.errors import ConfigError

from ..auth import actor, admin_required
from ..context import web
from ..destination import picker
from ..forms import FormError, field_errors, parse_form
from . import NavItem
from ._routing import Section, keyed_choices, register

bp = Blueprint("outbound", __name__, url_prefix="/outbound")
NAV = [NavItem("outbound.routes_list", _l("Outbound routes"), "routing", order=70)]

ROUTE_CLASSES = ("internal", "local", "mobile", "long_distance", "international", "emergency",
                 "service", "premium")

ROUTES = Section(
    section="outbound_routes", name="routes", url="", template="routing/route.html",
    title=lambda: _("Outbound routes"), one=lambda: _("Outbound route"),
    columns=[(lambda: _("Key"), lambda it: it.get("key", "")),
             (lambda: _("Pattern"), lambda it: it.get("pattern", "")),
             (lambda: _("Class"), lambda it: it.get("route_class", "")),
             (lambda: _("Lines"), lambda it: ", ".join(it.get("lines") or [])),
             (lambda: _("Enabled"), lambda it: _("yes") if it.get("enabled", True) else _("no"))],
    ordered=True, extra={"route_classes": ROUTE_CLASSES})
CALLER_ID = Section(
    section="caller_id_rules", name="callerid", url="/caller-id",
    template="routing/callerid.html", title=lambda: _("Caller ID rules"),
    one=lambda: _("Caller ID rule"),
    columns=[(lambda: _("Mode"), lambda it: it.get("mode", "")),
             (lambda: _("Pattern"), lambda it: it.get("pattern", "")),
             (lambda: _("Route"), lambda it: it.get("route", "")),
             (lambda: _("Number"), lambda it: it.get("number", ""))],
    ordered=True)
register(bp, ROUTES)
register(bp, CALLER_ID)


def _repeat_page(values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    data = web().editor.data()
    sources = [("call_history", _("the box's call history"))] + [
        (f"crm:{k}", f"CRM: {label}") for k, label in keyed_choices(data, "crm")]
    return render_template("routing/repeat_caller.html", item=values, errors=errors,
                           data=data, sources=sources, dest=picker(data),
                           employees=keyed_choices(data, "employees", "extension")), status


@bp.route("/repeat-caller", methods=["GET", "POST"])
@admin_required
def repeat_caller() -> Any:
    """Repeat-caller routing: sources, exceptions, mobiles, the default destination."""
    ctx = web()
    if request.method == "GET":
        return _repeat_page(ctx.editor.settings("repeat_caller"), {})
    try:
        values = parse_form(request.form)
    except FormError as exc:
        return _repeat_page({}, {"": str(exc)}, 400)
    try:
        ctx.editor.set_settings("repeat_caller", values, actor=actor())
    except ConfigError as exc:
        return _repeat_page(values, field_errors(exc), 400)
    flash(_("Saved."), "ok")
    return redirect(url_for(".repeat_caller"))
