"""Web users: reset (shown once), disable/enable, delete; the last admin and oneself kept."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.accounts import create_web_user, list_web_users, verify_web_user
from tests.support.web import ADMIN, USER_PASSWORD, post_form
from tests.web.people_support import english

SECRET = re.compile(r'data-secret>([A-Za-z0-9]{16})<')


@pytest.fixture(autouse=True)
def _english(app: Flask) -> None:
    english(app)


def _hasher(app: Flask) -> Any:
    return app.extensions["pbx"].hasher


def _ids(app: Flask) -> dict[str, int]:
    return {u.username: u.id for u in list_web_users(app.extensions["pbx"].db)}


def test_reset_disable_enable_delete(app: Flask, admin_client: FlaskClient,
                                     user_client: FlaskClient) -> None:
    db = app.extensions["pbx"].db
    anna = _ids(app)["anna"]
    page = admin_client.get("/users/")
    assert "anna" in page.text and "101" in page.text
    response = post_form(admin_client, f"/users/{anna}/password", {}, page="/users/")
    assert response.headers["Location"].endswith("/users/password")
    shown = admin_client.get("/users/password")
    assert shown.headers["Cache-Control"] == "no-store"
    (password,) = SECRET.findall(shown.text)
    assert verify_web_user(db, "anna", password, hasher=_hasher(app)) is not None
    assert verify_web_user(db, "anna", USER_PASSWORD, hasher=_hasher(app)) is None
    assert password not in admin_client.get("/users/password").text
    # Her old session ended with the reset.
    assert user_client.get("/mine/").status_code == 302
    post_form(admin_client, f"/users/{anna}/disabled/on", {}, page="/users/")
    assert verify_web_user(db, "anna", password, hasher=_hasher(app)) is None
    post_form(admin_client, f"/users/{anna}/disabled/off", {}, page="/users/")
    assert verify_web_user(db, "anna", password, hasher=_hasher(app)) is not None
    post_form(admin_client, f"/users/{anna}/delete", {}, page="/users/")
    assert "anna" not in _ids(app)
    assert post_form(admin_client, f"/users/{anna}/delete", {}, page="/users/"
                     ).status_code == 404


def test_the_last_admin_and_oneself_are_protected(app: Flask,
                                                  admin_client: FlaskClient) -> None:
    db = app.extensions["pbx"].db
    me = _ids(app)[ADMIN[0]]
    for url in (f"/users/{me}/disabled/on", f"/users/{me}/delete"):
        response = post_form(admin_client, url, {}, page="/users/")
        assert response.status_code == 302
        assert "your own account" in admin_client.get("/users/").text
    create_web_user(db, "second", "Vtoroy-Admin-77", "administrator", hasher=_hasher(app))
    second = _ids(app)["second"]
    post_form(admin_client, f"/users/{second}/delete", {}, page="/users/")
    assert "second" not in _ids(app)
    # A disabled administrator does not count as the spare one.
    create_web_user(db, "third", "Tretiy-Admin-77", "administrator", hasher=_hasher(app))
    third = _ids(app)["third"]
    post_form(admin_client, f"/users/{third}/disabled/on", {}, page="/users/")
    assert [u.disabled for u in list_web_users(db) if u.username == "third"] == [True]
    assert verify_web_user(db, *ADMIN, hasher=_hasher(app)) is not None


def test_the_last_active_administrator_cannot_be_removed_by_another_admin(
        app: Flask, admin_client: FlaskClient) -> None:
    from webui.areas.users import refusal

    db = app.extensions["pbx"].db
    create_web_user(db, "other", "Drugoy-Admin-77", "administrator", hasher=_hasher(app))
    users = list_web_users(db)
    admin = next(u for u in users if u.username == ADMIN[0])
    other = next(u for u in users if u.username == "other")
    assert refusal(admin, users, other) is None
    post_form(admin_client, f"/users/{other.id}/disabled/on", {}, page="/users/")
    users = list_web_users(db)
    other = next(u for u in users if u.username == "other")
    admin = next(u for u in users if u.username == ADMIN[0])
    assert refusal(admin, users, other) == "This is the last active administrator."


def test_markup_escaped_and_users_refused(app: Flask, admin_client: FlaskClient,
                                          user_client: FlaskClient) -> None:
    anna = _ids(app)["anna"]
    for url in ("/users/", "/users/password"):
        assert user_client.get(url).status_code == 403
    for url in (f"/users/{anna}/password", f"/users/{anna}/disabled/on",
                f"/users/{anna}/delete"):
        assert post_form(user_client, url, {}, page="/account/password").status_code == 403
