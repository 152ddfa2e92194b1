"""The security page: the edge's bans (unban) and registered phones, from a fake engine."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from appliance import remote_access
from tests.support.web import FakeEngine, post_form
from webui.areas.security import ban_rows


def test_bans_and_registrations(admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    bans = [{"host": "203.0.113.9", "until": time.time() + 600,
             "reason": "<b>friendly-scanner</b>"}]
    fake_engine.route("GET", "/bans", lambda req: bans)
    fake_engine.route("GET", "/registrations", [
        {"user": "101", "contact": "sip:101@192.0.2.5", "transport": "udp",
         "source": "192.0.2.5:5060", "expires": 3500, "state": "reachable", "rtt_ms": 12,
         "user_agent": "Yealink T46U"}])

    def remove(req: Any) -> dict[str, Any]:
        lifted = any(b["host"] == req.body["host"] for b in bans)
        bans[:] = [b for b in bans if b["host"] != req.body["host"]]
        return {"host": req.body["host"], "lifted": lifted}

    fake_engine.route("POST", "/bans/remove", remove)
    page = admin_client.get("/security/?lang=en").text
    assert "203.0.113.9" in page and "&lt;b&gt;friendly-scanner" in page
    assert "Yealink T46U" in page and "12 ms" in page
    post_form(admin_client, "/security/unban", {"host": "203.0.113.9"}, page="/security/")
    page = admin_client.get("/security/?lang=en").text
    assert "203.0.113.9 is no longer banned" in page and "No address is banned" in page
    post_form(admin_client, "/security/unban", {"host": "x" * 5000}, page="/security/")
    assert "was not banned" in admin_client.get("/security/?lang=en").text


def test_engine_down_and_user(admin_client: FlaskClient, user_client: FlaskClient) -> None:
    assert "The engine is not running" in admin_client.get("/security/?lang=en").text
    assert user_client.get("/security/").status_code == 403
    assert post_form(user_client, "/security/unban", {"host": "x"},
                     page="/sms/mine/").status_code == 403


def test_ban_rows_skip_garbage() -> None:
    assert ban_rows([{"host": "a", "until": 110.5}, {"host": 3}, "x", {"host": "b"}], 100) == [
        {"host": "a", "left": 10, "reason": ""}, {"host": "b", "left": None, "reason": ""}]
    assert ban_rows({"not": "a list"}, 0) == []


ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOyN3bmYw6ByIqaJ2bHjyl6DIhcSJ5UEFrkJ0Hu8ZyRS"
           " admin@laptop")


def test_remote_access_request(app: Flask, admin_client: FlaskClient,
                               user_client: FlaskClient) -> None:
    data_dir = app.extensions["pbx"].settings.data_dir
    request_file = data_dir / "system" / remote_access.REQUEST_NAME
    # Not on the image (no root side has ever reported): explained, nothing written.
    page = admin_client.get("/security/?lang=en").text
    assert "which this installation does not have" in page
    post_form(admin_client, "/security/ssh", {"enabled": "on", "keys": ED25519},
              page="/security/")
    assert not request_file.exists()
    # The root side reported once (at boot): SSH off.
    remote_access.write_atomic(data_dir / "system", remote_access.STATUS_NAME, json.dumps(
        {"at": "2026-11-23T10:00:00+00:00", "enabled": False, "active": False, "keys": 0,
         "authorized": []}))
    assert "SSH is off" in admin_client.get("/security/?lang=en").text
    # A damaged key: its line and what is wrong, next to the field; nothing requested.
    reply = post_form(admin_client, "/security/ssh?lang=en",
                      {"enabled": "on", "keys": "# mine\n" + ED25519[:60]}, page="/security/")
    assert reply.status_code == 400 and "Line 2: the key is cut short" in reply.text
    assert not request_file.exists()
    reply = post_form(admin_client, "/security/ssh?lang=ru", {"enabled": "on", "keys": ""},
                      page="/security/")
    assert reply.status_code == 400 and "войти можно только по ключу" in reply.text
    # A good one: the request is written for the root side, and audited.
    reply = post_form(admin_client, "/security/ssh", {"enabled": "on", "keys": ED25519},
                      page="/security/")
    assert reply.status_code == 302
    assert json.loads(request_file.read_text()) == {"enabled": True, "keys": [ED25519],
                                                    "by": "admin"}
    assert "a change is being applied" in admin_client.get("/security/?lang=en").text
    with sqlite3.connect(app.extensions["pbx"].settings.db_path) as db:
        assert db.execute("SELECT action, after FROM audit_log WHERE area = 'security'"
                          ).fetchall() == [("ssh", '{"enabled": true, "keys": 1}')]
    # What the root side reports shows, the keys ready to edit.
    request_file.unlink()
    remote_access.write_atomic(data_dir / "system", remote_access.STATUS_NAME, json.dumps(
        {"at": "2026-11-23T10:01:00+00:00", "enabled": True, "active": True, "keys": 1,
         "authorized": [ED25519]}))
    page = admin_client.get("/security/?lang=en").text
    assert "SSH is on" in page and "1 keys may log in as root" in page
    assert "admin@laptop</textarea>" in page
    # Off needs no key.
    post_form(admin_client, "/security/ssh", {"keys": ""}, page="/security/")
    assert json.loads(request_file.read_text())["enabled"] is False
    # Users never reach it.
    assert post_form(user_client, "/security/ssh", {"keys": ""},
                     page="/sms/mine/").status_code == 403
