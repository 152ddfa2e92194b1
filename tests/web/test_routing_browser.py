"""In Chromium: build a number's call flow through the pages, then watch the diagram change
while a branch is edited (before saving) and after saving."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.support.web import browser_log_in, make_admin
from tests.web.conftest import shot
from tests.web.test_routing_pages import demo  # noqa: F401 - the fixture


def test_flow_for_a_number_and_its_diagram(demo: Flask, live_url: str, page: Any) -> None:  # noqa: F811
    make_admin(demo)
    browser_log_in(page, live_url)

    page.goto(f"{live_url}/flows/new?lang=en")
    page.fill("[name=key]", "evening")
    page.fill("[name=name]", "Вечер")
    page.select_option("[name='branches[0].when']", "always")
    page.select_option("[name='branches[0].to.kind']", "department")
    # destination.js shows only the chosen kind's target list
    target = page.locator("[data-dest-for=department] [name='branches[0].to.target']")
    target.select_option("sales")
    assert page.locator("[data-dest-for=employee] [name='branches[0].to.target']").is_hidden()
    page.click("form.card button.primary")
    page.wait_for_url("**/flows/item/evening")

    page.goto(f"{live_url}/numbers/new")
    page.fill("[name=number]", "+7 495 555-00-77")
    page.fill("[name=label]", "Вечерний")
    page.select_option("[name=flow]", "evening")
    page.locator("#diagram svg").wait_for()  # the preview drew the chosen flow
    page.click("form.card button.primary")
    page.wait_for_url("**/numbers/item/**")
    diagram = page.locator("#diagram")
    assert "Отдел продаж" in diagram.inner_text()
    assert "Общий автоответчик" not in diagram.inner_text()
    shot(page, "routing-number-before")

    page.goto(f"{live_url}/flows/item/evening")
    page.select_option("[name='branches[0].to.kind']", "voicemail")
    page.locator("[data-dest-for=voicemail] [name='branches[0].to.target']").select_option(
        "general")
    # Redrawn from the unsaved form by htmx.
    page.locator("#diagram text", has_text="Общий автоответчик").first.wait_for()
    shot(page, "routing-flow-edited-preview")
    page.click("form.card button.primary")
    page.wait_for_url("**/flows/item/evening")

    page.goto(f"{live_url}/numbers/")
    page.locator("tr", has_text="+74955550077").locator("a.thumb-link").click()
    page.locator("#diagram").wait_for()
    text = page.locator("#diagram").inner_text()
    assert "Общий автоответчик" in text and "Отдел продаж" not in text, text
    shot(page, "routing-number-after")

    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    shot(page, "routing-number-phone")
    assert demo.extensions["pbx"].editor.item("flows", "evening")["branches"][0]["to"] == {
        "voicemail": "general"}
