"""Blacklist pages: add and remove through the editor, a big list paged from the table."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.web import post_form
from tests.web.people_support import english


@pytest.fixture(autouse=True)
def _english(app: Flask) -> None:
    english(app)


def test_block_find_and_unblock(app: Flask, admin_client: FlaskClient) -> None:
    response = post_form(admin_client, "/blacklist/", {"number": "+7 916 000-11-22",
                                                       "reason": "Spam calls"})
    assert response.status_code == 302, response.text[:2000]
    editor = app.extensions["pbx"].editor
    (entry,) = editor.items("blacklist")
    assert entry["number"] == "+79160001122" and entry["added_by"] == "admin"
    page = admin_client.get("/blacklist/?q=Spam")
    assert "+79160001122" in page.text
    assert "+79160001122" not in admin_client.get("/blacklist/?q=nothing").text
    post_form(admin_client, "/blacklist/remove", {"number": "+79160001122"}, page="/blacklist/")
    assert editor.items("blacklist") == []
    gone = post_form(admin_client, "/blacklist/remove", {"number": "+79160001122"},
                     page="/blacklist/")
    assert gone.status_code == 404


def test_errors_next_to_fields(admin_client: FlaskClient) -> None:
    no_reason = post_form(admin_client, "/blacklist/", {"number": "+79160001122",
                                                        "reason": " "})
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    bad = post_form(admin_client, "/blacklist/", {"number": "call me", "reason": "x"})
    assert bad.status_code == 422 and 'id="e-number"' in bad.text
    huge = post_form(admin_client, "/blacklist/", {"number": "7" * 100_000, "reason": "x"})
    assert huge.status_code == 422 and 'id="e-number"' in huge.text
    long_reason = post_form(admin_client, "/blacklist/", {"number": "+79160001122",
                                                          "reason": "x" * 10_000})
    assert long_reason.status_code == 422 and 'id="e-reason"' in long_reason.text


def test_a_big_list_is_paged_from_the_table(app: Flask, admin_client: FlaskClient) -> None:
    db = app.extensions["pbx"].db
    db.write(lambda c: c.conn.executemany(
        "INSERT INTO blacklist (number, reason) VALUES (?, ?)",
        [(f"+7916{n:07d}", f"bulk {n}") for n in range(5000)]))
    page = admin_client.get("/blacklist/")
    assert page.status_code == 200 and "5000" in page.text and page.text.count("<tr>") == 51
    last = admin_client.get("/blacklist/?page=100")
    assert last.text.count("<tr>") == 51
    assert admin_client.get("/blacklist/?page=abc").status_code == 200
    found = admin_client.get("/blacklist/?q=bulk 4999")
    assert "+79160004999" in found.text and found.text.count("<tr>") == 2
    # A LIKE wildcard in the search is taken literally.
    assert "Nothing matches." in admin_client.get("/blacklist/?q=%25").text
    assert "Nothing matches." in admin_client.get("/blacklist/?q=bulk_1").text


def test_blocked_calls_show_the_reason(app: Flask, admin_client: FlaskClient) -> None:
    db = app.extensions["pbx"].db
    db.write(lambda c: c.conn.execute(
        "INSERT INTO blocked_calls (caller, dialled, reason) VALUES (?, ?, ?)",
        ("+79160001122", "+74951234567", "<b>blacklist</b>: spam")))
    text = admin_client.get("/blacklist/blocked").text
    assert "+79160001122" in text and "&lt;b&gt;blacklist&lt;/b&gt;: spam" in text


def test_markup_escaped_and_users_refused(admin_client: FlaskClient,
                                          user_client: FlaskClient) -> None:
    post_form(admin_client, "/blacklist/", {"number": "+79160001122",
                                            "reason": "<script>alert(1)</script>"})
    text = admin_client.get("/blacklist/").text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    for url in ("/blacklist/", "/blacklist/blocked"):
        assert user_client.get(url).status_code == 403
    for url in ("/blacklist/", "/blacklist/remove"):
        assert post_form(user_client, url, {"number": "+79160001122", "reason": "x"},
                         page="/account/password").status_code == 403
