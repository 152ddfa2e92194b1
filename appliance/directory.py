"""Who an extension reaches: a snapshot of extensions and their devices.

Loaded from the database at start and on every reload; calls look it up
without touching SQLite. A device rings at its static contact, if it has
one, and at every live registration the SIP edge holds for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from .db import Database


@dataclass(frozen=True)
class Extension:
    """One reachable extension and how to ring it."""

    number: str
    name: str
    dnd: bool
    contacts: tuple[str, ...]  # static contacts
    devices: tuple[str, ...] = ()  # SIP usernames of devices that register
    record: bool = True  # the employee's recording policy, resolved against the box's
    groups: frozenset[str] = frozenset()  # departments: the pickup groups it belongs to


@dataclass(frozen=True)
class DirectorySnapshot:
    """Extensions by number; immutable, swapped whole on reload."""

    extensions: dict[str, Extension] = field(default_factory=dict)
    registered: Callable[[str], list[str]] = field(default=lambda _username: [])
    box_records: bool = True  # the box's own policy: calls with no employee in them

    def contacts(self, user: str) -> list[str] | None:
        """Contacts to ring for a dialled user part ([] offline/DND, None unknown)."""
        ext = self.extensions.get(user)
        if ext is None:
            return None
        if ext.dnd:
            return []
        live = [c for device in ext.devices for c in self.registered(device)]
        return list(ext.contacts) + live

    def owner_of(self, device: str) -> str | None:
        """The extension whose device (SIP username) this is."""
        for ext in self.extensions.values():
            if device in ext.devices:
                return ext.number
        return None

    def same_group(self, a: str, b: str) -> bool:
        """Whether extensions a and b share a pickup group (a department)."""
        ea, eb = self.extensions.get(a), self.extensions.get(b)
        return ea is not None and eb is not None and bool(ea.groups & eb.groups)

    def records(self, user: str) -> bool:
        """Whether calls to this extension are recorded."""
        ext = self.extensions.get(user)
        return ext.record if ext is not None else False

    def records_call(self, *parties: str | None) -> bool:
        """Whether a call is recorded: the first employee among `parties` decides (the one
        who answered first), else the box's policy (a line's caller to a mobile, say)."""
        for party in parties:
            ext = self.extensions.get(party) if party else None
            if ext is not None:
                return ext.record
        return self.box_records


def load(db: Database, registered: Callable[[str], list[str]] | None = None
         ) -> DirectorySnapshot:
    """Read enabled employees, their devices' static contacts and registering devices."""
    conn = db.read()
    box = conn.execute("SELECT value FROM box_settings WHERE key = 'recording'").fetchone()
    box_records = (json.loads(box[0]) if box else "always") == "always"
    rows = conn.execute(
        """
        SELECT e.extension, e.name, e.dnd, e.recording, d.static_contact, d.username
        FROM employees e
        LEFT JOIN devices d ON d.employee_id = e.id AND d.enabled = 1
        WHERE e.enabled = 1
        ORDER BY e.extension, d.id
        """
    ).fetchall()
    grouped: dict[str, tuple[str, bool, bool, list[str], list[str]]] = {}
    for extension, name, dnd, policy, contact, username in rows:
        record = box_records if policy == "default" else policy == "always"
        _, _, _, contacts, devices = grouped.setdefault(
            extension, (name, bool(dnd), record, [], []))
        if contact:
            contacts.append(contact)
        elif username:
            devices.append(username)
    groups: dict[str, set[str]] = {}
    for extension, department in conn.execute(
            "SELECT e.extension, d.key FROM department_members m"
            " JOIN employees e ON e.id = m.employee_id"
            " JOIN departments d ON d.id = m.department_id").fetchall():
        groups.setdefault(extension, set()).add(department)
    return DirectorySnapshot(
        {number: Extension(number, name, dnd, tuple(contacts), tuple(devices), record,
                           frozenset(groups.get(number, ())))
         for number, (name, dnd, record, contacts, devices) in grouped.items()},
        registered or (lambda _username: []),
        box_records,
    )
