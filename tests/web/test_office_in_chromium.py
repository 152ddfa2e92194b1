"""Issue 6's must-show, end to end in a real Chromium against a real box.

From a fresh database: the first-run wizard; then only through the pages: a SIM line, an
employee with a desk phone, a department, a call flow and the line's number. A pjsua2 desk
phone registers with the credentials the page showed, a simulated GSM caller rings the
number, the phone answers, the call is on the dashboard while it lasts, and afterwards it
is in the call history with a recording that plays in the browser. Screenshots of each step
are kept in test-output/screenshots/office-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.support.harness import EngineProcess
from tests.support.scenarios import CUSTOMER, SIM1_NUMBER, SIM_IMEI, incoming, lines_ready
from tests.test_edge_calls import desk_phone, registered
from tests.web.conftest import shot

pytestmark = pytest.mark.timeout(240)

ADMIN_PASSWORD = "Zvonok-Ofis-2026"


def _submit(page: Any) -> None:
    page.locator("main form button.primary[type=submit]").first.click()


def test_an_office_set_up_only_through_the_pages_takes_a_gsm_call(
        start_box: Callable[..., EngineProcess], settings: Settings, app: Flask,
        live_url: str, page: Any, modem: FakeModem) -> None:
    start_box()  # `pbx run` on the empty database the wizard is about to fill

    # 1. The wizard, in Russian, from a fresh database.
    page.goto(f"{live_url}/")
    page.wait_for_url(re.compile(r"/setup$"))
    assert "Добро пожаловать" in page.inner_text("h1")
    page.fill("[name=username]", "boss")
    page.fill("[name=password]", ADMIN_PASSWORD)
    page.fill("[name=repeat]", ADMIN_PASSWORD)
    page.fill("[name=name]", "ООО Ромашка")
    page.select_option("[name=time_zone]", "Europe/Moscow")
    page.select_option("[name=language]", "ru")
    shot(page, "office-1-wizard")
    _submit(page)
    page.wait_for_url(re.compile(r"/setup/next$"))

    # 2. The SIM line (the simulated modem's IMEI).
    page.goto(f"{live_url}/lines/new/sim")
    page.fill("[name=key]", "sim1")
    page.fill("[name=name]", "МТС офис")
    page.fill("[name=imei]", SIM_IMEI)
    _submit(page)
    page.wait_for_url(re.compile(r"/lines/$"))

    # 3. An employee with a desk phone; the page shows its password once.
    page.goto(f"{live_url}/employees/new")
    page.fill("[name=extension]", "101")
    page.fill("[name=name]", "Анна Петрова")
    page.click("[data-add-row=devices]")
    page.fill("input[name='devices[0].username']", "101")
    page.locator("form.people-form button.primary").click()
    page.wait_for_url(re.compile(r"/employees/credentials$"))
    password = page.inner_text(".device-card:has-text('101') [data-secret]").strip()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", password)
    shot(page, "office-2-credentials")

    # 4. A department with her in it.
    page.goto(f"{live_url}/departments/new")
    page.fill("input[name=key]", "sales")
    page.fill("input[name=name]", "Отдел продаж")
    page.click("[data-add-row=members]")
    page.select_option("select[name='members[]'] >> nth=0", "101")
    page.locator("form.people-form button.primary").click()
    page.wait_for_url(re.compile(r"/departments/$"))

    # 5. A call flow to the department, and the line's number using it.
    page.goto(f"{live_url}/flows/new")
    page.fill("[name=key]", "main")
    page.fill("[name=name]", "Основной")
    page.select_option("[name='branches[0].when']", "always")
    page.select_option("[name='branches[0].to.kind']", "department")
    page.locator("[data-dest-for=department] [name='branches[0].to.target']").select_option(
        "sales")
    page.click("form.card button.primary")
    page.wait_for_url("**/flows/item/main")
    page.goto(f"{live_url}/numbers/new")
    page.fill("[name=number]", SIM1_NUMBER)
    page.select_option("[name=line]", "sim1")
    page.select_option("[name=flow]", "main")
    page.click("form.card button.primary")
    page.wait_for_url("**/numbers/item/**")
    assert "Отдел продаж" in page.inner_text("#diagram")
    shot(page, "office-3-number")

    # 6. A real phone registers with what the page showed; the SIM line comes up.
    phone = desk_phone(settings, "101", password, "--tone", "1000")
    try:
        phone.wait(registered(phone))
        lines_ready(settings)

        # 7. A customer calls the SIM number: the phone rings and answers.
        idx = modem.ring(CUSTOMER)
        call = incoming(phone)
        phone.send(cmd="answer", id=call["id"])
        phone.wait(lambda e: e.get("id") == call["id"] and e.get("state") == "CONFIRMED")

        # 8. The dashboard shows the call while it lasts.
        page.goto(f"{live_url}/dashboard/")
        page.locator("#live", has_text=CUSTOMER).wait_for(timeout=20_000)
        shot(page, "office-4-dashboard")
        time.sleep(2)  # two seconds of talk in the recording (the phone sends a tone)
        modem.remote_hangup(idx)
        phone.wait(lambda e: e.get("id") == call["id"] and e.get("state") == "DISCONNECTED")
    finally:
        phone.close()

    # 9. Then the call history has it, with a recording that plays in the browser.
    deadline = time.monotonic() + 20
    while True:
        page.goto(f"{live_url}/history/")
        rows = page.locator("table.calls tbody tr", has_text=CUSTOMER)
        if rows.count() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rows.count() == 1
    shot(page, "office-5-history")
    rows.first.locator("a").first.click()
    page.wait_for_selector("audio")
    page.wait_for_function("document.querySelector('audio').readyState >= 1")
    duration = page.evaluate("document.querySelector('audio').duration")
    assert duration >= 1.5, duration
    assert "Отдел продаж" in page.inner_text("main") or "sales" in page.inner_text("main")
    shot(page, "office-6-call")
