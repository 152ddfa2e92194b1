"""Routing pages end to end: numbers, flows, chains, menus, schedules, holidays, outbound
routes, caller-ID rules and repeat-caller settings through posted forms."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.config.yamlio import import_yaml
from tests.support.web import FakeEngine, post_form

DEMO = Path(__file__).resolve().parents[2] / "appliance" / "config" / "demo.yaml"


@pytest.fixture
def demo(app: Flask) -> Flask:
    """The app's box loaded with the demo office."""
    import_yaml(app.extensions["pbx"].db, DEMO.read_text(encoding="utf-8"))
    return app


def editor(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["pbx"].editor


# Every admin URL of the routing areas (GET), for the role check.
ADMIN_URLS = [
    "/numbers/", "/numbers/new", "/numbers/item/+74955550001",
    "/flows/", "/flows/new", "/flows/item/main", "/flows/chains/", "/flows/chains/new",
    "/flows/chains/item/duty", "/menus/", "/menus/new", "/menus/item/main",
    "/prompts/", "/prompts/play/welcome?lang=ru", "/schedules/", "/schedules/new",
    "/schedules/item/office", "/schedules/holidays/", "/schedules/holidays/new",
    "/schedules/holidays/item/ru-2026", "/outbound/", "/outbound/new",
    "/outbound/item/mobile", "/outbound/caller-id/", "/outbound/caller-id/new",
    "/outbound/caller-id/item/0", "/outbound/repeat-caller",
]
ADMIN_POSTS = [
    "/numbers/new", "/numbers/item/+74955550001/delete", "/flows/new", "/flows/preview",
    "/flows/item/main/delete", "/flows/chains/item/duty/delete", "/menus/item/main/delete",
    "/prompts/upload", "/prompts/welcome/delete", "/schedules/item/office/delete",
    "/schedules/holidays/item/ru-2026/fill", "/outbound/item/mobile/delete",
    "/outbound/caller-id/item/0/delete", "/outbound/repeat-caller",
]


def test_every_routing_page_renders_for_the_admin(demo: Flask,
                                                  admin_client: FlaskClient) -> None:
    for url in ADMIN_URLS:
        response = admin_client.get(url)
        # The built-in prompts may not be generated in a bare checkout: then play is a 404.
        expected = (200, 404) if "play" in url else (200,)
        assert response.status_code in expected, (url, response.text[:2000])


def test_a_user_gets_403_on_every_routing_url(demo: Flask, user_client: FlaskClient) -> None:
    for url in ADMIN_URLS:
        assert user_client.get(url).status_code == 403, url
    for url in ADMIN_POSTS:
        response = post_form(user_client, url, {}, page="/account/password")
        assert response.status_code == 403, url
    before = editor(demo).items("numbers")
    assert len(before) == 2  # nothing was deleted by the user's posts


def test_number_list_shows_a_diagram_per_number(demo: Flask, admin_client: FlaskClient) -> None:
    page = admin_client.get("/numbers/?lang=en").text
    assert page.count('class="flowgraph thumb"') == 2
    assert "+74955550001" in page and "Основной" in page
    number = admin_client.get("/numbers/item/+74955550001?lang=en").text
    assert "Call flow main" in number and "Отдел продаж" in number
    assert 'href="/flows/item/main"' in number  # diagram boxes link to their pages


def test_create_edit_delete_a_flow_and_a_number(demo: Flask, admin_client: FlaskClient,
                                                fake_engine: FakeEngine) -> None:
    form = {"key": "night", "name": "Ночь", "schedule": "office",
            "branches[0].when": "open", "branches[0].to.kind": "department",
            "branches[0].to.target": "sales",
            "branches[1].when": "closed", "branches[1].greeting": "closed",
            "branches[1].to.kind": "chain", "branches[1].to.target": "duty"}
    response = post_form(admin_client, "/flows/new", form)
    assert response.status_code == 302, response.text[:3000]
    assert response.headers["Location"].endswith("/flows/item/night")
    flow = editor(demo).item("flows", "night")
    assert flow["branches"][1] == {"when": "closed", "greeting": "closed", "to": {"chain": "duty"}}
    assert ("POST", "/reload", None) in fake_engine.requests or any(
        r[1] == "/reload" for r in fake_engine.requests)

    response = post_form(admin_client, "/numbers/new", {
        "number": "8 (495) 555-00-09", "label": "Реклама", "flow": "night", "line": "trunk1",
        "repeat_caller": "false", "enabled": "true"})
    assert response.status_code == 302, response.text[:3000]
    assert editor(demo).item("numbers", "+74955550009")["flow"] == "night"
    page = admin_client.get("/numbers/item/+74955550009?lang=en").text
    assert "Call flow night" in page and "Forwarding chain" in page
    assert "Repeat caller?" not in page  # this number opted out

    form["branches[1].to.kind"] = "voicemail"
    form["branches[1].to.target"] = "general"
    response = post_form(admin_client, "/flows/item/night", form)
    assert response.status_code == 302
    assert editor(demo).item("flows", "night")["branches"][1]["to"] == {"voicemail": "general"}

    # The flow is in use: deleting it is refused with the reason, then allowed once free.
    response = post_form(admin_client, "/flows/item/night/delete", {}, page="/flows/item/night",
                         follow_redirects=True)
    assert "Not deleted" in response.text or "Не удалено" in response.text
    assert post_form(admin_client, "/numbers/item/+74955550009/delete", {},
                     page="/numbers/item/+74955550009").status_code == 302
    assert post_form(admin_client, "/flows/item/night/delete", {},
                     page="/flows/item/night").status_code == 302
    assert [f["key"] for f in editor(demo).items("flows")] == ["main", "menu"]


def test_validation_errors_are_shown_next_to_their_fields(demo: Flask,
                                                          admin_client: FlaskClient) -> None:
    response = post_form(admin_client, "/flows/new?lang=en", {
        "key": "Bad Key", "branches[0].when": "always", "branches[0].to.kind": "department"},
        page="/flows/new")
    assert response.status_code == 400
    page = response.text
    assert 'id="e-key"' in page and "is not a valid key" in page
    assert "needs a target" in page  # under the branch's destination picker
    response = post_form(admin_client, "/numbers/new", {"number": "12", "flow": "nope"})
    assert response.status_code == 400
    assert "is not a" in response.text and 'id="e-number"' in response.text


def test_chain_menu_schedule_holidays_outbound_callerid(demo: Flask,
                                                       admin_client: FlaskClient) -> None:
    ed = editor(demo)
    r = post_form(admin_client, "/flows/chains/new", {
        "key": "mgr", "name": "Менеджеры", "steps[0].to.kind": "employee",
        "steps[0].to.target": "102", "steps[0].timeout": "15",
        "steps[1].to.kind": "external", "steps[1].to.target": "+7 916 555-01-02",
        "steps[1].to.line": "sim1", "steps[1].timeout": "25",
        "final.kind": "voicemail", "final.target": "sales"})
    assert r.status_code == 302, r.text[:3000]
    assert ed.item("forwarding_chains", "mgr")["steps"][1]["to"] == {
        "external": "+79165550102", "line": "sim1"}

    r = post_form(admin_client, "/menus/new", {
        "key": "second", "name": "Второе", "timeout": "4", "invalid_retries": "1",
        "direct_dial": "false", "parent": "main",
        "keyrows[0].digit": "1", "keyrows[0].to.kind": "chain", "keyrows[0].to.target": "mgr",
        "keyrows[1].digit": "#", "keyrows[1].to.kind": "hangup",
        "default.kind": "department", "default.target": "sales"})
    assert r.status_code == 302, r.text[:3000]
    menu = ed.item("voice_menus", "second")
    assert menu["keys"] == {"1": {"chain": "mgr"}, "#": "hangup"} and menu["direct_dial"] is False
    page = admin_client.get("/menus/item/second").text
    assert 'name="keyrows[1].digit"' in page
    r = post_form(admin_client, "/menus/item/second", {
        "key": "second", "keyrows[0].digit": "1", "keyrows[0].to.kind": "department",
        "keyrows[0].to.target": "nope", "default.kind": "hangup"})
    assert r.status_code == 400 and "no department &#39;nope&#39;" in r.text
    assert 'id="f-keyrows[0].digit"' in r.text

    r = post_form(admin_client, "/schedules/new", {
        "key": "shop", "name": "Магазин", "time_zone": "Asia/Yekaterinburg",
        "hourstext.mon": "10:00-14:00, 15:00-19:00", "hourstext.sat": "11:00-16:00",
        "holidays[]": "ru-2026", "override": "auto",
        "dates[0].date": "2026-12-30", "dates[0].hourstext": "10:00-12:00",
        "dates[0].note": "Короткий"})
    assert r.status_code == 302, r.text[:3000]
    shop = ed.item("schedules", "shop")
    assert shop["hours"] == {"mon": ["10:00-14:00", "15:00-19:00"], "sat": ["11:00-16:00"]}
    assert shop["dates"][0]["hours"] == ["10:00-12:00"]
    r = post_form(admin_client, "/schedules/item/shop",
                  {"key": "shop", "hourstext.tue": "25:00-26:00"})
    assert r.status_code == 400 and 'id="e-hourstext.tue"' in r.text

    r = post_form(admin_client, "/schedules/holidays/new", {
        "key": "ru-2027", "name": "2027", "dates[0].date": "2027-01-01",
        "dates[0].name": "Новый год"})
    assert r.status_code == 302
    r = post_form(admin_client, "/schedules/holidays/item/ru-2027/fill", {"year": "2027"},
                  page="/schedules/holidays/item/ru-2027")
    assert r.status_code == 302
    dates = {d["date"] for d in ed.item("holiday_sets", "ru-2027")["dates"]}
    assert {"2027-01-01", "2027-01-07", "2027-06-12", "2027-11-04"} <= dates
    r = post_form(admin_client, "/schedules/holidays/item/ru-2027/fill", {"year": "x" * 5000},
                  page="/schedules/holidays/item/ru-2027", follow_redirects=True)
    assert r.status_code == 200 and "1990" in r.text

    r = post_form(admin_client, "/outbound/new", {
        "key": "intl", "name": "Международные", "pattern": "+Z.", "route_class":
        "international", "line_choice": "least_cost", "lines[0]": "trunk1", "lines[1]": "sim1",
        "failover": "true", "enabled": "true", "strip": "0"})
    assert r.status_code == 302, r.text[:3000]
    assert ed.item("outbound_routes", "intl")["lines"] == ["trunk1", "sim1"]
    r = post_form(admin_client, "/outbound/new", {
        "key": "bad", "pattern": "12a", "route_class": "local", "lines[0]": "sim1"})
    assert r.status_code == 400 and 'id="e-pattern"' in r.text

    r = post_form(admin_client, "/outbound/caller-id/new", {"mode": "fixed",
                                                            "number": "+74955550001"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/outbound/caller-id/item/2")
    assert ed.items("caller_id_rules")[2] == {"mode": "fixed", "number": "+74955550001"}
    r = post_form(admin_client, "/outbound/caller-id/item/2", {"mode": "fixed"})
    assert r.status_code == 400 and "exactly when mode is &#39;fixed&#39;" in r.text
    assert post_form(admin_client, "/outbound/caller-id/item/0/delete", {},
                     page="/outbound/caller-id/").status_code == 302
    assert [r["mode"] for r in ed.items("caller_id_rules")] == ["line_number", "fixed"]
    # The first matching rule wins, so the admin orders them with the list's arrows.
    r = post_form(admin_client, "/outbound/caller-id/item/1/move", {"direction": "up"},
                  page="/outbound/caller-id/")
    assert r.status_code == 302
    assert [r["mode"] for r in ed.items("caller_id_rules")] == ["fixed", "line_number"]
    assert post_form(admin_client, "/outbound/caller-id/item/0/move", {"direction": "sideways"},
                     page="/outbound/caller-id/").status_code == 400


def test_repeat_caller_settings(demo: Flask, admin_client: FlaskClient) -> None:
    r = post_form(admin_client, "/outbound/repeat-caller", {
        "enabled": "true", "sources[]": "call_history", "exceptions[]": ["105", "101"],
        "local_area_code": "812", "lookback_days": "30", "answer_timeout": "15",
        "ring_mobiles": "true", "default.kind": "department", "default.target": "sales"})
    assert r.status_code == 302, r.text[:3000]
    rc = editor(demo).settings("repeat_caller")
    assert sorted(rc["exceptions"]) == ["101", "105"] and rc["default"] == {"department": "sales"}
    assert rc["ring_mobiles"] is True and rc["local_area_code"] == "812"
    r = post_form(admin_client, "/outbound/repeat-caller", {"enabled": "true",
                                                           "local_area_code": "abc"})
    assert r.status_code == 400 and "local_area_code" in r.text
    # No default destination: the "none" choice posts an empty kind.
    r = post_form(admin_client, "/outbound/repeat-caller", {"enabled": "false",
                                                           "default.kind": ""})
    assert r.status_code == 302 and "default" not in editor(demo).settings("repeat_caller")


def test_markup_in_names_is_escaped_everywhere(demo: Flask, admin_client: FlaskClient) -> None:
    evil = "<script>alert(1)</script>"
    ed = editor(demo)
    from appliance.config.edit import Actor

    flow = ed.item("flows", "main")
    ed.save("flows", {**flow, "name": evil, "description": evil}, key="main", actor=Actor("t"))
    for section, key in (("departments", "sales"), ("voice_menus", "main"),
                         ("forwarding_chains", "duty"), ("schedules", "office"),
                         ("holiday_sets", "ru-2026"), ("outbound_routes", "mobile")):
        item = ed.item(section, key)
        ed.save(section, {**item, "name": evil}, key=key, actor=Actor("t"))
    number = ed.item("numbers", "+74955550001")
    ed.save("numbers", {**number, "label": evil}, key="+74955550001", actor=Actor("t"))
    for url in ADMIN_URLS:
        if "play" in url:
            continue
        page = admin_client.get(url).text
        assert evil not in page, url
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin_client.get(
        "/numbers/item/+74955550001").text


def test_hostile_input_gets_a_clear_error(demo: Flask, admin_client: FlaskClient) -> None:
    r = post_form(admin_client, "/flows/new", {"key": "x" * 100_000, "name": "y" * 100_000,
                                               "branches[0].to.kind": "hangup"})
    assert r.status_code == 400 and 'id="e-key"' in r.text
    r = post_form(admin_client, "/flows/new", {"branches[99999].when": "open"})
    assert r.status_code == 400
    r = post_form(admin_client, "/flows/new", {"branches]]..[": "x"})
    assert r.status_code == 400 and "bad field name" in r.text
    r = post_form(admin_client, "/numbers/new", {"number.x.y": "1"})
    assert r.status_code == 400
    assert admin_client.get("/flows/item/" + "a" * 5000).status_code == 404
    assert admin_client.get("/flows/item/..%2F..%2Fetc").status_code == 404
    assert admin_client.get("/numbers/?page=-5").status_code == 200
    assert admin_client.get("/numbers/?page=zz").status_code == 200
    r = post_form(admin_client, "/flows/preview?section=nope", {}, page="/flows/new")
    assert r.status_code == 404


def test_holidays_of_an_unknown_country_are_explained(demo: Flask,
                                                      admin_client: FlaskClient) -> None:
    from appliance.config.edit import Actor

    ed = editor(demo)
    ed.set_settings("box", {**ed.settings("box"), "country": "ZZ"}, actor=Actor("t"))
    r = post_form(admin_client, "/schedules/holidays/item/ru-2026/fill?lang=en",
                  {"year": "2027"}, page="/schedules/holidays/item/ru-2026",
                  follow_redirects=True)
    assert r.status_code == 200 and "No public holidays are known for the country ZZ" in r.text
    assert len(ed.item("holiday_sets", "ru-2026")["dates"]) == 9
