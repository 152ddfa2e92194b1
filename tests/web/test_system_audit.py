"""The audit log page: entries with readable diffs, filters, pagination, escaping."""

from __future__ import annotations

import sqlite3

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from appliance.config.edit import Actor
from webui.areas.audit import diff, filters, flatten


def _rows(app: Flask, rows: list[tuple[str, str, str, str, str]]) -> None:
    conn = sqlite3.connect(app.extensions["pbx"].settings.db_path)
    with conn:
        conn.executemany("INSERT INTO audit_log (at, actor, area, action, object)"
                         " VALUES (?, ?, ?, ?, ?)", rows)
    conn.close()


def test_changes_show_who_what_and_a_diff(app: Flask, admin_client: FlaskClient) -> None:
    editor = app.extensions["pbx"].editor
    editor.save("employees", {"extension": "101", "name": "Anna"}, key=None,
                actor=Actor("admin"))
    editor.save("employees", {"extension": "101", "name": "<script>alert(1)</script>",
                              "mobiles": ["+79161112233"]}, key="101", actor=Actor("admin"))
    page = admin_client.get("/audit/?lang=en").text
    assert "employees · update · <strong>101</strong>" in page
    assert '<code>name</code>:' in page and '<span class="del">Anna</span>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "<code>mobiles[0]</code>" in page and "+79161112233" in page


def test_filters_and_pages(app: Flask, admin_client: FlaskClient) -> None:
    _rows(app, [(f"2026-11-{1 + i % 20:02d}T10:00:00.000Z", "boris" if i % 2 else "vera",
                 "lines" if i % 3 else "sms", "update", f"obj{i}") for i in range(130)])
    assert "Page 1 of 3" in admin_client.get("/audit/?lang=en").text
    only = admin_client.get("/audit/?area=sms&actor=vera&lang=en").text
    assert "obj0<" in only and "obj6<" in only and "obj3<" not in only and "obj2<" not in only
    day = admin_client.get("/audit/?from=2026-11-05&to=2026-11-05").text
    assert "obj4<" in day and "obj24<" in day and "obj5<" not in day
    assert admin_client.get("/audit/?from=bogus&page=x&area=" + "a" * 9999).status_code == 200
    assert admin_client.get("/audit/?page=²").status_code == 200


def test_user_gets_403(user_client: FlaskClient) -> None:
    assert user_client.get("/audit/").status_code == 403


def test_filters_ignore_bad_values() -> None:
    where, params, shown = filters({"from": "2026-13-99x", "to": "2026-11-05", "area": "x"})
    assert where == "WHERE area = ? AND at <= ?" and params == ["x", "2026-11-05T23:59:59.999"]
    assert shown == {"area": "x", "to": "2026-11-05"}


def test_diff_examples() -> None:
    assert diff({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1]}) == [("a", 1, 2), ("b[1]", 2, None)]
    assert diff(None, {"x": {"y": True}}) == [("x.y", None, True)]
    assert flatten({"a": [], "b": {}}) == {"a": [], "b": {}}


_data = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=15)


@given(_data, _data)
def test_diff_is_empty_exactly_for_equal_flattenings(a: object, b: object) -> None:
    changes = diff(a, b)
    flat_a = {} if a is None else flatten(a)
    flat_b = {} if b is None else flatten(b)
    assert (changes == []) == (flat_a == flat_b)
    assert diff(a, a) == []
