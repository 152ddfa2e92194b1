"""Remote access to the box's shell (SSH): off by default, turned on by the admin.

The web UI runs unprivileged, so it only writes a request (on or off, and the public keys
that may log in) to `<data_dir>/system/ssh-request.json`. On the image a systemd path unit
starts `pbx remote-access apply` as root for every new request: it reads and checks the
request again (it trusts nothing the web side wrote), makes the keys root's authorized
keys, enables or disables the SSH server, and writes `ssh-status.json`, which the page
shows. The box has no passwords, so a key is the only way in, and "off" also removes the
keys. Parsing and checking are pure; `apply` takes the system's paths and its command
runner from its caller, so tests run it on a temporary root.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REQUEST_NAME = "ssh-request.json"
STATUS_NAME = "ssh-status.json"
MAX_KEYS = 32
MAX_KEY_CHARS = 8192  # an RSA 16384-bit key is about 2,800 characters in base64
MAX_REQUEST_BYTES = MAX_KEYS * (MAX_KEY_CHARS + 256) + 1024
# Key types OpenSSH 9 (Debian 12) accepts for public-key login (DSA is gone from it), with
# the number of length-prefixed fields of their key blob (the type name is the first).
KEY_FIELDS = {
    "ssh-ed25519": 2, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3, "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
}
KEY_TYPES = frozenset(KEY_FIELDS)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}", re.ASCII)
# Printable, no surrogates (they cannot be written as UTF-8), one line.
_COMMENT = re.compile(r"[\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]{0,200}")


class BadKey(ValueError):
    """A line of the admin's public keys is not a key OpenSSH would accept.

    `code` names the fault for a translated message: format, type, base64, truncated,
    mismatch, comment or count.
    """

    def __init__(self, line: int, code: str, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.code = code
        self.reason = reason


class RequestError(ValueError):
    """The request file is missing, too large, or not a valid request."""


@dataclass(frozen=True)
class Request:
    """What the admin asked for: SSH on or off, and the keys that may log in as root."""

    enabled: bool
    keys: tuple[str, ...] = ()
    by: str = ""


def _fields(raw: bytes) -> list[bytes] | None:
    """The length-prefixed fields of a key blob, None unless they use up every byte."""
    fields, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            return None
        size = int.from_bytes(raw[at:at + 4], "big")
        at += 4
        if at + size > len(raw):
            return None
        fields.append(raw[at:at + size])
        at += size
    return fields


def parse_key(line: str, number: int = 1) -> str:
    """One public key line (`type base64 [comment]`) checked and normalised; BadKey."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise BadKey(number, "format", "expected: key type, key, optional comment")
    kind, blob = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if kind not in KEY_TYPES:
        # authorized_keys options (command=, from=...) would come first: not accepted here.
        raise BadKey(number, "type", f"unknown key type {kind[:40]!r}")
    if len(blob) > MAX_KEY_CHARS or not _BASE64.fullmatch(blob):
        raise BadKey(number, "base64", "the key is not base64")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise BadKey(number, "base64", "the key is not base64") from None
    # The blob is length-prefixed fields, its own type first: a key pasted under the wrong
    # type, or cut short, is caught here rather than by sshd later.
    fields = _fields(raw)
    if fields is None or len(raw) < 8:
        raise BadKey(number, "truncated", "the key is truncated")
    if fields[0] != kind.encode() or len(fields) != KEY_FIELDS[kind]:
        raise BadKey(number, "mismatch", "the key does not match its type")
    if not _COMMENT.fullmatch(comment):
        raise BadKey(number, "comment", "the comment has control characters or is too long")
    return f"{kind} {blob} {comment}".rstrip()


def parse_keys(text: str) -> tuple[str, ...]:
    """The public keys of a pasted text (blank lines and # comments skipped); BadKey."""
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key = parse_key(line, number)
        if key not in keys:
            keys.append(key)
        if len(keys) > MAX_KEYS:
            raise BadKey(number, "count", f"at most {MAX_KEYS} keys")
    return tuple(keys)


def check_request(request: Request) -> Request:
    """The request if it can be carried out: SSH on needs at least one key; RequestError."""
    if request.enabled and not request.keys:
        raise RequestError("SSH needs at least one public key: the box has no passwords")
    return request


def request_to_json(request: Request) -> str:
    """The request file's text."""
    return json.dumps({"enabled": request.enabled, "keys": list(request.keys),
                       "by": request.by}, ensure_ascii=False, indent=1)


