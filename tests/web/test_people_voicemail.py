"""Voicemail boxes and messages: admin pages, owners' access, playing with Range, PINs."""

from __future__ import annotations

import io
import wave

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance import vmparts
from appliance.config.edit import Actor
from tests.support.web import FakeEngine, post_form
from tests.web.people_support import english

FORM = {"key": "anna", "name": "Anna's box", "extension": "501", "owner": "101",
        "greeting": "", "max_message": "120", "language": "", "email[]": ["", "anna@example.com"],
        "attach_audio": ["false", "true"]}


@pytest.fixture(autouse=True)
def _english(app: Flask) -> None:
    english(app)


def _wav(seconds: float = 1.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * int(8000 * seconds))
    return out.getvalue()


def add_message(app: Flask, box: str, caller: str = "+79161234567",
                relative: str | None = None) -> int:
    """A stored message of `box` with a real WAV file; returns its id."""
    ctx = app.extensions["pbx"]
    relative = relative or f"voicemail/{box}/2026/11/{caller[-4:]}.wav"
    path = ctx.settings.data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_wav())
    return int(ctx.db.write(lambda c: c.conn.execute(
        "INSERT INTO voicemail_messages (box_key, caller, path, duration_s) VALUES (?, ?, ?, 1)",
        (box, caller, relative)).lastrowid))


def _boxes(app: Flask) -> None:
    editor = app.extensions["pbx"].editor
    try:
        editor.item("employees", "101")
    except KeyError:
        editor.save("employees", {"extension": "101", "name": "Anna"}, key=None,
                    actor=Actor("t"))
    editor.save("employees", {"extension": "102", "name": "Boris"}, key=None, actor=Actor("t"))
    editor.save("voicemail_boxes", {"key": "anna", "name": "Anna", "owner": "101"}, key=None,
                actor=Actor("t"))
    editor.save("voicemail_boxes", {"key": "boris", "name": "Boris", "owner": "102"}, key=None,
                actor=Actor("t"))


def test_box_create_edit_pin_delete(app: Flask, admin_client: FlaskClient) -> None:
    app.extensions["pbx"].editor.save("employees", {"extension": "101", "name": "Anna"},
                                      key=None, actor=Actor("t"))
    response = post_form(admin_client, "/voicemail/new", FORM)
    assert response.status_code == 302, response.text[:3000]
    box = app.extensions["pbx"].editor.item("voicemail_boxes", "anna")
    assert box["owner"] == "101" and box["email"] == ["anna@example.com"]
    assert box["max_message"] == 120
    bad = post_form(admin_client, "/voicemail/anna/edit", {**FORM, "max_message": "5"})
    assert bad.status_code == 422 and 'id="e-max_message"' in bad.text
    post_form(admin_client, "/voicemail/anna/pin", {"pin": "12ab"}, page="/voicemail/anna/edit")
    db = app.extensions["pbx"].db
    assert db.read().conn.execute("SELECT pin_hash FROM voicemail_boxes").fetchone()[0] is None
    post_form(admin_client, "/voicemail/anna/pin", {"pin": "4321"}, page="/voicemail/anna/edit")
    stored = db.read().conn.execute("SELECT pin_hash FROM voicemail_boxes").fetchone()[0]
    assert vmparts.verify_pin("4321", stored)
    assert "Remove PIN" in admin_client.get("/voicemail/anna/edit").text
    post_form(admin_client, "/voicemail/anna/pin", {"clear": "true"},
              page="/voicemail/anna/edit")
    assert db.read().conn.execute("SELECT pin_hash FROM voicemail_boxes").fetchone()[0] is None
    assert "Anna" in admin_client.get("/voicemail/").text
    post_form(admin_client, "/voicemail/anna/delete", {}, page="/voicemail/anna/edit")
    assert admin_client.get("/voicemail/anna/edit").status_code == 404


