"""Generated call history for report tests and the web reports benchmark.

Realistic enough for timing and for checking sums: office hours weighted, inbound/outbound/
internal, about 75 % of inbound answered, missed rows (some cleared by a later call),
blocked calls, recordings on a share of answered calls, employees with daily call plans.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from appliance.callfacts import ts
from appliance.db import Database

T = TypeVar("T")
REASONS = ("no_answer", "busy", "after_hours", "abandoned_in_queue", "all_lines_busy")


@dataclass
class Generated:
    """What was written, for tests to compare the reports against."""

    employees: dict[str, int] = field(default_factory=dict)  # extension -> id
    records: int = 0
    missed_open: int = 0
    recordings: int = 0


def _start(rnd: random.Random, now: dt.datetime, days: int) -> dt.datetime:
    """A call's start: a random day, office hours weighted (Moscow time, stored in UTC)."""
    hour = rnd.choice((9, 10, 10, 11, 11, 12, 13, 14, 14, 15, 15, 16, 17, 19, 22))
    started = (now - dt.timedelta(days=rnd.randrange(days))).replace(
        hour=hour, minute=rnd.randrange(60), second=rnd.randrange(60),
        microsecond=0) - dt.timedelta(hours=3)
    return started - dt.timedelta(days=1) if started >= now else started


