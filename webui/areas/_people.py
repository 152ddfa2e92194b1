"""Helpers shared by the people areas: generated secrets shown once, paging, the SIP address."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request, session

from webui.context import web

# Letters and digits only (a desk phone's keypad types them), without look-alikes (0/O, 1/l/I).
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
PASSWORD_LENGTH = 16
ONCE_TTL_S = 600.0  # a secret not viewed within ten minutes is forgotten
ONCE_KEY = "people_once"
PER_PAGE = 50


def generate_password(username: str = "", length: int = PASSWORD_LENGTH) -> str:
    """A strong random password of letters and digits (at least one of each), without the
    user name in it (the SIP and web password rules refuse that)."""
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if (any(c.isdigit() for c in password) and any(c.isalpha() for c in password)
                and (not username or username.lower() not in password.lower())):
            return password


@dataclass
class OnceStore:
    """Secrets waiting to be shown once, kept in the web process only (never in a cookie)."""

    items: dict[str, tuple[float, str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, owner: str, payload: Any, now: float) -> str:
        """Keep `payload` for `owner` (a session); returns its ticket."""
        ticket = secrets.token_urlsafe(16)
        with self.lock:
            for key in [k for k, v in self.items.items() if now - v[0] > ONCE_TTL_S]:
                del self.items[key]
            self.items[ticket] = (now, owner, payload)
        return ticket

    def take(self, ticket: str, owner: str, now: float) -> Any:
        """The payload, removed as it is read; None if gone, expired or someone else's."""
        with self.lock:
            entry = self.items.pop(ticket, None)
        if entry is None or entry[1] != owner or now - entry[0] > ONCE_TTL_S:
            return None
        return entry[2]


def _store() -> OnceStore:
    store: OnceStore | None = current_app.extensions.get(ONCE_KEY)
    if store is None:
        store = current_app.extensions.setdefault(ONCE_KEY, OnceStore())
    return store


def _owner() -> str:
    from flask import g

    return str(g.get("session_id") or "")


def show_once(payload: Any) -> None:
    """Keep a secret for the next page this session opens with `take_once()`."""
    session[ONCE_KEY] = _store().put(_owner(), payload, time.monotonic())


def take_once() -> Any:
    """The secret kept by `show_once()`, once; None on a reload or in another session."""
    ticket = session.pop(ONCE_KEY, None)
    if not isinstance(ticket, str):
        return None
    return _store().take(ticket, _owner(), time.monotonic())


def page_number(raw: str | None) -> int:
    """A page number from the query string (bad or huge values give page 1 or the limit)."""
    try:
        value = int(raw or "1")
    except ValueError:
        return 1
    return min(max(value, 1), 100_000)


def pages_of(total: int, per: int = PER_PAGE) -> int:
    """How many pages `total` rows fill."""
    return max(1, (total + per - 1) // per)


def like(text: str) -> str:
    """A LIKE pattern for `text` anywhere (its own % and _ taken literally, with ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def hostname(host: str) -> str:
    """`host[:port]` or `[v6]:port` without the port and brackets."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.split(":", 1)[0]


def sip_server() -> dict[str, Any]:
    """Where phones register: the box's SIP address, port, realm and transport."""
    ctx = web()
    bind = ctx.settings.sip_bind
    host = bind if bind not in ("", "0.0.0.0", "::") else hostname(request.host or "")
    return {"host": host, "port": ctx.settings.sip_port,
            "realm": ctx.box_value("sip_realm", "office-pbx"), "transport": "UDP"}


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text` (segno, no external image)."""
    import segno

    return str(segno.make(text, error="m").svg_inline(scale=4, border=2))
