"""The admin web UI (a separate process from the engine): Flask app factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from appliance.settings import Settings


def create_app(settings: Settings, **overrides: Any) -> Flask:
    """Build the web app for one box; blueprints per admin area hang off it."""
    app = Flask(__name__)
    app.config.update(PBX_SETTINGS=settings, JSON_AS_ASCII=False, **overrides)

    from .status import bp as status_bp

    app.register_blueprint(status_bp)
    return app
