"""Backup download and restore (strict archive checks, fuzzed), YAML export and import."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config.edit import Actor
from appliance.db import migrations
from tests.support.web import ADMIN, csrf_token, log_in
from webui.areas._archive import ArchiveError, Limits, check_database, check_name, read_archive

MANIFEST = json.dumps({"format": 1}).encode()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _upload(client: FlaskClient, data: bytes, field: str = "archive",
            url: str = "/backup/restore") -> Any:
    token = csrf_token(client, "/backup/")
    return client.post(url, data={"csrf_token": token,
                                  field: (io.BytesIO(data), "upload.tar.gz")},
                       content_type="multipart/form-data")


def _download(client: FlaskClient, files: bool) -> bytes:
    reply = client.get("/backup/download" + ("?files=1" if files else ""))
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"].startswith("attachment;")
    assert reply.is_streamed
    data = reply.get_data()
    reply.close()  # as a WSGI server does: the snapshot's folder goes
    return data


def test_backup_and_restore_round_trip(app: Flask, admin_client: FlaskClient,
                                       tmp_path: Path) -> None:
    ctx = app.extensions["pbx"]
    ctx.editor.save("employees", {"extension": "101", "name": "Before"}, key=None,
                    actor=Actor("test"))
    voicemail = ctx.settings.voicemail_dir / "box1"
    voicemail.mkdir(parents=True)
    (voicemail / "m.wav").write_bytes(b"RIFF-before")
    archive = _download(admin_client, files=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        db_bytes = tar.extractfile("pbx.sqlite3").read()  # type: ignore[union-attr]
    assert names[:2] == ["pbx-backup.json", "pbx.sqlite3"] and "voicemail/box1/m.wav" in names
    assert db_bytes.startswith(b"SQLite format 3\x00")
    assert not list(ctx.settings.data_dir.glob("pbx-backup-*"))  # the snapshot is gone

    ctx.editor.save("employees", {"extension": "101", "name": "After"}, key="101",
                    actor=Actor("test"))
    (voicemail / "m.wav").write_bytes(b"RIFF-after")
    (voicemail / "new.wav").write_bytes(b"x")
    reply = _upload(admin_client, archive)
    assert reply.status_code == 200, reply.text
    assert "Backup restored" in reply.text or "Резервная копия восстановлена" in reply.text
    assert ctx.editor.item("employees", "101")["name"] == "Before"
    assert (voicemail / "m.wav").read_bytes() == b"RIFF-before"
    assert not (voicemail / "new.wav").exists()
    conn = sqlite3.connect(ctx.settings.db_path)
    assert conn.execute("SELECT count(*) FROM audit_log WHERE area = 'backup' AND"
                        " action = 'restore'").fetchone() == (1,)
    conn.close()
    assert not list(ctx.settings.data_dir.glob(".restore-*"))
    # The database without files: a plain download is smaller and restores too.
    small = _download(admin_client, files=False)
    with tarfile.open(fileobj=io.BytesIO(small)) as tar:
        assert tar.getnames() == ["pbx-backup.json", "pbx.sqlite3"]


def _sqlite(tmp_path: Path, version: int, *, ours: bool = True) -> bytes:
    path = tmp_path / f"db-{version}-{ours}.sqlite3"
    conn = sqlite3.connect(path)
    if ours:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER)")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("members, reason", [
    ([_file("pbx-backup.json", MANIFEST), _file("../evil", b"x")], "outside"),
    ([_file("pbx-backup.json", MANIFEST), _file("/etc/evil", b"x")], "absolute"),
    ([_file("pbx-backup.json", MANIFEST), _file("voicemail/../../evil", b"x")], "outside"),
    ([_file("pbx-backup.json", MANIFEST), _link("voicemail/l", "/etc/passwd", tarfile.SYMTYPE)],
     "not a regular file"),
    ([_file("pbx-backup.json", MANIFEST), _link("voicemail/h", "/etc/passwd", tarfile.LNKTYPE)],
     "not a regular file"),
    ([_file("pbx-backup.json", MANIFEST), _link("voicemail/d", "", tarfile.CHRTYPE)],
     "not a regular file"),
    ([_file("pbx-backup.json", MANIFEST), _link("voicemail/f", "", tarfile.FIFOTYPE)],
     "not a regular file"),
    ([_file("pbx-backup.json", MANIFEST), _file("etc/passwd", b"x")], "unexpected"),
    ([_file("pbx-backup.json", MANIFEST), _file("voicemail\\..\\x", b"x")], "bad member"),
    ([_file("pbx.sqlite3", b"x")], "pbx-backup.json is missing"),
    ([_file("pbx-backup.json", b'{"format": 9}')], "unknown format"),
    ([_file("pbx-backup.json", b"not json")], "not JSON"),
    ([_file("pbx-backup.json", MANIFEST)], "pbx.sqlite3 is missing"),
    ([_file("pbx-backup.json", MANIFEST), _file("pbx.sqlite3", b"x"),
      _file("pbx.sqlite3", b"y")], "appears twice"),
    ([_file("pbx-backup.json", MANIFEST), _file("voicemail", b"y")], "unexpected"),
])
def test_crafted_archives_are_refused(tmp_path: Path, members: list[Any], reason: str) -> None:
    root = tmp_path / "box" / "x"
    root.parent.mkdir()
    with pytest.raises(ArchiveError, match=reason):
        read_archive(io.BytesIO(_tar(members)), root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]
    for path in root.parent.rglob("*"):
        assert not path.is_symlink() and path.resolve().is_relative_to(root.resolve())


def test_traversal_upload_refused_with_its_reason(admin_client: FlaskClient, app: Flask) -> None:
    data_dir = app.extensions["pbx"].settings.data_dir
    before = sorted(p.name for p in data_dir.parent.iterdir())
    reply = _upload(admin_client, _tar([_file("pbx-backup.json", MANIFEST),
                                        _file("../../evil", b"x")]))
    assert reply.status_code == 400 and "outside" in reply.text
    assert sorted(p.name for p in data_dir.parent.iterdir()) == before
    assert not list(data_dir.glob(".restore-*"))


def test_database_checks(admin_client: FlaskClient, tmp_path: Path) -> None:
    newer = _sqlite(tmp_path, migrations.latest_version() + 1)
    reply = _upload(admin_client, _tar([_file("pbx-backup.json", MANIFEST),
                                        _file("pbx.sqlite3", newer)]))
    assert reply.status_code == 400 and "newer software" in reply.text
    for bad, why in ((b"hello", "not an SQLite database"),
                     (_sqlite(tmp_path, 3, ours=False), "not this box")):
        reply = _upload(admin_client, _tar([_file("pbx-backup.json", MANIFEST),
                                            _file("pbx.sqlite3", bad)]))
        assert reply.status_code == 400 and why in reply.text, why
    damaged = bytearray(_sqlite(tmp_path, 4))
    damaged[100:4096] = b"\xff" * (4096 - 100)
    path = tmp_path / "damaged.sqlite3"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ArchiveError):
        check_database(path)
    for junk in (b"\x1f\x8b garbage", b"\x1f\x8b\x08", b"\x1f\x8b\x08\x00\x00"):
        assert _upload(admin_client, junk).status_code == 400


def test_limits(tmp_path: Path) -> None:
    data = _tar([_file("pbx-backup.json", MANIFEST), _file("voicemail/a", b"x" * 100)])
    with pytest.raises(ArchiveError, match="too large"):
        read_archive(io.BytesIO(data), tmp_path / "a", Limits(member_bytes=50))
    with pytest.raises(ArchiveError, match="too many"):
        read_archive(io.BytesIO(data), tmp_path / "b", Limits(members=1))


def test_check_name() -> None:
    assert check_name("./voicemail/a/b.wav") == ("voicemail", "a", "b.wav")
    for bad in ("", "/x", "..", "voicemail/../x", "x\x00", "a" * 500, "recordings/a/../../b",
                "other"):
        with pytest.raises(ArchiveError):
            check_name(bad)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=2000),
                 st.binary(max_size=40).map(lambda b: b"\x1f\x8b\x08" + b)))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    root = tmp_path / "fuzz"
    root.mkdir(exist_ok=True)
    outside = _tree(tmp_path)
    with contextlib.suppress(ArchiveError):
        read_archive(io.BytesIO(data), root / "x")
    assert {p for p in _tree(tmp_path) if not p.startswith("fuzz")} == {
        p for p in outside if not p.startswith("fuzz")}


_names = st.one_of(
    st.sampled_from(["pbx-backup.json", "pbx.sqlite3", "voicemail/a", "recordings/x/y.wav",
                     "../up", "/abs", "voicemail/../../up", "voicemail", "recordings/",
                     "voicemail/a/../../../up", "./pbx.sqlite3", "other/x"]),
    st.text(st.sampled_from("abv./\\-_"), min_size=1, max_size=20))
_types = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                          tarfile.CHRTYPE, tarfile.FIFOTYPE])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_names, _types, st.binary(max_size=50),
                          st.sampled_from(["", "../up", "/etc/passwd", "voicemail/a"])),
                max_size=6),
       st.integers(0, 400))
def test_fuzz_structured_archives(tmp_path: Path, members: list[Any], cut: int) -> None:
    root = tmp_path / "fuzz"
    root.mkdir(exist_ok=True)
    infos = []
    for name, kind, data, link in members:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        infos.append((info, data if kind == tarfile.REGTYPE else None))
    archive = _tar(infos)
    if cut:
        archive = archive[:-cut]
    target = root / f"x{os.getpid()}-{len(list(root.iterdir()))}"
    try:
        found = read_archive(io.BytesIO(archive), target)
    except ArchiveError:
        pass
    else:
        assert found.database.is_file()
    assert not (tmp_path / "up").exists() and not (root / "up").exists()
    for path in root.rglob("*"):
        assert not path.is_symlink()
        assert path.resolve().is_relative_to(root.resolve())


def test_yaml_export_and_import(app: Flask, admin_client: FlaskClient) -> None:
    ctx = app.extensions["pbx"]
    ctx.editor.save("employees", {"extension": "101", "name": "Anna"}, key=None,
                    actor=Actor("test"))
    reply = admin_client.get("/backup/config.yaml")
    assert reply.status_code == 200 and "attachment" in reply.headers["Content-Disposition"]
    text = reply.text
    assert "Anna" in text
    changed = text.replace("name: Anna", "name: Boris")
    reply = _upload(admin_client, changed.encode(), "yaml", "/backup/import")
    assert reply.status_code == 200, reply.text
    assert "employees: 1 updated" in reply.text
    assert ctx.editor.item("employees", "101")["name"] == "Boris"
    broken = changed.replace("extension: '101'", "extension: 'abc'").replace(
        "extension: \"101\"", "extension: 'abc'")
    reply = _upload(admin_client, broken.encode() + b"\nbogus: 1\n", "yaml", "/backup/import")
    assert reply.status_code == 400
    assert "<code>bogus</code>" in reply.text
    assert ctx.editor.item("employees", "101")["name"] == "Boris"  # nothing applied
    reply = _upload(admin_client, b"x: [" * 10, "yaml", "/backup/import")
    assert reply.status_code == 400
    reply = _upload(admin_client, b"a" * (5 * 1024 * 1024 + 10), "yaml", "/backup/import")
    assert reply.status_code == 400


def test_user_gets_403(user_client: FlaskClient) -> None:
    for url in ("/backup/", "/backup/download", "/backup/config.yaml"):
        assert user_client.get(url).status_code == 403, url
    token = csrf_token(user_client, "/sms/mine/")
    for url in ("/backup/restore", "/backup/import"):
        assert user_client.post(url, data={"csrf_token": token}).status_code == 403, url


def test_restore_logs_in_again_keeps_working(app: Flask, admin_client: FlaskClient) -> None:
    archive = _download(admin_client, files=False)
    assert _upload(admin_client, archive).status_code == 200
    client = app.test_client()
    log_in(client, *ADMIN)  # the restored database still has the administrator
    assert client.get("/backup/").status_code == 200


def test_restore_takes_uploads_larger_than_the_app_limit(app: Flask,
                                                         admin_client: FlaskClient) -> None:
    archive = _download(admin_client, files=False)
    app.config["MAX_CONTENT_LENGTH"] = len(archive) // 2
    assert _upload(admin_client, archive).status_code == 200
    token = csrf_token(admin_client, "/backup/")
    reply = admin_client.post("/backup/import", data={
        "csrf_token": token, "yaml": (io.BytesIO(archive), "x.yaml")},
        content_type="multipart/form-data")
    assert reply.status_code == 413


def test_an_older_backup_is_migrated(app: Flask, admin_client: FlaskClient,
                                     tmp_path: Path) -> None:
    import sqlite_utils

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(sqlite_utils.Database(conn), target=9)
    conn.close()
    reply = _upload(admin_client, _tar([_file("pbx-backup.json", MANIFEST),
                                        _file("pbx.sqlite3", path.read_bytes())]))
    assert reply.status_code == 200, reply.text
    assert app.extensions["pbx"].db.schema_version() == migrations.latest_version()


def test_download_is_streamed_over_real_http(app: Flask, live_url: str) -> None:
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    from tests.support.web import make_admin

    make_admin(app)
    ctx = app.extensions["pbx"]
    (ctx.settings.recordings_dir / "2026").mkdir(parents=True)
    (ctx.settings.recordings_dir / "2026" / "call.wav").write_bytes(os.urandom(300_000))
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = opener.open(f"{live_url}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "username": ADMIN[0],
                                   "password": ADMIN[1]}).encode()
    opener.open(f"{live_url}/login", form, timeout=10).read()
    with opener.open(f"{live_url}/backup/download?files=1", timeout=30) as reply:
        assert reply.headers.get("Content-Length") is None  # sent as it is made
        assert reply.headers["Content-Type"] == "application/gzip"
        body = reply.read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        member = tar.extractfile("recordings/2026/call.wav")
        assert member is not None
        assert member.read() == (ctx.settings.recordings_dir / "2026" / "call.wav").read_bytes()
