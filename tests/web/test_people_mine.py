"""My settings: a user changes only their forwarding, DND and greeting; sees own messages."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config.edit import Actor
from tests.support.web import csrf_token, post_form
from tests.web.people_support import english
from tests.web.test_people_voicemail import add_message


@pytest.fixture(autouse=True)
def _english(app: Flask) -> None:
    english(app)


def _setup(app: Flask) -> None:
    editor = app.extensions["pbx"].editor
    anna = editor.item("employees", "101")
    editor.save("employees", {**anna, "devices": [
        {"username": "101-desk", "password": "Desk-Phone-Secret-9"}], "role": "user",
        "allowed_routes": ["internal"]}, key="101", actor=Actor("t"))
    editor.save("employees", {"extension": "102", "name": "Boris"}, key=None, actor=Actor("t"))
    editor.save("voicemail_boxes", {"key": "anna", "name": "Anna", "owner": "101"}, key=None,
                actor=Actor("t"))
    editor.save("voicemail_boxes", {"key": "boris", "name": "Boris", "owner": "102"},
                key=None, actor=Actor("t"))


def _tone_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i
                                                                         / rate)))
                               for i in range(int(rate * seconds))))
    return out.getvalue()


def _digests(app: Flask) -> tuple[str, str]:
    row = app.extensions["pbx"].db.read().conn.execute(
        "SELECT ha1_md5, ha1_sha256 FROM devices WHERE username = '101-desk'").fetchone()
    return row[0], row[1]


def test_a_user_changes_only_their_own_fields(app: Flask, user_client: FlaskClient) -> None:
    _setup(app)
    before = _digests(app)
    response = post_form(user_client, "/mine/", {
        "mobiles[]": ["", "+7 916 111-22-33"], "ring_mobile_after": "never",
        "confirm_mobile": ["false", "true"],
        # Fields a user may not change are ignored even when posted.
        "role": "administrator", "allowed_routes[]": ["", "international"], "name": "Boss"})
    assert response.status_code == 302, response.text[:2000]
    anna = app.extensions["pbx"].editor.item("employees", "101")
    assert anna["mobiles"] == ["+79161112233"] and anna["ring_mobile_after"] == "never"
    assert anna["confirm_mobile"] is True
    assert anna["role"] == "user" and anna["allowed_routes"] == ["internal"]
    assert anna["name"] == "Anna" and _digests(app) == before
    post_form(user_client, "/mine/dnd", {"dnd": "true"}, page="/mine/")
    assert app.extensions["pbx"].editor.item("employees", "101")["dnd"] is True
    assert "Turn off" in user_client.get("/mine/").text
    bad = post_form(user_client, "/mine/", {"mobiles[]": ["", "not a phone"],
                                            "ring_mobile_after": "1000"})
    assert bad.status_code == 422 and 'id="e-ring_mobile_after"' in bad.text
    assert "not a phone" in bad.text


def test_greeting_upload_and_own_messages(app: Flask, user_client: FlaskClient) -> None:
    _setup(app)
    own = add_message(app, "anna", "+79990001111")
    add_message(app, "boris", "+79990002222")
    page = user_client.get("/mine/")
    assert f"/voicemail/messages/{own}/audio" in page.text and "+79990002222" not in page.text
    token = csrf_token(user_client, "/mine/")
    response = user_client.post("/mine/greeting", data={
        "csrf_token": token, "box": "anna", "file": (io.BytesIO(_tone_wav()), "hello.wav")})
    assert response.status_code == 302
    assert "The new greeting is saved." in user_client.get("/mine/").text
    ctx = app.extensions["pbx"]
    assert ctx.editor.item("voicemail_boxes", "anna")["greeting"] == "greeting-anna"
    stored = ctx.settings.data_dir / "prompts" / "greeting-anna.wav"
    with wave.open(str(stored)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1
    # Someone else's box, a text file, an oversize file: refused with a reason.
    for box, data, name, reason in (
            ("boris", _tone_wav(), "x.wav", "not your voicemail box"),
            ("anna", b"hello, I am not audio", "x.wav", "neither a WAV nor an MP3"),
            ("anna", b"RIFF" + b"\0" * (11 * 1024 * 1024), "big.wav", "larger than 10 MB")):
        user_client.post("/mine/greeting", data={"csrf_token": token, "box": box,
                                                 "file": (io.BytesIO(data), name)})
        assert reason in user_client.get("/mine/").text
    assert ctx.editor.item("voicemail_boxes", "boris").get("greeting") is None


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=2000),
                      st.binary(max_size=200).map(lambda b: b"RIFF" + b),
                      st.binary(max_size=200).map(lambda b: b"RIFF\x00\x01\x00\x00WAVEfmt " + b),
                      st.binary(max_size=200).map(lambda b: b"ID3" + b),
                      st.binary(max_size=200).map(lambda b: b"\xff\xfb" + b)),
       name=st.text(max_size=300), box=st.one_of(st.just("anna"), st.text(max_size=80)))
def test_greeting_upload_never_fails_with_a_500(app: Flask, user_client: FlaskClient,
                                                data: bytes, name: str, box: str) -> None:
    if not app.extensions["pbx"].editor.items("voicemail_boxes"):
        _setup(app)  # once: fixtures are not rebuilt between examples
    token = csrf_token(user_client, "/account/password")
    response = user_client.post("/mine/greeting", data={
        "csrf_token": token, "box": box, "file": (io.BytesIO(data), name or "f")})
    assert response.status_code == 302, response.text[:500]
    # Every upload ends with a message saying what happened (saved, or why not).
    assert 'class="flash ' in user_client.get("/mine/").text


def test_an_admin_without_an_employee_gets_a_clear_404(admin_client: FlaskClient) -> None:
    response = admin_client.get("/mine/")
    assert response.status_code == 404 and "not linked to an employee" in response.text


def test_markup_is_escaped(app: Flask, user_client: FlaskClient) -> None:
    _setup(app)
    evil = "<script>alert(1)</script>"
    editor = app.extensions["pbx"].editor
    anna = editor.item("employees", "101")
    anna["devices"] = [{k: v for k, v in d.items() if k != "realm"} for d in anna["devices"]]
    editor.save("employees", {**anna, "name": evil}, key="101", actor=Actor("t"))
    add_message(app, "anna", caller=evil)
    text = user_client.get("/mine/").text
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
