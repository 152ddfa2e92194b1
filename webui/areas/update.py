"""System > Update: upload a signed update bundle, check it, and have the box install it.

The web UI runs sandboxed as user pbx and can only leave a checked bundle and a request in
<data>/updates/; pbx-update.service (root, appliance/updater.py) checks it again, installs
it with apt and writes its progress to /var/lib/pbx-update/status.json, which this page polls.
The web UI itself is restarted by the package's postinst meanwhile: the page keeps polling.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.bundle import BundleError, BundleInfo, check_bundle, installed_version, machine_arch
from appliance.updater import (
    BUNDLE,
    FINAL_STATES,
    LOG,
    PENDING_META,
    REQUEST,
    log_tail,
    read_status,
)

from ..auth import admin_required, audit, current_user
from ..context import web
from . import NavItem

bp = Blueprint("update", __name__, url_prefix="/update")
NAV = [NavItem("update.index", _l("Update"), "system", order=45)]
# The bundle (a .deb of ~35 MB today) goes straight to a file under the data directory.
MAX_UPLOAD = 600 * 1024 * 1024
REQUESTED = "requested.json"
# What a refusal or a result means, by the code appliance/bundle.py and the installer give.
MESSAGES = {
    "not_bundle": _l("This file is not an update bundle of this box."),
    "unexpected_member": _l("This file is not an update bundle of this box."),
    "too_large": _l("The bundle is too large."),
    "bad_index": _l("The bundle's package index is damaged."),
    "no_keyring": _l("The vendor's key is missing on this box: signatures cannot be checked."),
    "no_gpgv": _l("gpgv is missing on this box: signatures cannot be checked."),
    "wrong_key": _l("The bundle is signed by a key this box does not trust."),
    "bad_signature": _l("The bundle's signature does not match its content: it was changed "
                        "after signing."),
    "unsigned": _l("The bundle is not signed."),
    "tampered": _l("The package does not match its signed index: it was changed after "
                   "signing."),
    "wrong_arch": _l("The update is for another kind of box."),
    "not_newer": _l("This version is not newer than the installed one."),
    "changed": _l("The bundle changed after it was checked. Upload it again."),
    "no_bundle": _l("The uploaded bundle is gone. Upload it again."),
    "bad_request": _l("The installer refused the request."),
    "installed": _l("The update is installed."),
    "kept_old": _l("The update failed; the box keeps running the previous version."),
    "apt_failed": _l("The update failed."),
}
STATES = {"requested": _l("Waiting for the installer"), "checking": _l("Checking"),
          "unpacked": _l("Checking"), "installing": _l("Installing"),
          "installed": _l("Installed"), "failed": _l("Failed"), "refused": _l("Refused")}


def _upload_limits() -> None:
    # Before CSRF reads the form: the size limit, and the file part written under the data
    # directory (never into memory or the small private /tmp).
    if request.endpoint != "update.upload":
        return
    request.max_content_length = MAX_UPLOAD
    folder = updates_dir()

    def stream(*_args: Any, **_kwargs: Any) -> IO[bytes]:
        folder.mkdir(mode=0o750, exist_ok=True)
        return tempfile.NamedTemporaryFile("wb+", dir=folder, prefix=".upload-",
                                           suffix=".part")
    request._get_file_stream = stream  # type: ignore[method-assign]


bp.record_once(lambda state: state.app.before_request_funcs.setdefault(None, []).insert(
    0, _upload_limits))


def updates_dir() -> Path:
    """Where the web UI leaves the checked bundle and the install request."""
    return web().settings.data_dir / "updates"


def _config(name: str, default: Path) -> Path:
    return Path(current_app.config.get(name) or default)


def state_dir() -> Path:
    """The installer's folder (status.json, apt.log); root's, read here."""
    return _config("PBX_UPDATE_STATE_DIR", Path("/var/lib/pbx-update"))


def privileged_side() -> bool:
    """True on the image, where pbx-update.path watches for requests."""
    return _config("PBX_UPDATE_UNIT", Path("/lib/systemd/system/pbx-update.path")).exists()


def current_version() -> str | None:
    """The installed version (the package's VERSION file; a checkout's own version)."""
    return installed_version(_config("PBX_VERSION_FILE", Path("/opt/pbx/VERSION")))


def box_arch() -> str:
    """This box's Debian architecture."""
    return str(current_app.config.get("PBX_UPDATE_ARCH") or machine_arch())


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def pending() -> dict[str, Any] | None:
    """The checked bundle waiting to be installed, if any."""
    meta = _read_json(updates_dir() / PENDING_META)
    if meta is None or not (updates_dir() / BUNDLE).is_file():
        return None
    return meta


def progress(requested: dict[str, Any] | None, status: dict[str, Any] | None,
             now: datetime) -> dict[str, Any] | None:
    """What the page shows about the latest install: the installer's status when it is about
    our latest request, else that request waiting. Pure."""
    if requested and (status is None or status.get("id") != requested.get("id")):
        waited = 0.0
        with contextlib.suppress(TypeError, ValueError):
            waited = (now - datetime.fromisoformat(str(requested.get("at")))).total_seconds()
        return {"state": "requested", "version": requested.get("version"),
                "stalled": waited > 120, "final": False}
    if status is None or not status.get("state"):
        return None
    return {**status, "final": status.get("state") in FINAL_STATES}


