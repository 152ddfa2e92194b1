"""The location table: which registered device is reachable where.

In memory while the box runs (lookups never touch SQLite); changes are
written to the `registrations` table in batches by `flush`, and `load`
brings back the bindings that have not expired, so a restart keeps phones
registered. Times are plain floats from an injected clock (seconds since
the epoch), so tests drive expiry with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlite_utils

from ..sip import SipParseError, SipUri, parse_uri
from .transport import Source


@dataclass(frozen=True)
class Binding:
    """One contact of one device (a desk phone may have one, a softphone another)."""

    device_id: int
    username: str
    contact: str
    source: Source
    call_id: str
    cseq: int
    expires_at: float
    user_agent: str = ""
    reachable: bool = True

    def remaining(self, now: float) -> int:
        """Seconds left before the binding expires (0 if it has)."""
        return max(0, int(self.expires_at - now))


def _contact_key(host: str, port: int | None, user: str | None) -> tuple[str, int, str]:
    return (host.strip("[]").lower(), port or 5060, user or "")


def _uri_key(contact: str) -> tuple[str, int, str] | None:
    try:
        uri = parse_uri(contact)
    except SipParseError:
        return None
    if not isinstance(uri, SipUri):
        return None
    return _contact_key(uri.host, uri.port, uri.user)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LocationTable:
    """Bindings by device username, with dirty tracking for batched persistence."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._by_user: dict[str, dict[str, Binding]] = {}
        # (device id, contact) -> the binding to write: the flush takes them as they are,
        # without a scan of the whole table (it runs on the event loop).
        self._dirty: dict[tuple[int, str], Binding] = {}
        self._removed: set[tuple[int, str]] = set()
        # (host, port, user) of each contact URI -> (username, contact): the engine dials
        # contacts, and the proxy must find the binding (its NAT address) without a scan.
        self._by_contact: dict[tuple[str, int, str], tuple[str, str]] = {}
        # (username, contact) -> its index key: a refresh (every REGISTER) need not parse
        # the contact URI again.
        self._keys: dict[tuple[str, str], tuple[str, int, str] | None] = {}

    def _index(self, binding: Binding) -> None:
        ident = (binding.username, binding.contact)
        if ident in self._keys:
            key = self._keys[ident]
        else:
            key = self._keys[ident] = _uri_key(binding.contact)
        if key is not None:
            self._by_contact[key] = ident

    def bindings(self, username: str) -> list[Binding]:
        """Live bindings of a device (expired ones are dropped on the way)."""
        now = self.clock()
        current = self._by_user.get(username, {})
        for binding in list(current.values()):
            if binding.expires_at <= now:
                self.remove(binding)
        return [b for b in current.values() if b.expires_at > now]

    def all(self) -> list[Binding]:
        """Every live binding."""
        return [b for user in list(self._by_user) for b in self.bindings(user)]

    def find_contact(self, host: str, port: int | None, user: str | None) -> Binding | None:
        """The binding whose contact URI points at host:port (and user), via an index."""
        found = self._by_contact.get(_contact_key(host, port, user))
        if found is None:
            return None
        username, contact = found
        binding = self._by_user.get(username, {}).get(contact)
        if binding is None or binding.expires_at <= self.clock():
            return None
        return binding

    def put(self, binding: Binding) -> None:
        """Add or refresh a binding."""
        self._by_user.setdefault(binding.username, {})[binding.contact] = binding
        self._index(binding)
        key = (binding.device_id, binding.contact)
        self._dirty[key] = binding
        self._removed.discard(key)

    def remove(self, binding: Binding) -> None:
        """Drop a binding (un-REGISTER or expiry)."""
        current = self._by_user.get(binding.username, {})
        if current.pop(binding.contact, None) is not None:
            key_uri = self._keys.pop((binding.username, binding.contact), None)
            if key_uri is not None:
                self._by_contact.pop(key_uri, None)
            key = (binding.device_id, binding.contact)
            self._dirty.pop(key, None)
            self._removed.add(key)
        if not current:
            self._by_user.pop(binding.username, None)

    def mark(self, binding: Binding, reachable: bool) -> None:
        """Record whether the device answers keepalives."""
        if binding.reachable != reachable:
            self.put(replace(binding, reachable=reachable))

    # --- persistence -----------------------------------------------------------------
    def pending(self) -> bool:
        """True if changes wait to be written."""
        return bool(self._dirty or self._removed)

    def take_changes(self) -> tuple[list[Binding], list[tuple[int, str]]]:
        """The bindings to upsert and the keys to delete since the last call."""
        upserts = list(self._dirty.values())
        removed = list(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return upserts, removed

    @staticmethod
    def write(conn: sqlite_utils.Database, upserts: list[Binding],
              removed: list[tuple[int, str]]) -> None:
        """Apply a batch of changes in the writer's transaction."""
        # One statement each for the whole batch: the writer thread shares the interpreter
        # with the event loop, so its per-row Python work is kept small.
        conn.conn.executemany("DELETE FROM registrations WHERE device_id = ? AND contact = ?",
                              removed)
        # A device removed since it registered has no row to refer to: skip it rather than
        # fail the whole batch on the foreign key.
        conn.conn.executemany(
            "INSERT INTO registrations (device_id, contact, transport, source_host,"
            " source_port, call_id, cseq, expires_at, user_agent, reachable)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
            " (SELECT 1 FROM devices WHERE id = ?1)"
            " ON CONFLICT (device_id, contact) DO UPDATE SET transport = excluded.transport,"
            " source_host = excluded.source_host, source_port = excluded.source_port,"
            " call_id = excluded.call_id, cseq = excluded.cseq,"
            " expires_at = excluded.expires_at, user_agent = excluded.user_agent,"
            " reachable = excluded.reachable",
            [(b.device_id, b.contact, b.source.transport, b.source.host, b.source.port,
              b.call_id, b.cseq, _iso(b.expires_at), b.user_agent or None, int(b.reachable))
             for b in upserts])
        # Devices deleted from the configuration take their rows with them (FK cascade).

    def load(self, conn: sqlite_utils.Database) -> int:
        """Bring back the bindings that have not expired; returns how many."""
        now = self.clock()
        rows = conn.execute(
            "SELECT r.device_id, d.username, r.contact, r.transport, r.source_host,"
            " r.source_port, r.call_id, r.cseq, r.expires_at, r.user_agent, r.reachable"
            " FROM registrations r JOIN devices d ON d.id = r.device_id"
            " WHERE d.enabled = 1").fetchall()
        count = 0
        for (device_id, username, contact, transport, host, port, call_id, cseq, expires,
             agent, reachable) in rows:
            expires_at = _epoch(expires)
            if expires_at <= now:
                self._removed.add((device_id, contact))
                continue
            binding = Binding(device_id, username, contact, Source(transport, host, port),
                              call_id, cseq, expires_at, agent or "", bool(reachable))
            self._by_user.setdefault(username, {})[contact] = binding
            self._index(binding)
            count += 1
        return count
