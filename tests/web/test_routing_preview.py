"""The diagram redrawn from an edit form's unsaved data (the htmx preview)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.support.web import post_form
from tests.web.test_routing_pages import demo  # noqa: F401 - the fixture

MAIN = {"key": "main", "schedule": "office",
        "branches[0].when": "open", "branches[0].to.kind": "department",
        "branches[0].to.target": "sales",
        "branches[1].when": "closed", "branches[1].to.kind": "voicemail",
        "branches[1].to.target": "general"}


def test_preview_draws_the_unsaved_flow(demo: Flask, admin_client: FlaskClient) -> None:  # noqa: F811
    r = post_form(admin_client, "/flows/preview?section=flows&key=main&lang=en", MAIN,
                  page="/flows/item/main")
    assert r.status_code == 200 and r.text.startswith("<svg")
    assert "Отдел продаж" in r.text and "Forwarding chain" not in r.text  # backup branch gone
    edited = {**MAIN, "branches[1].to.kind": "chain", "branches[1].to.target": "duty"}
    r = post_form(admin_client, "/flows/preview?section=flows&key=main&lang=en", edited,
                  page="/flows/item/main")
    assert "Forwarding chain" in r.text and "Дежурный" in r.text
    # Nothing was saved by previewing.
    saved = demo.extensions["pbx"].editor.item("flows", "main")
    assert saved["branches"][0]["when"] == "backup"


def test_preview_shows_problems_instead(demo: Flask, admin_client: FlaskClient) -> None:  # noqa: F811
    r = post_form(admin_client, "/flows/preview?section=flows&lang=en",
                  {"key": "x", "branches[0].when": "open", "branches[0].to.kind": "hangup"},
                  page="/flows/new")
    assert r.status_code == 200 and "<svg" not in r.text
    assert "need a" in r.text and "schedule" in r.text
    r = post_form(admin_client, "/flows/preview?section=flows", {"bad]name": "1"},
                  page="/flows/new")
    assert "bad field name" in r.text


def test_preview_of_a_number_menu_and_chain(demo: Flask, admin_client: FlaskClient) -> None:  # noqa: F811
    r = post_form(admin_client, "/flows/preview?section=numbers&lang=en",
                  {"number": "+74950000007", "flow": "menu", "repeat_caller": "false"},
                  page="/numbers/new")
    assert "+74950000007" in r.text and "Voice menu" in r.text
    r = post_form(admin_client, "/flows/preview?section=voice_menus&key=main&lang=en", {
        "key": "main", "keyrows[0].digit": "5", "keyrows[0].to.kind": "hangup",
        "default.kind": "voicemail", "default.target": "general"}, page="/menus/item/main")
    assert "key 5" in r.text and "Hang up" in r.text and "key 1" not in r.text
    r = post_form(admin_client, "/flows/preview?section=forwarding_chains&lang=en", {
        "key": "new", "steps[0].to.kind": "employee", "steps[0].to.target": "101",
        "final.kind": "voicemail", "final.target": "general"}, page="/flows/chains/new")
    assert "Ring 101 Иван Петров" in r.text