def request_from_json(text: str | bytes) -> Request:
    """A request read back from its file, checked line by line; RequestError."""
    if len(text) > MAX_REQUEST_BYTES:
        raise RequestError("the request is too large")
    try:
        data: Any = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("enabled"), bool):
        raise RequestError("expected an object with enabled: true or false")
    keys = data.get("keys", [])
    by = data.get("by", "")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RequestError("keys: a list of strings")
    if not isinstance(by, str):
        raise RequestError("by: a string")
    try:
        parsed = parse_keys("\n".join(k.replace("\n", " ") for k in keys))
    except BadKey as exc:
        raise RequestError(f"keys: {exc}") from None
    return check_request(Request(data["enabled"], parsed, by[:100]))


def open_folder(path: Path, *, create: bool = False) -> int:
    """A descriptor of a folder that is not a symlink (files are then made relative to it)."""
    if create:
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def write_atomic(folder: Path, name: str, text: str, mode: int = 0o640) -> None:
    """Write folder/name so a reader (or a path unit) never sees half of it.

    The folder is opened once without following a symlink and the file is made relative to
    it: root writing into the web side's folder cannot be sent elsewhere by a link.
    """
    dfd = open_folder(folder, create=True)
    try:
        tmp = f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode,
                     dir_fd=dfd)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    finally:
        os.close(dfd)


def submit(data_dir: Path, request: Request) -> None:
    """The web side: hand a checked request to the privileged side."""
    write_atomic(data_dir / "system", REQUEST_NAME, request_to_json(check_request(request)))


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """What the privileged side last reported, or None (not on the image, or not yet)."""
    try:
        data = json.loads((data_dir / "system" / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_request(data_dir: Path) -> Request | None:
    """The pending or last request, or None; RequestError if it is not a valid one."""
    try:
        dfd = open_folder(data_dir / "system")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RequestError(f"cannot open the request's folder: {exc}") from None
    try:
        fd = os.open(REQUEST_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RequestError(f"cannot open the request: {exc}") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RequestError("the request is not a regular file")
        return request_from_json(f.read(MAX_REQUEST_BYTES + 1))


Runner = Callable[[Sequence[str]], int]


def run_command(argv: Sequence[str]) -> int:
    """Run a system command (systemctl); its exit code."""
    return subprocess.run(list(argv), check=False, timeout=60).returncode


@dataclass(frozen=True)
class System:
    """The paths and commands `apply` changes: the real root's, or a test's."""

    authorized_keys: Path = Path("/root/.ssh/authorized_keys")
    run: Runner = run_command
    unit: str = "ssh.service"


def apply(data_dir: Path, system: System,
          now: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """The privileged side: carry out the request (if any) and write the status; the status."""
    folder = data_dir / "system"
    if not folder.exists():
        # Made by root at boot: handed to the data folder's owner (the web side) to write in.
        folder.mkdir(mode=0o750)
        owner = data_dir.stat()
        os.chown(folder, owner.st_uid, owner.st_gid)
    status: dict[str, Any] = {"at": (now or (lambda: datetime.now(UTC)))().isoformat(
        timespec="seconds")}
    try:
        request = read_request(data_dir)
    except RequestError as exc:
        request, status["error"] = None, str(exc)
    # Consumed, carried out or not: the path unit starts this service while the file exists.
    dfd = open_folder(folder)
    try:
        os.unlink(REQUEST_NAME, dir_fd=dfd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dfd)
    if request is not None:
        keys_path = system.authorized_keys
        if request.enabled:
            keys_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(keys_path.parent, keys_path.name,
                         "".join(f"{k}\n" for k in request.keys), mode=0o600)
            code = system.run(["systemctl", "enable", "--now", system.unit])
        else:
            keys_path.unlink(missing_ok=True)
            code = system.run(["systemctl", "disable", "--now", system.unit])
        if code != 0:
            status["error"] = f"systemctl exited with {code}"
        status["requested_by"] = request.by
    status["enabled"] = system.run(["systemctl", "--quiet", "is-enabled", system.unit]) == 0
    status["active"] = system.run(["systemctl", "--quiet", "is-active", system.unit]) == 0
    try:
        # Public keys are not secrets: the page shows them to edit the list.
        lines = system.authorized_keys.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    status["authorized"] = [line for line in lines if line.strip() and not line.startswith("#")]
    status["keys"] = len(status["authorized"])
    write_atomic(data_dir / "system", STATUS_NAME, json.dumps(status, indent=1), mode=0o644)
    return status
