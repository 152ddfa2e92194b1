"""Edit one item of the configuration at a time: the layer under the web pages and the REST API.

Both the pages and `/api/v1` call `ConfigEditor`, so an item is validated the same way
everywhere: first alone (errors carry paths relative to the item, like `members[1]`, for the
form field), then inside the whole configuration (references, unique extensions, loops). The
read-modify-write runs as one job on the database's writer thread, so two admins saving at
the same time cannot lose each other's change. Every change leaves an audit row with the
item before and after (never a secret).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, get_args

import sqlite_utils
from pydantic import TypeAdapter, ValidationError

from ..db import Database
from .errors import ConfigError, Problem, problems_from_validation
from .model import BoxConfig
from .read import export_config, read_config_data
from .write import replace_config
from .yamlio import config_to_data

# List sections and the field that names an item in each (None: items are named by position).
LIST_SECTIONS: dict[str, str | None] = {
    "employees": "extension",
    "departments": "key",
    "voicemail_boxes": "key",
    "prompts": "key",
    "lines": "key",
    "numbers": "number",
    "schedules": "key",
    "holiday_sets": "key",
    "flows": "key",
    "forwarding_chains": "key",
    "voice_menus": "key",
    "queues": "key",
    "blacklist": "number",
    "outbound_routes": "key",
    "caller_id_rules": None,
    "crm": "key",
    "webhooks": "key",
}
# Sections that are one object, not a list.
SINGLE_SECTIONS: tuple[str, ...] = ("box", "repeat_caller", "notifications")
# Secrets a form may leave empty to keep the stored one, per section (nested: devices).
_DEVICE_DIGESTS = ("ha1_md5", "ha1_sha256", "realm")


class NotFoundError(KeyError):
    """No item of that section has that key."""


@dataclass(frozen=True)
class Actor:
    """Who changes the configuration, for the audit log."""

    name: str
    user_id: int | None = None
    token_id: int | None = None


@cache
def _adapter(section: str) -> TypeAdapter[Any]:
    annotation = BoxConfig.model_fields[section].annotation
    assert annotation is not None
    if section in LIST_SECTIONS:
        (annotation,) = get_args(annotation)  # list[X] -> X
    return TypeAdapter(annotation)


def _check_section(section: str) -> None:
    if section not in LIST_SECTIONS and section not in SINGLE_SECTIONS:
        raise ValueError(f"no configuration section {section!r}")


def item_key(section: str, item: dict[str, Any], index: int) -> str:
    """The name of an item inside its section (its key field, or its position)."""
    field = LIST_SECTIONS[section]
    return str(index) if field is None else str(item.get(field))


def _relative(problems: list[Problem], prefix: str) -> list[Problem]:
    """Problems under `prefix` (`employees[3]`) with paths relative to that item."""
    out = []
    for p in problems:
        if p.path == prefix:
            out.append(Problem("", p.message))
        elif p.path.startswith(prefix + ".") or p.path.startswith(prefix + "["):
            out.append(Problem(p.path[len(prefix):].lstrip("."), p.message))
        else:
            out.append(p)
    return out


def _untagged(problem: Problem) -> Problem:
    for tag in ("sim", "sip_trunk", "fxo_gateway"):
        if problem.path == tag:
            return Problem("", problem.message)
        if problem.path.startswith(tag + "."):
            return Problem(problem.path[len(tag) + 1:], problem.message)
    return problem


def validate_item(section: str, data: Any) -> Any:
    """Validate one item (or settings section) alone; ConfigError paths are relative to it."""
    if not isinstance(data, dict):
        raise ConfigError("an item must be an object (field: value)")
    try:
        return _adapter(section).validate_python(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        if section == "lines":  # `sim.imei` -> `imei`: the kind is a field the admin chose
            problems = [_untagged(p) for p in problems]
        raise ConfigError(problems) from None


def _keep_device_secrets(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """Devices given without a password keep the digests stored for the same user name."""
    if old is None or not isinstance(new.get("devices"), list):
        return new
    stored = {d.get("username"): d for d in old.get("devices", []) if isinstance(d, dict)}
    devices = []
    for device in new["devices"]:
        # Anything odd (a list for a user name, say) is left for validation to refuse.
        if (isinstance(device, dict) and not device.get("password")
                and not any(device.get(k) for k in _DEVICE_DIGESTS)
                and isinstance(device.get("username"), str)
                and device["username"] in stored):
            was = stored[device["username"]]
            device = {k: v for k, v in device.items() if k != "password"}
            device.update({k: was[k] for k in _DEVICE_DIGESTS if was.get(k) is not None})
        devices.append(device)
    return {**new, "devices": devices}


def _without_digests(section: str, item: dict[str, Any]) -> dict[str, Any]:
    """An item without SIP password digests: an HA1 lets anyone register as that phone."""
    if section != "employees" or not isinstance(item.get("devices"), list):
        return item
    devices = [{k: v for k, v in d.items() if k not in ("ha1_md5", "ha1_sha256")}
               for d in item["devices"]]
    return {**item, "devices": devices}


def _public(section: str, data: Any) -> Any:
    """An item as stored and shown: validated, dumped, secrets and digests left out."""
    value = _adapter(section).validate_python(data, context={"from_database": True})
    return _without_digests(section, _adapter(section).dump_python(
        value, mode="json", exclude_none=True))


class ConfigEditor:
    """Read and change the stored configuration one item (or settings section) at a time."""

    def __init__(self, db: Database, on_change: Callable[[], None] | None = None) -> None:
        """`on_change` runs after every committed change (the web UI asks the engine to reload)."""
        self.db = db
        self.on_change = on_change

    # --- reading -----------------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        """The whole configuration as plain data (what YAML export shows, digests included)."""
        return config_to_data(export_config(self.db))

    def items(self, section: str) -> list[dict[str, Any]]:
        """Every item of a list section, in stored order."""
        _check_section(section)
        if section not in LIST_SECTIONS:
            raise ValueError(f"{section!r} is not a list section")
        return [_without_digests(section, it) for it in self.data().get(section, [])]

    def item(self, section: str, key: str) -> dict[str, Any]:
        """One item by its key; NotFoundError if there is none."""
        for index, item in enumerate(self.items(section)):
            if item_key(section, item, index) == key:
                return item
        raise NotFoundError(f"{section}: no {key!r}")

    def settings(self, section: str) -> dict[str, Any]:
        """A single section (box, repeat_caller, notifications)."""
        if section not in SINGLE_SECTIONS:
            raise ValueError(f"{section!r} is not a settings section")
        value: dict[str, Any] = self.data().get(section, {})
        return value

    # --- changing ----------------------------------------------------------------------
    def save(self, section: str, data: dict[str, Any], *, key: str | None,
             actor: Actor) -> dict[str, Any]:
        """Create (key None) or replace the item named `key`; returns the item as stored.

        ConfigError paths are relative to the item where the problem is inside it.
        """
        _check_section(section)
        if section not in LIST_SECTIONS:
            raise ValueError(f"{section!r} is not a list section")
        if not isinstance(data, dict):
            raise ConfigError("an item must be an object (field: value)")

        def job(conn: sqlite_utils.Database) -> tuple[dict[str, Any] | None, dict[str, Any]]:
            whole = read_config_data(conn.conn)
            items: list[dict[str, Any]] = list(whole.get(section, []))
            names = [item_key(section, it, i) for i, it in enumerate(items)]
            new = dict(data)
            field = LIST_SECTIONS[section]
            if key is None:
                index = len(items)
                new_name = item_key(section, new, index)
                if field is not None and new_name in names:
                    raise ConfigError([Problem(field, f"{new_name!r} already exists")])
                before = None
                items.append(new)
            else:
                if key not in names:
                    raise NotFoundError(f"{section}: no {key!r}")
                index = names.index(key)
                before = items[index]
                new_name = item_key(section, new, index)
                if field is not None and new_name != key and new_name in names:
                    raise ConfigError([Problem(field, f"{new_name!r} already exists")])
                if section == "employees":
                    new = _keep_device_secrets(new, before)
                items[index] = new
            validate_item(section, new)
            whole[section] = items
            self._write(conn, whole, f"{section}[{index}]")
            after = _public(section, new)
            self._audit(conn, actor, section, "create" if before is None else "update",
                        new_name, None if before is None else _public(section, before), after)
            return before, after

        _, after = self.db.write(job)
        self._changed()
        return after

    def delete(self, section: str, key: str, *, actor: Actor) -> None:
        """Remove an item; ConfigError if something still refers to it."""
        _check_section(section)

        def job(conn: sqlite_utils.Database) -> None:
            whole = read_config_data(conn.conn)
            items: list[dict[str, Any]] = list(whole.get(section, []))
            names = [item_key(section, it, i) for i, it in enumerate(items)]
            if key not in names:
                raise NotFoundError(f"{section}: no {key!r}")
            before = items.pop(names.index(key))
            whole[section] = items
            self._write(conn, whole, "")
            self._audit(conn, actor, section, "delete", key, _public(section, before), None)

        self.db.write(job)
        self._changed()

    def move(self, section: str, key: str, offset: int, *, actor: Actor) -> str:
        """Move an item `offset` places (-1: up) where order matters (caller-ID rules, routes).

        Returns the item's new key (its new position, for sections named by position).
        """
        _check_section(section)
        if section not in LIST_SECTIONS:
            raise ValueError(f"{section!r} is not a list section")

        def job(conn: sqlite_utils.Database) -> str:
            whole = read_config_data(conn.conn)
            items: list[dict[str, Any]] = list(whole.get(section, []))
            names = [item_key(section, it, i) for i, it in enumerate(items)]
            if key not in names:
                raise NotFoundError(f"{section}: no {key!r}")
            old = names.index(key)
            new = max(0, min(len(items) - 1, old + offset))
            if new == old:
                return key
            items.insert(new, items.pop(old))
            whole[section] = items
            self._write(conn, whole, "")
            self._audit(conn, actor, section, "move", key, {"position": old}, {"position": new})
            return item_key(section, items[new], new)

        moved: str = self.db.write(job)
        self._changed()
        return moved

    def set_settings(self, section: str, data: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
        """Replace a single section (box, repeat_caller, notifications); returns it as stored."""
        if section not in SINGLE_SECTIONS:
            raise ValueError(f"{section!r} is not a settings section")
        validate_item(section, data)

        def job(conn: sqlite_utils.Database) -> dict[str, Any]:
            whole = read_config_data(conn.conn)
            before = whole.get(section)
            whole[section] = dict(data)
            self._write(conn, whole, section)
            after = _public(section, data)
            self._audit(conn, actor, section, "update", None,
                        None if before is None else _public(section, before), after)
            return after

        after = self.db.write(job)
        self._changed()
        return after

    # --- inside the writer transaction ------------------------------------------------
    @staticmethod
    def _write(conn: sqlite_utils.Database, whole: dict[str, Any], prefix: str) -> None:
        whole.setdefault("version", 1)
        try:
            cfg = BoxConfig.model_validate(whole)
        except ValidationError as exc:
            problems = problems_from_validation(exc)
            raise ConfigError(_relative(problems, prefix) if prefix else problems) from None
        except ConfigError as exc:
            raise ConfigError(_relative(exc.problems, prefix) if prefix else exc.problems) from None
        replace_config(conn, cfg)

    @staticmethod
    def _audit(conn: sqlite_utils.Database, actor: Actor, area: str, action: str,
               obj: str | None, before: Any, after: Any) -> None:
        conn.conn.execute(
            "INSERT INTO audit_log (actor, user_id, token_id, area, action, object, before, after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (actor.name, actor.user_id, actor.token_id, area, action, obj,
             None if before is None else json.dumps(before, ensure_ascii=False),
             None if after is None else json.dumps(after, ensure_ascii=False)))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
