"""Fixtures for the web UI: an app on a temporary box, clients by role, Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Settings
from tests.support.web import (
    ADMIN,
    USER_PASSWORD,
    FakeEngine,
    live_server,
    log_in,
    make_admin,
    make_user,
)

# argon2id still, with small parameters: the suite logs in hundreds of times.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)
SCREENSHOTS = Path(os.environ.get("PBX_SCREENSHOTS", "test-output/screenshots"))


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The web app on the test box's data dir (no engine running unless a test starts one)."""
    from webui import create_app

    application = create_app(settings, TESTING=True, PBX_PASSWORD_HASHER=FAST_HASHER)
    try:
        yield application
    finally:
        application.extensions["pbx"].db.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An anonymous browser."""
    return app.test_client()


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    """A browser logged in as the administrator."""
    make_admin(app)
    c = app.test_client()
    log_in(c, *ADMIN)
    return c


@pytest.fixture
def user_client(app: Flask, admin_client: FlaskClient) -> FlaskClient:
    """A browser logged in as `anna`, role user, extension 101 (an admin exists too)."""
    make_user(app, "anna", "101")
    c = app.test_client()
    log_in(c, "anna", USER_PASSWORD)
    return c


@pytest.fixture
def fake_engine(settings: Settings) -> Iterator[FakeEngine]:
    """A control socket where the engine's would be; tests add the routes they need."""
    engine = FakeEngine(settings.control_socket)
    engine.route("GET", "/status", {
        "state": "ready", "uptime_s": 12.5, "reloads": 0, "calls": 0,
        "engine": {"pjsua2_version": "2.17", "legs": 0, "healthy": True},
        "sip": {"registrations": 0}})
    engine.route("POST", "/reload", {"reloaded": True})
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on loopback."""
    with live_server(app) as url:
        yield url


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download).

    One per test: Playwright's sync API keeps an event loop of its own in the main thread
    while it runs, and an async test that followed a longer-lived browser never ran.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is missing: `make test` installs it (Makefile APT_TEST)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser tab; a screenshot of its last state is kept in test-output/."""
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # a closed page has nothing to show
            tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-last.png"),
                           full_page=True)
        context.close()


def shot(tab: Any, name: str) -> Path:
    """Keep a screenshot under test-output/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path
