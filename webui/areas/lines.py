"""Lines: SIM lines, SIP trunks and FXO gateways, their live state, PIN entry and USSD."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError, Problem
from appliance.control import ControlError, EngineDownError

from ..auth import actor, admin_required, audit
from ..context import web
from ..forms import FormError, field_errors, parse_form
from . import NavItem
from ._linestate import KINDS, STATE_LABELS, badge, line_data, merge, strip_kind

bp = Blueprint("lines", __name__, url_prefix="/lines")
NAV = [NavItem("lines.index", _l("Lines"), "lines", order=10)]

KIND_LABELS = {"sim": _l("SIM line"), "sip_trunk": _l("SIP trunk"),
               "fxo_gateway": _l("FXO gateway")}


def _live(path: str) -> tuple[list[Any] | None, str]:
    """An engine listing, or None and why (the page still shows the configuration)."""
    try:
        reply = web().engine("GET", path)
    except EngineDownError:
        return None, _("The engine is not running: live state is unknown.")
    except ControlError as exc:
        return None, str(exc)
    return (reply if isinstance(reply, list) else None), ""


_LIST_COLUMNS = {"key": "key", "kind": "kind", "name": "name", "enabled": "enabled",
                 "operator": "operator", "imei": "sim_imei", "iccid": "sim_iccid",
                 "ussd_balance": "sim_ussd_balance", "sms": "sim_sms", "host": "sip_host",
                 "channels": "channels"}


def config_lines() -> list[dict[str, Any]]:
    """What the lines page shows of each line's configuration, in one light query (the page
    is polled; reading the whole configuration each time would be slow on a Pi)."""
    columns = ", ".join(_LIST_COLUMNS.values())
    rows = web().db.read().conn.execute(f"SELECT {columns} FROM lines ORDER BY key").fetchall()
    out = []
    for row in rows:
        item = dict(zip(_LIST_COLUMNS, row, strict=True))
        item["enabled"], item["sms"] = bool(item["enabled"]), bool(item["sms"])
        out.append(item)
    return out


def _views() -> dict[str, Any]:
    ctx = web()
    config = config_lines()
    sims, error = _live("/lines")
    trunks, trunk_error = (None, "") if sims is None else _live("/trunks")
    # One scan for every line's newest balance (the page is polled every few seconds).
    rows = ctx.db.read().conn.execute(
        "SELECT line_key, balance, currency, at FROM ussd_history WHERE id IN"
        " (SELECT max(id) FROM ussd_history WHERE balance IS NOT NULL GROUP BY line_key)"
    ).fetchall()
    balances = {str(r[0]): {"amount": r[1], "currency": r[2], "at": r[3]} for r in rows}
    views, unassigned = merge(config, sims, trunks, balances)
    return {"views": views, "unassigned": unassigned, "engine_error": error or trunk_error,
            "kind_labels": KIND_LABELS}


@bp.get("/")
@admin_required
def index() -> str:
    """Every line with its live state (refreshed by the fragment below)."""
    return render_template("lines/index.html", **_views())


@bp.get("/live")
@admin_required
def live() -> str:
    """The live part of the lines page, polled by htmx."""
    return render_template("lines/_live.html", **_views())


def _form_page(kind: str, item: dict[str, Any], errors: dict[str, str], key: str | None,
               status: int = 200) -> tuple[str, int]:
    return render_template("lines/edit.html", kind=kind, item=item, errors=errors, key=key,
                           kind_label=KIND_LABELS[kind]), status


def _save(kind: str, key: str | None, stored: dict[str, Any] | None) -> Any:
    try:
        form = parse_form(request.form)
    except FormError as exc:
        return _form_page(kind, {}, {"": str(exc)}, key, 400)
    data = line_data(form, kind, stored)
    try:
        saved = web().editor.save("lines", data, key=key, actor=actor())
    except ConfigError as exc:
        return _form_page(kind, data, strip_kind(field_errors(exc), kind), key, 400)
    except NotFoundError:
        abort(404)
    flash(_("Line %(key)s saved.", key=saved["key"]), "ok")
    return redirect(url_for("lines.index"))


@bp.route("/new/<kind>", methods=["GET", "POST"])
@admin_required
def new(kind: str) -> Any:
    """Add a line of one kind."""
    if kind not in KINDS:
        abort(404)
    if request.method == "POST":
        return _save(kind, None, None)
    return _form_page(kind, {}, {}, None)


def _stored(key: str) -> dict[str, Any]:
    try:
        return web().editor.item("lines", key)
    except NotFoundError:
        abort(404)


@bp.route("/<key>/edit", methods=["GET", "POST"])
@admin_required
def edit(key: str) -> Any:
    """Change a line; secrets (PIN, trunk password) left empty keep the stored ones."""
    stored = _stored(key)
    kind = str(stored.get("kind"))
    if request.method == "POST":
        return _save(kind, key, stored)
    return _form_page(kind, stored, {}, key)


@bp.post("/<key>/delete")
@admin_required
def delete(key: str) -> Any:
    """Remove a line (refused while numbers or routes still use it)."""
    try:
        web().editor.delete("lines", key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash(_("The line is still in use: %(problems)s", problems=str(exc)), "error")
        return redirect(url_for("lines.edit", key=key))
    flash(_("Line %(key)s deleted.", key=key), "ok")
    return redirect(url_for("lines.index"))


@bp.post("/<key>/pin")
@admin_required
def pin(key: str) -> Any:
    """Store the SIM's PIN in the line's configuration (never shown back)."""
    stored = _stored(key)
    if stored.get("kind") != "sim":
        abort(404)
    value = request.form.get("pin", "").strip()[:64]
    try:
        if not value:
            raise ConfigError([Problem("pin", _("Enter the PIN."))])
        web().editor.save("lines", {**stored, "pin": value}, key=key, actor=actor())
    except ConfigError as exc:
        flash(_("PIN not saved: %(problems)s", problems="; ".join(
            p.message for p in exc.problems)), "error")
    else:
        flash(_("PIN saved for %(key)s; the line uses it when the modem asks.", key=key), "ok")
    return redirect(url_for("lines.index"))


@bp.post("/<key>/ussd")
@admin_required
def ussd(key: str) -> Any:
    """Send a USSD code through a SIM line and show the network's answer."""
    stored = _stored(key)
    if stored.get("kind") != "sim":
        abort(404)
    code = request.form.get("code", "").strip()[:40]
    try:
        reply = web().engine("POST", f"/lines/{key}/ussd", {"code": code}, timeout=40.0)
    except EngineDownError:
        flash(_("The engine is not running."), "error")
    except ControlError as exc:
        flash(_("USSD failed: %(error)s", error=str(exc)), "error")
    else:
        text = str(reply.get("text") or "") if isinstance(reply, dict) else ""
        flash(_("USSD %(code)s on %(key)s: %(text)s", code=code, key=key, text=text), "ok")
        audit("lines", "ussd", key, after={"code": code})
    return redirect(url_for("lines.index"))


@bp.app_template_filter("line_badge")
def line_badge(state: Any) -> str:
    """The badge class of an engine state (for the templates)."""
    return badge(state)


@bp.app_template_filter("line_state")
def line_state(state: Any) -> str:
    """An engine state word in the admin's language (for the templates)."""
    label = STATE_LABELS.get(state) if isinstance(state, str) else None
    return str(label) if label is not None else str(state)
