"""The API tokens page: create (shown once, works against the API), revoke, roles, escaping,
hostile input; and the same flow in headless Chromium."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from appliance.accounts import list_api_tokens
from tests.support.web import ADMIN, browser_log_in, make_admin, post_form
from tests.web.conftest import shot

_SECRET = re.compile(r'id="token-value">(pbx_[A-Za-z0-9_-]+)<')


def api_status(client: FlaskClient, token: str, method: str = "GET",
               url: str = "/api/v1/config/employees", **kw: Any) -> int:
    """The API's status code for a request with this token."""
    return client.open(url, method=method, headers={"Authorization": f"Bearer {token}"},
                       **kw).status_code


def test_create_use_and_revoke(app: Flask, admin_client: FlaskClient) -> None:
    r = post_form(admin_client, "/tokens/", {"name": "amoCRM", "scopes[]": ["read"],
                                             "expires": "90"})
    assert r.status_code == 201
    token = _SECRET.search(r.text).group(1)  # type: ignore[union-attr]
    [meta] = list_api_tokens(app.extensions["pbx"].db)
    assert meta.name == "amoCRM" and meta.scopes == ("read",) and meta.expires_at
    assert token.startswith(meta.prefix)
    anonymous = app.test_client()
    assert api_status(anonymous, token) == 200
    assert api_status(anonymous, token, "POST", json={"extension": "150", "name": "X"}) == 403
    # Shown once: the list shows only its first characters.
    listing = admin_client.get("/tokens/")
    assert token not in listing.text and meta.prefix in listing.text
    assert "amoCRM" in listing.text
    r = post_form(admin_client, f"/tokens/{meta.id}/revoke", {}, page="/tokens/")
    assert r.status_code == 302
    assert api_status(anonymous, token) == 401
    assert "отозван" in admin_client.get("/tokens/").text
    row = app.extensions["pbx"].db.read().conn.execute(
        "SELECT actor, action, object FROM audit_log WHERE action = 'revoke_token'").fetchone()
    assert row == (ADMIN[0], "revoke_token", "amoCRM")


def test_errors_next_to_fields(admin_client: FlaskClient) -> None:
    r = post_form(admin_client, "/tokens/", {"name": "", "expires": "7"})
    assert r.status_code == 400
    assert 'id="e-name"' in r.text  # the name field's own error
    assert "Выберите хотя бы одно право." in r.text
    assert "Выберите один из предложенных сроков." in r.text


def test_a_user_gets_403_on_every_url(app: Flask, user_client: FlaskClient) -> None:
    assert user_client.get("/tokens/").status_code == 403
    assert user_client.post("/tokens/", data={"name": "x", "scopes[]": "read"}).status_code in (
        400, 403)  # without a CSRF token the form is refused before the role check
    r = post_form(user_client, "/tokens/", {"name": "x", "scopes[]": ["write"]},
                  page="/account/password")
    assert r.status_code == 403
    r = post_form(user_client, "/tokens/1/revoke", {}, page="/account/password")
    assert r.status_code == 403
    assert list_api_tokens(app.extensions["pbx"].db) == []


def test_markup_in_names_is_escaped(admin_client: FlaskClient) -> None:
    name = "<script>alert(1)</script>"
    r = post_form(admin_client, "/tokens/", {"name": name, "scopes[]": ["read"]})
    assert r.status_code == 201
    page = admin_client.get("/tokens/").text
    assert name not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_hostile_input(admin_client: FlaskClient) -> None:
    r = post_form(admin_client, "/tokens/", {"name": "x" * 100_000, "scopes[]": ["read"]})
    assert r.status_code == 400 and "100" in r.text
    r = post_form(admin_client, "/tokens/", {"name": "ok", "scopes[]": ["root", "read"]})
    assert r.status_code == 400
    assert post_form(admin_client, "/tokens/999/revoke", {},
                     page="/tokens/").status_code == 404
    assert post_form(admin_client, "/tokens/..%2F..%2Fetc/revoke", {},
                     page="/tokens/").status_code == 404
    assert admin_client.get("/tokens/abc/revoke").status_code in (404, 405)


def test_tokens_page_in_chromium(app: Flask, live_url: str, page: Any) -> None:
    make_admin(app)
    browser_log_in(page, live_url)
    page.goto(f"{live_url}/tokens/")
    page.fill("#f-name", "Bitrix24")
    page.check("input[name='scopes[]'][value=write]")
    page.select_option("#f-expires", "365")
    page.click("form[action='/tokens/'] button[type=submit]")
    token = page.text_content("#token-value")
    assert token and token.startswith("pbx_")
    shot(page, "tokens-created")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "tokens-created-phone")
    assert api_status(app.test_client(), token) == 200
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/tokens/")
    assert page.locator("table tbody tr").count() == 1
    assert token not in page.content()
    shot(page, "tokens-phone")
    page.once("dialog", lambda d: d.accept())
    page.click("table button.danger")
    page.wait_for_selector(".badge.bad")
    shot(page, "tokens-revoked")
    assert api_status(app.test_client(), token) == 401
