"""Who an extension reaches: a snapshot of extensions and their devices.

Loaded from the database at start and on every reload; calls look it up
without touching SQLite.  Registered contacts join the static ones when the
SIP edge (registrar) lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .db import Database


@dataclass(frozen=True)
class Extension:
    """One reachable extension and how to ring it."""

    number: str
    name: str
    dnd: bool
    contacts: tuple[str, ...]


@dataclass(frozen=True)
class DirectorySnapshot:
    """Extensions by number; immutable, swapped whole on reload."""

    extensions: dict[str, Extension] = field(default_factory=dict)

    def contacts(self, user: str) -> list[str] | None:
        """Contacts to ring for a dialled user part ([] offline/DND, None unknown)."""
        ext = self.extensions.get(user)
        if ext is None:
            return None
        return [] if ext.dnd else list(ext.contacts)


def load(db: Database) -> DirectorySnapshot:
    """Read enabled employees and their devices' static contacts."""
    conn = db.read()
    rows = conn.execute(
        """
        SELECT e.extension, e.name, e.dnd, d.static_contact
        FROM employees e
        LEFT JOIN devices d ON d.employee_id = e.id AND d.enabled = 1
                            AND d.static_contact IS NOT NULL
        WHERE e.enabled = 1
        ORDER BY e.extension, d.id
        """
    ).fetchall()
    grouped: dict[str, tuple[str, bool, list[str]]] = {}
    for extension, name, dnd, contact in rows:
        _, _, contacts = grouped.setdefault(extension, (name, bool(dnd), []))
        if contact:
            contacts.append(contact)
    return DirectorySnapshot({
        number: Extension(number, name, dnd, tuple(contacts))
        for number, (name, dnd, contacts) in grouped.items()
    })
