"""The dashboard: live lines, phones and calls from the engine's control socket (FakeEngine),
hanging a call up through it, today's counters, and the page with the engine down."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from appliance.control import BadRequest
from tests.support.callgen import add_call
from tests.support.web import FakeEngine, post_form

XSS = "<script>alert(1)</script>"


@pytest.fixture
def office(app: Flask, admin_client: FlaskClient) -> Flask:
    """Employees 101 Anna and 102 (a name with markup), two calls today, English pages."""
    from appliance.config.edit import Actor

    admin_client.get("/lang/en")
    editor = app.extensions["pbx"].editor
    editor.save("employees", {"extension": "101", "name": "Anna"}, key=None, actor=Actor("t"))
    editor.save("employees", {"extension": "102", "name": XSS}, key=None, actor=Actor("t"))
    db = app.extensions["pbx"].db
    now = dt.datetime.now(dt.UTC)
    add_call(db, uuid="today-in-1", started=now - dt.timedelta(minutes=3), employee="101",
             answered_by="101", answered_after=10, talk=120)
    add_call(db, uuid="today-in-2", started=now - dt.timedelta(minutes=2), employee="102",
             answered_after=None, disposition="cancelled", missed="no_answer")
    add_call(db, uuid="today-out-1", started=now - dt.timedelta(minutes=1),
             direction="outbound", caller="101", dialled="89161234567", employee="101",
             answered_after=4, talk=60)
    return app


def live_engine(fake_engine: FakeEngine, calls: list[dict[str, Any]]) -> None:
    """The engine's live routes as the box answers them."""
    fake_engine.route("GET", "/calls", lambda _req: list(calls))
    fake_engine.route("GET", "/lines", [
        {"key": "sim1", "kind": "sim", "name": "MTS office", "state": "ready",
         "operator": "MTS", "signal": 21, "call": None},
        {"key": None, "kind": "sim", "state": "unassigned", "imei": "861234567890123"}])
    fake_engine.route("GET", "/trunks", [
        {"line": "provider", "kind": "sip_trunk", "channels": 4, "calls": 1, "usable": False,
         "problem": "registration failed: 403", "state": "failed"}])
    fake_engine.route("GET", "/registrations", [
        {"user": "101", "contact": "sip:101@10.0.0.5", "source": "10.0.0.5:5060",
         "user_agent": "Yealink T31", "state": "ok", "expires": 300}])


def test_engine_down_still_shows_todays_counters(admin_client: FlaskClient,
                                                 office: Flask) -> None:
    page = admin_client.get("/dashboard/")
    assert page.status_code == 200
    assert 'id="engine-down"' in page.text and "The engine is not running" in page.text
    today = page.text.split('id="today"')[1].split('id="live"')[0]
    counters = {label.strip(): value for value, label in
                re.findall(r"<b>([^<]+)</b><span>([A-Za-z ]+)", today)}
    assert counters["Incoming calls"] == "2" and counters["Outgoing calls"] == "1"
    assert counters["Answered calls"] == "2" and counters["Missed calls"] == "1"
    assert counters["Average wait"] == "0:10" and counters["Talk minutes"] == "3"
    assert "1 not called back" in today
    fragment = admin_client.get("/dashboard/live")
    assert fragment.status_code == 200 and "The engine is not running" in fragment.text


def test_live_calls_lines_and_phones(admin_client: FlaskClient, office: Flask,
                                     fake_engine: FakeEngine) -> None:
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=75)).isoformat()
    answered = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat()
    live_engine(fake_engine, [
        {"call_id": "c0ffee-01", "caller": "+79161112233", "dialled": "+74955550001",
         "started_at": started, "answered": True, "answered_at": answered,
         "answered_by": "102", "direction": "inbound", "line": "sim1", "step": None},
        {"call_id": "c0ffee-02", "caller": "101", "dialled": "89169998877",
         "started_at": started, "answered": False, "direction": "outbound", "line": None,
         "step": "flow main / open: rule -> ring 103"},
        {"call_id": "../../reload", "caller": XSS, "dialled": "1", "started_at": "garbage",
         "answered": False}])
    page = admin_client.get("/dashboard/").text
    assert 'id="engine-down"' not in page
    live = admin_client.get("/dashboard/live").text
    for text in ("+79161112233", "MTS office", "ready", "provider", "failed",
                 "modem without a line", "registration failed: 403",
                 "Yealink T31", "Ringing", "101 Anna", "flow main / open: rule -&gt; ring 103",
                 "1:15", "talk 0:30", "Calls in progress"):
        assert text in live, text
    # Names and callers with markup are escaped; an odd call id gets no hang-up button.
    assert XSS not in live and "&lt;script&gt;" in live
    assert live.count(">Hang up</button>") == 2
    assert "/dashboard/calls/c0ffee-01/hangup" in live


