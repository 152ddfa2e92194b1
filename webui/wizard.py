"""The first-run wizard: the administrator, box name, time zone, country and language."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from appliance.accounts import AccountError, create_first_admin
from appliance.config.edit import Actor, validate_item
from appliance.config.errors import ConfigError

from .auth import log_in, set_session_cookie
from .context import web
from .forms import field_errors

bp = Blueprint("setup", __name__)

# Countries offered first (the first users'); the holidays library knows many more.
COMMON_COUNTRIES = ("RU", "BY", "KZ", "UZ", "KG", "AM", "GE", "AZ", "UA", "MD", "RS", "DE",
                    "GB", "US")


@cache
def time_zones() -> list[str]:
    """Time zones a box may use, Europe and Asia first (the first users')."""
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z
                   and not z.startswith(("Etc/", "SystemV/", "US/")))
    first = [z for z in zones if z.startswith(("Europe/", "Asia/"))]
    return first + [z for z in zones if z not in first]


@cache
def countries() -> list[str]:
    """Country codes with public holidays known to the box, the common ones first."""
    import holidays

    known = sorted(holidays.list_supported_countries())
    return [c for c in COMMON_COUNTRIES if c in known] + [
        c for c in known if c not in COMMON_COUNTRIES]


@bp.route("/setup", methods=["GET", "POST"])
def wizard() -> Any:
    """Step 1 on a fresh box: create the administrator and name the box."""
    ctx = web()
    if not ctx.needs_setup():
        if request.method == "POST":
            abort(409, _("The box is already set up."))
        return redirect(url_for("setup.next_steps"))
    lang = request.args.get("lang")
    if lang in ("ru", "en"):
        session["lang"] = lang
    errors: dict[str, str] = {}
    form: dict[str, str] = {"name": "", "time_zone": "Europe/Moscow", "country": "RU",
                            "language": session.get("lang") or "ru", "username": "admin"}
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in form}
        password = request.form.get("password", "")
        if password != request.form.get("repeat", ""):
            errors["repeat"] = _("The passwords differ.")
        box = {"name": form["name"] or "Office PBX", "time_zone": form["time_zone"],
               "country": form["country"], "language": form["language"]}
        try:
            # Checked before the user exists, so a bad field never leaves half a setup.
            validate_item("box", box)
        except ConfigError as exc:
            errors.update(field_errors(exc))
        if not errors:
            try:
                user = create_first_admin(ctx.db, form["username"], password, hasher=ctx.hasher)
            except AccountError as exc:
                errors["password" if "password" in str(exc) else "username"] = str(exc)
            else:
                ctx.editor.set_settings("box", {**ctx.editor.settings("box"), **box},
                                        actor=Actor(user.username, user_id=user.id))
                token = log_in(user)
                session["lang"] = form["language"]
                return set_session_cookie(redirect(url_for("setup.next_steps")), token)
    return render_template("setup/wizard.html", form=form, errors=errors,
                           zones=time_zones(), countries=countries())


@bp.get("/setup/next")
def next_steps() -> Any:
    """Step 2: what to plug in and where to go next."""
    return render_template("setup/next.html")
