"""REST API: engine actions through a real control socket (FakeEngine), engine down, and the
history, missed-call and SMS lists from a real database with filters and pages."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.accounts import create_api_token
from appliance.control import BadRequest
from appliance.switchboard.originate import OriginateError, check_request
from tests.support.web import FakeEngine

Api = tuple[FlaskClient, dict[str, str]]


@pytest.fixture
def api(app: Flask) -> Api:
    """A client and the headers of a read+write token."""
    # No web user needed: the API never looks at sessions (and argon2 would cost a second).
    tok = create_api_token(app.extensions["pbx"].db, "crm", ["read", "write"])
    return app.test_client(), {"Authorization": f"Bearer {tok}"}


def test_click_to_call_and_hangup_reach_the_engine(api: Api, fake_engine: FakeEngine) -> None:
    client, h = api
    fake_engine.route("POST", "/originate", {"call_id": "abc-1"})

    def hangup(req: Any) -> Any:
        if req.params["call_id"] != "abc-1":
            raise BadRequest("no call", 404)
        return {"hung_up": "abc-1"}

    fake_engine.route("POST", "/calls/{call_id}/hangup", hangup)
    r = client.post("/api/v1/calls", headers=h, json={"extension": "101", "number": "+79161234567"})
    assert r.status_code == 201 and r.json == {"call_id": "abc-1"}
    assert ("POST", "/originate", {"extension": "101", "number": "+79161234567"}) in \
        fake_engine.requests
    assert client.delete("/api/v1/calls/abc-1", headers=h).status_code == 204
    assert client.post("/api/v1/calls/abc-1/hangup", headers=h).status_code == 204
    r = client.delete("/api/v1/calls/other", headers=h)
    assert r.status_code == 404 and r.json["error"] == "not_found"


def test_click_to_call_validation(api: Api, fake_engine: FakeEngine) -> None:
    client, h = api
    r = client.post("/api/v1/calls", headers=h,
                    json={"extension": "1", "number": "sip:x@evil", "more": 1})
    assert r.status_code == 422
    assert set(r.json["fields"]) == {"extension", "number", "more"}
    assert not [q for q in fake_engine.requests if q[1] == "/originate"]


def test_engine_refusals_pass_through(api: Api, fake_engine: FakeEngine) -> None:
    client, h = api

    def busy(_req: Any) -> Any:
        raise BadRequest("no phone of 101 is registered", 409)

    fake_engine.route("POST", "/originate", busy)
    r = client.post("/api/v1/calls", headers=h, json={"extension": "101", "number": "123"})
    assert r.status_code == 409 and "registered" in r.json["message"]


def test_engine_down_is_503_json(api: Api) -> None:
    client, h = api
    for method, url in [("GET", "/api/v1/calls"), ("GET", "/api/v1/lines"),
                        ("GET", "/api/v1/registrations"), ("POST", "/api/v1/reload"),
                        ("DELETE", "/api/v1/calls/abc")]:
        r = client.open(url, method=method, headers=h)
        assert r.status_code == 503, (url, r.json)
        assert r.json["error"] == "engine_down"


def test_live_lists(api: Api, fake_engine: FakeEngine) -> None:
    client, h = api
    fake_engine.route("GET", "/lines", [{"key": "sim1", "state": "ready", "signal": 4}])
    fake_engine.route("GET", "/registrations", [{"user": "101", "state": "reachable"}])
    fake_engine.route("GET", "/calls", [])
    assert client.get("/api/v1/lines", headers=h).json == {
        "items": [{"key": "sim1", "state": "ready", "signal": 4}]}
    assert client.get("/api/v1/registrations", headers=h).json["items"][0]["user"] == "101"
    assert client.get("/api/v1/calls", headers=h).json == {"items": []}
    assert client.post("/api/v1/reload", headers=h).json == {"reloaded": True}


def test_send_sms(api: Api, fake_engine: FakeEngine) -> None:
    client, h = api
    fake_engine.route("POST", "/sms", lambda req: {"id": 7, "status": "sent"})
    r = client.post("/api/v1/sms", headers=h,
                    json={"line": "sim1", "to": "+79161234567", "text": "Привет"})
    assert r.status_code == 201 and r.json == {"id": 7, "status": "sent"}
    r = client.post("/api/v1/sms", headers=h, json={"line": "", "to": "abc", "text": ""})
    assert r.status_code == 422 and set(r.json["fields"]) == {"line", "to", "text"}


def _seed(app: Flask) -> None:
    """Three employees' worth of call records, a missed call and two messages."""
    editor = app.extensions["pbx"].editor
    from appliance.config.edit import Actor

    editor.save("employees", {"extension": "101", "name": "Anna"}, key=None, actor=Actor("t"))

    def rows(c: Any) -> None:
        conn = c.conn
        emp = conn.execute("SELECT id FROM employees WHERE extension = '101'").fetchone()[0]
        for i in range(30):
            conn.execute(
                "INSERT INTO call_records (uuid, direction, caller, dialled, employee_id,"
                " started_at, ended_at, disposition) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (f"call-{i:04d}", "outbound" if i % 2 else "inbound",
                 "101" if i % 2 else "+79160000000", "+79161111111" if i % 2 else "+7495",
                 emp if i % 2 else None, f"2026-01-{1 + i:02d}T10:00:00.000Z",
                 f"2026-01-{1 + i:02d}T10:01:00.000Z", "answered" if i % 3 else "no_answer"))
        call = conn.execute("SELECT id FROM call_records WHERE uuid = 'call-0000'").fetchone()[0]
        conn.execute("INSERT INTO missed_calls (call_id, caller, reason) VALUES (?, ?, ?)",
                     (call, "+79160000000", "no_answer"))
        conn.execute("INSERT INTO missed_calls (caller, reason, cleared_at) VALUES (?, ?, ?)",
                     ("+79169999999", "busy", "2026-01-02T00:00:00.000Z"))
        conn.execute("INSERT INTO sms (direction, peer, text, status, line_key) VALUES "
                     "('in', '+79160000000', '<b>hi</b>', 'received', 'sim1')")
        conn.execute("INSERT INTO sms (direction, peer, text, status) VALUES "
                     "('out', '+79160000000', 'ok', 'sent')")

    app.extensions["pbx"].db.write(rows)