def _view() -> dict[str, Any]:
    status = read_status(state_dir())
    shown = progress(_read_json(updates_dir() / REQUESTED), status, web().now())
    if shown and shown.get("state") == "installing":
        shown["log"] = log_tail(state_dir() / LOG, lines=12)
    code = (shown or {}).get("code")
    return {"installed": current_version(), "arch": box_arch(), "privileged": privileged_side(),
            "pending": pending(), "progress": shown,
            "result_text": MESSAGES.get(code) if code else None,
            "states": STATES, "max_mb": MAX_UPLOAD // 1024 // 1024}


@bp.get("/")
@admin_required
def index() -> str:
    """The installed version, the last update's state, the upload form."""
    return render_template("system/update.html", **_view())


@bp.get("/progress")
@admin_required
def progress_fragment() -> str:
    """The progress block alone (htmx polls it until the install ends)."""
    return render_template("system/_update_progress.html", **_view())


def refusal_text(exc: BundleError) -> str:
    """A refusal in the user's language (English detail appended for the admin)."""
    if exc.code == "wrong_arch":
        return _("The update is for %(arch)s; this box is %(box)s.",
                 arch=exc.detail.get("arch", "?"), box=exc.detail.get("box", "?"))
    if exc.code == "not_newer":
        return _("Version %(version)s is not newer than the installed %(installed)s.",
                 version=exc.detail.get("version", "?"),
                 installed=exc.detail.get("installed", "?"))
    return str(MESSAGES.get(exc.code, _l("The bundle was refused.")))


def _sweep(folder: Path, now: float, age: float = 3600.0) -> None:
    """Remove what interrupted uploads and checks left (older than an hour)."""
    for entry in folder.glob(".*"):
        if not entry.name.startswith((".upload-", ".check-", f".{BUNDLE}.")):
            continue
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime > age:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()


def _check(path: Path) -> BundleInfo:
    work = Path(tempfile.mkdtemp(prefix=".check-", dir=updates_dir()))
    try:
        return check_bundle(path, keyring=web().settings.update_keyring,
                            installed=current_version(), arch=box_arch(), work=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@bp.post("/upload")
@admin_required
def upload() -> Any:
    """Take an uploaded bundle, check it strictly, keep it as the pending update."""
    sent = request.files.get("bundle")
    if sent is None or not sent.filename:
        flash(_("Choose an update file (.pbxupdate)."), "error")
        return redirect(url_for("update.index"))
    filename = os.path.basename(sent.filename)[:120]
    name = getattr(sent.stream, "name", None)
    part = Path(name) if isinstance(name, str) else updates_dir()
    try:
        if part.parent != updates_dir() or not part.is_file():
            # _upload_limits' stream factory wrote it under the data directory, always.
            raise RuntimeError("the upload was not streamed to the data directory")
        sent.stream.flush()
        _sweep(updates_dir(), time.time())
        try:
            info = _check(part)
        except BundleError as exc:
            audit("update", "upload", filename, after={"refused": exc.code,
                                                       "detail": str(exc)})
            return render_template("system/update.html", **_view(), refused=refusal_text(exc),
                                   refused_detail=str(exc)), 400
        tmp = updates_dir() / f".{BUNDLE}.{secrets.token_hex(4)}"
        os.link(part, tmp)  # the checked file itself becomes the pending bundle
        os.replace(tmp, updates_dir() / BUNDLE)
    finally:
        sent.stream.close()  # a NamedTemporaryFile: this removes the upload's part file
        if part.name.startswith(".upload-"):
            part.unlink(missing_ok=True)
    meta = {"version": info.version, "arch": info.arch, "deb": info.deb_name,
            "size": info.size, "sha256": info.sha256, "filename": filename,
            "uploaded_at": web().now().isoformat()}
    _write_json(updates_dir() / PENDING_META, meta)
    audit("update", "upload", filename, after={"version": info.version, "sha256": info.sha256})
    flash(_("The bundle is genuine: version %(v)s can be installed.", v=info.version), "ok")
    return redirect(url_for("update.index"))


@bp.post("/install")
@admin_required
def install() -> Any:
    """Hand the pending bundle to the privileged installer."""
    meta = pending()
    if meta is None:
        flash(_("Upload an update first."), "error")
        return redirect(url_for("update.index"))
    if not privileged_side():
        flash(_("Updates are installed only on the box's image; this is a development "
                "installation."), "error")
        return redirect(url_for("update.index"))
    user = current_user()
    ask = {"id": secrets.token_hex(8), "version": meta["version"], "sha256": meta["sha256"],
           "by": user.username if user else "", "at": web().now().isoformat()}
    _write_json(updates_dir() / REQUESTED, ask)
    _write_json(updates_dir() / REQUEST, ask)  # pbx-update.path starts the installer
    audit("update", "install", str(meta["version"]), after={"id": ask["id"],
                                                           "sha256": meta["sha256"]})
    return redirect(url_for("update.index"))


@bp.post("/discard")
@admin_required
def discard() -> Any:
    """Forget the pending bundle."""
    for name in (BUNDLE, PENDING_META):
        (updates_dir() / name).unlink(missing_ok=True)
    audit("update", "discard", None)
    return redirect(url_for("update.index"))
