"""Security sweeps over every page: markup in names is escaped, roles hold by URL, no shell.

These walk the app's URL map, so every page an area adds is covered without listing it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from appliance.config.edit import Actor

MARK = "<script>alert(1)</script>"
ROOT = Path(__file__).resolve().parents[2]
# Values for URL arguments, by argument name, pointing at the items made below.
ARGS = {"key": "evil", "extension": "101", "number": "+79161234567", "username": "101",
        "code": "ru", "name": "evil"}


def _fill(app: Flask) -> None:
    ed = app.extensions["pbx"].editor
    who = Actor("test")
    ed.set_settings("box", {"name": MARK}, actor=who)
    ed.save("employees", {"extension": "101", "name": MARK, "email": "a@b.test",
                          "devices": [{"username": "101", "label": MARK,
                                       "password": "Kx7-desk-alpha"}]}, key=None, actor=who)
    ed.save("departments", {"key": "evil", "name": MARK, "members": ["101"]}, key=None,
            actor=who)
    ed.save("voicemail_boxes", {"key": "evil", "name": MARK, "owner": "101"}, key=None,
            actor=who)
    ed.save("blacklist", {"number": "+79161234567", "reason": MARK}, key=None, actor=who)
    ed.save("flows", {"key": "evil", "name": MARK, "description": MARK,
                      "branches": [{"to": {"department": "evil"}}]}, key=None, actor=who)


def _get_urls(app: Flask) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in ("static", "auth.logout"):
            continue
        if not set(rule.arguments) <= set(ARGS):
            continue
        try:
            with app.test_request_context():
                from flask import url_for

                urls.append(url_for(rule.endpoint, **{a: ARGS[a] for a in rule.arguments}))
        except Exception:  # a converter refusing our value: not this page
            continue
    return sorted(set(urls))


def test_markup_in_names_is_escaped_on_every_page(app: Flask, admin_client: FlaskClient) -> None:
    _fill(app)
    urls = _get_urls(app)
    assert len(urls) >= 3
    for url in urls:
        response = admin_client.get(url)
        # The health check says 503 while no engine runs, as it should.
        assert response.status_code < 500 or url == "/api/v1/health", (url, response.status_code)
        if response.mimetype == "text/html":
            assert MARK not in response.text, url
            assert "<script>alert" not in response.text, url


def test_a_user_gets_403_on_every_admin_page(app: Flask, user_client: FlaskClient) -> None:
    checked = 0
    for url in _get_urls(app):
        endpoint = app.url_map.bind("localhost").match(url.split("?")[0])[0]
        if getattr(app.view_functions[endpoint], "pbx_admin_only", False):
            assert user_client.get(url).status_code == 403, url
            checked += 1
    assert checked >= 1


def test_no_code_hands_input_to_a_shell() -> None:
    offenders = []
    for folder in ("appliance", "hw", "webui"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "shell" and not (
                        isinstance(node.value, ast.Constant) and node.value.value is False):
                    offenders.append(f"{path}:{node.value.lineno} shell=")
                if isinstance(node, ast.Attribute) and node.attr in ("system", "popen") and \
                        isinstance(node.value, ast.Name) and node.value.id == "os":
                    offenders.append(f"{path}:{node.lineno} os.{node.attr}")
    assert not offenders, offenders
    # And templates never mark user data safe (`|safe` only on our own rendered SVG/QR).
    for path in (ROOT / "webui" / "templates").rglob("*.html"):
        for match in re.finditer(r"\{\{([^}]*)\|\s*safe", path.read_text(encoding="utf-8")):
            assert re.search(r"svg|qr|diagram|chart", match.group(1), re.I), (path, match.group(0))
