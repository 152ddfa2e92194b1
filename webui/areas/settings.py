"""System settings: the box, notifications and the mail server (with a test mail), CRMs and
webhooks. Secrets (SMTP password, CRM and webhook secrets) left empty keep the stored ones."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from appliance.config.policies import WebhookEvent
from appliance.mailer import Mailer, MailError

from ..auth import actor, admin_required, audit
from ..context import web
from ..forms import FormError, field_errors, parse_form
from . import NavItem

bp = Blueprint("settings", __name__, url_prefix="/settings")
NAV = [NavItem("settings.box", _l("Settings"), "system", order=10),
       NavItem("settings.notifications", _l("Notifications"), "system", order=20),
       NavItem("settings.items", _l("Integrations"), "system", order=30)]

LIST_AREAS = {"crm": _l("CRM"), "webhooks": _l("Webhooks")}
WEBHOOK_EVENTS: tuple[str, ...] = WebhookEvent.__args__  # type: ignore[attr-defined]
RULE_EVENTS = ("missed_call", "voicemail", "low_balance", "line_down", "blocked_call")
_SPLIT = re.compile(r"[,;\s]+")


def _form() -> dict[str, Any]:
    try:
        return parse_form(request.form)
    except FormError as exc:
        abort(400, str(exc))


def _prompts() -> list[str]:
    return [str(p["key"]) for p in web().editor.items("prompts")]


@bp.route("/", methods=["GET", "POST"])
@admin_required
def box() -> Any:
    """The box's name, time zone, country, language, day/night, recording, hold music."""
    ctx = web()
    errors: dict[str, str] = {}
    data = ctx.editor.settings("box")
    status = 200
    if request.method == "POST":
        data = _form()
        try:
            ctx.editor.set_settings("box", data, actor=actor())
        except ConfigError as exc:
            errors, status = field_errors(exc), 400
        else:
            flash(_("Settings saved."), "ok")
            return redirect(url_for("settings.box"))
    return render_template("system/box.html", item=data, errors=errors,
                           prompts=_prompts()), status


def notification_data(form: dict[str, Any]) -> dict[str, Any]:
    """Notification settings from the parsed form: no SMTP without a host, recipients split.
    Pure."""
    data = dict(form)
    smtp = data.get("smtp")
    if not isinstance(smtp, dict) or not smtp.get("host"):
        data.pop("smtp", None)
    if not isinstance(data.get("rules", []), list):
        return data  # not a list of rows: the model says what is wrong
    rules = []
    for rule in data.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        to = rule.get("to")
        if isinstance(to, str):
            rule = {**rule, "to": [v for v in _SPLIT.split(to) if v]}
        if set(rule) <= {"responsible_manager"} and rule.get("responsible_manager") != "true":
            continue  # an empty row the admin added and left
        rules.append(rule)
    if rules or "rules" in data:
        data["rules"] = rules
    return data


@bp.route("/notifications", methods=["GET", "POST"])
@admin_required
def notifications() -> Any:
    """Mail server, SMS line, low-balance threshold and who hears about what."""
    ctx = web()
    errors: dict[str, str] = {}
    data = ctx.editor.settings("notifications")
    status = 200
    if request.method == "POST":
        data = notification_data(_form())
        try:
            ctx.editor.set_settings("notifications", data, actor=actor())
        except ConfigError as exc:
            errors, status = field_errors(exc), 400
        else:
            flash(_("Notification settings saved."), "ok")
            return redirect(url_for("settings.notifications"))
    sims = [str(x["key"]) for x in ctx.editor.items("lines") if x.get("kind") == "sim"]
    return render_template("system/notifications.html", item=data, errors=errors,
                           sims=sims, rule_events=RULE_EVENTS), status


@bp.post("/notifications/test")
@admin_required
def test_mail() -> Any:
    """Send a test e-mail with the stored SMTP settings and say what happened."""
    to = request.form.get("to", "").strip()[:200]
    mailer = Mailer(web().db)
    subject = _("Test e-mail from the office PBX")
    body = _("If you read this, the box can send e-mail.")
    try:
        # A thread of its own: the request's thread may already run an event loop.
        with ThreadPoolExecutor(1, thread_name_prefix="test-mail") as pool:
            pool.submit(asyncio.run, mailer.send([to], subject, body)).result(timeout=60)
    except MailError as exc:
        flash(_("The test e-mail failed: %(error)s", error=str(exc)), "error")
    else:
        flash(_("Test e-mail sent to %(to)s.", to=to), "ok")
        audit("notifications", "test_mail", to)
    return redirect(url_for("settings.notifications"))


@bp.get("/integrations")
@admin_required
def items() -> str:
    """CRM adapters and webhooks."""
    ctx = web()
    return render_template("system/integrations.html", crm=ctx.editor.items("crm"),
                           webhooks=ctx.editor.items("webhooks"))


def _area(section: str) -> str:
    if section not in LIST_AREAS:
        abort(404)
    return section


def item_data(section: str, form: dict[str, Any], stored: dict[str, Any] | None
              ) -> dict[str, Any]:
    """A CRM or webhook item from the form; fields the form does not edit are kept. Pure."""
    data = dict(form)
    if stored is not None:
        for kept in ("users", "options"):
            if stored.get(kept):
                data[kept] = stored[kept]
    if section == "webhooks":
        data.setdefault("events", [])
    return data


@bp.route("/<section>/new", methods=["GET", "POST"], endpoint="item_new")
@bp.route("/<section>/<key>", methods=["GET", "POST"], endpoint="item_edit")
@admin_required
def item(section: str, key: str | None = None) -> Any:
    """Create or change a CRM adapter or a webhook."""
    _area(section)
    ctx = web()
    stored = None
    if key is not None:
        try:
            stored = ctx.editor.item(section, key)
        except NotFoundError:
            abort(404)
    data = stored or {}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = item_data(section, _form(), stored)
        try:
            ctx.editor.save(section, data, key=key, actor=actor())
        except ConfigError as exc:
            errors, status = field_errors(exc), 400
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("settings.items"))
    return render_template("system/item.html", section=section, title=LIST_AREAS[section],
                           item=data, key=key, errors=errors, events=WEBHOOK_EVENTS), status


@bp.post("/<section>/<key>/delete")
@admin_required
def item_delete(section: str, key: str) -> Any:
    """Remove a CRM adapter or a webhook."""
    _area(section)
    try:
        web().editor.delete(section, key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Deleted."), "ok")
    return redirect(url_for("settings.items"))
