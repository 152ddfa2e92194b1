"""Web UI users (argon2 password hashes) and REST API tokens (stored as SHA-256 only).

There are never default users: the first administrator is created by the first-run wizard
or `pbx admin create`, with a password that passes `check_password`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .db import Database, utc_now

Role = Literal["administrator", "user"]
ROLES: tuple[str, ...] = ("administrator", "user")
TOKEN_PREFIX = "pbx_"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte "password" is an attack

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}", re.ASCII)
_SCOPE = re.compile(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?", re.ASCII)
_TOKEN = re.compile(r"pbx_[A-Za-z0-9_-]{20,100}", re.ASCII)
# Verified against when the user does not exist, so "no such user" costs the same time as
# "wrong password". It is the hash of a random string nobody knows; it grants nothing.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$/8XlFt4tHEZ+45l77dsXUQ$"
    "0HWWMBvb/ODUkQmA1UcX+eMS1wHa14OoePeJhZhW7pM"
)
# Words that stay guessable whatever digits and punctuation are appended ("password123!").
_COMMON_BASES = frozenset({
    "password", "passw0rd", "qwerty", "qwertyuiop", "qwertyui", "asdfghjkl", "admin",
    "administrator", "adminadmin", "root", "letmein", "welcome", "changeme", "iloveyou",
    "1q2w3e4r", "1q2w3e4r5t", "1qaz2wsx", "1qaz2wsx3edc", "parol", "parolparol", "privet",
    "йцукен", "йцукенгшщз", "пароль", "абвгд", "secret", "default", "pbx", "asterisk",
    "freepbx", "telephone", "voip", "sipsip", "abcdef", "abcdefgh", "abc", "test", "guest",
})
# last_used_at is refreshed at most this often, so API traffic does not turn into writes.
_TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


class AccountError(ValueError):
    """A user or token request was refused (message is safe to show to the admin)."""


class WeakPasswordError(AccountError):
    """The password is too easy to guess."""


@dataclass(frozen=True)
class User:
    """A web UI user (never carries the password hash)."""

    id: int
    username: str
    role: str
    employee_extension: str | None
    disabled: bool
    created_at: str
    last_login_at: str | None


@dataclass(frozen=True)
class ApiToken:
    """A REST API token's metadata (never the token itself)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


def _hasher(hasher: PasswordHasher | None) -> PasswordHasher:
    return hasher if hasher is not None else PasswordHasher()


def check_password(password: str, username: str = "") -> None:
    """Raise WeakPasswordError unless the password is long and not trivially guessable."""
    if not isinstance(password, str) or not password.strip():
        raise WeakPasswordError("the password is empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password has more than {MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) < 5:
        raise WeakPasswordError("the password repeats too few different characters")
    lowered = password.lower()
    base = lowered.strip("0123456789!.,-_#@$%*?+ ")
    if not base:
        raise WeakPasswordError("the password is only digits and punctuation")
    if base in _COMMON_BASES:
        raise WeakPasswordError("the password is one of the most common passwords")
    if username and username.lower() in lowered:
        raise WeakPasswordError("the password must not contain the user name")


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise AccountError("a user name is 1-64 latin letters, digits, '.', '_', '@' or '-'")
    return username


def _user(row: dict[str, Any]) -> User:
    return User(
        id=int(row["id"]), username=str(row["username"]), role=str(row["role"]),
        employee_extension=row.get("extension"), disabled=bool(row["disabled"]),
        created_at=str(row["created_at"]), last_login_at=row["last_login_at"],
    )


_USER_SQL = (
    "SELECT u.*, e.extension FROM web_users u LEFT JOIN employees e ON e.id = u.employee_id "
)


def _one(conn: sqlite_utils.Database, sql: str, params: Iterable[Any]) -> dict[str, Any] | None:
    cursor = conn.conn.execute(sql, tuple(params))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def create_web_user(
    db: Database,
    username: str,
    password: str,
    role: str,
    employee_extension: str | None = None,
    *,
    hasher: PasswordHasher | None = None,
) -> User:
    """Create a web user with an argon2 hash of `password`; AccountError if refused."""
    _check_username(username)
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}")
    check_password(password, username)
    password_hash = _hasher(hasher).hash(password)  # slow: done before taking the writer

    def insert(conn: sqlite_utils.Database) -> User:
        if _one(conn, "SELECT 1 FROM web_users WHERE username = ?", [username]):
            raise AccountError(f"user {username!r} already exists")
        employee_id = None
        if employee_extension is not None:
            row = _one(conn, "SELECT id FROM employees WHERE extension = ?", [employee_extension])
            if row is None:
                raise AccountError(f"no employee with extension {employee_extension}")
            employee_id = row["id"]
        cursor = conn.conn.execute(
            "INSERT INTO web_users (username, password_hash, role, employee_id) "
            "VALUES (?, ?, ?, ?)", (username, password_hash, role, employee_id))
        conn.conn.execute(
            "INSERT INTO audit_log (actor, area, action, object, after) VALUES (?, ?, ?, ?, ?)",
            ("system", "accounts", "create_user", username,
             json.dumps({"role": role, "employee": employee_extension})))
        row = _one(conn, _USER_SQL + "WHERE u.id = ?", [cursor.lastrowid])
        assert row is not None
        return _user(row)

    return db.write(insert)


