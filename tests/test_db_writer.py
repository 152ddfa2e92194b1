"""The Database object: one writer thread, per-thread readers, pragmas, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlite_utils

from appliance.db import BUSY_TIMEOUT_MS, Database, DatabaseClosedError, utc_now
from appliance.db.migrations import latest_version

WAIT = 10  # seconds: upper bound for any cross-thread wait in these tests


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    yield database
    database.close()


def _pragmas(conn: sqlite_utils.Database) -> dict[str, object]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")}


def _add_employee(extension: str) -> Callable[[sqlite_utils.Database], int]:
    def fn(conn: sqlite_utils.Database) -> int:
        cursor = conn.conn.execute(
            "INSERT INTO employees (extension, name) VALUES (?, ?)", (extension, "E" + extension))
        return int(cursor.lastrowid or 0)
    return fn


def _employee_count(db: Database) -> int:
    return int(db.read().execute("SELECT count(*) FROM employees").fetchone()[0])


def test_every_connection_has_the_pragmas(db: Database) -> None:
    expected = {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2,
                "busy_timeout": BUSY_TIMEOUT_MS}
    assert db.write(_pragmas) == expected
    assert _pragmas(db.read()) == expected
    seen: list[dict[str, object]] = []
    thread = threading.Thread(target=lambda: seen.append(_pragmas(db.read())))
    thread.start()
    thread.join(WAIT)
    assert seen == [expected]


def test_write_returns_the_result_and_commits(db: Database) -> None:
    row_id = db.write(_add_employee("101"))
    assert row_id == 1
    assert _employee_count(db) == 1


def test_write_rolls_back_and_reraises(db: Database) -> None:
    class Boom(Exception):
        pass

    def fails(conn: sqlite_utils.Database) -> None:
        conn.conn.execute("INSERT INTO employees (extension, name) VALUES ('101', 'A')")
        raise Boom("stop")

    with pytest.raises(Boom):
        db.write(fails)
    assert _employee_count(db) == 0
    with pytest.raises(sqlite3.IntegrityError):
        db.write(lambda c: c.conn.execute("INSERT INTO employees (extension) VALUES ('1')"))
    # the writer is still healthy afterwards
    db.write(_add_employee("102"))
    assert _employee_count(db) == 1


def test_nested_write_uses_a_savepoint(db: Database) -> None:
    def outer(conn: sqlite_utils.Database) -> str:
        _add_employee("101")(conn)
        with contextlib.suppress(ZeroDivisionError):
            db.write(lambda c: (_add_employee("102")(c), 1 / 0))
        db.write(_add_employee("103"))
        return threading.current_thread().name

    assert db.write(outer) == "db-writer"
    extensions = [r[0] for r in db.read().execute("SELECT extension FROM employees ORDER BY 1")]
    assert extensions == ["101", "103"]


def test_reads_see_committed_writes_and_cannot_write(db: Database) -> None:
    reader = db.read()
    assert db.read() is reader  # one connection per thread
    db.write(_add_employee("101"))
    assert reader.execute("SELECT name FROM employees").fetchone()[0] == "E101"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO employees (extension, name) VALUES ('102', 'x')")


def test_each_thread_gets_its_own_reader(db: Database) -> None:
    readers: list[sqlite_utils.Database] = []
    lock = threading.Lock()

    def grab() -> None:
        reader = db.read()
        reader.execute("SELECT 1").fetchone()
        with lock:
            readers.append(reader)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len({id(r) for r in readers}) == 4
    assert db.read() not in readers


def test_writes_from_many_threads_are_serialised(db: Database) -> None:
    db.write(lambda c: c.conn.execute(
        "INSERT INTO box_settings (key, value) VALUES ('counter', '0')"))

    def bump(conn: sqlite_utils.Database) -> None:
        value = int(conn.conn.execute(
            "SELECT value FROM box_settings WHERE key = 'counter'").fetchone()[0])
        conn.conn.execute("UPDATE box_settings SET value = ? WHERE key = 'counter'",
                          (str(value + 1),))

    def worker() -> None:
        for _ in range(50):
            db.write(bump)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 3)
    value = db.read().execute("SELECT value FROM box_settings WHERE key = 'counter'").fetchone()
    assert value[0] == "400"


def test_two_databases_on_one_file_share_it(tmp_path: Path) -> None:
    """The engine and the web UI each have a writer; BEGIN IMMEDIATE + busy_timeout queue them."""
    first = Database.open(tmp_path / "pbx.db")
    second = Database.open(tmp_path / "pbx.db")
    try:
        def worker(db: Database, base: int) -> None:
            for i in range(40):
                db.write(_add_employee(str(base + i)))

        threads = [threading.Thread(target=worker, args=(first, 1000)),
                   threading.Thread(target=worker, args=(second, 2000))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 3)
        assert _employee_count(first) == 80
        assert _employee_count(second) == 80
    finally:
        first.close()
        second.close()


async def test_awrite_does_not_block_the_event_loop(db: Database) -> None:
    release = threading.Event()

    def slow(conn: sqlite_utils.Database) -> int:
        assert release.wait(WAIT), "the event loop was blocked"
        return _add_employee("101")(conn)

    task = asyncio.ensure_future(db.awrite(slow))
    await asyncio.sleep(0)  # let the job reach the writer
    release.set()  # runs on the loop while the writer waits: the loop is free
    assert await asyncio.wait_for(task, WAIT) == 1
    with pytest.raises(sqlite3.IntegrityError):
        await db.awrite(_add_employee("1"))


def test_writer_thread_is_named_and_initialised(tmp_path: Path) -> None:
    names: list[str] = []
    db = Database.open(tmp_path / "pbx.db",
                       thread_init=lambda: names.append(threading.current_thread().name))
    try:
        assert names == ["db-writer"]
        assert db.write(lambda c: threading.current_thread().name) == "db-writer"
    finally:
        db.close()


def test_failing_thread_init_fails_open(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("pjsua2 refused")

    with pytest.raises(RuntimeError, match="pjsua2 refused"):
        Database.open(tmp_path / "pbx.db", thread_init=boom)


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "pbx.db")
    results: list[int] = []
    gate = threading.Event()

    def slow(conn: sqlite_utils.Database) -> None:
        gate.wait(WAIT)
        _add_employee("101")(conn)

    worker = threading.Thread(target=lambda: db.write(slow))
    worker.start()
    queued = threading.Thread(target=lambda: results.append(db.write(_add_employee("102"))))
    queued.start()
    gate.set()
    worker.join(WAIT)
    queued.join(WAIT)
    db.close()
    db.close()
    assert db.closed
    assert results == [2]
    assert db._writer is not None and not db._writer.is_alive()
    with pytest.raises(DatabaseClosedError):
        db.write(_add_employee("103"))
    with pytest.raises(DatabaseClosedError):
        db.read()
    with Database.open(tmp_path / "pbx.db") as again:
        assert _employee_count(again) == 2
        assert again.schema_version() == latest_version()


def test_integrity_check_reports_problems(tmp_path: Path) -> None:
    path = tmp_path / "pbx.db"
    with Database.open(path) as db:
        assert db.integrity_check() == []
    raw = sqlite3.connect(str(path))  # foreign keys off: plant a dangling reference
    raw.execute("INSERT INTO devices (employee_id, username, static_contact) "
                "VALUES (42, 'ghost', 'sip:ghost@10.0.0.9')")
    raw.commit()
    raw.close()
    with Database.open(path) as db:
        problems = db.integrity_check()
        assert len(problems) == 1
        assert "devices" in problems[0] and "employees" in problems[0]


def test_utc_now_matches_the_timestamp_columns(db: Database) -> None:
    stamp = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    db.write(lambda c: c.conn.execute(
        "INSERT INTO call_records (uuid, direction, started_at) VALUES ('abcdefgh', "
        "'inbound', ?)", (stamp,)))


def test_dead_threads_readers_are_reaped(db: Database) -> None:
    def use() -> None:
        db.read().execute("SELECT 1").fetchone()

    for _ in range(5):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join(WAIT)
    db.read()
    assert len(db._readers) <= 2
