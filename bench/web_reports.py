"""Benchmark: server time of the call history, reports and CSV export pages on 100 000 calls.

A database with `--records` call records (default 100 000) spread over a year (office hours
weighted; inbound, outbound, internal; missed rows, some called back; blocked calls;
recordings on a fifth of answered calls; 20 employees, most with a daily call plan). The
pages are requested through Flask's test client, logged in as the administrator; each figure
is the median of `--repeat` requests after one warm-up, the whole response body read (the
CSV streams every row). Baseline in the same run: the same requests on a copy of the
database without migration 13's indexes.

    .venv/bin/python bench/web_reports.py [--records 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.db import Database
from appliance.db.schema.m0013_report_indexes import INDEXES
from appliance.settings import Settings
from tests.support.callgen import fill_calls
from tests.support.web import ADMIN, log_in, make_admin

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)

PAGES = (
    ("history, first page", "/history/?from=2026-11-17&to=2026-11-23"),
    ("history, a year", "/history/?from=2025-11-24&to=2026-11-23"),
    ("history, year, deep page", "/history/?from=2025-11-24&to=2026-11-23&page=1500"),
    ("history, number filter", "/history/?from=2025-11-24&to=2026-11-23&number=916123"),
    ("history, employee+missed", "/history/?from=2025-11-24&to=2026-11-23&employee=5"
                                 "&outcome=missed"),
    ("history, outbound answered", "/history/?from=2026-08-01&to=2026-11-23"
                                   "&direction=outbound&outcome=answered"),
    ("reports, 14 days", "/reports/?from=2026-11-10&to=2026-11-23"),
    ("reports, a year", "/reports/?from=2025-11-24&to=2026-11-23"),
    ("missed, not called back", "/missed/"),
    ("dashboard, today", "/dashboard/today"),
    ("CSV, 7 days", "/history/export.csv?from=2026-11-17&to=2026-11-23"),
    ("CSV, a year: first bytes", "/history/export.csv?from=2025-11-24&to=2026-11-23"),
    ("CSV, a year (all rows)", "/history/export.csv?from=2025-11-24&to=2026-11-23"),
)
FIRST_BYTES = "CSV, a year: first bytes"  # the streamed export: until its first chunk


def measure(data_dir: Path, repeat: int) -> list[tuple[float, int]]:
    """(median ms, body bytes) per page."""
    from webui import create_app

    app = create_app(Settings(data_dir=data_dir), TESTING=True, PBX_CLOCK=lambda: NOW)
    db = app.extensions["pbx"].db
    db.write(lambda c: c.execute(
        "INSERT OR REPLACE INTO box_settings (key, value) VALUES ('time_zone',"
        " '\"Europe/Moscow\"')"))
    make_admin(app)
    client = app.test_client()
    log_in(client, *ADMIN)
    out = []
    for name, url in PAGES:
        client.get(url).get_data()  # warm-up: page cache, statement cache
        times = []
        size = 0
        for _ in range(repeat):
            start = time.perf_counter()
            if name == FIRST_BYTES:
                response = client.get(url, buffered=False)
                size = len(next(iter(response.response))) + len(next(iter(response.response)))
                response.close()
            else:
                response = client.get(url)
                size = len(response.get_data())
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        out.append((statistics.median(times), size))
    db.close()
    return out


def main() -> None:
    """Build the database, measure with and without migration 13's indexes, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        here, bare = Path(tmp) / "indexed", Path(tmp) / "bare"
        here.mkdir()
        started = time.perf_counter()
        db = Database.open(here / "pbx.sqlite3")
        fill_calls(db, args.records, NOW, seed=args.seed)
        db.close()
        built = time.perf_counter() - started
        shutil.copytree(here, bare)
        with sqlite3.connect(bare / "pbx.sqlite3") as raw:
            for name, _sql in INDEXES:
                raw.execute(f"DROP INDEX {name}")
            raw.execute("ANALYZE")
        indexed = measure(here, args.repeat)
        baseline = measure(bare, args.repeat)
        print(f"web reports: {args.records} call records over a year "
              f"(built in {built:.1f} s), median of {args.repeat} requests")
        print(f"machine: {platform.node()} {platform.machine()}, "
              f"{platform.processor() or '?'}, python {platform.python_version()}, "
              f"sqlite {sqlite3.sqlite_version}")
        print(f"{'page':<30}{'indexed ms':>12}{'baseline ms':>13}{'KiB':>9}")
        for (name, _url), (ms, size), (base_ms, _s) in zip(PAGES, indexed, baseline,
                                                            strict=True):
            print(f"{name:<30}{ms:>12.1f}{base_ms:>13.1f}{size / 1024:>9.0f}")


if __name__ == "__main__":
    main()
