"""The calls areas in headless Chromium: filter the history, open a call and play its
recording, hang up a call from the dashboard, the reports page; desktop and phone widths."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask

from appliance.config.edit import Actor
from appliance.settings import Settings
from tests.support.callgen import add_call, fill_calls, write_wav
from tests.support.web import FakeEngine, browser_log_in, make_admin
from tests.web.conftest import shot


def _office(app: Flask, settings: Settings) -> None:
    make_admin(app)
    editor = app.extensions["pbx"].editor
    editor.save("employees", {"extension": "301", "name": "Анна Петрова"}, key=None,
                actor=Actor("t"))
    db = app.extensions["pbx"].db
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fill_calls(db, 600, now, days=20, employees=5, clients=100, seed=3)
    wav = write_wav(settings.recordings_dir / "2026/11/23/browser.wav", seconds=2.0)
    add_call(db, uuid="browser-call-1", started=now - dt.timedelta(minutes=5),
             caller="+79161112233", caller_name="ООО Ромашка", employee="301",
             answered_by="301", recording=str(wav.relative_to(settings.data_dir)),
             route='{"steps": ["flow main / open: schedule office -> ring department sales",'
                   ' "department sales: ring all -> 301 answered"]}')


def _log_in(page: Any, base: str) -> None:
    browser_log_in(page, base)


def test_history_filter_detail_and_recording_in_chromium(
        page: Any, live_url: str, app: Flask, settings: Settings) -> None:
    _office(app, settings)
    _log_in(page, live_url)
    page.goto(f"{live_url}/history/")
    rows_before = page.locator("table.calls tbody tr").count()
    assert rows_before == 50
    page.fill("#f-number", "1112233")
    page.select_option("#f-direction", "inbound")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/history/?*number=1112233*")
    rows = page.locator("table.calls tbody tr")
    assert rows.count() >= 1
    assert "ООО Ромашка" in rows.first.inner_text()
    shot(page, "calls-history")
    rows.first.locator("a").first.click()
    page.wait_for_selector("audio")
    page.wait_for_function("document.querySelector('audio').readyState >= 1")
    duration = page.evaluate("document.querySelector('audio').duration")
    assert 1.9 < duration < 2.1
    assert "department sales: ring all -> 301 answered" in page.inner_text("ol.route")
    shot(page, "calls-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/history/")
    # On a phone the page itself does not scroll sideways (the table does, in its box).
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    shot(page, "calls-history-phone")


def test_dashboard_hang_up_and_reports_in_chromium(
        page: Any, live_url: str, app: Flask, settings: Settings,
        fake_engine: FakeEngine) -> None:
    _office(app, settings)
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=95)).isoformat()
    calls = [{"call_id": "c0ffee-77", "caller": "+79161112233", "dialled": "+74955550001",
              "started_at": started, "answered": True, "answered_at": started,
              "answered_by": "301", "direction": "inbound", "line": "sim1"}]
    fake_engine.route("GET", "/calls", lambda _req: list(calls))
    fake_engine.route("GET", "/lines", [{"key": "sim1", "kind": "sim", "name": "МТС офис",
                                         "state": "ready", "operator": "MTS", "signal": 20}])
    fake_engine.route("GET", "/trunks", [])
    fake_engine.route("GET", "/registrations", [
        {"user": "301", "source": "10.0.0.7:5060", "user_agent": "Yealink T31G",
         "state": "ok"}])

    def hangup(_req: Any) -> dict[str, Any]:
        calls.clear()
        return {"hung_up": True}

    fake_engine.route("POST", "/calls/{call_id}/hangup", hangup)
    _log_in(page, live_url)
    page.goto(f"{live_url}/dashboard/")
    assert "301 Анна Петрова" in page.inner_text("table.live-calls")
    shot(page, "calls-dashboard")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("table.live-calls button.danger")
    page.wait_for_selector("table.live-calls", state="detached")
    assert ("POST", "/calls/c0ffee-77/hangup", None) in fake_engine.requests
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    shot(page, "calls-dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_url}/reports/")
    assert page.locator("svg.chart").count() >= 3
    shot(page, "calls-reports")
    page.goto(f"{live_url}/missed/")
    shot(page, "calls-missed")
