"""The lines pages: config merged with the engine's live state, create/edit/delete, PIN, USSD."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config.edit import Actor
from tests.support.web import FakeEngine, post_form
from webui.areas._linestate import badge, line_data, merge, signal_bars

SIM_LIVE = {"key": "sim1", "kind": "sim", "name": "Office SIM", "state": "ready", "detail": "",
            "signal": 22, "signal_dbm": -69, "registration": "home", "operator": "MegaFon",
            "sim": "READY", "imei": "861234567890123", "iccid": "8970199123456789012",
            "own_number": "+79161234567", "balance": {"amount": 123.45, "currency": "RUB"},
            "call": None, "modem": None}
TRUNK_LIVE = {"line": "trunk1", "kind": "sip_trunk", "host": "sip.provider.test",
              "mode": "register", "state": "failed", "last_code": 403,
              "last_reason": "Forbidden", "expires": None, "next_retry": 20.0, "channels": 4,
              "calls": 1, "dids": [], "usable": False, "problem": "registration failed"}


def _add_lines(app: Flask) -> None:
    editor = app.extensions["pbx"].editor
    editor.save("lines", {"key": "sim1", "kind": "sim", "name": "Office SIM",
                          "imei": "861234567890123", "pin": "1234"}, key=None,
                actor=Actor("test"))
    editor.save("lines", {"key": "trunk1", "kind": "sip_trunk", "host": "sip.provider.test",
                          "username": "acc", "secret": "s3cret-trunk", "channels": 4},
                key=None, actor=Actor("test"))


def _db(app: Flask) -> sqlite3.Connection:
    return sqlite3.connect(app.extensions["pbx"].settings.db_path)


def test_engine_down_shows_the_configuration(app: Flask, admin_client: FlaskClient) -> None:
    _add_lines(app)
    page = admin_client.get("/lines/?lang=en")
    assert page.status_code == 200
    assert "The engine is not running" in page.text
    assert "Office SIM" in page.text and "sip.provider.test" in page.text
    assert "861234567890123" in page.text  # the configured IMEI, as nothing live is known


def test_live_state_of_sim_and_trunk(app: Flask, admin_client: FlaskClient,
                                     fake_engine: FakeEngine) -> None:
    _add_lines(app)
    fake_engine.route("GET", "/lines", [SIM_LIVE, {"key": None, "kind": "sim",
                                                   "state": "unassigned",
                                                   "imei": "350000000000001",
                                                   "modem": {"profile": "quectel",
                                                             "usb_path": "1-1.3"}}])
    fake_engine.route("GET", "/trunks", [TRUNK_LIVE])
    with _db(app) as conn:
        conn.execute("INSERT INTO ussd_history (line_key, request, response, balance, currency,"
                     " at) VALUES ('sim1', '*100#', 'ok', 99.5, 'RUB',"
                     " '2026-11-23T10:15:00Z')")
    page = admin_client.get("/lines/?lang=en").text
    assert "bars-4" in page  # CSQ 22 -> 4 of 5
    assert "MegaFon" in page and "123.45 RUB" in page
    assert "checked 2026-11-23 13:15" in page  # the USSD history, in Moscow time
    assert "READY" in page and "+79161234567" in page
    assert "403 Forbidden" in page and "Next try in" in page and "1 / 4" in page
    assert "350000000000001" in page  # the modem no line claims
    fragment = admin_client.get("/lines/live")
    assert fragment.status_code == 200
    assert 'hx-trigger="every 4s"' in fragment.text and "<html" not in fragment.text


def test_states_read_in_the_admins_language(app: Flask, admin_client: FlaskClient,
                                           fake_engine: FakeEngine) -> None:
    _add_lines(app)
    on_call = {**SIM_LIVE, "state": "in_call", "call": {"remote": "+79035550101",
                                                       "state": "active"}}
    fake_engine.route("GET", "/lines", [on_call])
    fake_engine.route("GET", "/trunks", [{**TRUNK_LIVE, "state": "registering"}])
    ru = admin_client.get("/lines/?lang=ru").text
    assert ">идёт разговор</span>" in ru and ">регистрируется</span>" in ru
    assert "+79035550101 разговор" in ru
    en = admin_client.get("/lines/?lang=en").text
    assert ">in a call</span>" in en and "+79035550101 talking" in en
    # A state word this version does not know is shown as the engine sent it.
    fake_engine.route("GET", "/trunks", [{**TRUNK_LIVE, "state": "rebooting"}])
    assert ">rebooting</span>" in admin_client.get("/lines/?lang=ru").text


def _sim_pin(app: Flask, key: str) -> Any:
    with _db(app) as conn:
        return conn.execute("SELECT sim_pin FROM lines WHERE key = ?", (key,)).fetchone()[0]


def test_create_edit_delete_sim_line(app: Flask, admin_client: FlaskClient) -> None:
    form = {"key": "sim2", "name": "Second", "kind": "sim", "imei": "861234567890124",
            "pin": "4321", "ussd_balance": "*100#", "sms": "true", "enabled": "true"}
    reply = post_form(admin_client, "/lines/new/sim", form)
    assert reply.status_code == 302, reply.text
    editor = app.extensions["pbx"].editor
    assert editor.item("lines", "sim2")["ussd_balance"] == "*100#"
    assert _sim_pin(app, "sim2") == "4321"
    # Edit without a PIN: the stored one stays; the page never shows it.
    edit_page = admin_client.get("/lines/sim2/edit")
    assert "4321" not in edit_page.text
    reply = post_form(admin_client, "/lines/sim2/edit", {**form, "pin": "", "name": "Renamed"})
    assert reply.status_code == 302
    assert editor.item("lines", "sim2")["name"] == "Renamed"
    assert _sim_pin(app, "sim2") == "4321"
    reply = post_form(admin_client, "/lines/sim2/delete", {}, page="/lines/sim2/edit")
    assert reply.status_code == 302
    assert [x["key"] for x in editor.items("lines")] == []


def test_trunk_and_gateway_secrets_kept(app: Flask, admin_client: FlaskClient) -> None:
    _add_lines(app)
    reply = post_form(admin_client, "/lines/trunk1/edit",
                      {"key": "trunk1", "host": "sip2.provider.test", "username": "acc",
                       "secret": "", "channels": "8", "transport": "tcp",
                       "registration": "true"})
    assert reply.status_code == 302, reply.text
    with _db(app) as conn:
        row = conn.execute("SELECT sip_host, sip_secret, channels FROM lines"
                           " WHERE key = 'trunk1'").fetchone()
    assert row == ("sip2.provider.test", "s3cret-trunk", 8)
    reply = post_form(admin_client, "/lines/new/fxo_gateway",
                      {"key": "fxo1", "username": "gw", "secret": "gw-pass",
                       "registration": "false"})
    assert reply.status_code == 302, reply.text
    assert app.extensions["pbx"].editor.item("lines", "fxo1")["kind"] == "fxo_gateway"


def test_validation_errors_next_to_their_fields(admin_client: FlaskClient) -> None:
    reply = post_form(admin_client, "/lines/new/sim",
                      {"key": "sim3", "imei": "12345", "pin": "12"}, page="/lines/new/sim")
    assert reply.status_code == 400
    assert 'id="e-imei"' in reply.text and "15 digits" in reply.text
    assert 'id="e-pin"' in reply.text
    reply = post_form(admin_client, "/lines/new/sip_trunk", {"key": "t2"})
    assert reply.status_code == 400 and 'id="e-host"' in reply.text


def test_pin_entry_and_ussd(app: Flask, admin_client: FlaskClient,
                            fake_engine: FakeEngine) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    _add_lines(app)
    fake_engine.route("GET", "/lines", [{**SIM_LIVE, "sim": "SIM PIN", "state": "failed"}])
    fake_engine.route("GET", "/trunks", [])
    fake_engine.route("POST", "/lines/{key}/ussd", lambda req: {
        "line": req.params["key"], "code": req.body["code"], "text": "Balance 55.10 r.",
        "status": 0, "balance": 55.1, "currency": "RUB"})
    reply = post_form(admin_client, "/lines/sim1/pin", {"pin": "9876"}, page="/lines/")
    assert reply.status_code == 302
    assert _sim_pin(app, "sim1") == "9876"
    page = admin_client.get("/lines/?lang=en").text
    assert "PIN saved" in page and "9876" not in page
    reply = post_form(admin_client, "/lines/sim1/pin", {"pin": "12"}, page="/lines/")
    assert "PIN not saved" in admin_client.get("/lines/?lang=en").text
    assert _sim_pin(app, "sim1") == "9876"
    post_form(admin_client, "/lines/sim1/ussd", {"code": "*100#"}, page="/lines/")
    assert ("POST", "/lines/sim1/ussd", {"code": "*100#"}) in fake_engine.requests
    assert "Balance 55.10 r." in admin_client.get("/lines/?lang=en").text


def test_ussd_refused_and_engine_down(app: Flask, admin_client: FlaskClient) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    _add_lines(app)
    post_form(admin_client, "/lines/sim1/ussd", {"code": "*100#"}, page="/lines/")
    assert "The engine is not running." in admin_client.get("/lines/?lang=en").text
    assert post_form(admin_client, "/lines/trunk1/ussd", {"code": "*100#"},
                     page="/lines/").status_code == 404


def test_user_gets_403_everywhere(app: Flask, user_client: FlaskClient) -> None:
    _add_lines(app)
    for url in ("/lines/", "/lines/live", "/lines/new/sim", "/lines/sim1/edit"):
        assert user_client.get(url).status_code == 403, url
    for url in ("/lines/sim1/delete", "/lines/sim1/pin", "/lines/sim1/ussd",
                "/lines/new/sim", "/lines/sim1/edit"):
        assert post_form(user_client, url, {"pin": "1234"}, page="/sms/mine/"
                         ).status_code == 403, url


def test_markup_is_escaped(app: Flask, admin_client: FlaskClient,
                           fake_engine: FakeEngine) -> None:
    evil = "<script>alert(1)</script>"
    app.extensions["pbx"].editor.save("lines", {"key": "sim1", "kind": "sim", "name": evil},
                                      key=None, actor=Actor("test"))
    fake_engine.route("GET", "/lines", [{**SIM_LIVE, "operator": evil, "detail": evil}])
    fake_engine.route("GET", "/trunks", [])
    for url in ("/lines/", "/lines/live", "/lines/sim1/edit"):
        text = admin_client.get(url).text
        assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url


def test_hostile_input_gets_clear_errors(admin_client: FlaskClient) -> None:
    reply = post_form(admin_client, "/lines/new/sim", {"key": "k" * 100_000, "name": "x"},
                      page="/lines/new/sim")
    assert reply.status_code == 400 and 'id="e-key"' in reply.text
    reply = post_form(admin_client, "/lines/new/sim", {"devices[0]]x": "1"},
                      page="/lines/new/sim")
    assert reply.status_code == 400 and "bad field name" in reply.text
    assert admin_client.get("/lines/new/pots").status_code == 404
    assert admin_client.get("/lines/nope/edit").status_code == 404
    assert admin_client.get("/lines/..%2F..%2Fetc/edit").status_code == 404


@given(st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=5)))
def test_signal_bars_are_0_to_5_or_unknown(csq: Any) -> None:
    bars = signal_bars(csq)
    if isinstance(csq, int) and not isinstance(csq, bool) and 0 <= csq <= 31:
        assert bars is not None and 0 <= bars <= 5
    else:
        assert bars is None
    assert badge(csq) in ("ok", "warn", "bad")


def test_signal_bars_edges() -> None:
    assert [signal_bars(v) for v in (0, 1, 2, 10, 15, 20, 25, 31, 99)] == [
        0, 0, 1, 2, 3, 4, 5, 5, None]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.sampled_from(["key", "line", "state", "signal",
                                                        "balance", "x"]), kids, max_size=4),
                     max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(_json, max_size=4), st.lists(_json, max_size=4))
def test_merge_never_trusts_malformed_engine_replies(sims: list[Any], trunks: list[Any]) -> None:
    config = [{"key": "sim1", "kind": "sim"}, {"key": "t1", "kind": "sip_trunk"}]
    views, unassigned = merge(config, sims, trunks, {"sim1": {"amount": 1.0, "at": "x"}})
    assert [v.key for v in views] == ["sim1", "t1"]
    assert all(isinstance(m, dict) for m in unassigned)
    assert views[0].bars is None or 0 <= views[0].bars <= 5


def test_line_data_keeps_options_and_kind() -> None:
    stored = {"key": "a", "kind": "sim", "options": {"x": "1"}}
    assert line_data({"key": "a", "kind": "sip_trunk", "options": "evil"}, "sim", stored) == {
        "key": "a", "kind": "sim", "options": {"x": "1"}}


def test_a_line_in_use_is_not_deleted(app: Flask, admin_client: FlaskClient) -> None:
    from pathlib import Path

    from appliance.config.yamlio import import_yaml

    demo = Path(__file__).parents[2] / "appliance" / "config" / "demo.yaml"
    import_yaml(app.extensions["pbx"].db, demo.read_bytes())
    admin_client.get("/lang/en")
    reply = post_form(admin_client, "/lines/sim1/delete", {}, page="/lines/sim1/edit")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/lines/sim1/edit")
    page = admin_client.get("/lines/sim1/edit").text
    assert "The line is still in use" in page and "sim1" in page
    assert app.extensions["pbx"].editor.item("lines", "sim1")["kind"] == "sim"
