"""Web users (argon2) and API tokens (SHA-256 at rest)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from appliance import accounts
from appliance.accounts import (
    AccountError,
    WeakPasswordError,
    create_api_token,
    create_web_user,
    list_api_tokens,
    list_web_users,
    revoke_api_token,
    set_web_user_disabled,
    set_web_user_password,
    verify_api_token,
    verify_web_user,
)
from appliance.db import Database

# Cheap parameters keep the tests fast; one test uses the real defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GOOD = "Tuesday-bicycle-17"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    yield database
    database.close()


def test_no_users_exist_by_default(db: Database) -> None:
    assert list_web_users(db) == []
    assert db.read().execute("SELECT count(*) FROM web_users").fetchone()[0] == 0


def test_create_and_verify(db: Database) -> None:
    user = create_web_user(db, "admin", GOOD, "administrator", hasher=FAST)
    assert (user.username, user.role, user.disabled) == ("admin", "administrator", False)
    stored = db.read().execute("SELECT password_hash FROM web_users").fetchone()[0]
    assert stored.startswith("$argon2id$") and GOOD not in stored
    found = verify_web_user(db, "admin", GOOD, hasher=FAST)
    assert found is not None and found.id == user.id and found.last_login_at is not None
    assert verify_web_user(db, "admin", GOOD + "x", hasher=FAST) is None
    assert verify_web_user(db, "nobody", GOOD, hasher=FAST) is None
    assert verify_web_user(db, "admin", "", hasher=FAST) is None
    assert verify_web_user(db, "bad name!", GOOD, hasher=FAST) is None
    failed = "SELECT failed_logins FROM web_users"
    assert db.read().execute(failed).fetchone()[0] == 2  # the two wrong passwords above
    assert verify_web_user(db, "admin", GOOD, hasher=FAST) is not None
    assert db.read().execute(failed).fetchone()[0] == 0  # reset by a successful login


def test_real_parameters_and_rehash(db: Database) -> None:
    create_web_user(db, "olga", GOOD, "user", hasher=FAST)
    old = db.read().execute("SELECT password_hash FROM web_users").fetchone()[0]
    assert "m=1024" in old
    assert verify_web_user(db, "olga", GOOD) is not None  # default, stronger parameters
    new = db.read().execute("SELECT password_hash FROM web_users").fetchone()[0]
    assert new != old and "m=65536" in new
    assert verify_web_user(db, "olga", GOOD) is not None


@pytest.mark.parametrize(("password", "message"), [
    ("", "empty"),
    ("          ", "empty"),
    ("short-1", "at least"),
    ("aaaaaaaaaaaa", "different characters"),
    ("qwertyuiop", "common"),
    ("password123", "common"),
    ("1234567890!", "only digits"),
    ("Password2025!", "common"),
    ("x" * 2000, "more than"),
    ("Admin-secure-99", "user name"),
])
def test_weak_passwords_are_refused(db: Database, password: str, message: str) -> None:
    with pytest.raises(WeakPasswordError, match=message):
        create_web_user(db, "admin", password, "administrator", hasher=FAST)
    assert list_web_users(db) == []


def test_user_rules(db: Database) -> None:
    create_web_user(db, "admin", GOOD, "administrator", hasher=FAST)
    with pytest.raises(AccountError, match="already exists"):
        create_web_user(db, "ADMIN", GOOD, "administrator", hasher=FAST)
    with pytest.raises(AccountError, match="role"):
        create_web_user(db, "root", GOOD, "superuser", hasher=FAST)
    with pytest.raises(AccountError, match="user name"):
        create_web_user(db, "имя", GOOD, "user", hasher=FAST)
    with pytest.raises(AccountError, match="no employee with extension 101"):
        create_web_user(db, "ivan", GOOD, "user", "101", hasher=FAST)
    db.write(lambda c: c.conn.execute(
        "INSERT INTO employees (extension, name) VALUES ('101', 'Иван')"))
    user = create_web_user(db, "ivan", GOOD, "user", "101", hasher=FAST)
    assert user.employee_extension == "101"
    assert [u.username for u in list_web_users(db)] == ["admin", "ivan"]


def test_disable_and_change_password(db: Database) -> None:
    create_web_user(db, "admin", GOOD, "administrator", hasher=FAST)
    set_web_user_disabled(db, "admin", True)
    assert verify_web_user(db, "admin", GOOD, hasher=FAST) is None
    set_web_user_disabled(db, "admin", False)
    set_web_user_password(db, "admin", "Another-long-pass-2", hasher=FAST)
    assert verify_web_user(db, "admin", GOOD, hasher=FAST) is None
    assert verify_web_user(db, "admin", "Another-long-pass-2", hasher=FAST) is not None
    with pytest.raises(AccountError):
        set_web_user_password(db, "ghost", "Another-long-pass-2", hasher=FAST)
    with pytest.raises(WeakPasswordError):
        set_web_user_password(db, "admin", "short", hasher=FAST)


def test_unknown_users_cost_a_verification_too(db: Database) -> None:
    calls: list[str] = []

    class Spy(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            calls.append(str(hash))
            return super().verify(hash, password)

    assert verify_web_user(db, "nobody", GOOD, hasher=Spy()) is None
    assert calls == [accounts._DUMMY_HASH]


def test_api_tokens(db: Database) -> None:
    token = create_api_token(db, "CRM", ["read", "calls:originate"])
    assert token.startswith("pbx_") and len(token) > 40
    rows = db.read().execute("SELECT * FROM api_tokens").fetchall()
    assert token not in repr(rows)
    assert hashlib.sha256(token.encode()).hexdigest() in repr(rows)
    found = verify_api_token(db, token)
    assert found is not None
    assert found.name == "CRM" and found.scopes == ("calls:originate", "read")
    assert found.last_used_at is not None
    assert verify_api_token(db, token + "x") is None
    assert verify_api_token(db, "pbx_" + "A" * 43) is None
    assert verify_api_token(db, "") is None
    assert verify_api_token(db, "x" * 10_000) is None
    assert [t.name for t in list_api_tokens(db)] == ["CRM"]
    assert revoke_api_token(db, found.id) is True
    assert revoke_api_token(db, found.id) is False
    assert verify_api_token(db, token) is None


def test_expired_tokens_and_token_rules(db: Database) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    token = create_api_token(db, "old", ["read"], expires_at=past)
    assert verify_api_token(db, token) is None
    future = datetime.now(UTC) + timedelta(days=1)
    assert verify_api_token(db, create_api_token(db, "new", ["read"], expires_at=future))
    with pytest.raises(AccountError, match="scope"):
        create_api_token(db, "x", [])
    with pytest.raises(AccountError, match="invalid scope"):
        create_api_token(db, "x", ["Read All"])
    with pytest.raises(AccountError, match="name"):
        create_api_token(db, " ", ["read"])
    with pytest.raises(AccountError, match="time zone"):
        create_api_token(db, "x", ["read"], expires_at=datetime(2030, 1, 1))


def test_token_creator_is_recorded(db: Database) -> None:
    create_web_user(db, "admin", GOOD, "administrator", hasher=FAST)
    create_api_token(db, "by admin", ["read"], created_by="admin")
    row = db.read().execute(
        "SELECT u.username FROM api_tokens t JOIN web_users u ON u.id = t.created_by_user_id"
    ).fetchone()
    assert row == ("admin",)
    actions = [r[0] for r in db.read().execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["create_user", "create_token"]