def fill_calls(db: Database, records: int, now: dt.datetime, *, seed: int = 7,
               days: int = 365, employees: int = 20, clients: int = 5000,
               recording_share: float = 0.2) -> Generated:
    """Write `records` finished calls spread over the `days` before `now` (office hours
    weighted) with employees 101..(100+employees), their plans and the side rows."""
    rnd = random.Random(seed)
    out = Generated(records=records)
    numbers = [f"+7916{rnd.randrange(10**7):07d}" for _ in range(clients)]

    def fill(conn: sqlite_utils.Database) -> None:
        c = conn.conn
        for i in range(employees):
            ext = str(101 + i)
            cur = c.execute(
                "INSERT INTO employees (extension, name, daily_call_plan) VALUES (?, ?, ?)",
                (ext, f"Employee {ext}", 20 + (i % 4) * 10 if i % 3 else None))
            out.employees[ext] = int(cur.lastrowid or 0)
        line = c.execute("INSERT INTO lines (key, name, kind) VALUES ('sim1', 'SIM 1', 'sim')"
                         ).lastrowid
        ids = list(out.employees.values())
        exts = list(out.employees)
        calls: list[tuple[object, ...]] = []
        missed: list[tuple[object, ...]] = []
        recs: list[tuple[object, ...]] = []
        blocked: list[tuple[object, ...]] = []
        # Rows go in in time order, as a box writes them (ids follow started_at).
        times = sorted(_start(rnd, now, days) for _ in range(records))
        for n, started in enumerate(times):
            kind = rnd.random()
            who = rnd.randrange(len(ids))
            client = rnd.choice(numbers)
            rid = n + 1
            if kind < 0.5:
                direction, caller, dialled = "inbound", client, "+74955550001"
                answered = rnd.random() < 0.75
            elif kind < 0.9:
                direction, caller, dialled = "outbound", exts[who], "8" + client[2:]
                answered = rnd.random() < 0.6
            else:
                direction, caller = "internal", exts[who]
                dialled = exts[(who + 1) % len(exts)]
                answered = rnd.random() < 0.8
            wait = rnd.uniform(2, 25)
            talk = rnd.uniform(10, 600)
            answered_at = started + dt.timedelta(seconds=wait) if answered else None
            ended = (answered_at + dt.timedelta(seconds=talk) if answered_at
                     else started + dt.timedelta(seconds=wait))
            disposition = "answered" if answered else rnd.choice(
                ("no_answer", "no_answer", "busy", "cancelled", "failed"))
            rec_id = None
            if answered and rnd.random() < recording_share:
                rec_id = len(recs) + 1
                recs.append((rec_id, f"recordings/{started:%Y/%m/%d}/bench-{n:08d}.wav",
                             talk))
            calls.append((
                rid, f"gen-{seed}-{n:08d}", direction, line if direction != "internal" else None,
                "sim1" if direction != "internal" else None, caller, dialled,
                ids[who] if direction != "inbound" or answered else None,
                ids[who] if answered and direction == "inbound" else None,
                ts(started), ts(answered_at), ts(ended), disposition, rec_id))
            if direction == "inbound" and not answered:
                reason = rnd.choice(REASONS)
                cleared = rnd.random() < 0.6
                missed.append((rid, client, reason, ids[who], ts(ended),
                               ts(ended + dt.timedelta(hours=1)) if cleared else None))
                out.missed_open += not cleared
                if rnd.random() < 0.05:
                    blocked.append((ts(started), client, "spam", rid))
        c.executemany("INSERT INTO recordings (id, path, duration_s) VALUES (?, ?, ?)", recs)
        c.executemany(
            "INSERT INTO call_records (id, uuid, direction, line_id, line_key, caller, dialled,"
            " employee_id, answered_by_employee_id, started_at, answered_at, ended_at,"
            " disposition, recording_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            calls)
        c.executemany(
            "INSERT INTO missed_calls (call_id, caller, reason, responsible_employee_id,"
            " created_at, cleared_at) VALUES (?, ?, ?, ?, ?, ?)", missed)
        c.executemany("INSERT INTO blocked_calls (at, caller, reason, call_id)"
                      " VALUES (?, ?, ?, ?)", blocked)
        out.recordings = len(recs)

    db.write(fill)
    db.write(lambda conn: conn.execute("ANALYZE"))
    return out


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A short 440 Hz mono 16-bit WAV (a recording the browser can play)."""
    import math
    import struct
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def add_call(db: Database, *, uuid: str, started: dt.datetime, direction: str = "inbound",
             caller: str = "+79161234567", dialled: str = "+74955550001",
             caller_name: str | None = None, employee: str | None = None,
             answered_by: str | None = None, answered_after: float | None = 5.0,
             talk: float = 60.0, disposition: str | None = None,
             route: str | None = None, recording: str | None = None,
             missed: str | None = None) -> int:
    """One finished call with the given parties (extensions), optional route JSON, recording
    path (data-dir relative) and missed reason; returns its id."""
    answered_at = started + dt.timedelta(seconds=answered_after) \
        if answered_after is not None else None
    ended = (answered_at + dt.timedelta(seconds=talk)) if answered_at else \
        started + dt.timedelta(seconds=20)

    def write(conn: sqlite_utils.Database) -> int:
        c = conn.conn

        def emp(ext: str | None) -> int | None:
            row = c.execute("SELECT id FROM employees WHERE extension = ?", [ext]).fetchone()
            return int(row[0]) if row else None

        rec_id = c.execute("INSERT INTO recordings (path, duration_s) VALUES (?, ?)",
                           [recording, talk]).lastrowid if recording else None
        call_id = int(c.execute(
            "INSERT INTO call_records (uuid, direction, caller, caller_name, dialled,"
            " employee_id, answered_by_employee_id, started_at, answered_at, ended_at,"
            " disposition, hangup_side, route, recording_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'caller', ?, ?)",
            [uuid, direction, caller, caller_name, dialled, emp(employee), emp(answered_by),
             ts(started), ts(answered_at), ts(ended),
             disposition or ("answered" if answered_at else "no_answer"), route, rec_id]
        ).lastrowid or 0)
        if missed:
            c.execute("INSERT INTO missed_calls (call_id, caller, reason,"
                      " responsible_employee_id, created_at) VALUES (?, ?, ?, ?, ?)",
                      [call_id, caller, missed, emp(employee), ts(ended)])
        return call_id

    return db.write(write)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end on its own loop in a helper thread (a test may run while
    Playwright's sync API holds an event loop in the main thread)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            out.append(asyncio.run(coro))
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=main, name="run-async")
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    assert out, "the coroutine did not finish within 30 s"
    return out[0]
