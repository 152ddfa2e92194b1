"""Security: banned addresses (with unban), registered phones, remote access (SSH)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance import remote_access
from appliance.control import ControlError, EngineDownError

from ..auth import actor, admin_required, audit
from ..context import web
from . import NavItem

bp = Blueprint("security", __name__, url_prefix="/security")
NAV = [NavItem("security.index", _l("Security"), "system", order=45)]
# BadKey codes as the admin reads them.
_KEY_FAULTS = {
    "format": _l("expected the key type, the key and an optional comment"),
    "type": _l("not a key type SSH accepts (ssh-ed25519, ssh-rsa, ecdsa-sha2-...)"),
    "base64": _l("the key is damaged (not base64)"),
    "truncated": _l("the key is cut short"),
    "mismatch": _l("the key does not match its type (cut short or mislabelled)"),
    "comment": _l("the comment has control characters or is too long"),
    "count": _l("too many keys (at most 32)"),
}
MAX_ROWS = 2000  # a big office has a few hundred phones; more is an attack, not a list


def ban_rows(bans: Any, now: float) -> list[dict[str, Any]]:
    """GET /bans as rows with seconds left; malformed entries are skipped. Pure."""
    rows = []
    for ban in bans if isinstance(bans, list) else []:
        if not isinstance(ban, dict) or not isinstance(ban.get("host"), str):
            continue
        until = ban.get("until")
        left = max(0, int(until - now)) if isinstance(until, int | float) else None
        rows.append({"host": ban["host"], "left": left, "reason": str(ban.get("reason", ""))})
    return rows[:MAX_ROWS]


def _ssh_view(errors: dict[str, str] | None = None, keys: str | None = None) -> dict[str, Any]:
    """What the remote access section shows: the last status, a pending request, the form."""
    data_dir = web().settings.data_dir
    status = remote_access.read_status(data_dir)
    pending = (data_dir / "system" / remote_access.REQUEST_NAME).exists()
    if keys is None:
        known = status.get("authorized") if status else None
        keys = "\n".join(k for k in known if isinstance(k, str)) if isinstance(known, list) else ""
    return {"ssh": status, "ssh_pending": pending, "ssh_errors": errors or {}, "ssh_keys": keys}


@bp.get("/")
@admin_required
def index() -> str:
    """Bans and registrations, live from the engine; remote access."""
    ctx = web()
    error = ""
    bans: list[dict[str, Any]] = []
    registrations: list[Any] = []
    try:
        bans = ban_rows(ctx.engine("GET", "/bans"), ctx.now().timestamp())
        found = ctx.engine("GET", "/registrations")
        registrations = [r for r in found if isinstance(r, dict)][:MAX_ROWS] \
            if isinstance(found, list) else []
    except EngineDownError:
        error = _("The engine is not running: live state is unknown.")
    except ControlError as exc:
        error = str(exc)
    return render_template("system/security.html", bans=bans, registrations=registrations,
                           error=error, **_ssh_view())


@bp.post("/unban")
@admin_required
def unban() -> Any:
    """Lift one ban."""
    host = request.form.get("host", "").strip()[:256]
    try:
        reply = web().engine("POST", "/bans/remove", {"host": host})
    except EngineDownError:
        flash(_("The engine is not running."), "error")
    except ControlError as exc:
        flash(str(exc), "error")
    else:
        if isinstance(reply, dict) and reply.get("lifted"):
            audit("security", "unban", host)
            flash(_("%(host)s is no longer banned.", host=host), "ok")
        else:
            flash(_("%(host)s was not banned.", host=host), "error")
    return redirect(url_for("security.index"))


@bp.post("/ssh")
@admin_required
def ssh() -> Any:
    """Ask the box to turn SSH on (with these keys) or off."""
    ctx = web()
    enabled = request.form.get("enabled") == "on"
    text = request.form.get("keys", "")[:remote_access.MAX_REQUEST_BYTES]
    if remote_access.read_status(ctx.settings.data_dir) is None:
        flash(_("Remote access is switched by the box image's own service, which this "
                "installation does not have."), "error")
        return redirect(url_for("security.index"))
    try:
        keys = remote_access.parse_keys(text) if enabled else ()
        remote_access.submit(ctx.settings.data_dir,
                             remote_access.Request(enabled, keys, by=actor().name))
    except remote_access.BadKey as exc:
        errors = {"keys": _("Line %(line)d: %(reason)s", line=exc.line,
                            reason=str(_KEY_FAULTS.get(exc.code, exc.reason)))}
    except remote_access.RequestError:
        errors = {"keys": _("Paste at least one public key: the box has no passwords, so a key "
                            "is the only way in.")}
    else:
        audit("security", "ssh", "ssh", after={"enabled": enabled, "keys": len(keys)})
        flash(_("SSH on with %(n)d keys: applied within seconds.", n=len(keys)) if enabled
              else _("SSH off: applied within seconds."), "ok")
        return redirect(url_for("security.index"))
    page = render_template("system/security.html", bans=[], registrations=[], error="",
                           **_ssh_view(errors, text))
    return page, 400
