"""Employees pages: create/edit/delete through forms, generated SIP passwords shown once."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.accounts import list_web_users, verify_web_user
from appliance.config.model import sip_ha1
from tests.support.web import post_form
from tests.web.people_support import english
from webui.areas._people import generate_password
from webui.areas.employees import sip_qr_text

BASE = {"extension": "201", "name": "Ivan Petrov", "role": "user", "ring_mobile_after": "15",
        "no_answer_timeout": "30", "recording": "default", "allowed_routes[]": ["", "internal",
                                                                                 "mobile"],
        "enabled": ["false", "true"], "dnd": "false", "call_waiting": ["false", "true"],
        "confirm_mobile": "false", "mobiles[]": ["+79161234567"]}
DESK = {"devices[0].username": "201-desk", "devices[0].kind": "desk_phone",
        "devices[0].label": "Desk", "devices[0].auth": "sha256"}
SECRET = re.compile(r'data-secret>([A-Za-z0-9]{16})<')


@pytest.fixture(autouse=True)
def _english(app: Flask) -> None:
    english(app)


def _editor(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["pbx"].editor


def _digest(app: Flask, username: str) -> tuple[str, str]:
    row = app.extensions["pbx"].db.read().conn.execute(
        "SELECT realm, ha1_md5 FROM devices WHERE username = ?", (username,)).fetchone()
    return row[0], row[1]


def test_create_shows_the_generated_password_once(app: Flask, admin_client: FlaskClient) -> None:
    response = post_form(admin_client, "/employees/new", {**BASE, **DESK})
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"].endswith("/employees/credentials")
    page = admin_client.get("/employees/credentials")
    assert page.headers["Cache-Control"] == "no-store"
    assert page.mimetype == "text/html"
    (password,) = SECRET.findall(page.text)
    assert "<svg" in page.text and "201-desk" in page.text
    realm, ha1 = _digest(app, "201-desk")
    assert ha1 == sip_ha1("201-desk", realm, password, "MD5")
    again = admin_client.get("/employees/credentials")
    assert again.status_code == 200 and password not in again.text
    stored = _editor(app).item("employees", "201")
    assert stored["mobiles"] == ["+79161234567"] and stored["ring_mobile_after"] == 15
    assert stored["allowed_routes"] == ["internal", "mobile"]
    assert stored["devices"][0]["label"] == "Desk"
    listing = admin_client.get("/employees/?q=Petrov")
    assert "Ivan Petrov" in listing.text and "/employees/201/edit" in listing.text
    assert "Ivan Petrov" not in admin_client.get("/employees/?q=Sidorov").text


def test_edit_keeps_the_password_unless_reset(app: Flask, admin_client: FlaskClient) -> None:
    post_form(admin_client, "/employees/new", {**BASE, **DESK})
    admin_client.get("/employees/credentials")
    before = _digest(app, "201-desk")
    edited = {**BASE, **DESK, "name": "Ivan P.", "ring_mobile_after": "never",
              "devices[0].label": "Reception", "devices[0]._reset": "false"}
    response = post_form(admin_client, "/employees/201/edit", edited)
    assert response.status_code == 302 and response.headers["Location"].endswith("/employees/")
    assert _digest(app, "201-desk") == before
    stored = _editor(app).item("employees", "201")
    assert stored["name"] == "Ivan P." and stored["ring_mobile_after"] == "never"
    assert stored["devices"][0]["label"] == "Reception"
    reset = post_form(admin_client, "/employees/201/edit",
                      {**edited, "devices[0]._reset": ["false", "true"]})
    assert reset.headers["Location"].endswith("/employees/credentials")
    (password,) = SECRET.findall(admin_client.get("/employees/credentials").text)
    realm, ha1 = _digest(app, "201-desk")
    assert ha1 != before[1] and ha1 == sip_ha1("201-desk", realm, password, "MD5")


def test_errors_are_shown_next_to_their_field(admin_client: FlaskClient) -> None:
    response = post_form(admin_client, "/employees/new",
                         {**BASE, **DESK, "extension": "12345678", "devices[0].username": "a b"})
    assert response.status_code == 422
    text = response.text
    assert 'id="e-extension"' in text and "an extension is 2-6 digits" in text
    assert 'id="e-devices[0].username"' in text and "SIP user names" in text
    # Nothing was stored and no password is waiting to be shown.
    assert "data-secret" not in admin_client.get("/employees/credentials").text


def test_delete_is_refused_while_a_department_uses_the_extension(
        app: Flask, admin_client: FlaskClient) -> None:
    from appliance.config.edit import Actor

    post_form(admin_client, "/employees/new", BASE)
    _editor(app).save("departments", {"key": "sales", "name": "Sales", "members": ["201"]},
                      key=None, actor=Actor("test"))
    response = post_form(admin_client, "/employees/201/delete", {}, page="/employees/201/edit")
    assert response.status_code == 302
    page = admin_client.get(response.headers["Location"])
    assert "still in use" in page.text and "201" in page.text
    _editor(app).delete("departments", "sales", actor=Actor("test"))
    post_form(admin_client, "/employees/201/delete", {}, page="/employees/201/edit")
    assert admin_client.get("/employees/201/edit").status_code == 404


def test_web_login_for_the_employee(app: Flask, admin_client: FlaskClient) -> None:
    post_form(admin_client, "/employees/new", BASE)
    response = post_form(admin_client, "/employees/201/login", {"username": "ivan"},
                         page="/employees/201/edit")
    assert response.headers["Location"].endswith("/employees/credentials")
    (password,) = SECRET.findall(admin_client.get("/employees/credentials").text)
    db, hasher = app.extensions["pbx"].db, app.extensions["pbx"].hasher
    user = verify_web_user(db, "ivan", password, hasher=hasher)
    assert user is not None and user.role == "user" and user.employee_extension == "201"
    post_form(admin_client, "/employees/201/login/disabled", {"disabled": "true"},
              page="/employees/201/edit")
    assert verify_web_user(db, "ivan", password, hasher=hasher) is None
    post_form(admin_client, "/employees/201/login/disabled", {"disabled": "false"},
              page="/employees/201/edit")
    post_form(admin_client, "/employees/201/login/reset", {}, page="/employees/201/edit")
    (new,) = SECRET.findall(admin_client.get("/employees/credentials").text)
    assert new != password and verify_web_user(db, "ivan", new, hasher=hasher) is not None
    assert [u.username for u in list_web_users(db) if u.employee_extension == "201"] == ["ivan"]


def test_markup_in_names_is_escaped(admin_client: FlaskClient) -> None:
    evil = "<script>alert(1)</script>"
    post_form(admin_client, "/employees/new", {**BASE, "name": evil})
    for url in ("/employees/", "/employees/201/edit"):
        text = admin_client.get(url).text
        assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_hostile_input_gets_a_clear_error(admin_client: FlaskClient) -> None:
    huge = post_form(admin_client, "/employees/new", {**BASE, "name": "x" * 100_000})
    assert huge.status_code == 422 and 'id="e-name"' in huge.text
    bad = post_form(admin_client, "/employees/new", {**BASE, "devices[99999].username": "x"})
    assert bad.status_code == 400
    assert admin_client.get("/employees/../../etc/passwd/edit").status_code == 404
    assert admin_client.get("/employees/?page=-5&q=" + "%" * 500).status_code == 200


def test_a_user_gets_403_on_every_admin_url(user_client: FlaskClient) -> None:
    for url in ("/employees/", "/employees/new", "/employees/101/edit", "/employees/credentials"):
        assert user_client.get(url).status_code == 403, url
    for url in ("/employees/new", "/employees/101/edit", "/employees/101/delete",
                "/employees/101/login", "/employees/101/login/reset",
                "/employees/101/login/disabled"):
        assert post_form(user_client, url, {}, page="/account/password").status_code == 403, url


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=20))
def test_generated_passwords_pass_both_rules(username: str) -> None:
    from appliance.accounts import check_password
    from appliance.config.model import check_sip_password

    password = generate_password(username if len(username) >= 3 else "")
    assert len(password) == 16 and password.isalnum() and password.isascii()
    check_sip_password(password, username if len(username) >= 3 else "zz-none")
    check_password(password, username if len(username) >= 3 else "")


def test_the_qr_text_is_a_sip_uri_with_the_password() -> None:
    server = {"host": "192.168.1.10", "port": 5060, "transport": "UDP"}
    assert sip_qr_text("201-desk", "Abc23", server) == \
        "sip:201-desk:Abc23@192.168.1.10:5060;transport=udp"
    assert sip_qr_text("x", "y", {**server, "host": "fd00::1"}).startswith("sip:x:y@[fd00::1]:")
