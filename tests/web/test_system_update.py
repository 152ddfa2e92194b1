"""System > Update: upload a real signed bundle, see it checked, hand it to the installer,
follow the progress; refusals with their reasons; admin only; CSRF."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Settings
from appliance.updater import BUNDLE, PENDING_META, REQUEST, Paths, run, write_status
from tests.support.bundles import make_bundle, make_deb, make_key, members, replaced
from tests.support.web import csrf_token

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The vendor's key the box trusts, and a stranger's."""
    root = tmp_path_factory.mktemp("keys")
    return {"trusted": make_key(root / "trusted"), "other": make_key(root / "other")}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> dict[str, Path]:
    """A genuine bundle (7.1.0) and bad ones, each made for real."""
    out = tmp_path_factory.mktemp("bundles")
    vendor = keys["trusted"].parent
    good = make_bundle(vendor, make_deb(out, "7.1.0"), out / "good")
    name, deb = members(good)[-1]
    return {
        "good": good,
        "other_key": make_bundle(keys["other"].parent, make_deb(out, "7.2.0"), out / "other"),
        "arm64": make_bundle(vendor, make_deb(out, "7.3.0", "arm64"), out / "arm"),
        "old": make_bundle(vendor, make_deb(out, "6.9"), out / "old"),
        "tampered": replaced(good, out / "tampered.pbxupdate", name, deb + b"\0"),
        "garbage": _write(out / "garbage.pbxupdate", b"not a tar at all" * 100),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def settings(settings: Settings, keys: dict[str, Path]) -> Settings:
    """The test box trusts the test vendor key."""
    return dataclasses.replace(settings, update_keyring=keys["trusted"])


@pytest.fixture
def box(app: Flask, tmp_path: Path) -> dict[str, Path]:
    """The box's installed version 7.0.0 on amd64; the installer's folders (no unit yet)."""
    version = tmp_path / "VERSION"
    version.write_text("7.0.0\n")
    state = tmp_path / "update-state"
    app.config.update(PBX_VERSION_FILE=str(version), PBX_UPDATE_STATE_DIR=str(state),
                      PBX_UPDATE_UNIT=str(tmp_path / "pbx-update.path"), PBX_UPDATE_ARCH="amd64")
    return {"version": version, "state": state, "unit": tmp_path / "pbx-update.path",
            "updates": app.extensions["pbx"].settings.data_dir / "updates"}


@pytest.fixture
def admin(admin_client: FlaskClient) -> FlaskClient:
    """The administrator's browser, in English (tests switch it to Russian where they check
    the translation)."""
    with admin_client.session_transaction() as s:
        s["lang"] = "en"
    return admin_client


def _upload(client: FlaskClient, bundle: Path, *, token: str | None = None) -> Any:
    if token is None:
        token = csrf_token(client, "/update/")
    return client.post("/update/upload", data={
        "csrf_token": token, "bundle": (io.BytesIO(bundle.read_bytes()), bundle.name)},
        content_type="multipart/form-data")


def _audit(app: Flask) -> list[tuple[str, str, str]]:
    rows = app.extensions["pbx"].db.read().conn.execute(
        "SELECT action, object, after FROM audit_log WHERE area = 'update' ORDER BY id")
    return [(r[0], r[1], r[2]) for r in rows]


def test_page_shows_version_and_dev_mode(admin: FlaskClient, box: dict[str, Path]) -> None:
    page = admin.get("/update/")
    assert page.status_code == 200
    assert 'id="installed-version">7.0.0<' in page.text
    assert "development installation" in page.text
    assert 'href="/update/"' in page.text  # in the System menu


def test_genuine_upload_is_offered_for_install(admin: FlaskClient, app: Flask,
                                               box: dict[str, Path],
                                               bundles: dict[str, Path]) -> None:
    reply = _upload(admin, bundles["good"])
    assert reply.status_code == 302, reply.text[:2000]
    page = admin.get("/update/")
    assert 'id="pending-version">7.1.0<' in page.text
    assert "office-pbx_7.1.0_amd64.deb" in page.text
    assert (box["updates"] / BUNDLE).read_bytes() == bundles["good"].read_bytes()
    meta = json.loads((box["updates"] / PENDING_META).read_text())
    assert (meta["version"], meta["filename"]) == ("7.1.0", bundles["good"].name)
    # Nothing else is left behind: the upload's part file became the pending bundle.
    assert sorted(p.name for p in box["updates"].iterdir()) == sorted([BUNDLE, PENDING_META])
    action, obj, after = _audit(app)[-1]
    assert (action, obj, json.loads(after)["version"]) == ("upload", bundles["good"].name,
                                                           "7.1.0")
    # Dev box: the Install button is there but disabled, and installing is refused.
    assert "disabled" in page.text.split('action="/update/install"')[1].split("</form>")[0]
    reply = admin.post("/update/install",
                              data={"csrf_token": csrf_token(admin, "/update/")})
    assert reply.status_code == 302 and not (box["updates"] / REQUEST).exists()


@pytest.mark.parametrize(("kind", "english", "russian"), [
    ("other_key", "signed by a key this box does not trust",
     "подписано ключом, которому эта АТС не доверяет"),
    ("tampered", "was changed after signing", "изменён после подписи"),
    ("arm64", "The update is for arm64; this box is amd64.", "arm64"),
    ("old", "Version 6.9 is not newer than the installed 7.0.0.", "не новее"),
    ("garbage", "not an update bundle", "не файл обновления"),
])
def test_refusals_say_why(admin: FlaskClient, app: Flask, box: dict[str, Path],
                          bundles: dict[str, Path], kind: str, english: str,
                          russian: str) -> None:
    reply = _upload(admin, bundles[kind])
    assert reply.status_code == 400
    assert english in reply.text
    assert not (box["updates"] / BUNDLE).exists()
    assert [p.name for p in box["updates"].iterdir()] == []
    assert _audit(app)[-1][0] == "upload" and "refused" in _audit(app)[-1][2]
    with admin.session_transaction() as s:
        s["lang"] = "ru"
    assert russian in _upload(admin, bundles[kind]).text


def test_install_hands_over_and_page_follows(admin: FlaskClient, app: Flask,
                                             box: dict[str, Path], bundles: dict[str, Path],
                                             keys: dict[str, Path], tmp_path: Path) -> None:
    box["unit"].write_text("[Path]\n")  # the privileged side is installed
    assert _upload(admin, bundles["good"]).status_code == 302
    page = admin.get("/update/")
    assert "development installation" not in page.text
    reply = admin.post("/update/install",
                              data={"csrf_token": csrf_token(admin, "/update/")})
    assert reply.status_code == 302
    ask = json.loads((box["updates"] / REQUEST).read_text())
    assert ask["version"] == "7.1.0" and len(ask["sha256"]) == 64
    assert _audit(app)[-1][:2] == ("install", "7.1.0")
    fragment = admin.get("/update/progress").text
    assert 'data-state="requested"' in fragment and 'hx-trigger="every 2s"' in fragment

    # The real installer (up to apt) takes the request the page left.
    paths = Paths(requests=box["updates"], state=box["state"], repo=tmp_path / "repo",
                  keyring=keys["trusted"], version_file=box["version"])
    assert run(paths, arch="amd64", install=False)["state"] == "unpacked"
    fragment = admin.get("/update/progress").text
    assert 'data-state="unpacked"' in fragment and 'hx-trigger="every 2s"' in fragment
    assert "Ready to install" not in admin.get("/update/").text  # consumed

    # The web UI restarted meanwhile; the installer reports the end: polling stops.
    box["version"].write_text("7.1.0\n")
    write_status(box["state"], {"id": ask["id"], "state": "installed", "version": "7.1.0",
                                "code": "installed", "message": "version 7.1.0 is installed"})
    fragment = admin.get("/update/progress").text
    assert 'data-state="installed"' in fragment and "hx-trigger" not in fragment
    assert 'id="installed-version">7.1.0<' in fragment
    assert "The update is installed." in fragment


def test_failed_install_is_shown(admin: FlaskClient, box: dict[str, Path]) -> None:
    box["updates"].mkdir(parents=True, exist_ok=True)
    box["state"].mkdir()
    (box["updates"] / "requested.json").write_text(json.dumps(
        {"id": "abc", "version": "7.1.0", "at": "2026-01-01T00:00:00+00:00"}))
    fragment = admin.get("/update/progress").text
    assert "has not started yet" in fragment  # requested long ago, never picked up
    write_status(box["state"], {"id": "abc", "state": "failed", "code": "kept_old",
                                "version": "7.1.0", "log": "E: boom"})
    fragment = admin.get("/update/progress").text
    assert "keeps running the previous version" in fragment and "E: boom" in fragment
    assert "hx-trigger" not in fragment


def test_discard(admin: FlaskClient, box: dict[str, Path],
                 bundles: dict[str, Path]) -> None:
    _upload(admin, bundles["good"])
    reply = admin.post("/update/discard",
                              data={"csrf_token": csrf_token(admin, "/update/")})
    assert reply.status_code == 302 and list(box["updates"].iterdir()) == []


def test_csrf_is_required(admin: FlaskClient, box: dict[str, Path],
                          bundles: dict[str, Path]) -> None:
    assert _upload(admin, bundles["good"], token="forged").status_code == 400
    assert admin.post("/update/install").status_code == 400
    assert not (box["updates"] / BUNDLE).exists()


def test_upload_size_is_limited(admin: FlaskClient, box: dict[str, Path],
                                bundles: dict[str, Path],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from webui.areas import update

    monkeypatch.setattr(update, "MAX_UPLOAD", 4096)
    assert _upload(admin, bundles["good"]).status_code == 413
    assert not (box["updates"] / BUNDLE).exists()


def test_user_gets_403(user_client: FlaskClient, box: dict[str, Path],
                       bundles: dict[str, Path]) -> None:
    assert user_client.get("/update/").status_code == 403
    assert user_client.get("/update/progress").status_code == 403
    token = csrf_token(user_client, "/account/password")
    for url in ("/update/install", "/update/discard"):
        assert user_client.post(url, data={"csrf_token": token}).status_code == 403
    assert _upload(user_client, bundles["good"], token=token).status_code == 403
    assert not (box["updates"] / BUNDLE).exists()


def test_leftovers_of_interrupted_uploads_are_swept(admin: FlaskClient, box: dict[str, Path],
                                                    bundles: dict[str, Path]) -> None:
    box["updates"].mkdir(parents=True, exist_ok=True)
    old_part = box["updates"] / ".upload-abc.part"
    old_check = box["updates"] / ".check-xyz"
    fresh = box["updates"] / ".upload-new.part"
    for p in (old_part, fresh):
        p.write_bytes(b"x")
    old_check.mkdir()
    for p in (old_part, old_check):
        os.utime(p, (1_000_000, 1_000_000))
    assert _upload(admin, bundles["good"]).status_code == 302
    assert not old_part.exists() and not old_check.exists()
    assert fresh.exists()  # perhaps another upload in progress


def test_update_page_in_chromium(app: Flask, live_url: str, page: Any, box: dict[str, Path],
                                 bundles: dict[str, Path], keys: dict[str, Path],
                                 tmp_path: Path) -> None:
    """Upload through the file input, confirm Install, and the progress block follows the
    installer by htmx polling, without a reload, until the result."""
    from tests.support.web import browser_log_in, make_admin

    make_admin(app)
    box["unit"].write_text("[Path]\n")
    browser_log_in(page, live_url, lang="en")
    page.goto(f"{live_url}/lang/en?next=/update/")
    page.set_input_files('input[name="bundle"]', str(bundles["good"]))
    page.click('form[action="/update/upload"] button')
    page.locator("#pending-version", has_text="7.1.0").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#update-pending button.primary")
    page.locator('#update-state[data-state="requested"]').wait_for()
    loaded = page.evaluate("performance.timeOrigin")

    paths = Paths(requests=box["updates"], state=box["state"], repo=tmp_path / "repo",
                  keyring=keys["trusted"], version_file=box["version"])
    assert run(paths, arch="amd64", install=False)["state"] == "unpacked"
    page.locator('#update-state[data-state="unpacked"]').wait_for(timeout=10_000)
    ask = json.loads((box["updates"] / "requested.json").read_text())
    box["version"].write_text("7.1.0\n")
    write_status(box["state"], {"id": ask["id"], "state": "installed", "version": "7.1.0",
                                "code": "installed"})
    page.locator('#update-state[data-state="installed"]').wait_for(timeout=10_000)
    assert page.locator("#installed-version").inner_text() == "7.1.0"
    assert page.evaluate("performance.timeOrigin") == loaded  # never reloaded
    assert page.locator("#update-progress[hx-trigger]").count() == 0  # polling stopped
    assert page.locator("#update-pending").count() == 0  # the installer took the bundle
