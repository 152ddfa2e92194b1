"""Prompts page: upload (converted, stored under the key, never the file's name), hostile
uploads refused, playback with Range, deleting the admin's recording."""

from __future__ import annotations

import io
import math
import struct

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config.edit import Actor
from appliance.prompts.wavfile import info_of_bytes, wav_bytes
from tests.support.web import csrf_token, post_form


def tone_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    n = int(seconds * rate)
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                   for i in range(n))
    return wav_bytes(pcm, rate)


def upload(client: FlaskClient, data: bytes, filename: str, **fields: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/prompts/")
    form = {"csrf_token": token, "key": "hello", "name": "Привет", "language": "ru", **fields,
            "file": (io.BytesIO(data), filename)}
    return client.post("/prompts/upload", data=form, content_type="multipart/form-data")


def test_upload_play_and_delete(app: Flask, admin_client: FlaskClient) -> None:
    ctx = app.extensions["pbx"]
    r = upload(admin_client, tone_wav(), "../../../etc/passwd.wav")
    assert r.status_code == 302, r.text[:2000]
    stored = ctx.settings.data_dir / "prompts" / "hello.wav"
    assert stored.is_file()
    info = info_of_bytes(stored.read_bytes())
    assert info.rate == 8000 and abs(info.duration_s - 0.5) < 0.01
    assert not (ctx.settings.data_dir / "etc").exists()
    assert [p["key"] for p in ctx.editor.items("prompts")] == ["hello"]
    page = admin_client.get("/prompts/?lang=en").text
    assert "Привет" in page and "/prompts/play/hello" in page

    whole = admin_client.get("/prompts/play/hello")
    assert whole.status_code == 200 and whole.data == stored.read_bytes()
    part = admin_client.get("/prompts/play/hello", headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.data == stored.read_bytes()[:44]
    assert admin_client.get("/prompts/play/..%2Fpbx.sqlite3").status_code == 404
    assert admin_client.get("/prompts/play/hello?lang=../../etc").status_code == 404
    assert admin_client.get("/prompts/play/nothere").status_code == 404

    # In use by a menu: refused; free again: deleted with its file.
    ctx.editor.save("voice_menus", {"key": "m", "greeting": "hello", "default": "hangup"},
                    key=None, actor=Actor("t"))
    r = post_form(admin_client, "/prompts/hello/delete", {}, page="/prompts/",
                  follow_redirects=True)
    assert stored.is_file() and ("Not deleted" in r.text or "Не удалено" in r.text)
    ctx.editor.delete("voice_menus", "m", actor=Actor("t"))
    r = post_form(admin_client, "/prompts/hello/delete", {}, page="/prompts/")
    assert r.status_code == 302 and not stored.exists()
    assert ctx.editor.items("prompts") == []


def test_builtin_prompts_play_per_language(app: Flask, admin_client: FlaskClient) -> None:
    # `make test` generates the built-in prompts (share/prompts) before the suite runs.
    page = admin_client.get("/prompts/").text
    assert "/prompts/play/welcome?lang=ru" in page and "/prompts/play/welcome?lang=en" in page
    ru = admin_client.get("/prompts/play/welcome?lang=ru")
    en = admin_client.get("/prompts/play/welcome?lang=en", headers={"Range": "bytes=44-99"})
    assert ru.status_code == 200 and ru.mimetype == "audio/wav"
    assert info_of_bytes(ru.data).rate == 8000
    assert en.status_code == 206 and len(en.data) == 56
    assert admin_client.get("/prompts/play/welcome?lang=de").status_code == 404


def test_bad_uploads_are_refused_clearly(app: Flask, admin_client: FlaskClient) -> None:
    r = upload(admin_client, b"MZ\x90\x00 this is an exe", "virus.wav")
    assert r.status_code == 400 and 'class="error"' in r.text
    r = upload(admin_client, tone_wav(), "x.wav", key="../evil")
    assert r.status_code == 400
    r = upload(admin_client, tone_wav(), "x.wav", key="Hello World")
    assert r.status_code == 400
    r = upload(admin_client, b"\x00" * (21 * 1024 * 1024), "big.wav")
    assert r.status_code == 400 and ("20 MB" in r.text or "20 МБ" in r.text)
    r = upload(admin_client, tone_wav(), "x.wav", language="de")
    assert r.status_code == 400
    assert not (app.extensions["pbx"].settings.data_dir / "prompts").exists() or not any(
        (app.extensions["pbx"].settings.data_dir / "prompts").iterdir())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(max_size=2000), filename=st.text(max_size=60),
       key=st.text(max_size=50))
def test_uploads_are_fuzzed(app: Flask, admin_client: FlaskClient, data: bytes, filename: str,
                            key: str) -> None:
    if not filename.strip() or "\x00" in filename:
        filename = "f.wav"
    r = upload(admin_client, data, filename, key=key)
    assert r.status_code in (302, 400), r.text[:500]
    folder = app.extensions["pbx"].settings.data_dir / "prompts"
    if folder.exists():
        # Whatever was sent, files appear only as prompts/<valid key>.wav.
        for path in folder.iterdir():
            assert path.suffix == ".wav" and path.parent == folder
            assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789-_" for c in path.stem)


def test_a_user_cannot_upload_or_play(app: Flask, user_client: FlaskClient) -> None:
    r = upload(user_client, tone_wav(), "x.wav")
    assert r.status_code == 403
    assert user_client.get("/prompts/play/hello").status_code == 403
