"""The lines page and sending an SMS in a real browser (Chromium), with a fake engine."""

from __future__ import annotations

from typing import Any

from flask import Flask

from appliance.config.edit import Actor
from tests.support.web import FakeEngine, browser_log_in, make_admin
from tests.web.conftest import shot
from tests.web.test_lines_pages import SIM_LIVE, TRUNK_LIVE
from tests.web.test_lines_sms import _engine_stores


def test_lines_page_and_sms_in_chromium(app: Flask, live_url: str, page: Any,
                                        fake_engine: FakeEngine) -> None:
    make_admin(app)
    editor = app.extensions["pbx"].editor
    editor.save("lines", {"key": "sim1", "kind": "sim", "name": "Office SIM",
                          "ussd_balance": "*100#"}, key=None, actor=Actor("test"))
    editor.save("lines", {"key": "trunk1", "kind": "sip_trunk", "name": "Provider",
                          "host": "sip.provider.test", "channels": 4}, key=None,
                actor=Actor("test"))
    fake_engine.route("GET", "/lines", [SIM_LIVE])
    fake_engine.route("GET", "/trunks", [TRUNK_LIVE])
    _engine_stores(app, fake_engine)  # POST /sms stored and sent, as the engine does

    browser_log_in(page, live_url, lang="en")
    page.goto(f"{live_url}/lines/")
    card = page.locator('[data-line="sim1"]')
    card.locator(".bars-4").wait_for()
    assert "MegaFon" in card.inner_text() and "123.45 RUB" in card.inner_text()
    assert "403 Forbidden" in page.locator('[data-line="trunk1"]').inner_text()
    # The live fragment is polled: a new balance shows up without reloading the page.
    fake_engine.route("GET", "/lines", [{**SIM_LIVE, "balance": {"amount": 77.0,
                                                                 "currency": "RUB"}}])
    page.locator('[data-line="sim1"] .balance', has_text="77.00 RUB").wait_for(timeout=10_000)
    shot(page, "lines-page")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "lines-page-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_url}/sms/")
    page.select_option("#f-line", "sim1")
    page.fill("#f-to", "+79161112233")
    page.fill("#f-text", "Привет из офиса")
    page.click("#sms-send button[type=submit]")
    page.locator("td.sms-text", has_text="Привет из офиса").wait_for()
    assert page.locator(".flash.ok").count() == 1
    shot(page, "sms-sent")
    assert ("POST", "/sms", {"line": "sim1", "to": "+79161112233",
                             "text": "Привет из офиса"}) in fake_engine.requests
