"""Reports: SVG charts by direction and outcome, the call plan table, the missed-and-not-
called-back list (cleared by the real call log); the filter reader and the charts, fuzzed."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from appliance.calllog import DbCallLog
from appliance.switchboard.records import CallRecord, Disposition, Rung
from tests.support.callgen import add_call, fill_calls, run_async
from webui.areas._callshared import MAX_DAYS, Series, parse_query, stacked_bars
from webui.areas.reports import buckets

XSS = "<script>alert(1)</script>"


@pytest.fixture
def office(app: Flask, admin_client: FlaskClient) -> Flask:
    """Generated calls over 40 days (employees 101..106, most with a plan), English pages."""
    admin_client.get("/lang/en")
    db = app.extensions["pbx"].db
    fill_calls(db, 1500, dt.datetime.now(dt.UTC), days=40, employees=6, clients=200)
    db.write(lambda c: c.execute("UPDATE employees SET name = ? WHERE extension = '102'",
                                 [XSS]))
    return app


def test_the_reports_page_draws_charts_and_the_plan_table(admin_client: FlaskClient,
                                                          office: Flask) -> None:
    page = admin_client.get("/reports/")
    assert page.status_code == 200
    svgs = re.findall(r"<svg .*?</svg>", page.text, flags=re.S)
    assert len(svgs) >= 3
    for svg in svgs:  # well-formed SVG (what the browser parses)
        ET.fromstring(svg)
    assert "Calls per day by direction" in page.text and "Calls per day by outcome" in page.text
    direction_chart = svgs[0]
    assert 0 < direction_chart.count("<rect class=\"s-inbound\"") <= 14  # a bar a day at most
    conn = office.extensions["pbx"].db.read().conn
    plans = conn.execute("SELECT extension, daily_call_plan FROM employees"
                         " WHERE daily_call_plan IS NOT NULL AND extension != '102'").fetchall()
    table = page.text.split('<table class="plan">')[1]
    assert len(plans) >= 2
    for ext, plan in plans:
        assert re.search(rf"<td>{ext} Employee {ext}</td>\s*<td class=\"num\">{plan}</td>",
                         table), ext
    assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "By day" in page.text  # two weeks: a per-day table per employee


def test_a_long_range_is_charted_by_week(admin_client: FlaskClient, office: Flask) -> None:
    today = dt.date.today()
    page = admin_client.get(f"/reports/?from={today - dt.timedelta(days=120)}&to={today}")
    assert page.status_code == 200
    assert "Calls per week by direction" in page.text and "By day" not in page.text
    too_long = admin_client.get(f"/reports/?from={today - dt.timedelta(days=2000)}&to={today}")
    assert f"At most {MAX_DAYS} days at a time." in too_long.text


def test_a_returned_call_leaves_the_missed_list(admin_client: FlaskClient,
                                                      app: Flask) -> None:
    admin_client.get("/lang/en")
    from appliance.config.edit import Actor

    app.extensions["pbx"].editor.save("employees", {"extension": "102", "name": "Boris"},
                                      key=None, actor=Actor("t"))
    db = app.extensions["pbx"].db
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    add_call(db, uuid="missed-call-1", started=now - dt.timedelta(hours=3, minutes=30),
             caller="+79161112233", employee="102", answered_after=None,
             disposition="cancelled", missed="after_hours")
    add_call(db, uuid="missed-call-2", started=now - dt.timedelta(minutes=21),
             caller="+79165550000", caller_name=XSS, answered_after=None,
             disposition="busy", missed="busy")
    page = admin_client.get("/missed/").text
    assert "2 calls to return" in page
    assert "After hours" in page and "102 Boris" in page and "3 h ago" in page
    assert "20 min ago" in page and "nobody" in page
    assert XSS not in page
    # Boris calls the client back and reaches them: the call log clears the miss.
    back = CallRecord(call_id="callback-0001", inbound_leg="A1", caller="sip:102@10.0.0.2",
                      dialled="89161112233", started_at=now, direction="outbound",
                      caller_device="102")
    back.rung["O1"] = Rung("sip:89161112233@sim1", _leg("89161112233"), now, line="sim1")
    back.rang.append("sip:89161112233@sim1")
    back.answered_leg, back.answered_contact = "O1", "sip:89161112233@sim1"
    back.answered_at = now + dt.timedelta(seconds=5)
    back.ended_at = now + dt.timedelta(seconds=65)
    back.disposition, back.sip_code, back.hangup_side = Disposition.ANSWERED, 200, "caller"
    async def write() -> None:
        log = DbCallLog(db)
        log.started(back)
        log.finished(back)
        await log.flush()

    run_async(write())
    page = admin_client.get("/missed/").text
    assert "1 calls to return" in page and "+79161112233" not in page
    assert "+79165550000" in page


def _leg(number: str) -> Any:
    from appliance.routing.plan import Leg

    return Leg("external", number, 0.0, 120.0)


def test_an_empty_box_has_empty_reports(admin_client: FlaskClient) -> None:
    admin_client.get("/lang/en")
    assert "No outgoing calls and no daily plans" in admin_client.get("/reports/").text
    assert "Every missed call has been returned." in admin_client.get("/missed/").text
    assert admin_client.get("/missed/?page=99999999").status_code == 200


@given(st.dictionaries(st.sampled_from(["from", "to", "number", "employee", "direction",
                                        "outcome", "page"]),
                       st.text(max_size=40)))
def test_any_query_string_reads_into_valid_filters(args: dict[str, str]) -> None:
    today = dt.date(2026, 11, 23)
    query = parse_query(args, today)
    assert query.first <= query.last and (query.last - query.first).days < MAX_DAYS
    assert query.page >= 1 and len(query.number) <= 32
    assert query.direction in (None, "inbound", "outbound", "internal")
    assert all(isinstance(v, str) for v in query.errors.values())
    assert parse_query(query.args(), today).args() == query.args()  # links read back


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), max_size=400),
       st.text(max_size=30), st.integers(0, 500))
def test_charts_are_well_formed_whatever_the_numbers(values: list[tuple[int, int]],
                                                     label: str, plan: int) -> None:
    labels = [f"{label}{i}" for i in range(len(values))]
    svg = stacked_bars(labels, [Series(label, "s-inbound", [a for a, _b in values]),
                                Series("b", "s-outbound", [b for _a, b in values])],
                       title=label, line=[plan] * len(values))
    root = ET.fromstring(str(svg))
    heights = [float(r.get("height", 0)) for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert all(0 <= h <= 180 for h in heights)


def test_long_ranges_are_grouped_into_weeks_from_monday() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(100)]
    weeks = buckets(days)
    assert sum(len(w) for w in weeks) == 100 and len(weeks) == 15  # Thu 1 Jan: 4 days first
    assert all(w[0].weekday() == 0 for w in weeks[1:]) and all(len(w) <= 7 for w in weeks)
    assert buckets(days[:30]) == [[d] for d in days[:30]]


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 1, 1),
                    timezones=st.just(dt.UTC)),
       st.sampled_from(["Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                        "Australia/Adelaide", "Australia/Lord_Howe"]),
       st.text(max_size=40))
def test_export_times_are_the_local_times_and_junk_is_blank(when: dt.datetime, zone: str,
                                                            junk: str) -> None:
    from appliance.callfacts import ts
    from webui.areas._callshared import LocalTimes, box_zone, local

    tz = box_zone(zone)
    times = LocalTimes(tz)
    stored = ts(when)
    assert times(stored) == local(stored, tz)  # the fast path agrees with the plain one
    # Every minute of the hour agrees too, DST switches at half past included.
    for minute in (0, 29, 30, 31, 59):
        other = ts(when.replace(minute=minute))
        assert times(other) == local(other, tz)
    assert times(stored.replace("+00:00", "Z")) == local(stored, tz)
    assert isinstance(times(junk), str) and isinstance(local(junk, tz), str)


def test_export_times_across_a_half_hour_dst_switch() -> None:
    from appliance.callfacts import ts
    from webui.areas._callshared import LocalTimes, box_zone, local

    tz = box_zone("Australia/Adelaide")  # DST ends 2026-04-05 03:00 local = 16:30 UTC
    times = LocalTimes(tz)
    start = dt.datetime(2026, 4, 4, 16, 0, tzinfo=dt.UTC)
    seen = set()
    for minute in range(60):
        stored = ts(start + dt.timedelta(minutes=minute))
        assert times(stored) == local(stored, tz)
        seen.add(dt.datetime.fromisoformat(stored).astimezone(tz).utcoffset())
    assert len(seen) == 2  # the hour did contain the switch
