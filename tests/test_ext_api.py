"""Extensions over the control API: a running box, real phones, hostile and fuzzed bodies."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from appliance.box import Box
from appliance.config.yamlio import import_yaml
from appliance.control import BadRequest, ControlError, Request
from appliance.control import call as control
from appliance.db import Database
from appliance.settings import Settings
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess

pytestmark = pytest.mark.timeout(180)

OFFICE = """\
version: 1
employees:
  - extension: "101"
    name: Иван Петров
    devices: [{username: "101", password: "Kx7-desk-alpha"}]
"""


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    return start_box(OFFICE)


def desk_phone(settings: Settings, user: str, password: str) -> PhoneProcess:
    return PhoneProcess(free_port(), free_port_block(20), "--user", user,
                        "--password", password,
                        "--registrar", f"127.0.0.1:{settings.sip_port}")


def registered(event: dict[str, Any]) -> bool:
    return event.get("event") == "reg" and event.get("code") == 200 and bool(event.get("active"))


def refused(settings: Settings, user: str, password: str) -> None:
    """A phone with these credentials is turned down.

    The phone is killed rather than quit: quitting would un-REGISTER with the same bad
    credentials, and every failure counts towards the edge's ban of 127.0.0.1.
    """
    phone = desk_phone(settings, user, password)
    try:
        event = phone.wait(lambda e: e.get("event") == "reg")
        assert event["code"] in (401, 403) and not event["active"], event
    finally:
        phone.proc.kill()
        phone.close()


def api(settings: Settings, method: str, path: str, body: Any = None) -> Any:
    return control(settings.control_socket, method, path, body)


def test_phones_use_new_extensions_and_passwords_without_a_restart(
        box: EngineProcess, settings: Settings) -> None:
    added = api(settings, "POST", "/extensions", {"extension": "105", "name": "Анна"})
    assert added["extension"] == "105" and added["username"] == "105"
    assert added["realm"] == "office-pbx"
    first = added["password"]
    listed = api(settings, "GET", "/extensions")
    assert [(e["extension"], [d["username"] for d in e["devices"]]) for e in listed] == [
        ("101", ["101"]), ("105", ["105"])]

    anna = desk_phone(settings, "105", first)
    try:
        anna.wait(registered)
        assert api(settings, "GET", "/status")["sip"]["registrations"] == 1
        changed = api(settings, "POST", "/extensions/passwd", {"username": "105"})
        # The phone holding the old password no longer receives calls.
        assert api(settings, "GET", "/status")["sip"]["registrations"] == 0
    finally:
        anna.proc.kill()  # quitting would un-REGISTER with the old password: a failure
        anna.close()
    second = changed["password"]
    assert second != first and changed == {"username": "105", "changed": True,
                                            "password": second}
    refused(settings, "105", first)
    fresh = desk_phone(settings, "105", second)
    try:
        fresh.wait(registered)
    finally:
        fresh.close()

    # A chosen password is not echoed back.
    chosen = api(settings, "POST", "/extensions/passwd",
                 {"username": "105", "password": "Green-lamp-77"})
    assert chosen == {"username": "105", "changed": True}
    actions = sqlite3.connect(settings.db_path).execute(
        "SELECT actor, action, object FROM audit_log WHERE area = 'extensions' ORDER BY id"
    ).fetchall()
    assert actions == [("control-api", "add", "105"), ("control-api", "set_password", "105"),
                       ("control-api", "set_password", "105")]


def test_a_removed_extension_cannot_register_any_more(box: EngineProcess,
                                                       settings: Settings) -> None:
    # Its own engine: each refused phone counts several failures towards a ban of 127.0.0.1.
    added = api(settings, "POST", "/extensions",
                {"extension": "106", "name": "Олег", "username": "oleg",
                 "password": "Brown-table-93", "role": "administrator",
                 "email": "oleg@example.ru", "auth": "md5"})
    assert added == {"extension": "106", "name": "Олег", "username": "oleg",
                     "realm": "office-pbx"}
    oleg = desk_phone(settings, "oleg", "Brown-table-93")
    try:
        oleg.wait(registered)
        removed = api(settings, "POST", "/extensions/remove", {"extension": "106"})
        assert api(settings, "GET", "/status")["sip"]["registrations"] == 0
    finally:
        oleg.proc.kill()
        oleg.close()
    assert removed == {"extension": "106", "name": "Олег", "devices": ["oleg"], "left": []}
    refused(settings, "oleg", "Brown-table-93")
    assert [e["extension"] for e in api(settings, "GET", "/extensions")] == ["101"]
    assert api(settings, "GET", "/status")["sip"]["bans"] == 0


HOSTILE: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/extensions", None, 400, "must be a JSON object"),
    ("POST", "/extensions", ["105", "Anna"], 400, "must be a JSON object"),
    ("POST", "/extensions", {"extension": "105"}, 400, "missing field 'name'"),
    ("POST", "/extensions", {"extension": 105, "name": "A"}, 400, "'extension' must be a str"),
    ("POST", "/extensions", {"extension": "105", "name": {"x": 1}}, 400, "must be a string"),
    ("POST", "/extensions", {"extension": "105", "name": "A", "admin": True}, 400,
     "unknown field(s) 'admin'"),
    ("POST", "/extensions", {"extension": "105", "name": "A" * 500_000}, 400, "too long"),
    ("POST", "/extensions", {"extension": "105", "name": "\ud800"}, 400, "printable"),
    ("POST", "/extensions", {"extension": "105", "name": "a\nb"}, 400, "printable"),
    ("POST", "/extensions", {"extension": "1x", "name": "A"}, 400, "2-6 digits"),
    ("POST", "/extensions", {"extension": "106", "name": "A", "password": "106-secret"}, 400,
     "must not contain the user name"),
    ("POST", "/extensions", {"extension": "101", "name": "Twin"}, 409, "already exists"),
    ("POST", "/extensions/passwd", {"username": "nobody"}, 404, "no device"),
    ("POST", "/extensions/passwd", {"username": "101", "password": 12345678}, 400, "string"),
    ("POST", "/extensions/remove", {"extension": "404"}, 404, "no extension 404"),
    ("POST", "/extensions/remove", {}, 400, "missing field 'extension'"),
    ("GET", "/extensions", {"x": 1}, 400, "takes no body"),
    ("DELETE", "/extensions", None, 405, "method not allowed"),
]


def test_hostile_bodies_are_refused_by_the_running_box(box: EngineProcess,
                                                       settings: Settings) -> None:
    for method, path, body, status, message in HOSTILE:
        with pytest.raises(ControlError) as info:
            api(settings, method, path, body)
        assert f"answered {status}:" in str(info.value), (body, str(info.value)[:200])
        assert message in str(info.value), (body, str(info.value)[:200])
    assert [e["extension"] for e in api(settings, "GET", "/extensions")] == ["101"]
    assert api(settings, "GET", "/status")["state"] == "ready"


# -- the handlers, fuzzed directly (no engine: reload is counted, not done) -----------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
_TEXT = st.one_of(
    st.text(max_size=30), st.from_regex(r"[0-9]{1,7}", fullmatch=True),
    st.sampled_from(["user", "administrator", "md5", "101", "Kx7-desk-alpha", "a@b.cd", "\ud800",
                     "\u202e", "a\x00b", " 105 ", "x" * 257]),
    st.text(min_size=200, max_size=300))
_FIELD = st.one_of(_TEXT, _TEXT, _JSON)
_KNOWN = st.fixed_dictionaries({}, optional={
    k: _FIELD for k in ("extension", "name", "username", "password", "role", "email",
                        "auth")})
_BODIES = st.one_of(_JSON, _KNOWN, _KNOWN.map(lambda d: {**d, "extra": 1}))
_ROUTES = [("GET", "/extensions"), ("POST", "/extensions"), ("POST", "/extensions/passwd"),
           ("POST", "/extensions/remove")]


def test_fuzzed_bodies_never_cause_an_internal_error(settings: Settings,
                                                     tmp_path: Path) -> None:
    db = Database.open(tmp_path / "fuzz.db")
    import_yaml(db, OFFICE)
    app = Box(settings)
    app.db = db
    reloads: list[int] = []

    async def reload() -> dict[str, Any]:
        reloads.append(1)
        return {}

    app.reload = reload  # type: ignore[method-assign]
    app._control_routes()
    handlers: dict[tuple[str, str], Callable[[Request], Any]] = {
        route: app.control._routes[route] for route in _ROUTES}
    outcomes: dict[int, int] = {}

    @hsettings(max_examples=300, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(route=st.sampled_from(_ROUTES), body=_BODIES)
    def check(route: tuple[str, str], body: Any) -> None:
        try:
            result = asyncio.run(handlers[route](Request(route[0], route[1], {}, body)))
        except BadRequest as exc:
            assert exc.status in (400, 404, 409), exc
            json.dumps({"error": str(exc)}, ensure_ascii=False).encode()  # sendable
            outcomes[exc.status] = outcomes.get(exc.status, 0) + 1
            return
        json.dumps(result, ensure_ascii=False).encode()
        outcomes[200] = outcomes.get(200, 0) + 1

    try:
        check()
        assert db.integrity_check() == []
        changes = db.read().execute(
            "SELECT count(*) FROM audit_log WHERE area = 'extensions'").fetchone()[0]
        assert len(reloads) == changes  # every change, and only a change, reloads the engine
        assert outcomes.get(400, 0) > 0 and outcomes.get(200, 0) > 0
    finally:
        db.close()