def test_history_filters_and_pages(app: Flask, api: Api) -> None:
    client, h = api
    _seed(app)
    r = client.get("/api/v1/history?per_page=10&page=2", headers=h).json
    assert r["total"] == 30 and len(r["items"]) == 10 and r["page"] == 2
    assert r["items"][0]["id"] == "call-0019"  # newest first
    out = client.get("/api/v1/history?direction=outbound&extension=101&per_page=200",
                     headers=h).json
    assert out["total"] == 15 and {c["extension"] for c in out["items"]} == {"101"}
    window = client.get("/api/v1/history?since=2026-01-05T00:00:00Z&until=2026-01-08",
                        headers=h).json
    assert [c["id"] for c in window["items"]] == ["call-0006", "call-0005", "call-0004"]
    missed = client.get("/api/v1/history?outcome=no_answer&number=%2B79160000000",
                        headers=h).json
    assert missed["total"] == 5 and all(c["disposition"] == "no_answer" for c in missed["items"])
    # A part of a number finds it; "missed" are the calls with a missed-call row.
    assert client.get("/api/v1/history?number=916000", headers=h).json["total"] == 15
    [m] = client.get("/api/v1/history?outcome=missed", headers=h).json["items"]
    assert m["id"] == "call-0000" and m["missed_reason"] == "no_answer"
    assert client.get("/api/v1/history?extension=555", headers=h).json["total"] == 0
    past = client.get("/api/v1/history?page=99", headers=h).json
    assert past["items"] == [] and past["total"] == 30 and past["page"] == 99


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=1000", "direction=up",
                                   "since=yesterday", "extension=abc", "number=" + "1" * 50,
                                   "outcome=%00", "outcome=lost"])
def test_history_bad_parameters(api: Api, query: str) -> None:
    client, h = api
    r = client.get(f"/api/v1/history?{query}", headers=h)
    assert r.status_code == 400 and r.json["error"] == "bad_parameter" and r.json["fields"]


def test_missed_and_sms(app: Flask, api: Api) -> None:
    client, h = api
    _seed(app)
    open_only = client.get("/api/v1/missed", headers=h).json
    # The one called back (cleared) is not listed.
    assert [m["caller"] for m in open_only["items"]] == ["+79160000000"]
    assert open_only["total"] == 1 and open_only["items"][0]["call_id"] == "call-0000"
    assert open_only["items"][0]["reason"] == "no_answer"
    assert client.get("/api/v1/missed?page=2", headers=h).json["items"] == []
    sms = client.get("/api/v1/sms", headers=h).json
    assert sms["total"] == 2 and {m["text"] for m in sms["items"]} == {"<b>hi</b>", "ok"}
    assert client.get("/api/v1/sms?line=sim9", headers=h).json["total"] == 0
    [one] = client.get("/api/v1/sms?line=sim1", headers=h).json["items"]
    assert one["line"] == "sim1" and one["direction"] == "in" and one["partial"] is False


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(
    st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.sampled_from(["extension", "number", "x"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=40)), max_size=3)))
def test_originate_request_parser_fuzz(body: Any) -> None:
    """The engine's parser returns a checked pair or refuses with 400, nothing else."""
    try:
        extension, number = check_request(body)
    except OriginateError as exc:
        assert exc.status == 400
    else:
        assert extension.isdigit() and 2 <= len(extension) <= 6
        assert 1 <= len(number) <= 33 and number.lstrip("+").strip("0123456789*#") == ""
