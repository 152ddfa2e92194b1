"""REST API: bearer tokens, scopes, rate limits, JSON errors, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.accounts import create_api_token, list_api_tokens, revoke_api_token
from tests.support.web import make_admin


def token(app: Flask, *scopes: str, name: str = "crm") -> str:
    """A new API token with these scopes."""
    return create_api_token(app.extensions["pbx"].db, name, scopes or ("read", "write"))


def auth(tok: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A client for the API on a box that went through its first run."""
    make_admin(app)
    return app.test_client()


def test_no_token_is_401_with_www_authenticate(api: FlaskClient) -> None:
    r = api.get("/api/v1/config/employees")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json == {"error": "unauthorized", "message": r.json["message"]}


@pytest.mark.parametrize("header", ["Bearer pbx_" + "x" * 40, "Bearer nonsense", "Basic abc",
                                    "Bearer", "bearer  " + "é" * 5])
def test_bad_token_is_401(api: FlaskClient, header: str) -> None:
    r = api.get("/api/v1/config/employees", headers={"Authorization": header})
    assert r.status_code == 401
    assert 'realm="pbx"' in r.headers["WWW-Authenticate"]
    assert r.is_json


def test_revoked_and_expired_tokens_are_refused(app: Flask, api: FlaskClient) -> None:
    from datetime import UTC, datetime, timedelta

    tok = token(app, "read")
    assert api.get("/api/v1/config/employees", headers=auth(tok)).status_code == 200
    (meta,) = [t for t in list_api_tokens(app.extensions["pbx"].db) if t.name == "crm"]
    revoke_api_token(app.extensions["pbx"].db, meta.id)
    r = api.get("/api/v1/config/employees", headers=auth(tok))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    old = create_api_token(app.extensions["pbx"].db, "old", ["read"],
                           expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert api.get("/api/v1/config/employees", headers=auth(old)).status_code == 401


def test_session_cookie_is_not_enough(admin_client: FlaskClient) -> None:
    """A logged-in browser has no access to the API: only tokens count (no CSRF there)."""
    r = admin_client.get("/api/v1/config/employees")
    assert r.status_code == 401
    r = admin_client.post("/api/v1/config/employees", json={"extension": "150", "name": "X"})
    assert r.status_code == 401


def test_read_scope_cannot_write(app: Flask, api: FlaskClient) -> None:
    tok = token(app, "read")
    r = api.post("/api/v1/config/employees", headers=auth(tok),
                 json={"extension": "150", "name": "Boris"})
    assert r.status_code == 403
    assert r.json["error"] == "insufficient_scope"
    assert 'scope="write"' in r.headers["WWW-Authenticate"]
    assert app.extensions["pbx"].editor.items("employees") == []


def test_write_scope_without_read_cannot_list(app: Flask, api: FlaskClient) -> None:
    tok = token(app, "write")
    assert api.get("/api/v1/config/employees", headers=auth(tok)).status_code == 403
    r = api.post("/api/v1/config/employees", headers=auth(tok),
                 json={"extension": "150", "name": "Boris"})
    assert r.status_code == 201


def test_rate_limit_per_token(app: Flask, api: FlaskClient) -> None:
    app.config["PBX_API_RATE_LIMIT"] = (3, 60.0)
    first, second = token(app, "read", name="a"), token(app, "read", name="b")
    codes = [api.get("/api/v1/config/employees", headers=auth(first)).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.get("/api/v1/config/employees", headers=auth(first))
    assert r.json["error"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    # Another token has its own window.
    assert api.get("/api/v1/config/employees", headers=auth(second)).status_code == 200


def test_rate_limiter_window_with_fake_clock() -> None:
    from webui.apicore import RateLimiter

    now = [100.0]
    limiter = RateLimiter(2, 10.0, lambda: now[0])
    assert limiter.allow("t") == 0.0 and limiter.allow("t") == 0.0
    assert limiter.allow("t") == pytest.approx(10.0)
    now[0] = 105.0
    assert limiter.allow("t") == pytest.approx(5.0)
    now[0] = 110.0
    assert limiter.allow("t") == 0.0


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/v1/nothing-here"), ("GET", "/api/v1/config/nothing"),
    ("GET", "/api/v1/config/employees/999"), ("PATCH", "/api/v1/config/employees"),
    ("GET", "/api/v1/settings/nothing"), ("GET", "/api/v1/config/employees/..%2F..%2Fetc"),
])
def test_errors_are_json(app: Flask, api: FlaskClient, method: str, url: str) -> None:
    r = api.open(url, method=method, headers=auth(token(app)))
    assert r.status_code in (404, 405)
    assert r.is_json and isinstance(r.json["error"], str) and r.json["message"]


def test_openapi_document(api: FlaskClient) -> None:
    r = api.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json
    assert doc["openapi"].startswith("3.1")
    # Valid against the OpenAPI 3.1 meta-schema (the one schemathesis itself checks with).
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    assert [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(doc)] == []
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/api/v1/config/employees/{key}" in doc["paths"]
    assert "/api/v1/settings/box" in doc["paths"]
    assert "Employee-Input" in doc["components"]["schemas"] or \
        "Employee" in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            assert "default" in op["responses"], (path, method)
            assert "401" in op["responses"], (path, method)


def test_rate_limiter_counts_exactly_under_threads() -> None:
    """The server answers on several threads: the window never lets more through."""
    import threading

    from webui.apicore import RateLimiter

    limiter = RateLimiter(50, 60.0, lambda: 1.0)
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait(5)
        for _ in range(20):
            allowed.append(limiter.allow("t") == 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(allowed) == 160 and allowed.count(True) == 50
