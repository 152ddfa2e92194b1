"""Departments pages and the destination picker."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.config.edit import Actor
from tests.support.web import post_form
from tests.web.people_support import english
from webui.destination import destination_parts


@pytest.fixture(autouse=True)
def _english(app: Flask) -> None:
    english(app)


def _people(app: Flask) -> None:
    editor = app.extensions["pbx"].editor
    for ext, name in (("201", "Ivan"), ("202", "Olga"), ("203", "Petr")):
        editor.save("employees", {"extension": ext, "name": name}, key=None, actor=Actor("t"))
    editor.save("voicemail_boxes", {"key": "general", "name": "General"}, key=None,
                actor=Actor("t"))


FORM = {"key": "sales", "name": "Sales", "extension": "300", "strategy": "one_after_another",
        "members[]": ["", "203", "201"], "ring_delay": "5", "member_timeout": "20",
        "timeout": "60", "call_waiting": "skip_busy", "recording": "default",
        "overflow.kind": "voicemail", "overflow.target": "general"}


def test_create_edit_delete_with_ordered_members_and_overflow(
        app: Flask, admin_client: FlaskClient) -> None:
    _people(app)
    page = admin_client.get("/departments/new")
    assert 'name="overflow.kind"' in page.text and 'data-dest-for="voicemail"' in page.text
    response = post_form(admin_client, "/departments/new", FORM)
    assert response.status_code == 302, response.text[:3000]
    editor = app.extensions["pbx"].editor
    dep = editor.item("departments", "sales")
    assert dep["members"] == ["203", "201"] and dep["overflow"] == {"voicemail": "general"}
    edit = admin_client.get("/departments/sales/edit").text
    # The stored overflow's kind and target are selected, other kinds' targets disabled.
    assert '<option value="voicemail" selected>' in edit
    assert '<option value="general" selected>' in edit
    assert 'id="f-overflow.target-employee" name="overflow.target" disabled' in edit
    post_form(admin_client, "/departments/sales/edit",
              {**FORM, "members[]": ["", "201", "202", "203"], "overflow.kind": "external",
               "overflow.target": "+7 916 123-45-67"})
    dep = editor.item("departments", "sales")
    assert dep["members"] == ["201", "202", "203"]
    assert dep["overflow"] == {"external": "+79161234567"}
    post_form(admin_client, "/departments/sales/edit",
              {**FORM, "overflow.kind": "", "overflow.target": ""})
    assert "overflow" not in editor.item("departments", "sales")
    assert "Sales" in admin_client.get("/departments/").text
    post_form(admin_client, "/departments/sales/delete", {}, page="/departments/sales/edit")
    assert admin_client.get("/departments/sales/edit").status_code == 404


def test_errors_next_to_fields(app: Flask, admin_client: FlaskClient) -> None:
    _people(app)
    response = post_form(admin_client, "/departments/new",
                         {**FORM, "key": "Bad Key", "members[]": ["", "999"],
                          "overflow.target": ""})
    assert response.status_code == 422
    assert 'id="e-key"' in response.text
    assert "needs a target" in response.text
    ok = post_form(admin_client, "/departments/new", {**FORM, "members[]": ["", "999"]})
    assert ok.status_code == 422 and "999" in ok.text


def test_markup_is_escaped_and_users_are_refused(app: Flask, admin_client: FlaskClient,
                                                 user_client: FlaskClient) -> None:
    _people(app)
    post_form(admin_client, "/departments/new", {**FORM, "name": "<script>alert(1)</script>"})
    for url in ("/departments/", "/departments/sales/edit"):
        text = admin_client.get(url).text
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    for url in ("/departments/", "/departments/new", "/departments/sales/edit"):
        assert user_client.get(url).status_code == 403
    for url in ("/departments/new", "/departments/sales/edit", "/departments/sales/delete"):
        assert post_form(user_client, url, FORM, page="/account/password").status_code == 403


def test_destination_parts_reads_every_form() -> None:
    assert destination_parts("hangup") == ("hangup", "", "")
    assert destination_parts({"department": "sales"}) == ("department", "sales", "")
    assert destination_parts({"external": "+7916", "line": "sim1"}) == ("external", "+7916",
                                                                        "sim1")
    assert destination_parts({"kind": "queue", "target": "q"}) == ("queue", "q", "")
    assert destination_parts("sip:a@b") == ("sip_uri", "sip:a@b", "")
    assert destination_parts(None) == ("", "", "")


def test_hostile_input_gets_a_clear_error(app: Flask, admin_client: FlaskClient) -> None:
    _people(app)
    huge = post_form(admin_client, "/departments/new", {**FORM, "name": "x" * 100_000})
    assert huge.status_code == 422 and 'id="e-name"' in huge.text
    bad_field = post_form(admin_client, "/departments/new", {**FORM, "members[5000]": "201"})
    assert bad_field.status_code == 400
    odd = post_form(admin_client, "/departments/new", {**FORM, "overflow.kind": "nowhere"})
    assert odd.status_code == 422 and "nowhere" not in odd.text.split("<form")[0]
    assert admin_client.get("/departments/..%2F..%2Fetc/edit").status_code == 404
