"""The admin web UI (a separate process from the engine): Flask app factory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from appliance.db import Database
from appliance.settings import Settings

from . import i18n
from .areas import GROUPS, NavItem, discover
from .context import Web

MAX_UPLOAD = 64 * 1024 * 1024  # a backup with recordings is streamed; the form itself is small


def secret_key(data_dir: Path) -> bytes:
    """The key that signs cookies: made once per box, kept (0600) in the data directory."""
    path = data_dir / "web" / "secret.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _security_headers(response: Response) -> Response:
    # No inline scripts anywhere (app.js reads the CSRF token from a meta tag), no framing.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; media-src 'self'; frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def create_app(settings: Settings, *, db: Database | None = None, **overrides: Any) -> Flask:
    """Build the web app for one box; every module in `webui.areas` adds its blueprint."""
    app = Flask(__name__)
    if db is None:
        db = Database.open(settings.db_path)
    clock = overrides.pop("PBX_CLOCK", None)
    ctx = Web(settings, db, clock)
    if "PBX_PASSWORD_HASHER" in overrides:
        ctx.hasher = overrides.pop("PBX_PASSWORD_HASHER")
    app.extensions["pbx"] = ctx
    app.config.update(
        PBX_SETTINGS=settings,
        SECRET_KEY=secret_key(settings.data_dir),
        JSON_AS_ASCII=False,
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
        SESSION_COOKIE_NAME="pbx_ui",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead, which ends on logout
        WTF_CSRF_SSL_STRICT=True,
        **overrides,
    )
    i18n.init_app(app)
    app.jinja_env.filters["pair"] = lambda value: (value, value)
    csrf = CSRFProtect(app)

    from . import auth, status, wizard

    nav: list[NavItem] = []
    app.register_blueprint(auth.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(wizard.bp)
    for module in discover():
        app.register_blueprint(module.bp)
        nav.extend(getattr(module, "NAV", ()))
        if getattr(module, "CSRF_EXEMPT", False):  # token-authenticated API, no cookies
            csrf.exempt(module.bp)
    app.config["PBX_NAV"] = sorted(nav, key=lambda n: (GROUPS.index(n.group), n.order))

    app.before_request(auth.load_user)
    app.after_request(_security_headers)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        user = g.get("user")
        items = [n for n in app.config["PBX_NAV"]
                 if user is not None and (not n.admin_only or user.role == "administrator")]
        return {"current_user": user, "nav_items": items, "nav_groups": GROUPS,
                "get_locale": get_locale,
                "box_name": ctx.box_value("name", "Office PBX")}

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return render_template("error.html", code=400, message=_(
            "The form expired or did not come from this page. Reload the page and try again.")
        ), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return jsonify({"error": exc.name, "message": exc.description}), code
        return render_template("error.html", code=code, message=exc.description), code
    return app
