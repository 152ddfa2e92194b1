"""The start page and the health endpoint, with the engine down and up."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.web import FakeEngine


def test_engine_down(admin_client: FlaskClient) -> None:
    page = admin_client.get("/status?lang=ru")
    assert page.status_code == 200
    assert "Движок станции не отвечает" in page.text
    health = admin_client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.get_json()["engine"] == "down"


def test_engine_up(admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/status?lang=en").text
    assert "The box is running" in page
    health = admin_client.get("/api/v1/health")
    assert health.status_code == 200
    assert health.get_json() == {"web": "ok", "engine": "ready", "calls": 0}


def test_health_needs_no_login(client: FlaskClient, fake_engine: FakeEngine) -> None:
    assert client.get("/api/v1/health").status_code == 200


def test_the_start_page_is_the_dashboard_for_admins_and_my_page_for_users(
        admin_client: FlaskClient, user_client: FlaskClient) -> None:
    assert admin_client.get("/").headers["Location"] == "/dashboard/"
    assert user_client.get("/").headers["Location"] == "/mine/"


def test_an_unknown_api_path_answers_json_even_before_the_wizard(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.is_json
