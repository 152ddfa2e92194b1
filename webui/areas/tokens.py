"""API tokens page (administrators): list, create (the token is shown once), revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.accounts import (
    AccountError,
    ApiToken,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)

from ..auth import admin_required, audit, current_user
from ..context import web
from . import NavItem

bp = Blueprint("tokens", __name__, url_prefix="/tokens")
NAV = [NavItem("tokens.index", _l("API tokens"), "system", order=80)]

SCOPES = ("read", "write")
EXPIRY_DAYS = ("", "30", "90", "365")


def _scope_labels() -> list[tuple[str, str]]:
    return [("read", _("read: see settings, calls, lines, messages")),
            ("write", _("write: change settings, place and end calls, send messages"))]


def _expiry_labels() -> list[tuple[str, str]]:
    return [("", _("Never")), ("30", _("In 30 days")), ("90", _("In 90 days")),
            ("365", _("In a year"))]


def _state(token: ApiToken, now: str) -> str:
    if token.revoked_at:
        return "revoked"
    if token.expires_at and token.expires_at <= now:
        return "expired"
    return "active"


def _page(status: int = 200, **extra: Any) -> Any:
    ctx = web()
    now = ctx.now().strftime("%Y-%m-%dT%H:%M:%S")
    tokens = [(t, _state(t, now)) for t in list_api_tokens(ctx.db)]
    values = extra.pop("values", {"name": "", "scopes": ["read"], "expires": ""})
    return render_template("tokens/index.html", tokens=tokens, scope_options=_scope_labels(),
                           expiry_options=_expiry_labels(), values=values,
                           errors=extra.pop("errors", {}), **extra), status


@bp.get("/")
@admin_required
def index() -> Any:
    """Every token (newest first) and the form for a new one."""
    return _page()


@bp.post("/")
@admin_required
def create() -> Any:
    """Make a token; the page shows it this once (only its hash is kept)."""
    name = request.form.get("name", "").strip()
    scopes = [s for s in request.form.getlist("scopes[]") if s]
    expires = request.form.get("expires", "")
    values = {"name": name[:200], "scopes": scopes, "expires": expires}
    errors: dict[str, str] = {}
    if not name or len(name) > 100:
        errors["name"] = _("Give the token a name of up to 100 characters.")
    if not scopes:
        errors["scopes"] = _("Choose at least one permission.")
    elif any(s not in SCOPES for s in scopes):
        errors["scopes"] = _("Unknown permission.")
    if expires not in EXPIRY_DAYS:
        errors["expires"] = _("Choose one of the offered periods.")
    if errors:
        return _page(400, values=values, errors=errors)
    ctx = web()
    until = ctx.now() + timedelta(days=int(expires)) if expires else None
    user = current_user()
    try:
        token = create_api_token(ctx.db, name, scopes, expires_at=until,
                                 created_by=user.username if user else None)
    except AccountError as exc:
        return _page(400, values=values, errors={"name": str(exc)})
    # Rendered, not redirected: the token must not pass through the session or a URL.
    return _page(201, new_token=token, new_name=name)


@bp.post("/<int:token_id>/revoke")
@admin_required
def revoke(token_id: int) -> Any:
    """Revoke a token at once (programs using it get 401 from now on)."""
    ctx = web()
    found = next((t for t in list_api_tokens(ctx.db) if t.id == token_id), None)
    if found is None:
        abort(404)
    if revoke_api_token(ctx.db, token_id):
        audit("accounts", "revoke_token", found.name, before={"scopes": list(found.scopes)})
        flash(_("Token “%(name)s” revoked.", name=found.name), "ok")
    return redirect(url_for("tokens.index"))
