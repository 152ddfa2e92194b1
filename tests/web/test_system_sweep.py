"""Every view of the lines and system areas, found in the URL map, refuses a user by URL."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.support.web import csrf_token

AREAS = ("lines", "sms", "settings", "backup", "audit", "security")
USER_VIEWS = {"sms.send"}  # a user sends SMS (and sees them on mysms.mine)
VALUES = {"key": "sim1", "kind": "sim", "section": "crm"}


def test_a_user_gets_403_on_every_admin_view(app: Flask, user_client: FlaskClient) -> None:
    token = csrf_token(user_client)
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in AREAS or rule.endpoint in USER_VIEWS:
            continue
        _domain, url = rule.build({name: VALUES[name] for name in rule.arguments})
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            if method == "GET":
                response = user_client.get(url)
            else:
                response = user_client.post(url, data={"csrf_token": token})
            assert response.status_code == 403, (method, url, response.status_code)
            checked.append(rule.endpoint)
    assert {e.split(".")[0] for e in checked} == set(AREAS)
    assert len(checked) >= 28
