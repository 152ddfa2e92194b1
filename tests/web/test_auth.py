"""First-run wizard, logging in, sessions, throttling, CSRF and roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.accounts import has_web_users
from tests.support.web import ADMIN, USER_PASSWORD, csrf_token, log_in, make_admin, post_form
from tests.web.conftest import FAST_HASHER
from webui.sessions import COOKIE, MAX_FAILURES_PER_USER

WIZARD = {"username": "boss", "password": "Zvonok-Ofis-2026", "repeat": "Zvonok-Ofis-2026",
          "name": "Рога и копыта", "time_zone": "Asia/Novosibirsk", "country": "RU",
          "language": "ru"}


def test_a_fresh_box_sends_every_page_to_the_wizard(client: FlaskClient) -> None:
    for url in ("/", "/login", "/account/password"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/setup")
    assert client.get("/setup").status_code == 200


def test_the_wizard_creates_the_admin_and_the_box_settings(app: Flask, client: FlaskClient
                                                           ) -> None:
    response = post_form(client, "/setup", WIZARD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/setup/next")
    assert client.get("/setup/next").status_code == 200  # logged in by the wizard
    box = app.extensions["pbx"].editor.settings("box")
    assert box["name"] == "Рога и копыта" and box["time_zone"] == "Asia/Novosibirsk"
    row = app.extensions["pbx"].db.read().conn.execute(
        "SELECT password_hash, role FROM web_users WHERE username = 'boss'").fetchone()
    assert row[0].startswith("$argon2id$") and row[1] == "administrator"
    # Once set up, the wizard cannot be run again to make a second administrator.
    again = post_form(client, "/setup", {**WIZARD, "username": "evil"}, page="/setup/next")
    assert again.status_code == 409
    assert app.extensions["pbx"].db.read().conn.execute(
        "SELECT count(*) FROM web_users").fetchone()[0] == 1


def test_the_wizard_refuses_weak_passwords_and_bad_fields(app: Flask, client: FlaskClient
                                                          ) -> None:
    weak = post_form(client, "/setup", {**WIZARD, "password": "admin12345",
                                        "repeat": "admin12345"})
    assert weak.status_code == 200 and "password" in weak.text.lower()
    zone = post_form(client, "/setup", {**WIZARD, "time_zone": "Mars/Olympus"})
    assert zone.status_code == 200 and 'aria-invalid="true"' in zone.text
    differ = post_form(client, "/setup", {**WIZARD, "repeat": "something-else-1"})
    assert differ.status_code == 200
    assert not has_web_users(app.extensions["pbx"].db)


def test_csrf_is_refused(app: Flask, client: FlaskClient) -> None:
    no_token = client.post("/setup", data=WIZARD)
    assert no_token.status_code == 400
    forged = client.post("/setup", data={**WIZARD, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert not has_web_users(app.extensions["pbx"].db)


def test_login_logout_and_the_session_cookie(app: Flask, client: FlaskClient) -> None:
    make_admin(app)
    response = log_in(client, *ADMIN)
    cookie = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith(COOKIE + "="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert client.get("/status").status_code == 200
    token = session_cookie.split(";")[0].split("=", 1)[1]
    post_form(client, "/logout", {}, page="/status")
    assert client.get("/status").status_code == 302
    # The old cookie is dead on the server, not just deleted in this browser.
    other = app.test_client()
    other.set_cookie(COOKIE, token)
    assert other.get("/status").status_code == 302


def test_no_session_fixation(app: Flask) -> None:
    make_admin(app)
    victim = app.test_client()
    victim.set_cookie(COOKIE, "attacker-chosen-value")
    response = log_in(victim, *ADMIN)
    new = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "attacker-chosen-value" not in new
    attacker = app.test_client()
    attacker.set_cookie(COOKIE, "attacker-chosen-value")
    assert attacker.get("/status").status_code == 302


def test_login_brute_force_is_throttled(app: Flask, client: FlaskClient) -> None:
    make_admin(app)
    for _ in range(MAX_FAILURES_PER_USER):
        bad = post_form(client, "/login", {"username": ADMIN[0], "password": "guess-guess-1"})
        assert bad.status_code == 401
    locked = post_form(client, "/login", {"username": ADMIN[0], "password": ADMIN[1]})
    assert locked.status_code == 429 and locked.headers["Retry-After"]
    assert COOKIE + "=" not in " ".join(locked.headers.getlist("Set-Cookie"))


def test_throttling_ends_after_the_window(settings) -> None:  # type: ignore[no-untyped-def]
    from webui import create_app

    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    app = create_app(settings, TESTING=True, PBX_CLOCK=lambda: now[0],
                     PBX_PASSWORD_HASHER=FAST_HASHER)
    try:
        make_admin(app)
        c = app.test_client()
        for _ in range(MAX_FAILURES_PER_USER):
            post_form(c, "/login", {"username": ADMIN[0], "password": "guess-guess-1"})
        assert post_form(c, "/login", {"username": ADMIN[0],
                                       "password": ADMIN[1]}).status_code == 429
        now[0] += timedelta(minutes=16)
        assert post_form(c, "/login", {"username": ADMIN[0],
                                       "password": ADMIN[1]}).status_code == 302
    finally:
        app.extensions["pbx"].db.close()


def test_idle_sessions_expire(settings) -> None:  # type: ignore[no-untyped-def]
    from webui import create_app

    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    app = create_app(settings, TESTING=True, PBX_CLOCK=lambda: now[0],
                     PBX_PASSWORD_HASHER=FAST_HASHER)
    try:
        make_admin(app)
        c = app.test_client()
        log_in(c, *ADMIN)
        now[0] += timedelta(hours=11)
        assert c.get("/status").status_code == 200
        now[0] += timedelta(hours=13)
        assert c.get("/status").status_code == 302
    finally:
        app.extensions["pbx"].db.close()


def test_password_change_logs_out_other_sessions(app: Flask) -> None:
    make_admin(app)
    laptop, phone = app.test_client(), app.test_client()
    log_in(laptop, *ADMIN)
    log_in(phone, *ADMIN)
    new = "Novyi-Parol-Dlinnyi-9"
    response = post_form(laptop, "/account/password",
                         {"current": ADMIN[1], "new": new, "repeat": new})
    assert response.status_code == 302
    assert laptop.get("/status").status_code == 200
    assert phone.get("/status").status_code == 302
    fresh = app.test_client()
    log_in(fresh, ADMIN[0], new)


def test_login_redirects_only_within_the_box(app: Flask, client: FlaskClient) -> None:
    make_admin(app)
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example/", "/"),
                             ("/account/password", "/account/password")):
        token = csrf_token(client, "/login")
        response = client.post(f"/login?next={target}", data={
            "csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]})
        assert response.headers["Location"] == expected


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/setup")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("lang,text", [("ru", "Добро пожаловать"), ("en", "Welcome")])
def test_the_wizard_speaks_both_languages(client: FlaskClient, lang: str, text: str) -> None:
    assert text in client.get(f"/setup?lang={lang}").text


def test_a_user_gets_403_on_the_password_page_of_nobody_else(app: Flask,
                                                               user_client: FlaskClient) -> None:
    # The user may change their own password and nothing else here; admin pages are
    # checked per area in each area's tests.
    assert user_client.get("/account/password").status_code == 200
    assert USER_PASSWORD
