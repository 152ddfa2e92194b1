"""Backup and restore of the whole box, and YAML export/import of its configuration."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.errors import ConfigError
from appliance.config.yamlio import export_yaml, import_config, parse_yaml
from appliance.db import Database, migrations

from ..auth import actor, admin_required, audit, current_user
from ..context import web
from . import NavItem
from ._archive import (
    FORMAT,
    ArchiveError,
    check_database,
    copy_into,
    read_archive,
    snapshot_database,
    stream_backup,
    swap_tree,
)

bp = Blueprint("backup", __name__, url_prefix="/backup")
NAV = [NavItem("backup.index", _l("Backup"), "system", order=40)]
MAX_YAML = 5 * 1024 * 1024
# A backup with recordings is larger than the app's upload limit; the archive reader has its
# own limits (_archive.Limits), and werkzeug spools the upload to a temporary file.
MAX_RESTORE = 16 * 1024**3 + 1024**2


def _restore_limit() -> None:
    if request.endpoint == "backup.restore":
        request.max_content_length = MAX_RESTORE


# Before every other before-request function: the CSRF check reads the form, which is where
# the upload limit applies.
bp.record_once(lambda state: state.app.before_request_funcs.setdefault(None, []).insert(
    0, _restore_limit))


@bp.get("/")
@admin_required
def index() -> str:
    """Download or restore a backup; export or import the configuration as YAML."""
    return render_template("system/backup.html")


def _stamp() -> str:
    return web().now().astimezone(UTC).strftime("%Y%m%d-%H%M%S")


@bp.get("/download")
@admin_required
def download() -> Response:
    """The backup as a streamed .tar.gz (database snapshot; recordings and voicemail if
    asked)."""
    ctx = web()
    work = Path(tempfile.mkdtemp(prefix="pbx-backup-", dir=ctx.settings.data_dir))
    snapshot = work / "db.sqlite3"
    try:
        snapshot_database(ctx.settings.db_path, snapshot)
    except Exception:
        shutil.rmtree(work, ignore_errors=True)
        raise
    trees: dict[str, Path] = {}
    if request.args.get("files") == "1":
        trees = {"recordings": ctx.settings.recordings_dir,
                 "voicemail": ctx.settings.voicemail_dir}
        trees = {k: v for k, v in trees.items() if v.is_dir()}
    manifest = {"format": FORMAT, "created_at": ctx.now().isoformat(),
                "schema": migrations.latest_version(),
                "box": ctx.box_value("name", "Office PBX"), "files": sorted(trees)}
    audit("backup", "download", None, after={"files": sorted(trees)})

    name = f"pbx-backup-{_stamp()}.tar.gz"
    response = Response(stream_backup(snapshot, manifest, trees), mimetype="application/gzip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})
    # Also when the client goes away before the first byte (the generator never started).
    response.call_on_close(lambda: shutil.rmtree(work, ignore_errors=True))
    return response


def _restore(upload: Any) -> dict[str, Any]:
    """Validate the upload aside, migrate it, then swap it in; returns what was restored."""
    ctx = web()
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=ctx.settings.data_dir))
    try:
        found = read_archive(upload.stream, work / "x")
        version = check_database(found.database)
        # Brought to this software's schema on the copy, never on the live database.
        Database.open(found.database, migrate=True).close()
        if check_database(found.database) != migrations.latest_version():
            raise ArchiveError("the backup's database could not be upgraded")
        copy_into(found.database, ctx.settings.db_path)
        for tree in sorted(found.trees):
            live = {"recordings": ctx.settings.recordings_dir,
                    "voicemail": ctx.settings.voicemail_dir}[tree]
            swap_tree(found.root / tree, live)
        return {"schema": version, "files": found.files, "trees": sorted(found.trees),
                "created_at": str(found.manifest.get("created_at", ""))[:40],
                "box": str(found.manifest.get("box", ""))[:100]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _audit_restore(result: dict[str, Any]) -> None:
    """The audit row of a restore, in the restored database, where the admin who did it may
    not exist (then only the name is kept)."""
    who = actor()
    row = (who.name, who.user_id, "backup", "restore", json.dumps(result, ensure_ascii=False))
    web().db.write(lambda c: c.conn.execute(
        "INSERT INTO audit_log (actor, user_id, area, action, after) VALUES"
        " (?, (SELECT id FROM web_users WHERE id = ?), ?, ?, ?)", row))


@bp.post("/restore")
@admin_required
def restore() -> Any:
    """Restore an uploaded backup: checked strictly first, then swapped in at once."""
    upload = request.files.get("archive")
    if upload is None or not upload.filename:
        flash(_("Choose a backup file (.tar.gz)."), "error")
        return redirect(url_for("backup.index"))
    try:
        result = _restore(upload)
    except ArchiveError as exc:
        return render_template("system/backup.html", restore_error=str(exc)), 400
    _audit_restore(result)
    web().reload_engine()
    return render_template("system/backup.html", restored=result)


@bp.get("/config.yaml")
@admin_required
def export() -> Response:
    """The configuration as YAML (secrets left out)."""
    text = export_yaml(web().db)
    audit("config", "export", None)
    return Response(text, mimetype="application/yaml", headers={
        "Content-Disposition": f'attachment; filename="pbx-config-{_stamp()}.yaml"'})


@bp.post("/import")
@admin_required
def import_yaml() -> Any:
    """Validate an uploaded YAML file; replace the configuration only when it is valid."""
    upload = request.files.get("yaml")
    if upload is None or not upload.filename:
        flash(_("Choose a YAML file."), "error")
        return redirect(url_for("backup.index"))
    raw = upload.stream.read(MAX_YAML + 1)
    if len(raw) > MAX_YAML:
        return render_template("system/backup.html", problems=[
            ("", _("The file is larger than %(n)d MB.", n=MAX_YAML // 1024 // 1024))]), 400
    try:
        cfg = parse_yaml(raw)
        user = current_user()
        report = import_config(web().db, cfg, actor=user.username if user else "web")
    except ConfigError as exc:
        problems = [(p.path, p.message) for p in exc.problems[:200]]
        return render_template("system/backup.html", problems=problems), 400
    web().reload_engine()
    return render_template("system/backup.html", imported=str(report))