def test_hanging_up_a_call_asks_the_engine(admin_client: FlaskClient, office: Flask,
                                           fake_engine: FakeEngine, app: Flask) -> None:
    calls = [{"call_id": "c0ffee-01", "caller": "+79161112233", "dialled": "101",
              "started_at": dt.datetime.now(dt.UTC).isoformat(), "answered": True}]
    live_engine(fake_engine, calls)

    def hangup(req: Any) -> dict[str, Any]:
        call_id = req.params["call_id"]
        if not any(c["call_id"] == call_id for c in calls):
            raise BadRequest(f"no call {call_id}", 404)
        calls.clear()
        return {"call_id": call_id, "hung_up": True}

    fake_engine.route("POST", "/calls/{call_id}/hangup", hangup)
    response = post_form(admin_client, "/dashboard/calls/c0ffee-01/hangup", {},
                         page="/dashboard/", follow_redirects=True)
    assert response.status_code == 200 and "The call was hung up." in response.text
    assert ("POST", "/calls/c0ffee-01/hangup", None) in fake_engine.requests
    assert "No calls right now." in response.text
    audit = app.extensions["pbx"].db.read().conn.execute(
        "SELECT area, action, object FROM audit_log WHERE action = 'hangup'").fetchall()
    assert [tuple(a) for a in audit] == [("calls", "hangup", "c0ffee-01")]
    # Again (htmx this time): the call is gone, the fragment says so.
    again = post_form(admin_client, "/dashboard/calls/c0ffee-01/hangup", {},
                      page="/dashboard/", headers={"HX-Request": "true"})
    assert again.status_code == 200 and "That call has already ended." in again.text
    assert "<html" not in again.text  # just the fragment
    # A call id that is no engine id never reaches the socket.
    before = len(fake_engine.requests)
    bad = post_form(admin_client, "/dashboard/calls/..%2Freload/hangup", {}, page="/dashboard/")
    assert bad.status_code == 404
    assert not any(r[1] == "/reload" or "reload/hangup" in r[1]
                   for r in fake_engine.requests[before:])


def test_hanging_up_with_the_engine_down_says_so(admin_client: FlaskClient,
                                                 office: Flask) -> None:
    response = post_form(admin_client, "/dashboard/calls/c0ffee-01/hangup", {},
                         page="/dashboard/", follow_redirects=True)
    assert response.status_code == 200 and "The engine is not running." in response.text


def test_hang_up_needs_the_form_token(admin_client: FlaskClient, office: Flask) -> None:
    assert admin_client.post("/dashboard/calls/c0ffee-01/hangup").status_code == 400


def test_the_engines_live_call_says_who_where_and_which_step(
        admin_client: FlaskClient, office: Flask, fake_engine: FakeEngine) -> None:
    from appliance.box import live_call
    from appliance.routing.plan import Played, Ring
    from appliance.switchboard.records import CallRecord
    from tests.support.routing import CUSTOMER, MAIN, OPEN, snapshot
    from tests.test_calllog import plan, walk

    ringing = CallRecord(call_id="live-call-1", inbound_leg="A1",
                         caller=f'"Client" <sip:{CUSTOMER}@sim1>', dialled=MAIN,
                         started_at=OPEN, direction="inbound", line="sim1")
    ringing.plan = walk(plan(snapshot(), now=OPEN), Played())
    assert isinstance(ringing.plan.step, Ring)
    talking = CallRecord(call_id="live-call-2", inbound_leg="A2", caller="sip:101@10.0.0.5",
                         dialled="102", started_at=OPEN, direction="internal",
                         answered_at=OPEN + dt.timedelta(seconds=4),
                         answered_contact="sip:102@10.0.0.6:5060")
    first, second = live_call(ringing), live_call(talking)
    assert first["direction"] == "inbound" and first["line"] == "sim1"
    assert first["answered"] is False and first["answered_by"] is None
    assert "department" in first["step"] and "sales" in first["step"]
    assert second["answered_by"] == "102" and second["step"] is None
    assert second["answered_at"] == (OPEN + dt.timedelta(seconds=4)).isoformat()
    # The dashboard shows them as the engine sends them.
    fake_engine.route("GET", "/calls", [first, second])
    for path in ("/lines", "/trunks", "/registrations"):
        fake_engine.route("GET", path, [])
    live = admin_client.get("/dashboard/live").text
    assert str(escape(first["step"])) in live
    assert "<span class=\"badge ok\">102 " in live  # answered by 102 (a name follows)
