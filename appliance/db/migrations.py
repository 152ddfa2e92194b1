"""Numbered schema migrations registered in code, applied in order, one transaction each."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlite_utils

from .schema import (
    m0001_people,
    m0002_lines,
    m0003_routing,
    m0004_calls,
    m0005_integration,
    m0006_registrations,
    m0007_device_auth,
    m0008_mobile_confirm,
    m0009_sms_lines,
    m0010_voicemail,
    m0011_web_sessions,
    m0012_call_plan,
    m0013_report_indexes,
)


@dataclass(frozen=True)
class Migration:
    """One schema step: `apply` runs inside a transaction that also records `number`."""

    number: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]
    # Table rebuilds (create new, copy, drop, rename) need foreign keys off; the runner then
    # runs PRAGMA foreign_key_check before committing, as the SQLite documentation prescribes.
    foreign_keys_off: bool = False


@dataclass(frozen=True)
class AppliedMigration:
    """A row of the schema_migrations table."""

    number: int
    name: str
    applied_at: str


class MigrationError(Exception):
    """The schema cannot be brought up to date."""


class SchemaTooNewError(MigrationError):
    """The database was written by a newer version of the software."""


#: The registry. Append only: never renumber, edit or remove a migration that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "people", m0001_people.apply),
    Migration(2, "lines_schedules_policies", m0002_lines.apply),
    Migration(3, "call_routing", m0003_routing.apply),
    Migration(4, "call_history", m0004_calls.apply),
    Migration(5, "integration_admin", m0005_integration.apply),
    Migration(6, "registrations", m0006_registrations.apply),
    Migration(7, "device_auth", m0007_device_auth.apply),
    Migration(8, "mobile_confirm", m0008_mobile_confirm.apply),
    Migration(9, "sms_lines", m0009_sms_lines.apply),
    Migration(10, "voicemail", m0010_voicemail.apply),
    Migration(11, "web_sessions", m0011_web_sessions.apply),
    Migration(12, "call_plan", m0012_call_plan.apply),
    Migration(13, "report_indexes", m0013_report_indexes.apply),
)

_TABLE = "schema_migrations"


def check_registry(migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Raise MigrationError if numbers are not exactly 1..n in order or names repeat."""
    numbers = [m.number for m in migrations]
    expected = list(range(1, len(migrations) + 1))
    if numbers != expected:
        raise MigrationError(f"migration numbers must be {expected}, the registry has {numbers}")
    names = [m.name for m in migrations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MigrationError(f"duplicate migration names: {duplicates}")


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The schema version this code knows (the highest registered migration)."""
    return max((m.number for m in migrations), default=0)


def current_version(db: sqlite_utils.Database) -> int:
    """The schema version of the database (0 for an empty one)."""
    row = db.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)
    ).fetchone()
    if row is None:
        return 0
    value = db.conn.execute(f"SELECT max(number) FROM {_TABLE}").fetchone()[0]
    return int(value or 0)


def applied_migrations(db: sqlite_utils.Database) -> list[AppliedMigration]:
    """The migrations recorded in the database, oldest first."""
    if current_version(db) == 0:
        return []
    rows = db.conn.execute(
        f"SELECT number, name, applied_at FROM {_TABLE} ORDER BY number"
    ).fetchall()
    return [AppliedMigration(int(n), str(name), str(at)) for n, name, at in rows]


def ensure_supported(
    db: sqlite_utils.Database, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Return the database version, refusing a database newer than this code."""
    version = current_version(db)
    latest = latest_version(migrations)
    if version > latest:
        raise SchemaTooNewError(
            f"the database schema is version {version} but this software only knows up to "
            f"version {latest}: it was written by a newer release. Install that release (or "
            f"newer) again, or restore a backup made by this one; refusing to touch it."
        )
    return version


def pending_migrations(
    db: sqlite_utils.Database, migrations: Sequence[Migration] = MIGRATIONS
) -> list[Migration]:
    """The registered migrations not yet applied to the database."""
    version = ensure_supported(db, migrations)
    return [m for m in migrations if m.number > version]


def migrate(
    db: sqlite_utils.Database,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Apply pending migrations up to `target` (default: latest); return the numbers applied."""
    check_registry(migrations)
    if db.conn.in_transaction:
        raise MigrationError("migrate() must not be called inside a transaction")
    ensure_supported(db, migrations)
    db.conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
        " number INTEGER PRIMARY KEY CHECK (number > 0),"
        " name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    if db.conn.in_transaction:  # legacy isolation levels may have opened one implicitly
        db.conn.execute("COMMIT")
    limit = latest_version(migrations) if target is None else target
    applied: list[int] = []
    for migration in migrations:
        if migration.number > limit:
            break
        if _apply_one(db, migration):
            applied.append(migration.number)
    return applied


def _apply_one(db: sqlite_utils.Database, migration: Migration) -> bool:
    """Apply one migration atomically; False if it was already applied (maybe concurrently)."""
    conn = db.conn
    if migration.foreign_keys_off:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        # IMMEDIATE takes the write lock first, so two processes starting together (engine and
        # web UI) serialise here and the second one sees the first one's work.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(db) >= migration.number:
                conn.execute("ROLLBACK")
                return False
            migration.apply(db)
            if migration.foreign_keys_off:
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MigrationError(f"foreign key violations after the migration: {broken}")
            conn.execute(
                f"INSERT INTO {_TABLE} (number, name) VALUES (?, ?)",
                (migration.number, migration.name),
            )
            conn.execute(f"PRAGMA user_version = {int(migration.number)}")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, (MigrationError, sqlite3.Error)):
                raise MigrationError(
                    f"migration {migration.number} ({migration.name}) failed: {exc}"
                ) from exc
            raise
        return True
    finally:
        if migration.foreign_keys_off:
            conn.execute("PRAGMA foreign_keys = ON")
