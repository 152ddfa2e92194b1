"""Extensions one at a time: list, add, new SIP password, remove (`pbx ext`, control API).

Every change goes through the configuration layer, in one writer transaction: the stored
configuration is read, changed, validated as a whole `BoxConfig` (the rules and messages of
`pbx config import`: extension format, one number space, password rules, references) and
written back with the import's own writer, which keeps the ids of everything unchanged. So
nothing here repeats a configuration rule. Plain passwords only pass through: the devices
table keeps the HA1 digests for the box realm, and a generated password is returned once.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

import sqlite_utils
from pydantic import BaseModel

from .config.errors import ConfigError, Problem
from .config.model import BoxConfig, BoxSettings, Device, Employee, check_sip_password
from .config.read import read_config_data
from .config.store import to_json
from .config.types import normalize_extension
from .config.write import replace_config
from .config.yamlio import parse_config, parse_model
from .db import Database

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
#: A function the database's writer runs inside one transaction.
Txn = Callable[[sqlite_utils.Database], T]

#: Letters and digits that cannot be misread (no 0/O, 1/l/I) when typed into a phone.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_GROUPS, PASSWORD_GROUP_SIZE = 4, 5  # 20 random characters: about 116 bits
ErrorKind = Literal["invalid", "unknown", "conflict"]


class ExtensionError(ConfigError):
    """An extension change was refused; `kind` tells bad input, unknown or already taken."""

    def __init__(self, problems: list[Problem] | str, kind: ErrorKind = "invalid") -> None:
        """Build from one message or a list of problems."""
        super().__init__(problems)
        self.kind = kind


@dataclass(frozen=True)
class DeviceInfo:
    """One SIP device of an extension."""

    username: str
    kind: str
    static_contact: str | None
    auth: str  # digest challenges: 'sha256' (SHA-256, then MD5) or 'md5' (MD5 alone)


@dataclass(frozen=True)
class ExtensionInfo:
    """An extension as `pbx ext list` and `GET /extensions` show it (no secrets)."""

    extension: str
    name: str
    role: str
    email: str | None
    dnd: bool
    enabled: bool
    devices: tuple[DeviceInfo, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)


@dataclass(frozen=True)
class AddResult:
    """What a phone needs; `password` is set only when the box generated it (shown once)."""

    extension: str
    name: str
    username: str
    realm: str
    password: str | None


@dataclass(frozen=True)
class RemoveResult:
    """What went: the extension, its devices, and the groups it was taken out of."""

    extension: str
    name: str
    usernames: tuple[str, ...]
    left: tuple[str, ...]


def generate_password(username: str) -> str:
    """A strong random SIP password that passes the configuration's password rules."""
    for _ in range(100):
        groups = ["".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_SIZE))
                  for _ in range(PASSWORD_GROUPS)]
        for candidate in ("-".join(groups), "".join(groups)):
            try:
                check_sip_password(candidate, username)
            except ValueError:
                continue
            return candidate
    raise ExtensionError(f"cannot generate a password for user name {username!r}")


def list_extensions(db: Database) -> list[ExtensionInfo]:
    """Every extension with its devices, in numeric order."""
    rows = db.read().execute(
        "SELECT e.id, e.extension, e.name, e.role, e.email, e.dnd, e.enabled, d.username,"
        " d.kind, d.static_contact, d.auth"
        " FROM employees e LEFT JOIN devices d ON d.employee_id = e.id"
        " ORDER BY length(e.extension), e.extension, d.username").fetchall()
    found: dict[int, tuple[tuple[Any, ...], list[DeviceInfo]]] = {}
    for row in rows:
        _, devices = found.setdefault(row[0], (row, []))
        if row[7] is not None:
            devices.append(DeviceInfo(row[7], row[8], row[9], row[10]))
    return [ExtensionInfo(r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), tuple(devices))
            for r, devices in found.values()]


