"""The call history pages: filters, pages, CSV, a call's route, recordings (Range), who may
see what, escaping and hostile input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Settings
from tests.support.callgen import add_call, write_wav
from tests.support.web import post_form

XSS = "<script>alert(1)</script>"


@pytest.fixture
def calls(app: Flask, admin_client: FlaskClient, settings: Settings) -> Iterator[dict[str, Any]]:
    """Employees 101 (Anna), 102 (Boris, a name with markup) and a handful of calls today."""
    from appliance.config.edit import Actor

    admin_client.get("/lang/en")  # the texts below are the English ones
    editor = app.extensions["pbx"].editor
    for ext, name in (("101", "Anna"), ("102", f"Boris {XSS}")):
        if not any(e["extension"] == ext for e in editor.items("employees")):
            editor.save("employees", {"extension": ext, "name": name}, key=None,
                        actor=Actor("test"))
    db = app.extensions["pbx"].db
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    wav = write_wav(settings.recordings_dir / "2026/11/23/anna.wav", seconds=1.0)
    write_wav(settings.data_dir / "outside.wav")
    route = json.dumps({"dialled": "+74955550001", "steps": [
        "flow main / open: schedule office -> ring department sales",
        f"department sales: {XSS} -> ring 101"]})
    ids = {
        "anna_in": add_call(db, uuid="call-anna-in", started=now - dt.timedelta(minutes=50),
                            caller="+79161112233", caller_name=XSS, employee="101",
                            answered_by="101", route=route,
                            recording=str(wav.relative_to(settings.data_dir))),
        "boris_out": add_call(db, uuid="call-boris-out", direction="outbound", caller="102",
                              dialled="89165554433", employee="102",
                              started=now - dt.timedelta(minutes=40),
                              recording="recordings/../outside.wav"),
        "missed": add_call(db, uuid="call-missed-1", started=now - dt.timedelta(minutes=30),
                           caller="+79167778899", caller_name="=HYPERLINK(\"x\")",
                           employee="102", answered_after=None, disposition="cancelled",
                           missed="no_answer"),
    }
    for i in range(60):  # more than one page
        add_call(db, uuid=f"call-bulk-{i:04d}", started=now - dt.timedelta(hours=2, minutes=i),
                 caller=f"+7903000{i:04d}")
    yield ids


def test_history_lists_filters_and_pages(admin_client: FlaskClient,
                                         calls: dict[str, Any]) -> None:
    page = admin_client.get("/history/?lang=en")
    assert page.status_code == 200
    assert "63 calls" in page.text and "Page 1 of 2" in page.text
    assert page.text.count("<tr>") == 51  # the header and 50 calls
    second = admin_client.get("/history/?page=2").text
    assert "Page 2 of 2" in second and second.count("<tr>") == 14
    found = admin_client.get("/history/?number=7778899").text
    assert "1 calls" in found and "+79167778899" in found
    out = admin_client.get("/history/?direction=outbound").text
    assert "1 calls" in out and "89165554433" in out
    missed = admin_client.get("/history/?outcome=missed").text
    assert "1 calls" in missed and "Nobody answered" in missed
    boris = admin_client.get(f"/history/?employee={_employee_id(admin_client, '102')}").text
    assert "2 calls" in boris
    old = admin_client.get("/history/?from=2020-01-01&to=2020-01-31").text
    assert "No calls match these filters." in old


def _employee_id(client: FlaskClient, ext: str) -> int:
    app = client.application
    row = app.extensions["pbx"].db.read().conn.execute(
        "SELECT id FROM employees WHERE extension = ?", [ext]).fetchone()
    return int(row[0])


def test_bad_filters_are_shown_next_to_their_fields(admin_client: FlaskClient,
                                                    calls: dict[str, Any]) -> None:
    page = admin_client.get("/history/?from=31.12.2025&number=abc%3Cdef&direction=sideways"
                            "&lang=en")
    assert page.status_code == 200
    assert 'id="e-from"' in page.text and "Enter a date like 2025-01-31." in page.text
    assert 'id="e-number"' in page.text and "Digits, +, * and # only" in page.text
    assert "Choose a direction from the list." in page.text
    # The bad filters are dropped, the good ones still apply.
    assert "63 calls" in page.text
    backwards = admin_client.get("/history/?from=2026-05-02&to=2026-05-01&lang=en").text
    assert "The first day is after the last one." in backwards


HOSTILE = ["number=" + "9" * 100_000, "page=99999999999999999999", "page=-3", "employee=abc",
           "employee=99999999999999", "from=9999-99-99", "to=0000-01-01", "from=2026-13-01",
           "direction=%3Cscript%3E", "outcome=%00", "from=" + "2" * 5000, "from=2000-01-01",
           "number=%25%25%25_", "page=%D9%A3"]


def test_hostile_filters_never_fail(admin_client: FlaskClient, calls: dict[str, Any]) -> None:
    for query in HOSTILE:
        for url in ("/history/", "/history/export.csv", "/reports/", "/missed/"):
            response = admin_client.get(f"{url}?{query}")
            assert response.status_code == 200, (url, query, response.status_code)
            if response.mimetype == "text/html":
                assert "<script>" not in response.text


def test_names_with_markup_are_escaped(admin_client: FlaskClient,
                                       calls: dict[str, Any]) -> None:
    listing = admin_client.get("/history/").text
    detail = admin_client.get(f"/history/{calls['anna_in']}").text
    for text in (listing, detail):
        assert XSS not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_calls_page_explains_its_route_and_plays_its_recording(
        admin_client: FlaskClient, calls: dict[str, Any]) -> None:
    page = admin_client.get(f"/history/{calls['anna_in']}?lang=en").text
    assert "flow main / open: schedule office -&gt; ring department sales" in page
    assert "<audio controls" in page
    src = page.split('<audio controls preload="metadata" src="')[1].split('"')[0]
    full = admin_client.get(src)
    assert full.status_code == 200 and full.mimetype == "audio/wav"
    assert full.data[:4] == b"RIFF" and len(full.data) == 44 + 16000
    part = admin_client.get(src, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(full.data)}"
    tail = admin_client.get(src, headers={"Range": "bytes=16000-"})
    assert tail.status_code == 206 and len(tail.data) == 44
    assert admin_client.get(src, headers={"Range": "bytes=90000-"}).status_code == 416


def test_a_recording_outside_the_recordings_folder_is_not_served(
        admin_client: FlaskClient, calls: dict[str, Any]) -> None:
    page = admin_client.get(f"/history/{calls['boris_out']}").text
    src = page.split('<audio controls preload="metadata" src="')[1].split('"')[0]
    assert admin_client.get(src).status_code == 404
    assert admin_client.get("/history/recordings/99999").status_code == 404
    assert admin_client.get("/history/999999").status_code == 404
    assert admin_client.get("/history/recordings/abc").status_code == 404
    for bad in ("/history/recordings/..%2F..%2Fpbx.sqlite3", "/history/..%2Fsecret.key",
                "/history/recordings/-1", "/history/recordings/" + "9" * 400):
        assert admin_client.get(bad).status_code == 404, bad


def test_csv_export_has_every_matching_call_for_excel(admin_client: FlaskClient,
                                                      calls: dict[str, Any]) -> None:
    response = admin_client.get("/history/export.csv?lang=en")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows[0][:3] == ["Started", "Direction", "From"]
    assert len(rows) == 1 + 63
    by_caller = {r[2]: r for r in rows[1:]}
    assert by_caller["+79161112233"][3] == XSS  # data, not HTML: as it is
    # A name that a spreadsheet would run as a formula is defused; numbers stay numbers.
    assert by_caller["+79167778899"][3].startswith("'=")
    assert by_caller["+79167778899"][10] == "no_answer"
    only = admin_client.get("/history/export.csv?direction=outbound").data.decode()
    assert len(list(csv.reader(io.StringIO(only[1:]), delimiter=";"))) == 2


def test_a_user_sees_only_their_own_calls(user_client: FlaskClient, app: Flask,
                                          calls: dict[str, Any]) -> None:
    user_client.get("/lang/en")
    page = user_client.get("/history/").text
    assert "1 calls" in page and "+79161112233" in page and "89165554433" not in page
    assert 'name="employee"' not in page  # no choosing other people
    assert user_client.get(f"/history/{calls['anna_in']}").status_code == 200
    assert user_client.get(f"/history/{calls['boris_out']}").status_code == 404
    assert user_client.get(f"/history/{calls['missed']}").status_code == 404
    own = user_client.get(f"/history/{calls['anna_in']}").text
    src = own.split('<audio controls preload="metadata" src="')[1].split('"')[0]
    assert user_client.get(src).status_code == 200
    rec = app.extensions["pbx"].db.read().conn.execute(
        "SELECT recording_id FROM call_records WHERE id = ?", [calls["boris_out"]]
    ).fetchone()[0]
    assert user_client.get(f"/history/recordings/{rec}").status_code == 403
    exported = user_client.get("/history/export.csv").data.decode()
    assert len(exported.strip().splitlines()) == 2
    # Asking for someone else's calls by filter changes nothing.
    other = user_client.get(f"/history/?employee={_employee_id(user_client, '102')}").text
    assert "89165554433" not in other


def test_a_user_gets_403_on_every_admin_url(user_client: FlaskClient) -> None:
    for url in ("/dashboard/", "/dashboard/live", "/dashboard/today", "/reports/",
                "/missed/", "/reports/?from=2026-01-01", "/missed/?page=2"):
        assert user_client.get(url).status_code == 403, url
    response = post_form(user_client, "/dashboard/calls/abc-123/hangup", {},
                         page="/history/")
    assert response.status_code == 403


def test_anonymous_visitors_go_to_the_login(client: FlaskClient, app: Flask) -> None:
    from tests.support.web import make_admin

    make_admin(app)
    for url in ("/history/", "/history/1", "/history/export.csv", "/history/recordings/1",
                "/dashboard/", "/reports/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
