"""Benchmark: the repeat-caller history lookup (`appliance.history.managers_from_history`).

A database with `--records` call records (default 100 000) over a year: `--clients` outside
numbers, inbound and outbound, about 70 % answered, 20 employees; outbound numbers dialled
in the national form ('8916...') as desk phones do. The lookup runs for random clients (and
some unknown numbers) on a warm connection; the table gives the median and the 99th
percentile per lookup. Baseline in the same run: the same lookups on a copy of the database
without the (caller, started_at) and (dialled, started_at) indexes, i.e. a table scan.

    .venv/bin/python bench/history_lookup.py [--records 100000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlite_utils

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.callfacts import ts
from appliance.db import Database
from appliance.history import managers_from_history

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def build(path: Path, records: int, clients: int, seed: int) -> list[str]:
    """Fill a fresh database; returns the client numbers (E.164)."""
    rnd = random.Random(seed)
    db = Database.open(path)
    numbers = [f"+7916{rnd.randrange(10**7):07d}" for _ in range(clients)]

    def fill(conn: sqlite_utils.Database) -> None:
        conn.execute("INSERT INTO employees (id, extension, name) SELECT value, 100 + value,"
                     " 'E' || value FROM json_each('[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
                     "17,18,19,20]')")
        rows = []
        for i in range(records):
            number = rnd.choice(numbers)
            started = NOW - dt.timedelta(seconds=rnd.uniform(0, 365 * 86400))
            answered = rnd.random() < 0.7
            employee = rnd.randint(1, 20)
            inbound = rnd.random() < 0.6
            rows.append((
                f"bench-{i:08d}", "inbound" if inbound else "outbound",
                number if inbound else "101",
                "+74955550001" if inbound else "8" + number[2:], ts(started),
                ts(started + dt.timedelta(seconds=8)) if answered else None,
                ts(started + dt.timedelta(seconds=90)),
                "answered" if answered else "no_answer",
                employee if (answered or not inbound) else None,
                employee if answered and inbound else None))
        conn.conn.executemany(
            "INSERT INTO call_records (uuid, direction, caller, dialled, started_at,"
            " answered_at, ended_at, disposition, employee_id, answered_by_employee_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    db.write(fill)
    db.write(lambda conn: conn.execute("ANALYZE"))
    db.close()
    return numbers


def measure(path: Path, callers: list[str], lookback: int) -> tuple[float, float, int]:
    """Median and p99 in milliseconds, and how many lookups found someone."""
    conn = sqlite_utils.Database(sqlite3.connect(path))
    for caller in callers[:50]:  # warm the page cache
        managers_from_history(conn, caller, NOW, lookback)
    times, found = [], 0
    for caller in callers:
        start = time.perf_counter()
        facts = managers_from_history(conn, caller, NOW, lookback)
        times.append((time.perf_counter() - start) * 1000)
        found += bool(facts)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], found


def main() -> None:
    """Build the database, measure with and without the indexes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pbx.db"
        started = time.perf_counter()
        numbers = build(path, args.records, args.clients, args.seed)
        built = time.perf_counter() - started
        bare = Path(tmp) / "bare.db"
        shutil.copy(path, bare)
        with sqlite3.connect(bare) as raw:
            raw.execute("DROP INDEX call_records_caller")
            raw.execute("DROP INDEX call_records_dialled")
        rnd = random.Random(args.seed + 1)
        callers = [rnd.choice(numbers) if rnd.random() < 0.9 else f"+7903{i:07d}"
                   for i in range(args.lookups)]
        print(f"history lookup: {args.records} call records, {args.clients} clients, "
              f"{args.lookups} lookups (built in {built:.1f} s)")
        print(f"machine: {platform.machine()}, {platform.processor() or '?'}, "
              f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}")
        print(f"{'database':<24}{'lookback':>10}{'median ms':>12}{'p99 ms':>10}{'found':>8}")
        for name, db_path, lookups in (("indexed (this tree)", path, callers),
                                       ("no indexes (baseline)", bare, callers[:100])):
            for lookback in (90, 3650):
                median, p99, found = measure(db_path, lookups, lookback)
                print(f"{name:<24}{lookback:>10}{median:>12.3f}{p99:>10.3f}"
                      f"{found:>5}/{len(lookups)}")


if __name__ == "__main__":
    main()
