"""The employee page flow in a real Chromium: a new employee with a desk phone, the one-time
password and its QR code."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from appliance.config.model import sip_ha1
from tests.support.web import browser_log_in, make_admin
from tests.web.conftest import shot


def test_create_an_employee_with_a_desk_phone(app: Flask, live_url: str, page: Any) -> None:
    make_admin(app)
    browser_log_in(page, live_url)
    page.goto(f"{live_url}/employees/new")
    page.fill("input[name=extension]", "205")
    page.fill("input[name=name]", "Мария Иванова")
    page.click("[data-add-row=mobiles]")
    page.fill("input[name='mobiles[]'] >> nth=0", "+7 916 555-44-33")
    page.click("[data-add-row=devices]")
    page.fill("input[name='devices[0].username']", "205-old")
    page.click("[data-add-row=devices]")
    page.fill("input[name='devices[1].username']", "205-desk")
    page.fill("input[name='devices[1].label']", "Yealink T31")
    # Remove the first phone, then add one: the new row must not reuse the index of the
    # desk phone that is left (its fields would be overwritten).
    page.click("#devices [data-row] >> nth=0 >> [data-remove-row]")
    page.click("[data-add-row=devices]")
    page.fill("#devices [data-row] >> nth=1 >> input[name$='.username']", "205-soft")
    page.select_option("#devices [data-row] >> nth=1 >> select[name$='.kind']", "softphone")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "people-employee-form-390")
    page.click("form.people-form button.primary")
    page.wait_for_url(re.compile(r"/employees/credentials$"))
    assert page.locator("[data-secret]").count() == 2
    password = page.inner_text(".device-card:has-text('205-desk') [data-secret]").strip()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", password)
    assert page.locator("figure.qr svg").count() == 2
    shot(page, "people-employee-credentials-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, "people-employee-credentials")
    realm, ha1 = app.extensions["pbx"].db.read().conn.execute(
        "SELECT realm, ha1_md5 FROM devices WHERE username = '205-desk'").fetchone()
    assert ha1 == sip_ha1("205-desk", realm, password, "MD5")
    devices = app.extensions["pbx"].editor.item("employees", "205")["devices"]
    assert [(d["username"], d["kind"], d.get("label")) for d in devices] == [
        ("205-desk", "desk_phone", "Yealink T31"), ("205-soft", "softphone", None)]
    # Reloading does not show the password again.
    page.reload()
    assert page.locator("[data-secret]").count() == 0
    page.goto(f"{live_url}/employees/")
    assert page.locator("text=Мария Иванова").count() == 1
    shot(page, "people-employees-list")


def test_department_members_order_and_overflow_picker(app: Flask, live_url: str,
                                                      page: Any) -> None:
    from appliance.config.edit import Actor

    make_admin(app)
    editor = app.extensions["pbx"].editor
    for ext, name in (("201", "Ivan"), ("202", "Olga")):
        editor.save("employees", {"extension": ext, "name": name}, key=None, actor=Actor("t"))
    browser_log_in(page, live_url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/departments/new")
    page.fill("input[name=key]", "sales")
    page.fill("input[name=name]", "Sales")
    page.click("[data-add-row=members]")
    page.click("[data-add-row=members]")
    page.select_option("select[name='members[]'] >> nth=0", "201")
    page.select_option("select[name='members[]'] >> nth=1", "202")
    page.click("#members [data-row] >> nth=1 >> [data-move-up]")  # Olga rings first
    assert page.locator("[data-dest-for=employee]").is_hidden()
    page.select_option("select[name='overflow.kind']", "external")
    assert page.locator("[data-dest-for='external sip_uri fax']").is_visible()
    page.fill("input[name='overflow.target']:not([disabled])", "+79161234567")
    shot(page, "people-department-form-390")
    page.click("form.people-form button.primary")
    page.wait_for_url(re.compile(r"/departments/$"))
    dep = editor.item("departments", "sales")
    assert dep["members"] == ["202", "201"] and dep["overflow"] == {"external": "+79161234567"}
