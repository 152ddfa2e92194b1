"""The privileged side of an update uploaded in the web UI (pbx-update.service, as root).

The web UI (user pbx) leaves a checked bundle and a request in <data>/updates/. This never
trusts them: it takes the request and a copy of the bundle without following links, checks
the copy again (signature, hashes, architecture, newer than installed), unpacks it as the
box's apt source folder (/srv/pbx-repo), and runs apt restricted to that one source, so apt
checks the signature and hashes once more and no network is needed. The postinst migrates the
database and puts the old version back when that fails. Progress and the result go to
/var/lib/pbx-update/status.json (root's, readable by the web UI).

Everything is imported at start: dpkg replaces the venv this runs from while apt works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.bundle import (
    DEFAULT_KEYRING,
    PACKAGE,
    BundleError,
    BundleInfo,
    check_bundle,
    file_sha256,
    installed_version,
    machine_arch,
)

REQUEST = "install.request"
BUNDLE = "pending.pbxupdate"
PENDING_META = "pending.json"
STATUS = "status.json"
LOG = "apt.log"
MAX_REQUEST = 4096
MAX_BUNDLE = 600 * 1024 * 1024
FINAL_STATES = ("installed", "failed", "refused")


@dataclass(frozen=True)
class Paths:
    """Where the updater reads and writes (the defaults are the box's)."""

    requests: Path = Path("/var/lib/pbx/updates")
    state: Path = Path("/var/lib/pbx-update")
    repo: Path = Path("/srv/pbx-repo")
    keyring: Path = DEFAULT_KEYRING
    version_file: Path = Path("/opt/pbx/VERSION")


def write_status(state_dir: Path, status: dict[str, Any]) -> None:
    """Replace status.json atomically (0644: the web UI reads it)."""
    status = {**status, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = state_dir / (STATUS + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(status, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, state_dir / STATUS)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The last status, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((state_dir / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def parse_request(raw: bytes) -> dict[str, str]:
    """The web UI's request: an id, the version and the bundle's SHA-256 it was shown. Pure."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeError, ValueError):
        raise BundleError("bad_request", "the update request is not JSON") from None
    if not isinstance(data, dict):
        raise BundleError("bad_request", "the update request is not an object")
    out = {k: data.get(k) for k in ("id", "version", "sha256")}
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in out.values()):
        raise BundleError("bad_request", "the update request lacks id, version or sha256")
    return {k: str(v) for k, v in out.items()}


def _open_requests(requests: Path) -> int:
    # The folder belongs to pbx: never follow a link it may have planted.
    try:
        return os.open(requests, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError:
        raise BundleError("bad_request", f"{requests} is not a plain folder") from None


def _open_file(name: str, dfd: int, code: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except FileNotFoundError:
        raise
    except OSError:  # a link (ELOOP) or another kind of file
        raise BundleError(code, f"{name} is not a plain file") from None


def take_request(requests: Path) -> dict[str, str] | None:
    """Read and remove the request (None when there is none)."""
    try:
        dfd = _open_requests(requests)
    except FileNotFoundError:
        return None
    try:
        try:
            fd = _open_file(REQUEST, dfd, "bad_request")
        except FileNotFoundError:
            return None
        finally:
            # Consumed before anything else, so the path unit does not start us in a loop.
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                os.unlink(REQUEST, dir_fd=dfd)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise BundleError("bad_request", "the update request is not a file")
            raw = fh.read(MAX_REQUEST + 1)
        if len(raw) > MAX_REQUEST:
            raise BundleError("bad_request", "the update request is too large")
        return parse_request(raw)
    finally:
        os.close(dfd)


def copy_bundle(requests: Path, dest: Path) -> None:
    """Copy the pending bundle to root's own folder (checked there, out of pbx's reach)."""
    dfd = _open_requests(requests)
    try:
        try:
            fd = _open_file(BUNDLE, dfd, "not_bundle")
        except FileNotFoundError:
            raise BundleError("no_bundle", "no uploaded bundle to install") from None
        with os.fdopen(fd, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BUNDLE:
                raise BundleError("not_bundle", "the uploaded bundle is not a plain file of a "
                                  "sane size")
            dest.unlink(missing_ok=True)
            out_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(out_fd, "wb") as out:
                # Bounded: the file may still grow while it is copied.
                while block := src.read(1024 * 1024):
                    out.write(block)
                    if out.tell() > MAX_BUNDLE:
                        raise BundleError("too_large", "the uploaded bundle is too large")
        for name in (BUNDLE, PENDING_META):  # the web UI's copy is not needed any more
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(name, dir_fd=dfd)
    finally:
        os.close(dfd)


def dpkg_arch() -> str:
    """This system's Debian architecture (dpkg's answer, else the machine's)."""
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
        return out or machine_arch()
    except (OSError, subprocess.SubprocessError):
        return machine_arch()


def unpack_to_repo(bundle: Path, paths: Paths, installed: str | None, arch: str) -> BundleInfo:
    """Check the bundle and make it the apt source folder (swapped in by renames)."""
    paths.repo.parent.mkdir(parents=True, exist_ok=True)
    new = paths.repo.with_name(paths.repo.name + ".new")
    old = paths.repo.with_name(paths.repo.name + ".old")
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    new.mkdir(mode=0o755)
    try:
        info = check_bundle(bundle, keyring=paths.keyring, installed=installed, arch=arch,
                            work=paths.state, dest=new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    os.chmod(new, 0o755)  # apt reads file: sources as its own unprivileged user too
    if paths.repo.exists():
        os.rename(paths.repo, old)
    os.rename(new, paths.repo)
    shutil.rmtree(old, ignore_errors=True)
    return info


def apt_options(paths: Paths) -> list[str]:
    """apt options that read only our folder's source list (no network, no other repos)."""
    parts = paths.state / "sources.list.d"
    parts.mkdir(exist_ok=True)
    sources = paths.state / "sources.list"
    sources.write_text(f"deb [signed-by={paths.keyring}] file:{paths.repo} ./\n",
                       encoding="utf-8")
    return ["-o", f"Dir::Etc::SourceList={sources}", "-o", f"Dir::Etc::SourceParts={parts}"]


def apt_commands(paths: Paths, version: str) -> list[list[str]]:
    """apt-get update (this source only, other lists kept) and install of that version."""
    opts = apt_options(paths)
    return [
        ["apt-get", "update", "-q", *opts, "-o", "APT::Get::List-Cleanup=false"],
        ["apt-get", "install", "-y", "-q", "--no-remove", *opts,
         "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
         f"{PACKAGE}={version}"],
    ]


def log_tail(path: Path, lines: int = 30, limit: int = 64 * 1024) -> str:
    """The last lines of a log file (at most `limit` bytes read)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - limit))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_apt(paths: Paths, version: str) -> int:
    """Run the apt commands with their output in apt.log; the first failing exit code."""
    log = paths.state / LOG
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    with log.open("w", encoding="utf-8") as out:
        for cmd in apt_commands(paths, version):
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, check=False).returncode
            if rc != 0:
                out.write(f"exit code {rc}\n")
                return rc
    return 0


def run(paths: Paths, *, arch: str | None = None, install: bool = True) -> dict[str, Any]:
    """Take the request and carry it out; the final status (also written to status.json)."""
    paths.state.mkdir(mode=0o755, parents=True, exist_ok=True)
    status: dict[str, Any]
    try:
        request = take_request(paths.requests)
    except BundleError as exc:
        status = {"id": "", "state": "refused", "code": exc.code, "message": str(exc)}
        write_status(paths.state, status)
        return status
    if request is None:
        return {}
    before = installed_version(paths.version_file)
    base: dict[str, Any] = {"id": request["id"], "version": request["version"],
                            "from_version": before}
    write_status(paths.state, {**base, "state": "checking"})
    copy = paths.state / "bundle.pbxupdate"
    try:
        copy_bundle(paths.requests, copy)
        # The very file the admin was shown (so also its version), before anything changes.
        if file_sha256(copy) != request["sha256"]:
            raise BundleError("changed", "the bundle changed after it was checked")
        info = unpack_to_repo(copy, paths, before, arch or dpkg_arch())
    except BundleError as exc:
        status = {**base, "state": "refused", "code": exc.code, "message": str(exc)}
        write_status(paths.state, status)
        return status
    finally:
        copy.unlink(missing_ok=True)
    if not install:
        status = {**base, "state": "unpacked"}
        write_status(paths.state, status)
        return status
    write_status(paths.state, {**base, "state": "installing"})
    rc = run_apt(paths, info.version)
    after = installed_version(paths.version_file)
    status = {**base, "installed": after, "log": log_tail(paths.state / LOG)}
    if rc == 0 and after == info.version:
        status.update(state="installed", code="installed",
                      message=f"version {after} is installed")
    elif after == before:
        status.update(state="failed", code="kept_old",
                      message=f"the update failed; the box keeps running version {before}")
    else:
        status.update(state="failed", code="apt_failed",
                      message=f"apt-get failed (exit code {rc}); installed: {after}")
    write_status(paths.state, status)
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of pbx-update.service."""
    parser = argparse.ArgumentParser(prog="python -m appliance.updater",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=Path, default=Paths.requests)
    parser.add_argument("--state", type=Path, default=Paths.state)
    parser.add_argument("--repo", type=Path, default=Paths.repo)
    parser.add_argument("--keyring", type=Path, default=Paths.keyring)
    args = parser.parse_args(argv)
    status = run(Paths(args.requests, args.state, args.repo, args.keyring))
    print(f"pbx-update: {status.get('state', 'nothing to do')}: {status.get('message', '')}")
    return 0 if status.get("state") in (None, "installed") else 1  # None: nothing asked


if __name__ == "__main__":
    sys.exit(main())