def create_first_admin(
    db: Database, username: str, password: str, *, hasher: PasswordHasher | None = None
) -> User:
    """The first-run wizard's administrator: refused once any web user exists."""
    _check_username(username)
    check_password(password, username)
    password_hash = _hasher(hasher).hash(password)

    def insert(conn: sqlite_utils.Database) -> User:
        # Checked inside the writer, so two wizards submitted at once make one administrator.
        if _one(conn, "SELECT 1 FROM web_users LIMIT 1", []):
            raise AccountError("the box already has an administrator")
        cursor = conn.conn.execute(
            "INSERT INTO web_users (username, password_hash, role) VALUES (?, ?, ?)",
            (username, password_hash, "administrator"))
        conn.conn.execute(
            "INSERT INTO audit_log (actor, area, action, object, after) VALUES (?, ?, ?, ?, ?)",
            (username, "accounts", "create_first_admin", username,
             json.dumps({"role": "administrator"})))
        row = _one(conn, _USER_SQL + "WHERE u.id = ?", [cursor.lastrowid])
        assert row is not None
        return _user(row)

    return db.write(insert)


def has_web_users(db: Database) -> bool:
    """Whether any web user exists (none: the box is waiting for its first-run wizard)."""
    return db.read().conn.execute("SELECT 1 FROM web_users LIMIT 1").fetchone() is not None


def web_user_by_id(db: Database, user_id: int) -> User | None:
    """One web user by id, or None."""
    row = _one(db.read(), _USER_SQL + "WHERE u.id = ?", [user_id])
    return None if row is None else _user(row)


