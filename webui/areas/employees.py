"""Employees: list, create, edit, delete; SIP passwords and web logins generated and shown once."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from appliance.accounts import (
    AccountError,
    create_web_user,
    list_web_users,
    set_web_user_disabled,
    set_web_user_password,
)
from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from appliance.config.model import DEFAULT_ROUTES
from webui.auth import actor, admin_required, audit
from webui.context import web
from webui.forms import FormError, field_errors, parse_form

from . import NavItem
from ._people import (
    PER_PAGE,
    generate_password,
    like,
    page_number,
    pages_of,
    qr_svg,
    show_once,
    sip_server,
    take_once,
)

bp = Blueprint("employees", __name__, url_prefix="/employees")
NAV = [NavItem("employees.index", _l("Employees"), "people", order=10)]

# Device fields the form edits; the others (codecs, static contact...) are kept as stored.
DEVICE_FORM_FIELDS = ("username", "kind", "label", "auth")
_DIGESTS = ("realm", "ha1_md5", "ha1_sha256", "password")
NEW_EMPLOYEE: dict[str, Any] = {
    "role": "user", "ring_mobile_after": 10, "no_answer_timeout": 30, "call_waiting": True,
    "recording": "default", "allowed_routes": list(DEFAULT_ROUTES), "enabled": True,
    "mobiles": [], "devices": []}


def _labels() -> dict[str, Any]:
    """Translated names of the choices the form offers."""
    return {
        "routes": [(r, v) for r, v in (
            ("internal", _("Internal")), ("local", _("Local")), ("mobile", _("Mobile")),
            ("long_distance", _("Long distance")), ("international", _("International")),
            ("emergency", _("Emergency")), ("service", _("Service numbers")),
            ("premium", _("Premium-rate")))],
        "roles": [("user", _("User")), ("administrator", _("Administrator"))],
        "recording": [("default", _("As the box decides")), ("always", _("Always")),
                      ("never", _("Never"))],
        "kinds": [("desk_phone", _("Desk phone")), ("softphone", _("Softphone"))],
        "auth": [("sha256", _("SHA-256 and MD5")), ("md5", _("MD5 only (older phones)"))],
    }


def _employee_form_data() -> dict[str, Any]:
    """The posted employee; 'never' (in either language) for the mobile delay."""
    data = parse_form(request.form)
    after = str(data.get("ring_mobile_after", "")).strip().lower()
    if after in ("never", "никогда"):
        data["ring_mobile_after"] = "never"
    data.setdefault("mobiles", [])
    data.setdefault("devices", [])
    return data


def with_credentials(data: dict[str, Any], stored: dict[str, Any] | None
                     ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Merge posted devices with the stored ones; generate a password for every new,
    renamed or reset device. Returns the item to save and the passwords made."""
    kept = {d.get("username"): d for d in (stored or {}).get("devices", [])}
    devices, made = [], []
    for raw in data.get("devices", []):
        if not isinstance(raw, dict):
            devices.append(raw)
            continue
        posted = dict(raw)
        reset = str(posted.pop("_reset", "false")) == "true"
        base = kept.get(posted.get("username"))
        device = {k: v for k, v in (base or {}).items()
                  if k not in DEVICE_FORM_FIELDS and k not in _DIGESTS}
        device.update(posted)
        if base is None or reset or not (base.get("realm") or base.get("static_contact")):
            username = str(device.get("username", ""))
            device["password"] = generate_password(username)
            made.append({"username": username, "password": device["password"],
                         "kind": str(device.get("kind", "desk_phone")),
                         "label": str(device.get("label", ""))})
        devices.append(device)
    return {**data, "devices": devices}, made


def _render_form(employee: dict[str, Any], errors: dict[str, str], key: str | None,
                 status: int = 200) -> Any:
    login = None
    if key is not None:
        login = next((u for u in list_web_users(web().db) if u.employee_extension == key), None)
    return render_template("employees/form.html", emp=employee, errors=errors, key=key,
                           login=login, labels=_labels()), status


def _save(key: str | None) -> Any:
    ctx = web()
    try:
        data = _employee_form_data()
    except FormError as exc:
        return _render_form({**NEW_EMPLOYEE}, {"": str(exc)}, key, 400)
    stored = None
    if key is not None:
        stored = ctx.editor.item("employees", key)
    item, made = with_credentials(data, stored)
    try:
        saved = ctx.editor.save("employees", item, key=key, actor=actor())
    except ConfigError as exc:
        return _render_form(data, field_errors(exc), key, 422)
    if made:
        show_once({"extension": saved["extension"], "name": saved["name"], "devices": made})
        return redirect(url_for("employees.credentials"))
    flash(_("Employee %(ext)s saved.", ext=saved["extension"]), "ok")
    return redirect(url_for("employees.index"))


