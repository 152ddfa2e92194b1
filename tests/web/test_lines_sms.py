"""SMS pages: inbox/outbox paginated, sending through the engine, a user's own messages."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from appliance.config.edit import Actor
from appliance.lines import store
from appliance.lines.api import sms_body
from tests.support.web import FakeEngine, post_form


def _sim(app: Flask) -> None:
    app.extensions["pbx"].editor.save("lines", {"key": "sim1", "kind": "sim"}, key=None,
                                      actor=Actor("test"))


def _engine_stores(app: Flask, engine: FakeEngine) -> None:
    """POST /sms as the engine answers it: checked, stored in the real database, sent."""
    path = app.extensions["pbx"].settings.db_path

    def send(req: Any) -> dict[str, Any]:
        line, to, text = sms_body(req.body)
        conn = sqlite3.connect(path)
        try:
            with conn:
                sms_id = store.add_outgoing(conn, line, to, text)  # type: ignore[arg-type]
                conn.execute("UPDATE sms SET status = 'sent' WHERE id = ?", (sms_id,))
        finally:
            conn.close()
        return {"id": sms_id, "status": "sent"}

    engine.route("POST", "/sms", send)


def _received(app: Flask, n: int) -> None:
    conn = sqlite3.connect(app.extensions["pbx"].settings.db_path)
    with conn:
        conn.executemany("INSERT INTO sms (line_key, direction, peer, text, status)"
                         " VALUES ('sim1', 'in', ?, ?, 'received')",
                         [(f"+7916000{i:04d}", f"message {i}") for i in range(n)])
    conn.close()


def test_admin_sends_and_sees_inbox_and_outbox(app: Flask, admin_client: FlaskClient,
                                               fake_engine: FakeEngine) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    _sim(app)
    _engine_stores(app, fake_engine)
    _received(app, 3)
    reply = post_form(admin_client, "/sms/send",
                      {"line": "sim1", "to": "+79161112233", "text": "Hello <b>there</b>"},
                      page="/sms/")
    assert reply.status_code == 302
    page = admin_client.get("/sms/?lang=en").text
    assert "SMS to +79161112233: sent" in page
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in page and "<b>there" not in page
    outbox = admin_client.get("/sms/?direction=out").text
    assert "+79161112233" in outbox and "message 1" not in outbox
    inbox = admin_client.get("/sms/?direction=in&line=sim1").text
    assert "message 1" in inbox and "+79161112233" not in inbox


def test_pagination(app: Flask, admin_client: FlaskClient) -> None:
    _sim(app)
    _received(app, 120)
    first = admin_client.get("/sms/?lang=en").text
    assert "message 119" in first and "message 69" not in first and "Page 1 of 3" in first
    last = admin_client.get("/sms/?page=3&lang=en").text
    assert "message 0<" in last and "message 119" not in last
    assert admin_client.get("/sms/?page=99999999999").status_code == 200
    assert admin_client.get("/sms/?page=²").status_code == 200
    assert admin_client.get("/sms/?page=-1&line=" + "x" * 5000).status_code == 200


def test_user_sees_and_sends_only_their_own(app: Flask, user_client: FlaskClient,
                                            admin_client: FlaskClient,
                                            fake_engine: FakeEngine) -> None:
    _sim(app)
    _engine_stores(app, fake_engine)
    _received(app, 2)
    post_form(admin_client, "/sms/send", {"line": "sim1", "to": "+79160000001",
                                          "text": "from the admin"}, page="/sms/")
    reply = post_form(user_client, "/sms/send", {"line": "sim1", "to": "+79160000002",
                                                 "text": "from anna"}, page="/sms/mine/")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/sms/mine/")
    mine = user_client.get("/sms/mine/").text
    assert "from anna" in mine and "from the admin" not in mine and "message 1" not in mine
    assert user_client.get("/sms/").status_code == 403
    # The admin sees who sent it.
    assert "Anna" in admin_client.get("/sms/?direction=out").text
    rows = sqlite3.connect(app.extensions["pbx"].settings.db_path).execute(
        "SELECT a.actor, a.area, a.action FROM audit_log a WHERE area = 'sms'").fetchall()
    assert ("anna", "sms", "send") in rows


def test_refusals(app: Flask, admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    _sim(app)
    post_form(admin_client, "/sms/send", {"line": "nope", "to": "1", "text": "x"},
              page="/sms/")
    assert "Choose a SIM line" in admin_client.get("/sms/?lang=en").text
    post_form(admin_client, "/sms/send", {"line": "sim1", "to": "+7916", "text": "x" * 2000},
              page="/sms/")
    assert "at most 1530 characters" in admin_client.get("/sms/?lang=en").text
    fake_engine.route("POST", "/sms", {"id": 77, "status": "failed", "error": "line sim1 is down"})
    post_form(admin_client, "/sms/send", {"line": "sim1", "to": "+79161112233", "text": "x"},
              page="/sms/")
    assert "line sim1 is down" in admin_client.get("/sms/?lang=en").text


def test_engine_down(app: Flask, admin_client: FlaskClient) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    _sim(app)
    post_form(admin_client, "/sms/send", {"line": "sim1", "to": "+79161112233", "text": "x"},
              page="/sms/")
    assert "The engine is not running" in admin_client.get("/sms/?lang=en").text
