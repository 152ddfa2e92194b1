"""Logged-in sessions kept in the database, and login throttling.

The browser holds a random token in an HttpOnly cookie; the database keeps only its SHA-256,
so a copy of the database logs nobody in. A new session is made at every login (session
fixation is impossible) and all of a user's sessions end when the password changes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.accounts import User
from appliance.db import Database

COOKIE = "pbx_session"
IDLE_LIMIT = timedelta(hours=12)
ABSOLUTE_LIMIT = timedelta(days=7)
TOUCH_INTERVAL = timedelta(minutes=5)  # last_seen_at is refreshed at most this often
# Throttling: failures counted over this window, per client address and per user name.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ADDRESS = 20
MAX_FAILURES_PER_USER = 5

Clock = Callable[[], datetime]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Throttle:
    """Whether a login may be tried now, and for how long not if not."""

    allowed: bool
    retry_after_s: int = 0


class Sessions:
    """Create, look up and end web sessions; count failed logins."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        """`clock` returns an aware datetime (tests pass a fake one)."""
        self.db = db
        self.clock: Clock = clock or (lambda: datetime.now(UTC))

    def start(self, user: User, address: str, user_agent: str) -> str:
        """A new session for `user`; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = _stamp(self.clock())
        self.db.write(lambda c: c.conn.execute(
            "INSERT INTO web_sessions (id, user_id, created_at, last_seen_at, address, user_agent)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(token), user.id, now, now, address[:64], user_agent[:300])))
        return token

    def user_of(self, token: str | None) -> tuple[int, str] | None:
        """(user id, session id) for a live session token, else None (expired ones end)."""
        if not token or len(token) > 200:
            return None
        sid = _digest(token)
        row = self.db.read().conn.execute(
            "SELECT s.user_id, s.created_at, s.last_seen_at, u.disabled FROM web_sessions s "
            "JOIN web_users u ON u.id = s.user_id WHERE s.id = ?", (sid,)).fetchone()
        if row is None:
            return None
        user_id, created, seen, disabled = row
        now = self.clock()
        if disabled or now - _parse(created) > ABSOLUTE_LIMIT or now - _parse(seen) > IDLE_LIMIT:
            self.end(token)
            return None
        if now - _parse(seen) > TOUCH_INTERVAL:
            self.db.write(lambda c: c.conn.execute(
                "UPDATE web_sessions SET last_seen_at = ? WHERE id = ?", (_stamp(now), sid)))
        return int(user_id), sid

    def end(self, token: str) -> None:
        """Log a session out."""
        sid = _digest(token)
        self.db.write(lambda c: c.conn.execute("DELETE FROM web_sessions WHERE id = ?", (sid,)))

    def end_all(self, user_id: int, *, keep: str | None = None) -> int:
        """End every session of a user (but `keep`, a session id); returns how many ended."""
        def job(c: Any) -> int:
            cursor = c.conn.execute(
                "DELETE FROM web_sessions WHERE user_id = ? AND id IS NOT ?", (user_id, keep))
            return int(cursor.rowcount)

        ended: int = self.db.write(job)
        return ended

    # --- throttling --------------------------------------------------------------------
    def may_try(self, address: str, username: str) -> Throttle:
        """Refuse a login attempt while this address or user name has failed too often."""
        now = self.clock()
        since = _stamp(now - FAILURE_WINDOW)
        conn = self.db.read().conn
        by_address = conn.execute(
            "SELECT count(*), min(at) FROM login_failures WHERE address = ? AND at > ?",
            (address[:64], since)).fetchone()
        by_user = conn.execute(
            "SELECT count(*), min(at) FROM login_failures WHERE username = ? COLLATE NOCASE"
            " AND at > ?", (username[:64], since)).fetchone()
        waits = []
        for (count, first), limit in ((by_address, MAX_FAILURES_PER_ADDRESS),
                                      (by_user, MAX_FAILURES_PER_USER)):
            if count >= limit and first is not None:
                waits.append(int((_parse(first) + FAILURE_WINDOW - now).total_seconds()) + 1)
        if waits:
            return Throttle(False, max(1, max(waits)))
        return Throttle(True)

    def failed(self, address: str, username: str) -> None:
        """Count a failed login."""
        now = self.clock()

        def job(c: Any) -> None:
            c.conn.execute("INSERT INTO login_failures (address, username, at) VALUES (?, ?, ?)",
                           (address[:64], username[:64], _stamp(now)))
            # Old rows are useless for throttling; keep the table small.
            c.conn.execute("DELETE FROM login_failures WHERE at < ?",
                           (_stamp(now - FAILURE_WINDOW * 4),))

        self.db.write(job)

    def succeeded(self, username: str) -> None:
        """A right password forgives the user name's earlier failures (not the address's)."""
        self.db.write(lambda c: c.conn.execute(
            "DELETE FROM login_failures WHERE username = ? COLLATE NOCASE", (username[:64],)))