def add_txn(extension: str, name: str, *, password: str | None = None,
            username: str | None = None, role: str = "user", email: str | None = None,
            auth: str | None = None, actor: str = "system") -> Txn[AddResult]:
    """Validate the fields now; return the writer job that adds the extension."""
    given = {"extension": extension, "name": name, "role": role, "email": email}
    employee = _parse(Employee, {k: v for k, v in given.items() if v is not None})
    user = employee.extension if username is None else username
    secret = generate_password(user) if password is None else password
    wanted = {"username": user, "password": secret, **({} if auth is None else {"auth": auth})}
    device = _parse(Device, wanted)
    ext, user = employee.extension, device.username
    entry = {**employee.model_dump(include={"extension", "name", "role", "email"},
                                   exclude_none=True),
             "devices": [{**wanted, "username": user}]}

    def txn(conn: sqlite_utils.Database) -> AddResult:
        raw = conn.conn
        taken = raw.execute("SELECT name FROM employees WHERE extension = ?", (ext,)).fetchone()
        if taken:
            raise ExtensionError(f"extension {ext} already exists ({taken[0]})", "conflict")
        owner = raw.execute("SELECT e.extension FROM devices d JOIN employees e ON"
                            " e.id = d.employee_id WHERE d.username = ?", (user,)).fetchone()
        if owner:
            raise ExtensionError(f"SIP user name {user!r} is already used by a device of "
                                 f"extension {owner[0]}", "conflict")
        data = read_config_data(raw)
        data["employees"].append(entry)
        cfg = _validated(data, f"extension {ext} was not added:")
        replace_config(conn, cfg)
        _audit(raw, actor, "add", ext, after={
            "extension": ext, "name": employee.name, "role": employee.role,
            "email": employee.email,
            "devices": [{"username": user, "kind": device.kind, "auth": device.auth}],
            "password_generated": password is None})
        return AddResult(ext, employee.name, user, cfg.box.sip_realm,
                         secret if password is None else None)

    return txn


def passwd_txn(username: str, password: str | None = None, *,
               actor: str = "system") -> Txn[str]:
    """Validate now; return the writer job that gives a device a new password (returned)."""
    secret = generate_password(username) if password is None else password
    device = _parse(Device, {"username": username, "password": secret})

    def txn(conn: sqlite_utils.Database) -> str:
        raw = conn.conn
        row = raw.execute("SELECT d.id, e.extension FROM devices d JOIN employees e ON"
                          " e.id = d.employee_id WHERE d.username = ?",
                          (device.username,)).fetchone()
        if row is None:
            raise ExtensionError(f"no device with SIP user name {device.username!r}", "unknown")
        realm = _realm(raw)
        hashed = device.hashed(realm)
        raw.execute("UPDATE devices SET realm = ?, ha1_md5 = ?, ha1_sha256 = ? WHERE id = ?",
                    (realm, hashed.ha1_md5, hashed.ha1_sha256, row[0]))
        _audit(raw, actor, "set_password", device.username, after={
            "extension": row[1], "realm": realm, "password_generated": password is None})
        return secret

    return txn


def remove_txn(extension: str, *, actor: str = "system") -> Txn[RemoveResult]:
    """Validate now; return the writer job that removes an extension and its devices."""
    # It also leaves department, queue, repeat-caller and CRM lists; anything that still
    # sends calls to it (flows, menus, chains, voicemail owner ...) is reported and nothing
    # changes. Call history keeps its text snapshots (ON DELETE SET NULL).
    try:
        ext = normalize_extension(extension)
    except ValueError as exc:
        raise ExtensionError([Problem("extension", str(exc))]) from None

    def txn(conn: sqlite_utils.Database) -> RemoveResult:
        raw = conn.conn
        data = read_config_data(raw)
        gone = next((e for e in data["employees"] if e["extension"] == ext), None)
        if gone is None:
            raise ExtensionError(f"no extension {ext}", "unknown")
        data["employees"] = [e for e in data["employees"] if e is not gone]
        left = _leave_lists(data, ext)
        replace_config(conn, _validated(data, f"extension {ext} was not removed:"))
        usernames = tuple(d["username"] for d in gone["devices"])
        _audit(raw, actor, "remove", ext, before={
            "extension": ext, "name": gone["name"], "role": gone["role"],
            "email": gone.get("email"), "devices": [
                {"username": d["username"], "kind": d["kind"]} for d in gone["devices"]],
            "left": left})
        return RemoveResult(ext, gone["name"], usernames, tuple(left))

    return txn


