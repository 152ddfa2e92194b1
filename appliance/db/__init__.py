"""SQLite storage: one writer thread, per-thread readers, WAL, migrations on open.

All writes go through `Database.write()` / `Database.awrite()`, which run a function on the
single writer thread inside one transaction (the write-thread pattern: SQLite allows one
writer at a time anyway, and a single thread owning the write connection means no
"database is locked" storms inside the process). Any thread may read through `read()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlite_utils

from . import migrations
from .migrations import MigrationError, SchemaTooNewError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Database",
    "DatabaseClosedError",
    "DatabaseError",
    "MigrationError",
    "SchemaTooNewError",
    "utc_now",
]

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
WRITER_THREAD_NAME = "db-writer"


class DatabaseError(Exception):
    """Base class for storage errors raised by this module."""


class DatabaseClosedError(DatabaseError):
    """The database has been closed."""


def utc_now() -> str:
    """Current time as the ISO-8601 UTC text used in every timestamp column."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _connect(path: Path, *, reader: bool) -> sqlite_utils.Database:
    """Open a connection with the pragmas every connection must have."""
    # isolation_level=None: no implicit transactions; writes happen only inside the explicit
    # BEGIN IMMEDIATE of the writer (sqlite-utils nests with savepoints inside it).
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=not reader,  # readers may be closed by close() from another thread
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise DatabaseError(f"cannot switch {path} to WAL mode (got {mode!r})")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        if reader:
            conn.execute("PRAGMA query_only = ON")
        return sqlite_utils.Database(conn, execute_plugins=False)
    except BaseException:
        conn.close()
        raise


@dataclass
class _Job:
    fn: Callable[[sqlite_utils.Database], Any]
    future: Future[Any]
    transactional: bool


class Database:
    """The box's database: a writer thread plus thread-local read connections."""

    def __init__(
        self, path: Path, *, thread_init: Callable[[], None] | None = None
    ) -> None:
        """Prepare (but do not start) a database; use `Database.open()`."""
        self.path = Path(path)
        self._thread_init = thread_init
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_db: sqlite_utils.Database | None = None
        self._closed = False
        self._lock = threading.Lock()
        # thread ident -> (weak ref to the thread, its read connection)
        self._readers: dict[int, tuple[weakref.ref[threading.Thread], sqlite_utils.Database]] = {}

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        migrate: bool = True,
        thread_init: Callable[[], None] | None = None,
    ) -> Database:
        """Open (creating if needed) the database at `path`, start the writer, migrate.

        `thread_init` runs first thing on the writer thread (the engine registers every
        Python thread with pjsua2). A database newer than the code is always refused.
        """
        db = cls(Path(path), thread_init=thread_init)
        db.path.parent.mkdir(parents=True, exist_ok=True)
        ready: Future[None] = Future()
        db._writer = threading.Thread(
            target=db._writer_main, args=(ready, migrate), name=WRITER_THREAD_NAME, daemon=True
        )
        db._writer.start()
        try:
            ready.result()
        except BaseException:
            db._writer.join()
            db._closed = True
            raise
        return db

    # -- writer thread -------------------------------------------------------------------

    def _writer_main(self, ready: Future[None], migrate: bool) -> None:
        conn: sqlite_utils.Database | None = None
        try:
            if self._thread_init is not None:
                self._thread_init()
            conn = _connect(self.path, reader=False)
            if migrate:
                migrations.migrate(conn)
            else:
                migrations.ensure_supported(conn)
            self._writer_db = conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                self._run_job(conn, job)
        finally:
            self._writer_db = None
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()

    def _run_job(self, conn: sqlite_utils.Database, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # cancelled while queued (an awaiting task was cancelled)
        try:
            result = self._in_transaction(conn, job.fn) if job.transactional else job.fn(conn)
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    @staticmethod
    def _in_transaction(
        conn: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], T]
    ) -> T:
        raw = conn.conn
        # IMMEDIATE: take the write lock up front. The web UI is another process with its own
        # writer; a deferred transaction that reads first could fail to upgrade its lock
        # without waiting (SQLITE_BUSY_SNAPSHOT), whereas BEGIN IMMEDIATE waits busy_timeout.
        raw.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        return result

    def _submit(
        self, fn: Callable[[sqlite_utils.Database], T], *, transactional: bool
    ) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise DatabaseClosedError(f"database {self.path} is closed")
            self._jobs.put(_Job(fn, future, transactional))
        return future

    def _on_writer_thread(self) -> bool:
        return self._writer is not None and threading.current_thread() is self._writer

    # -- public API ----------------------------------------------------------------------

    def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(conn)` on the writer thread in one transaction and return its result.

        An exception from `fn` rolls the transaction back and is re-raised here. Called from
        inside another write (same thread), `fn` runs inline in a savepoint.
        """
        if self._on_writer_thread():
            conn = self._writer_db
            assert conn is not None
            with conn.atomic():
                return fn(conn)
        return self._submit(fn, transactional=True).result()

    async def awrite(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Asyncio variant of `write()`: awaits the writer without blocking the event loop."""
        return await asyncio.wrap_future(self._submit(fn, transactional=True))

    def read(self) -> sqlite_utils.Database:
        """A read-only connection owned by the calling thread (created on first use)."""
        ident = threading.get_ident()
        current = threading.current_thread()
        with self._lock:
            if self._closed:
                raise DatabaseClosedError(f"database {self.path} is closed")
            entry = self._readers.get(ident)
            if entry is not None and entry[0]() is current:
                return entry[1]
            self._reap_readers()
            reader = _connect(self.path, reader=True)
            self._readers[ident] = (weakref.ref(current), reader)
            return reader

    def _reap_readers(self) -> None:
        """Close connections of threads that have exited (idents get reused)."""
        for ident, (thread_ref, reader) in list(self._readers.items()):
            thread = thread_ref()
            if thread is None or not thread.is_alive() or thread.ident != ident:
                del self._readers[ident]
                reader.close()

    def migrate(self) -> list[int]:
        """Apply pending migrations on the writer thread; return the numbers applied."""
        if self._on_writer_thread():
            raise DatabaseError("migrate() cannot run inside a write")
        return self._submit(migrations.migrate, transactional=False).result()

    def schema_version(self) -> int:
        """The database's schema version (0 for an empty database)."""
        return migrations.current_version(self.read())

    def pending_migrations(self) -> list[int]:
        """Numbers of the registered migrations not yet applied."""
        return [m.number for m in migrations.pending_migrations(self.read())]

    def integrity_check(self) -> list[str]:
        """Problems found by SQLite's integrity and foreign-key checks; empty when healthy."""
        conn = self.read().conn
        problems = [
            str(row[0])
            for row in conn.execute("PRAGMA integrity_check").fetchall()
            if str(row[0]) != "ok"
        ]
        for table, rowid, parent, fkid in conn.execute("PRAGMA foreign_key_check").fetchall():
            problems.append(
                f"foreign key violation: {table} row {rowid} -> {parent} (constraint {fkid})"
            )
        return problems

    def close(self) -> None:
        """Finish queued writes, stop the writer thread, close all connections (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
            readers = list(self._readers.values())
            self._readers.clear()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        for _thread_ref, reader in readers:
            reader.close()

    @property
    def closed(self) -> bool:
        """True once `close()` has been called."""
        return self._closed

    def __enter__(self) -> Self:
        """Use as a context manager that closes the database on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the database."""
        self.close()

    def __repr__(self) -> str:
        """Short description for logs."""
        return f"<Database {self.path}{' closed' if self._closed else ''}>"
