"""Every admin view of the people areas, found in the URL map, refuses a user by URL."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter

from tests.support.web import csrf_token

AREAS = ("employees", "departments", "voicemail", "blacklist", "users", "mine")


def _url(app: Flask, rule: object) -> str:
    values: dict[str, object] = {}
    for name, converter in rule._converters.items():  # type: ignore[attr-defined]
        if isinstance(converter, IntegerConverter):
            values[name] = 1
        elif name == "state":
            values[name] = "on"
        else:
            values[name] = "101"
    _domain, path = rule.build(values)  # type: ignore[attr-defined]
    return str(path)


def test_a_user_gets_403_on_every_admin_view(app: Flask, user_client: FlaskClient) -> None:
    token = csrf_token(user_client)
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in AREAS:
            continue
        if not getattr(app.view_functions[rule.endpoint], "pbx_admin_only", False):
            continue
        url = _url(app, rule)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            if method == "GET":
                response = user_client.get(url)
            else:
                response = user_client.post(url, data={"csrf_token": token})
            assert response.status_code == 403, (method, url, response.status_code)
            checked.append((method, rule.endpoint))
    endpoints = {e for _m, e in checked}
    # Every admin area is in the sweep; the user's own pages are not admin views.
    assert {e.split(".")[0] for e in endpoints} == {"employees", "departments", "voicemail",
                                                     "blacklist", "users"}
    assert "voicemail.messages" not in endpoints and "mine.index" not in endpoints
    assert len(checked) >= 30