def add_extension(db: Database, extension: str, name: str, *, password: str | None = None,
                  username: str | None = None, role: str = "user", email: str | None = None,
                  auth: str | None = None, actor: str = "system") -> AddResult:
    """Add an employee with one desk phone (SIP user name defaults to the extension)."""
    return run(db, add_txn(extension, name, password=password, username=username, role=role,
                           email=email, auth=auth, actor=actor))


def set_password(db: Database, username: str, password: str | None = None, *,
                 actor: str = "system") -> str:
    """New HA1 digests for a device in the box realm; returns the (generated) password."""
    return run(db, passwd_txn(username, password, actor=actor))


def remove_extension(db: Database, extension: str, *, actor: str = "system") -> RemoveResult:
    """Remove an employee and their devices (registrations go with them)."""
    return run(db, remove_txn(extension, actor=actor))


def run(db: Database, txn: Txn[T]) -> T:
    """Run a job in one writer transaction; refusals by SQLite become ExtensionError."""
    try:
        return db.write(txn)
    except sqlite3.IntegrityError as exc:
        raise ExtensionError(f"the database refused the change: {exc}") from None


async def arun(db: Database, txn: Txn[T]) -> T:
    """`run` for the event loop: awaits the writer without blocking."""
    try:
        return await db.awrite(txn)
    except sqlite3.IntegrityError as exc:
        raise ExtensionError(f"the database refused the change: {exc}") from None


def _parse(model: type[M], data: dict[str, Any]) -> M:
    """One model validated on its own: the import's messages, paths relative to it."""
    try:
        return parse_model(model, data)
    except ConfigError as exc:
        raise ExtensionError(exc.problems) from None


def _validated(data: dict[str, Any], heading: str) -> BoxConfig:
    """The changed configuration, or ExtensionError (a clash) with the import's messages."""
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ExtensionError([Problem("", heading), *exc.problems], "conflict") from None


def _leave_lists(data: dict[str, Any], ext: str) -> list[str]:
    """Take `ext` out of member lists; returns where it was."""
    left = []
    for section, field, what in (("departments", "members", "department"),
                                 ("queues", "agents", "queue")):
        for item in data.get(section, []):
            if ext in item.get(field, []):
                item[field] = [x for x in item[field] if x != ext]
                left.append(f"{what} {item['key']!r}")
    repeat = data.get("repeat_caller", {})
    if ext in repeat.get("exceptions", []):
        repeat["exceptions"] = [x for x in repeat["exceptions"] if x != ext]
        left.append("repeat-caller exceptions")
    for crm in data.get("crm", []):
        users = crm.get("users", {})
        if ext in users.values():
            crm["users"] = {k: v for k, v in users.items() if v != ext}
            left.append(f"CRM {crm['key']!r} users")
    return left


def _realm(raw: sqlite3.Connection) -> str:
    row = raw.execute("SELECT value FROM box_settings WHERE key = 'sip_realm'").fetchone()
    return str(json.loads(row[0])) if row else BoxSettings().sip_realm


def _audit(raw: sqlite3.Connection, actor: str, action: str, obj: str, *,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    raw.execute(
        "INSERT INTO audit_log (actor, area, action, object, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (actor, "extensions", action, obj, None if before is None else to_json(before),
         None if after is None else to_json(after)))
