"""The web UI's context object: settings, database, config editor, the engine's control API.

One `Web` per app, kept in `app.extensions["pbx"]` and reached through `web()`; nothing
lives in module globals, so tests build as many apps as they like.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from flask import current_app

from appliance.accounts import has_web_users
from appliance.config.edit import ConfigEditor
from appliance.control import EngineDownError, call
from appliance.db import Database
from appliance.settings import Settings

from .sessions import Clock, Sessions

__all__ = ["EngineDownError", "Web", "web"]

log = logging.getLogger(__name__)


@dataclass
class Web:
    """Everything a request handler needs, passed down from the app."""

    settings: Settings
    db: Database
    clock: Clock | None = None
    # argon2 with its default (strong) parameters; tests pass a cheap one to stay fast.
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    editor: ConfigEditor = field(init=False)
    sessions: Sessions = field(init=False)

    def __post_init__(self) -> None:
        self.editor = ConfigEditor(self.db, on_change=self.reload_engine)
        self.sessions = Sessions(self.db, self.clock)

    def now(self) -> datetime:
        """The current time (aware; the tests' fake clock when they pass one)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def needs_setup(self) -> bool:
        """True until the first-run wizard has created the administrator."""
        return not has_web_users(self.db)

    def box_value(self, name: str, default: Any = None) -> Any:
        """One box setting (name, language, time_zone...) without reading the whole config."""
        row = self.db.read().conn.execute(
            "SELECT value FROM box_settings WHERE key = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    def engine(self, method: str, path: str, body: Any = None, *, timeout: float = 3.0) -> Any:
        """Call the engine's control API; EngineDownError when it is not running, ControlError
        (with `status`) when it refused."""
        return call(self.settings.control_socket, method, path, body, timeout=timeout)

    def reload_engine(self) -> None:
        """Ask the engine to take a configuration change (it reads it at start if it is down)."""
        try:
            self.engine("POST", "/reload", timeout=10.0)
        except EngineDownError as exc:
            log.info("engine not reloaded (%s); it reads the change when it starts", exc)


def web() -> Web:
    """The running app's context object."""
    ctx: Web = current_app.extensions["pbx"]
    return ctx
