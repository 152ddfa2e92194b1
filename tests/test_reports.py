"""The reports' query layer (appliance.reports) on a real SQLite file with generated calls:
history pages and filters, a user's own calls only, local days (DST), per-employee plans,
today's counters, and the missed-and-not-called-back list cleared by the real call log."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import reports
from appliance.callfacts import ts
from appliance.db import Database
from appliance.reports import Filters
from tests.support.callgen import Generated, fill_calls, run_async
from tests.support.routing import OPEN, snapshot
from tests.test_calllog import db, missed_at, outbound, write

__all__ = ["db"]  # the call log tests' database (the routing office), used below

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Generated]]:
    """3000 calls over 60 days (written once for the module; the tests only read)."""
    path = tmp_path_factory.mktemp("reports") / "pbx.db"
    database = Database.open(path)
    info = fill_calls(database, 3000, NOW, days=60, employees=6, clients=300)
    database.close()
    yield path, info


@pytest.fixture
def conn(generated: tuple[Path, Generated]) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(generated[0])
    yield c
    c.close()


def year() -> Filters:
    start, end = reports.day_range(dt.date(2025, 1, 1), dt.date(2026, 12, 31), MSK)
    return Filters(start=start, end=end)


def test_history_pages_cover_every_call_once_newest_first(conn: sqlite3.Connection) -> None:
    first = reports.history(conn, year(), 1, size=500)
    assert first.total == 3000 and first.pages == 6
    seen: list[int] = []
    starts: list[str] = []
    for page in range(1, 7):
        result = reports.history(conn, year(), page, size=500)
        seen += [r["id"] for r in result.rows]
        starts += [r["started_at"] for r in result.rows]
    assert sorted(seen) == list(range(1, 3001))
    assert starts == sorted(starts, reverse=True)
    # A page past the end is the last page, not an error.
    assert reports.history(conn, year(), 99, size=500).page == 6


def test_filters_match_what_the_rows_say(conn: sqlite3.Connection) -> None:
    everything = list(reports.export(conn, year()))
    assert len(everything) == 3000
    inbound = reports.history(conn, Filters(start=year().start, direction="inbound"))
    assert inbound.total == sum(r["direction"] == "inbound" for r in everything)
    missed = reports.history(conn, Filters(outcome="missed"))
    assert missed.total == conn.execute("SELECT count(*) FROM missed_calls").fetchone()[0]
    assert all(r["missed_reason"] for r in missed.rows)
    busy = reports.history(conn, Filters(outcome="busy"))
    assert busy.total == sum(r["disposition"] == "busy" for r in everything) > 0
    some = everything[17]["caller"][3:9]
    by_number = reports.history(conn, Filters(number=some), size=500)
    assert by_number.total == sum(some in r["caller"] or some in r["dialled"]
                                  for r in everything) > 0
    employee = reports.history(conn, Filters(employee_id=2), size=500)
    assert employee.total == sum(2 in (r["employee_id"], r["answered_by_employee_id"])
                                 for r in everything) > 0
    week = Filters(start=NOW - dt.timedelta(days=7), end=NOW)
    assert reports.history(conn, week).total == sum(
        r["started_at"] >= ts(NOW - dt.timedelta(days=7)) for r in everything)


def test_a_user_sees_only_their_own_calls(conn: sqlite3.Connection) -> None:
    own = Filters(restricted=True, viewer_employee_id=3, viewer_extension="103")
    rows = list(reports.export(conn, own))
    assert rows and all(3 in (r["employee_id"], r["answered_by_employee_id"])
                        or "103" in (r["caller"], r["dialled"]) for r in rows)
    others = [r for r in reports.export(conn, Filters())
              if 3 not in (r["employee_id"], r["answered_by_employee_id"])
              and "103" not in (r["caller"], r["dialled"])]
    assert reports.call_detail(conn, others[0]["id"], own) is None
    assert reports.call_detail(conn, rows[0]["id"], own) is not None
    # Nobody (a user whose employee was removed) sees nothing.
    assert reports.history(conn, Filters(restricted=True)).total == 0
    theirs = conn.execute(
        "SELECT recording_id FROM call_records WHERE recording_id IS NOT NULL"
        " AND coalesce(employee_id, 0) != 3 AND coalesce(answered_by_employee_id, 0) != 3"
        " AND caller != '103' AND dialled != '103'").fetchone()[0]
    assert reports.recording_path(conn, theirs, own) is None
    assert reports.recording_path(conn, theirs) is not None


def test_counts_by_day_add_up_to_the_calls_of_the_range(conn: sqlite3.Connection) -> None:
    first, last = dt.date(2026, 10, 1), dt.date(2026, 11, 23)
    days = reports.counts_by_day(conn, first, last, MSK)
    assert [d.day for d in days] == [first + dt.timedelta(days=i) for i in range(len(days))]
    assert len(days) == (last - first).days + 1
    start, end = reports.day_range(first, last, MSK)
    expected = conn.execute(
        "SELECT direction, count(*) FROM call_records WHERE started_at >= ? AND started_at < ?"
        " GROUP BY 1", [reports.bound(start), reports.bound(end)]).fetchall()
    for direction, n in expected:
        assert sum(d.by_direction[direction] for d in days) == n
    total = sum(n for _d, n in expected)
    assert sum(sum(d.by_outcome.values()) for d in days) == total
    missed = conn.execute(
        "SELECT count(*) FROM missed_calls m JOIN call_records c ON c.id = m.call_id"
        " WHERE c.started_at >= ? AND c.started_at < ?",
        [reports.bound(start), reports.bound(end)]).fetchone()[0]
    assert sum(d.by_outcome["missed"] for d in days) == missed > 0


def test_a_day_is_the_offices_day_across_a_dst_switch(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    database = Database.open(tmp_path / "pbx.db")
    # 2026-03-29 is 23 hours long in Berlin: 00:00 CET (23:00Z the day before) to
    # 00:00 CEST (22:00Z). Calls at its first and last minute, and just outside.
    times = ["2026-03-28T22:59:00Z", "2026-03-28T23:00:00Z", "2026-03-29T21:59:00Z",
             "2026-03-29T22:00:00Z"]
    database.write(lambda c: c.conn.executemany(
        "INSERT INTO call_records (uuid, direction, started_at, ended_at, disposition)"
        " VALUES (?, 'inbound', ?, ?, 'answered')",
        [(f"dst-call-{i}", t, t) for i, t in enumerate(times)]))
    conn = database.read().conn
    days = reports.counts_by_day(conn, dt.date(2026, 3, 28), dt.date(2026, 3, 30), berlin)
    assert [sum(d.by_direction.values()) for d in days] == [1, 2, 1]
    database.close()


def test_outgoing_calls_per_employee_and_day_against_the_plan(
        conn: sqlite3.Connection) -> None:
    first, last = dt.date(2026, 11, 1), dt.date(2026, 11, 23)
    people = reports.per_employee(conn, first, last, MSK)
    assert [p.plan is not None for p in people] == sorted(
        (p.plan is not None for p in people), reverse=True)
    start, end = reports.day_range(first, last, MSK)
    for person in people:
        n = conn.execute(
            "SELECT count(*) FROM call_records WHERE direction = 'outbound'"
            " AND employee_id = ? AND started_at >= ? AND started_at < ?",
            [person.employee_id, reports.bound(start), reports.bound(end)]).fetchone()[0]
        assert person.total == n
        assert all(first <= d <= last for d in person.per_day)
        if person.plan:
            assert person.days_met() == sum(v >= person.plan for v in person.per_day.values())
    assert any(p.plan for p in people) and any(p.total for p in people)


def test_today_counts_the_local_day(conn: sqlite3.Connection) -> None:
    counters = reports.today(conn, NOW, MSK)
    start, end = reports.day_range(dt.date(2026, 11, 23), dt.date(2026, 11, 23), MSK)
    n = conn.execute("SELECT count(*) FROM call_records WHERE started_at >= ?"
                     " AND started_at < ?", [reports.bound(start), reports.bound(end)]
                     ).fetchone()[0]
    assert counters["total"] == n > 0
    assert counters["inbound"] + counters["outbound"] + counters["internal"] == n
    assert counters["avg_wait_s"] is not None and 2 <= counters["avg_wait_s"] <= 25


def test_missed_open_lists_only_calls_not_returned(conn: sqlite3.Connection,
                                                   generated: tuple[Path, Generated]) -> None:
    result = reports.missed_open(conn, 1, size=500)
    assert result.total == generated[1].missed_open > 0
    assert all(r["reason"] and r["caller"] for r in result.rows)
    created = [r["created_at"] for r in result.rows]
    assert created == sorted(created, reverse=True)


def test_a_missed_call_leaves_the_list_once_the_client_is_called_back(
        db: Database) -> None:
    snap = snapshot()
    run_async(write(db, missed_at(snap, OPEN)))
    conn = db.read().conn
    [row] = reports.missed_open(conn).rows
    assert row["caller"] == "+79161112233" and row["reason"] == "no_answer"
    # A callback nobody answered does not clear it; an answered one does (calllog's rule).
    run_async(write(db, outbound("89161112233", OPEN + dt.timedelta(minutes=10),
                                 answered=False)))
    assert reports.missed_open(conn).total == 1
    run_async(write(db, outbound("89161112233", OPEN + dt.timedelta(minutes=20),
                                 answered=True)))
    assert reports.missed_open(conn).total == 0
    detail = reports.call_detail(conn, row["call_id"])
    assert detail is not None and detail["missed_cleared_at"] is not None
    assert detail["route"]["steps"] and detail["legs"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet="0123456789+%_\\*#a", max_size=6))
def test_a_number_filter_is_a_plain_substring(conn: sqlite3.Connection, text: str) -> None:
    # '%' and '_' are not wildcards: the filter finds exactly the calls containing the text.
    sample = list(reports.export(conn, Filters(start=NOW - dt.timedelta(days=3))))
    found = {r["id"] for r in reports.export(
        conn, Filters(start=NOW - dt.timedelta(days=3), number=text))}
    assert found == {r["id"] for r in sample if text in r["caller"] or text in r["dialled"]}


def test_the_report_queries_use_the_indexes(conn: sqlite3.Connection) -> None:
    bounds = reports.day_bounds(dt.date(2026, 11, 1), dt.date(2026, 11, 2), MSK)
    plan = " ".join(r[3] for r in conn.execute(
        f"EXPLAIN QUERY PLAN {reports._DAYS} SELECT e.id, days.day, (SELECT count(*)"
        " FROM call_records cr WHERE cr.direction = 'outbound' AND cr.employee_id = e.id"
        " AND cr.started_at >= days.s AND cr.started_at < days.e) FROM employees e, days",
        [bounds]))
    assert "COVERING INDEX call_records_plan" in plan
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM missed_calls WHERE cleared_at IS NULL"
        " ORDER BY created_at DESC, id DESC LIMIT 50"))
    assert "missed_calls_created" in plan and "TEMP B-TREE" not in plan
    plan = " ".join(r[3] for r in conn.execute(
        f"EXPLAIN QUERY PLAN {reports._DAYS} SELECT days.day, (SELECT count(*)"
        " FROM call_records cr WHERE cr.started_at >= days.s AND cr.started_at < days.e"
        " AND cr.direction = 'inbound') FROM days", [bounds]))
    assert "COVERING INDEX call_records_day" in plan
