"""Web UI test helpers: a client that posts forms with their CSRF token, users, a live server."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cheroot import wsgi
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from appliance.accounts import create_first_admin, create_web_user

ADMIN = ("admin", "Kor0va-Moloko-7")
USER_PASSWORD = "Sobaka-Lae-42x"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str = "/account/password") -> str:
    """The CSRF token of this client's session, read from a page like a browser would."""
    page = client.get(url)
    match = _TOKEN.search(page.text)
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1) or match.group(2)


def post_form(client: FlaskClient, url: str, data: dict[str, Any], *,
              page: str | None = None, **kwargs: Any) -> TestResponse:
    """POST `data` to `url` with the token from `page` (default: `url` itself)."""
    token = csrf_token(client, page or url)
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def log_in(client: FlaskClient, username: str, password: str) -> TestResponse:
    """Log in through the login form; asserts it worked."""
    response = post_form(client, "/login", {"username": username, "password": password},
                         page="/login")
    assert response.status_code == 302, response.text[:500]
    return response


def make_admin(app: Flask) -> None:
    """The first administrator (as the wizard would make)."""
    ctx = app.extensions["pbx"]
    create_first_admin(ctx.db, *ADMIN, hasher=ctx.hasher)


def make_user(app: Flask, username: str, extension: str, *, name: str = "Anna") -> None:
    """An employee with that extension and a web user of role `user` linked to it."""
    from appliance.config.edit import Actor

    ctx = app.extensions["pbx"]
    try:
        ctx.editor.item("employees", extension)
    except KeyError:
        ctx.editor.save("employees", {"extension": extension, "name": name}, key=None,
                        actor=Actor("test"))
    create_web_user(ctx.db, username, USER_PASSWORD, "user", extension, hasher=ctx.hasher)


@contextmanager
def live_server(app: Flask, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` over real HTTP on a free loopback port; yields the base URL."""
    server = wsgi.Server((host, 0), app, numthreads=8, server_name="pbx-test")
    server.prepare()
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name="live-web", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)


class FakeEngine:
    """A control socket answering like the engine, with canned or computed replies.

    `route("GET", "/lines", [...])` or `route("POST", "/calls/{id}/hangup", fn)` where `fn`
    takes the control Request; `requests` records every call (method, path, body).
    """

    def __init__(self, socket_path: Any) -> None:
        import asyncio

        from appliance.control import ControlServer

        self.requests: list[tuple[str, str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._server = ControlServer(socket_path)
        self._thread = threading.Thread(target=self._run, name="fake-engine", daemon=True)
        self._started = threading.Event()

    def route(self, method: str, path: str, reply: Any) -> None:
        """Answer `method path` with `reply` (a value, or a callable taking the Request)."""
        async def handler(request: Any) -> Any:
            self.requests.append((method, request.path, request.body))
            return reply(request) if callable(reply) else reply

        self._server.route(method, path, handler)

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.start())
        self._started.set()
        self._loop.run_forever()

    def start(self) -> FakeEngine:
        """Start answering."""
        self._thread.start()
        assert self._started.wait(5)
        return self

    def stop(self) -> None:
        """Stop answering and close the socket."""
        import asyncio

        asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def browser_log_in(page: Any, base_url: str, username: str = ADMIN[0],
                   password: str = ADMIN[1], *, lang: str | None = None) -> None:
    """Log in through the login page in a Playwright tab; waits until the start page shows."""
    page.goto(f"{base_url}/login" + (f"?lang={lang}" if lang else ""))
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
