"""The security page: the edge's bans (unban) and registered phones, from a fake engine."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient

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