def test_messages_play_with_range_mark_read_and_delete(
        app: Flask, admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    _boxes(app)
    mid = add_message(app, "boris")
    page = admin_client.get("/voicemail/boris/messages")
    assert f"/voicemail/messages/{mid}/audio" in page.text and "+79161234567" in page.text
    whole = admin_client.get(f"/voicemail/messages/{mid}/audio")
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "audio/wav"
    part = admin_client.get(f"/voicemail/messages/{mid}/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100 and part.data == whole.data[:100]
    post_form(admin_client, f"/voicemail/messages/{mid}/read", {},
              page="/voicemail/boris/messages")
    db = app.extensions["pbx"].db
    assert db.read().conn.execute("SELECT is_read FROM voicemail_messages").fetchone()[0] == 1
    assert ("POST", "/reload", None) in fake_engine.requests
    path = app.extensions["pbx"].settings.data_dir / "voicemail/boris/2026/11/4567.wav"
    assert path.exists()
    post_form(admin_client, f"/voicemail/messages/{mid}/delete", {},
              page="/voicemail/boris/messages")
    assert not path.exists()
    assert db.read().conn.execute(
        "SELECT deleted_at IS NOT NULL FROM voicemail_messages").fetchone()[0] == 1
    assert admin_client.get(f"/voicemail/messages/{mid}/audio").status_code == 404


def test_a_user_opens_only_their_own_boxes(app: Flask, user_client: FlaskClient) -> None:
    _boxes(app)
    own = add_message(app, "anna", "+79990001111")
    other = add_message(app, "boris", "+79990002222")
    assert user_client.get("/voicemail/anna/messages").status_code == 200
    assert user_client.get(f"/voicemail/messages/{own}/audio").status_code == 200
    assert user_client.get("/voicemail/boris/messages").status_code == 403
    assert user_client.get(f"/voicemail/messages/{other}/audio").status_code == 403
    for action in ("read", "delete"):
        response = post_form(user_client, f"/voicemail/messages/{other}/{action}", {},
                             page="/voicemail/anna/messages")
        assert response.status_code == 403
    for url in ("/voicemail/", "/voicemail/new", "/voicemail/anna/edit"):
        assert user_client.get(url).status_code == 403, url
    for url in ("/voicemail/new", "/voicemail/anna/edit", "/voicemail/anna/pin",
                "/voicemail/anna/delete"):
        assert post_form(user_client, url, {}, page="/voicemail/anna/messages"
                         ).status_code == 403, url


def test_a_row_pointing_outside_the_voicemail_dir_is_not_served(
        app: Flask, admin_client: FlaskClient) -> None:
    _boxes(app)
    # Real files, but outside the voicemail directory (a tampered or restored row).
    for relative in ("prompts/welcome.wav", "voicemail/../web/x.wav"):
        mid = add_message(app, "boris", relative=relative)
        assert (app.extensions["pbx"].settings.data_dir / relative).is_file()
        assert admin_client.get(f"/voicemail/messages/{mid}/audio").status_code == 404
    assert admin_client.get("/voicemail/messages/999999/audio").status_code == 404
    assert admin_client.get("/voicemail/messages/-1/audio").status_code == 404


def test_markup_is_escaped(app: Flask, admin_client: FlaskClient) -> None:
    _boxes(app)
    evil = "<script>alert(1)</script>"
    post_form(admin_client, "/voicemail/new", {**FORM, "key": "x", "extension": "",
                                               "owner": "", "name": evil})
    add_message(app, "x", caller=evil)
    for url in ("/voicemail/", "/voicemail/x/edit", "/voicemail/x/messages"):
        text = admin_client.get(url).text
        assert evil not in text and "&lt;script&gt;" in text, url


def test_hostile_input_gets_a_clear_error(app: Flask, admin_client: FlaskClient) -> None:
    _boxes(app)
    huge = post_form(admin_client, "/voicemail/new", {**FORM, "key": "big",
                                                      "name": "x" * 100_000, "extension": ""})
    assert huge.status_code == 422 and 'id="e-name"' in huge.text
    many = post_form(admin_client, "/voicemail/new", {**FORM, "key": "many", "extension": "",
                                                      "email[]": ["a@b.cd"] * 50})
    assert many.status_code == 422
    pin = post_form(admin_client, "/voicemail/anna/pin", {"pin": "1" * 10_000},
                    page="/voicemail/anna/edit")
    assert pin.status_code == 302
    assert "4-12 digits" in admin_client.get("/voicemail/anna/edit").text
    assert post_form(admin_client, "/voicemail/nobox/pin", {"pin": "1234"},
                     page="/voicemail/").status_code == 404
