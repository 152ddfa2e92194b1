"""The minimal web UI: app factory, status page and health endpoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from appliance.control import ControlServer, Request
from appliance.settings import Settings
from webui import create_app


@pytest.fixture
def client(settings: Settings) -> FlaskClient:
    return create_app(settings, TESTING=True).test_client()


@pytest.fixture
def engine_status(settings: Settings) -> Iterator[dict[str, Any]]:
    """A control socket answering /status as the engine does, on its own loop."""
    payload: dict[str, Any] = {
        "state": "ready", "uptime_s": 12.5, "reloads": 0, "calls": 3,
        "engine": {"pjsua2_version": "2.17", "legs": 6, "healthy": True},
    }
    loop = asyncio.new_event_loop()
    server = ControlServer(settings.control_socket)

    async def status(_req: Request) -> dict[str, Any]:
        return payload

    server.route("GET", "/status", status)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    yield payload
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_engine_down(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Движок не отвечает" in page.get_data(as_text=True)
    health = client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.get_json()["engine"] == "down"


def test_engine_up(client: FlaskClient, engine_status: dict[str, Any]) -> None:
    page = client.get("/").get_data(as_text=True)
    assert "Станция работает" in page and "pjsua2 2.17" in page
    health = client.get("/api/v1/health")
    assert health.status_code == 200
    assert health.get_json() == {"web": "ok", "engine": "ready", "calls": 3}
