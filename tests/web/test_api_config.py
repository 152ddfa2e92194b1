"""REST API: configuration CRUD through ConfigEditor, per-field errors, hostile bodies (fuzzed)."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.accounts import create_api_token
from webui.apicore import MAX_BODY, ApiError, parse_json_body


@pytest.fixture
def api(app: Flask) -> tuple[FlaskClient, dict[str, str]]:
    """A client and the headers of a read+write token."""
    # No web user needed: the API never looks at sessions (and argon2 would cost a second).
    tok = create_api_token(app.extensions["pbx"].db, "crm", ["read", "write"])
    return app.test_client(), {"Authorization": f"Bearer {tok}"}


def test_employee_crud(app: Flask, api: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = api
    r = client.post("/api/v1/config/employees", headers=h, json={
        "extension": "150", "name": "Boris", "mobiles": ["+79161234567"],
        "devices": [{"username": "boris", "password": "Sekret-Sip-2024"}]})
    assert r.status_code == 201, r.json
    assert r.json["name"] == "Boris"
    assert "password" not in r.json["devices"][0]
    assert "ha1_md5" not in r.json["devices"][0]  # digests are never shown
    assert client.get("/api/v1/config/employees/150", headers=h).json["name"] == "Boris"
    # Replace: the device without a password keeps its stored digests.
    r = client.put("/api/v1/config/employees/150", headers=h, json={
        "extension": "150", "name": "Boris Petrov", "devices": [{"username": "boris"}]})
    assert r.status_code == 200, r.json
    stored = app.extensions["pbx"].editor.data()["employees"][0]
    assert stored["name"] == "Boris Petrov" and stored["devices"][0]["ha1_md5"]
    listed = client.get("/api/v1/config/employees", headers=h).json["items"]
    assert [e["extension"] for e in listed] == ["150"]
    # The audit log names the token.
    row = app.extensions["pbx"].db.read().conn.execute(
        "SELECT actor, token_id, action FROM audit_log WHERE area = 'employees' "
        "ORDER BY id DESC").fetchone()
    assert row[0] == "token:crm" and row[1] is not None and row[2] == "update"
    assert client.delete("/api/v1/config/employees/150", headers=h).status_code == 204
    assert client.get("/api/v1/config/employees/150", headers=h).status_code == 404
    assert app.extensions["pbx"].editor.items("employees") == []


def test_per_field_errors(api: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = api
    r = client.post("/api/v1/config/employees", headers=h, json={
        "extension": "1", "name": "", "devices": [{"username": "ok1"}, {"username": "b@d"}]})
    assert r.status_code == 422
    fields = r.json["fields"]
    assert "extension" in fields and "name" in fields
    assert any(k.startswith("devices[1]") for k in fields), fields
    assert r.json["error"] == "invalid" and r.json["message"]


def test_reference_errors_and_duplicates(api: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = api
    r = client.post("/api/v1/config/departments", headers=h, json={
        "key": "sales", "name": "Sales", "members": ["150"]})
    assert r.status_code == 422, r.json
    assert any("members" in k for k in r.json["fields"]), r.json
    ok = client.post("/api/v1/config/employees", headers=h,
                     json={"extension": "150", "name": "Boris"})
    assert ok.status_code == 201
    again = client.post("/api/v1/config/employees", headers=h,
                        json={"extension": "150", "name": "Other"})
    assert again.status_code == 422 and "extension" in again.json["fields"]
    dep = client.post("/api/v1/config/departments", headers=h, json={
        "key": "sales", "name": "Sales", "members": ["150"]})
    assert dep.status_code == 201, dep.json
    # Boris is still a member: deleting him is refused with a reason.
    r = client.delete("/api/v1/config/employees/150", headers=h)
    assert r.status_code == 422 and r.json["message"]


def test_settings_sections(app: Flask, api: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = api
    box = client.get("/api/v1/settings/box", headers=h)
    assert box.status_code == 200
    data = {**box.json, "name": "Head office"}
    r = client.put("/api/v1/settings/box", headers=h, json=data)
    assert r.status_code == 200, r.json
    assert app.extensions["pbx"].editor.settings("box")["name"] == "Head office"
    bad = client.put("/api/v1/settings/box", headers=h, json={**data, "language": "xx"})
    assert bad.status_code == 422 and "language" in bad.json["fields"]


@pytest.mark.parametrize(("body", "ctype", "status"), [
    (b"{", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"", "application/json", 400),
    (b"NaN", "application/json", 400),
    (b'{"name": "x"}', "text/plain", 415),
    (b'{"name": "x"}', None, 415),
    (b"extension=150&name=x", "application/x-www-form-urlencoded", 415),
    (b"\xff\xfe{}", "application/json", 400),
    (b"[" * 100000 + b"]" * 100000, "application/json", 400),
    (json.dumps({"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
                ).encode(), "application/json", 400),
    (json.dumps({"extension": "150", "name": "x" * 20000}).encode(), "application/json", 413),
    (b" " * (MAX_BODY + 10), "application/json", 413),
    (json.dumps({"extension": 150, "name": ["list"]}).encode(), "application/json", 422),
    (json.dumps({"extension": "150", "name": "B", "devices": "notalist"}).encode(),
     "application/json", 422),
])
def test_hostile_bodies(api: tuple[FlaskClient, dict[str, str]], body: bytes,
                        ctype: str | None, status: int) -> None:
    client, h = api
    headers = dict(h)
    if ctype is not None:
        headers["Content-Type"] = ctype
    r = client.post("/api/v1/config/employees", headers=headers, data=body)
    assert r.status_code == status, r.get_data(as_text=True)[:300]
    assert r.is_json and r.json["error"] and r.json["message"]


def test_markup_is_data_not_html(api: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = api
    name = "<script>alert(1)</script>"
    r = client.post("/api/v1/config/employees", headers=h, json={"extension": "151", "name": name})
    assert r.status_code == 201
    got = client.get("/api/v1/config/employees/151", headers=h)
    assert got.json["name"] == name and got.mimetype == "application/json"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(st.binary(max_size=300),
                     st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                                  | st.text(max_size=20),
                                  lambda c: st.lists(c, max_size=4)
                                  | st.dictionaries(st.text(max_size=8), c, max_size=4),
                                  max_leaves=30).map(
                         lambda v: json.dumps(v).encode())),
       ctype=st.sampled_from(["application/json", "application/merge-patch+json",
                              "text/plain", "", "application/json; charset=utf-8"]))
def test_parse_json_body_fuzz(raw: bytes, ctype: str) -> None:
    """The body parser returns data or raises ApiError with a 4xx, nothing else."""
    try:
        value = parse_json_body(raw, ctype)
    except ApiError as exc:
        assert 400 <= exc.status < 500 and exc.body()["message"]
    else:
        assert json.loads(raw.decode()) == value or value != value  # NaN-free equality


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(
    st.sampled_from(["extension", "name", "devices", "mobiles", "role", "email", "dnd", "x"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(
                     st.sampled_from(["username", "password", "kind", "a"]), c, max_size=3),
                 max_leaves=10), max_size=6))
def test_create_employee_fuzz(api: tuple[FlaskClient, dict[str, str]],
                              body: dict[str, object]) -> None:
    """Whatever the item, the API answers 201 or a 4xx JSON error, never a 5xx."""
    client, h = api
    r = client.post("/api/v1/config/employees", headers=h, json=body)
    assert r.status_code == 201 or 400 <= r.status_code < 500, r.get_data(as_text=True)[:300]
    assert r.is_json
    if r.status_code == 201:
        client.delete(f"/api/v1/config/employees/{r.json['extension']}", headers=h)


def test_a_huge_declared_body_is_refused_over_real_http(app: Flask, live_url: str) -> None:
    """A client announcing a gigabyte gets 413 at once; nothing waits for the body."""
    import http.client
    import urllib.parse

    tok = create_api_token(app.extensions["pbx"].db, "big", ["read", "write"])
    url = urllib.parse.urlsplit(live_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("POST", "/api/v1/config/employees")
        conn.putheader("Authorization", f"Bearer {tok}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(10**9))
        conn.endheaders(b'{"extension": "150"')
        r = conn.getresponse()
        assert r.status == 413
        assert json.loads(r.read())["error"] == "too_large"
    finally:
        conn.close()