@bp.get("/")
@admin_required
def index() -> str:
    """Employees, searchable by name or extension, a page at a time."""
    q = request.args.get("q", "")[:100].strip()
    page = page_number(request.args.get("page"))
    conn = web().db.read().conn
    where, params = "", []
    if q:
        where = "WHERE e.name LIKE ? ESCAPE '\\' OR e.extension LIKE ? ESCAPE '\\'"
        params = [like(q), like(q)]
    total = conn.execute(f"SELECT count(*) FROM employees e {where}", params).fetchone()[0]
    rows = conn.execute(
        "SELECT e.extension, e.name, e.role, e.enabled, e.dnd, e.email,"
        " (SELECT count(*) FROM devices d WHERE d.employee_id = e.id),"
        " (SELECT count(*) FROM employee_mobiles m WHERE m.employee_id = e.id)"
        f" FROM employees e {where} ORDER BY length(e.extension), e.extension"
        " LIMIT ? OFFSET ?", [*params, PER_PAGE, (page - 1) * PER_PAGE]).fetchall()
    names = ("extension", "name", "role", "enabled", "dnd", "email", "devices", "mobiles")
    employees = [dict(zip(names, r, strict=True)) for r in rows]
    args = {"q": q} if q else {}
    return render_template("employees/list.html", employees=employees, q=q, page=page,
                           pages=pages_of(total), total=total, args=args)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create() -> Any:
    """A new employee; each device gets a generated password shown once."""
    if request.method == "POST":
        return _save(None)
    return _render_form({**NEW_EMPLOYEE}, {}, None)


@bp.route("/<ext>/edit", methods=["GET", "POST"])
@admin_required
def edit(ext: str) -> Any:
    """Change an employee (the extension too); devices keep their passwords unless reset."""
    try:
        employee = web().editor.item("employees", ext)
    except NotFoundError:
        abort(404)
    if request.method == "POST":
        return _save(ext)
    return _render_form(employee, {}, ext)


@bp.post("/<ext>/delete")
@admin_required
def delete(ext: str) -> Response:
    """Remove an employee, unless a department, menu, flow... still uses the extension."""
    try:
        web().editor.delete("employees", ext, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash(_("Employee %(ext)s is still in use: %(why)s", ext=ext,
                why="; ".join(p.message for p in exc.problems)), "error")
        return redirect(url_for("employees.edit", ext=ext))
    flash(_("Employee %(ext)s deleted.", ext=ext), "ok")
    return redirect(url_for("employees.index"))


@bp.get("/credentials")
@admin_required
def credentials() -> Response:
    """The passwords just generated, shown once; reloading the page shows them no more."""
    secret = take_once()
    server = sip_server()
    for device in (secret or {}).get("devices", []):
        device["uri"] = sip_qr_text(device["username"], device["password"], server)
        device["qr"] = qr_svg(device["uri"])
    response = make_response(render_template("employees/credentials.html", secret=secret,
                                        server=server))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def sip_qr_text(username: str, password: str, server: dict[str, Any]) -> str:
    """The QR code's text: a SIP URI with the password in its user part (RFC 3261
    `sip:user:password@host:port;transport=udp`), which softphones read as an account."""
    host = server["host"]
    if ":" in host:
        host = f"[{host}]"
    return (f"sip:{username}:{password}@{host}:{server['port']};"
            f"transport={str(server['transport']).lower()}")


def _login_of(ext: str) -> Any:
    return next((u for u in list_web_users(web().db) if u.employee_extension == ext), None)


@bp.post("/<ext>/login")
@admin_required
def login_create(ext: str) -> Response:
    """Give the employee a web login (role user) with a generated password, shown once."""
    ctx = web()
    try:
        ctx.editor.item("employees", ext)
    except NotFoundError:
        abort(404)
    username = request.form.get("username", "").strip()[:64] or f"u{ext}"
    password = generate_password(username)
    try:
        create_web_user(ctx.db, username, password, "user", ext, hasher=ctx.hasher)
    except AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("employees.edit", ext=ext))
    audit("accounts", "create_user", username, after={"role": "user", "employee": ext})
    show_once({"extension": ext, "login": username, "password": password})
    return redirect(url_for("employees.credentials"))


@bp.post("/<ext>/login/reset")
@admin_required
def login_reset(ext: str) -> Response:
    """A new generated password for the employee's web login, shown once."""
    user = _login_of(ext)
    if user is None:
        abort(404)
    password = generate_password(user.username)
    set_web_user_password(web().db, user.username, password, hasher=web().hasher)
    web().sessions.end_all(user.id)
    audit("accounts", "reset_password", user.username)
    show_once({"extension": ext, "login": user.username, "password": password})
    return redirect(url_for("employees.credentials"))


@bp.post("/<ext>/login/disabled")
@admin_required
def login_disabled(ext: str) -> Response:
    """Disable or re-enable the employee's web login."""
    user = _login_of(ext)
    if user is None:
        abort(404)
    disable = request.form.get("disabled") == "true"
    set_web_user_disabled(web().db, user.username, disable)
    if disable:
        web().sessions.end_all(user.id)
    audit("accounts", "disable" if disable else "enable", user.username)
    flash(_("Web login disabled.") if disable else _("Web login enabled."), "ok")
    return redirect(url_for("employees.edit", ext=ext))