def verify_web_user(
    db: Database, username: str, password: str, *, hasher: PasswordHasher | None = None
) -> User | None:
    """The user if `password` is right and the account is enabled, else None.

    Takes about the same time whether or not the user exists. Upgrades the stored hash when
    the hashing parameters have been raised since it was made.
    """
    ph = _hasher(hasher)
    row = None
    if isinstance(username, str) and _USERNAME.fullmatch(username):
        row = _one(db.read(), _USER_SQL + "WHERE u.username = ?", [username])
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        password = ""
    stored = str(row["password_hash"]) if row is not None else _DUMMY_HASH
    ok: bool
    try:
        ok = bool(ph.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if row is None or not ok or row["disabled"]:
        if row is not None and not ok:
            db.write(lambda c: c.conn.execute(
                "UPDATE web_users SET failed_logins = failed_logins + 1 WHERE id = ?",
                (row["id"],)))
        return None
    new_hash = ph.hash(password) if ph.check_needs_rehash(stored) else None
    now = utc_now()

    def record(conn: sqlite_utils.Database) -> None:
        conn.conn.execute(
            "UPDATE web_users SET last_login_at = ?, failed_logins = 0 WHERE id = ?",
            (now, row["id"]))
        if new_hash is not None:
            # Only if nobody changed the password meanwhile.
            conn.conn.execute(
                "UPDATE web_users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new_hash, row["id"], stored))

    db.write(record)
    return _user({**row, "last_login_at": now})


def set_web_user_password(
    db: Database, username: str, password: str, *, hasher: PasswordHasher | None = None
) -> None:
    """Change a user's password (same rules as creation)."""
    check_password(password, username)
    password_hash = _hasher(hasher).hash(password)

    def update(conn: sqlite_utils.Database) -> None:
        changed = conn.conn.execute(
            "UPDATE web_users SET password_hash = ?, password_changed_at = ?, failed_logins = 0 "
            "WHERE username = ?", (password_hash, utc_now(), username)).rowcount
        if not changed:
            raise AccountError(f"no user {username!r}")
        conn.conn.execute(
            "INSERT INTO audit_log (actor, area, action, object) VALUES (?, ?, ?, ?)",
            ("system", "accounts", "set_password", username))

    db.write(update)


def set_web_user_disabled(db: Database, username: str, disabled: bool) -> None:
    """Disable or re-enable a user (a disabled user cannot log in)."""
    def update(conn: sqlite_utils.Database) -> None:
        if not conn.conn.execute("UPDATE web_users SET disabled = ? WHERE username = ?",
                                 (1 if disabled else 0, username)).rowcount:
            raise AccountError(f"no user {username!r}")

    db.write(update)


def list_web_users(db: Database) -> list[User]:
    """All web users, by user name."""
    cursor = db.read().conn.execute(_USER_SQL + "ORDER BY u.username")
    columns = [d[0] for d in cursor.description]
    return [_user(dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token(row: dict[str, Any]) -> ApiToken:
    return ApiToken(
        id=int(row["id"]), name=str(row["name"]), prefix=str(row["token_prefix"]),
        scopes=tuple(json.loads(row["scopes"])), created_at=str(row["created_at"]),
        last_used_at=row["last_used_at"], expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def create_api_token(
    db: Database,
    name: str,
    scopes: Iterable[str],
    *,
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> str:
    """Create an API token and return it; it is shown only now (only its SHA-256 is kept)."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise AccountError("a token needs a name (1-100 characters)")
    scope_list = sorted(set(scopes))
    if not scope_list:
        raise AccountError("a token needs at least one scope")
    for scope in scope_list:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise AccountError(f"invalid scope {scope!r} (e.g. 'read', 'config:write')")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = None
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise AccountError("expires_at must carry a time zone")
        expires = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def insert(conn: sqlite_utils.Database) -> None:
        user_id = None
        if created_by is not None:
            row = _one(conn, "SELECT id FROM web_users WHERE username = ?", [created_by])
            user_id = row["id"] if row else None
        conn.conn.execute(
            "INSERT INTO api_tokens (name, token_hash, token_prefix, scopes, created_by_user_id, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (name.strip(), _token_hash(token), token[:len(TOKEN_PREFIX) + 6],
             json.dumps(scope_list), user_id, expires))
        conn.conn.execute(
            "INSERT INTO audit_log (actor, user_id, area, action, object, after) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (created_by or "system", user_id, "accounts", "create_token", name.strip(),
             json.dumps({"scopes": scope_list})))

    db.write(insert)
    return token


def verify_api_token(db: Database, token: str) -> ApiToken | None:
    """The token's metadata if it is valid (not revoked or expired), else None."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    digest = _token_hash(token)
    found = _one(db.read(), "SELECT * FROM api_tokens WHERE token_hash = ?", [digest])
    # The lookup is by hash, so timing reveals nothing about the token; compare anyway.
    if found is None or not hmac.compare_digest(str(found["token_hash"]), digest):
        return None
    row: dict[str, Any] = found
    now = datetime.now(UTC)
    if row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and _parse(row["expires_at"]) <= now:
        return None
    last = row["last_used_at"]
    if last is None or now - _parse(last) >= _TOKEN_TOUCH_INTERVAL:
        stamp = utc_now()
        db.write(lambda c: c.conn.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (stamp, row["id"])))
        row = {**row, "last_used_at": stamp}
    return _token(row)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def revoke_api_token(db: Database, token_id: int) -> bool:
    """Revoke a token by id; False if there is no such active token."""
    def update(conn: sqlite_utils.Database) -> bool:
        return bool(conn.conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (utc_now(), token_id)).rowcount)

    return db.write(update)


def list_api_tokens(db: Database) -> list[ApiToken]:
    """All tokens (metadata only), newest first."""
    cursor = db.read().conn.execute("SELECT * FROM api_tokens ORDER BY id DESC")
    columns = [d[0] for d in cursor.description]
    return [_token(dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]
