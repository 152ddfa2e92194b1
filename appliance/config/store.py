"""Shared pieces of the configuration <-> database mapping (read.py and write.py).

Writing replaces the configuration in ONE transaction on the writer thread, but keeps the
row ids of entities that survive (matched by their natural key: extension, key, number, SIP
user name). History (call records, voicemail, SMS ...) points at config rows with ON DELETE
SET NULL, so stable ids keep "calls of employee 101" attached across imports, and only
entities really removed from the configuration lose their link (their text snapshots stay).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..db import utc_now
from ..db.schema import DESTINATION_REFS
from .model import Destination


class _Keep:
    """Marker for "leave the stored value alone" (secrets absent from an export)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


@dataclass
class Counts:
    """How many rows of one kind an import created, changed and removed."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    def __bool__(self) -> bool:
        """True if anything changed."""
        return bool(self.created or self.updated or self.deleted)


@dataclass
class ImportReport:
    """What an import changed, per table."""

    changes: dict[str, Counts] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True if the import changed anything at all."""
        return any(self.changes.values())

    def __str__(self) -> str:
        """E.g. `employees: 2 created, 1 updated; devices: 1 deleted` or `no changes`."""
        parts = []
        for table, c in self.changes.items():
            if not c:
                continue
            bits = [f"{n} {label}" for n, label in
                    ((c.created, "created"), (c.updated, "updated"), (c.deleted, "deleted")) if n]
            parts.append(f"{table}: {', '.join(bits)}")
        return "; ".join(parts) if parts else "no changes"


def to_json(value: Any) -> str:
    """Canonical JSON for JSON columns (stable, so unchanged values compare equal)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def rows_of(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows of a query as dicts."""
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


# -- destinations <-> columns ----------------------------------------------------------------

_REF_SUFFIXES = [suffix for suffix, _table in DESTINATION_REFS.values()]


def dest_columns(prefix: str, dest: Destination | None, ids: dict[str, dict[str, int]]) -> dict[
        str, Any]:
    """The destination columns of `prefix` for a destination (all NULL for None)."""
    cols: dict[str, Any] = {f"{prefix}_{s}": None for s in [*_REF_SUFFIXES, "line_id", "text"]}
    cols[f"{prefix}_kind"] = None
    if dest is None:
        return cols
    cols[f"{prefix}_kind"] = dest.kind
    if dest.kind in DESTINATION_REFS:
        suffix = DESTINATION_REFS[dest.kind][0]
        cols[f"{prefix}_{suffix}"] = ids[dest.kind][str(dest.target)]
    elif dest.kind in ("external", "sip_uri", "fax"):
        cols[f"{prefix}_text"] = dest.target
    if dest.line is not None:
        cols[f"{prefix}_line_id"] = ids["line"][dest.line]
    return cols


def dest_from_row(row: dict[str, Any], prefix: str, names: dict[str, dict[int, str]]) -> (
        dict[str, Any] | None):
    """The destination stored in `prefix` columns, as model input (None if unset)."""
    kind = row[f"{prefix}_kind"]
    if kind is None:
        return None
    target: str | None = None
    if kind in DESTINATION_REFS:
        target = names[kind][row[f"{prefix}_{DESTINATION_REFS[kind][0]}"]]
    elif kind in ("external", "sip_uri", "fax"):
        target = row[f"{prefix}_text"]
    out: dict[str, Any] = {"kind": kind, "target": target}
    if row[f"{prefix}_line_id"] is not None:
        out["line"] = names["line"][row[f"{prefix}_line_id"]]
    return out


class Sync:
    """Helpers bound to the writer's connection for one import."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.report = ImportReport()
        self.existing: dict[str, dict[str, int]] = {}
        self.ids: dict[str, dict[str, int]] = {}

    def assign(self, kind: str, table: str, key_col: str, keys: Iterable[str]) -> None:
        """Reuse ids of surviving entities, allocate fresh ones for new entities."""
        existing = {str(k): int(i) for k, i in
                    self.conn.execute(f"SELECT {key_col}, id FROM {table}").fetchall()}
        next_id = int(self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
                      .fetchone()[0]) + 1
        ids: dict[str, int] = {}
        for key in keys:
            if key in existing:
                ids[key] = existing[key]
            else:
                ids[key] = next_id
                next_id += 1
        self.existing[kind] = existing
        self.ids[kind] = ids

    def counts(self, name: str) -> Counts:
        """The report counters of one table."""
        return self.report.changes.setdefault(name, Counts())

    def free_unique(self, kind: str, table: str, column: str,
                    wanted: dict[int, Any]) -> None:
        """NULL a unique column where it changes or the row goes, so values can move."""
        for row_id in self.existing[kind].values():
            old = self.conn.execute(f"SELECT {column} FROM {table} WHERE id = ?",
                                    (row_id,)).fetchone()[0]
            if old is not None and (row_id not in wanted or wanted[row_id] != old):
                self.conn.execute(f"UPDATE {table} SET {column} = NULL WHERE id = ?", (row_id,))

    def upsert(self, kind: str, table: str, rows: list[dict[str, Any]],
               touch: str | None = None) -> None:
        """Insert new rows and update changed ones (columns set to KEEP are left alone)."""
        counts = self.counts(table)
        known = set(self.existing[kind].values())
        for row in rows:
            if row["id"] in known:
                old = rows_of(self.conn, f"SELECT * FROM {table} WHERE id = ?", (row["id"],))[0]
                cols = [c for c in row if c != "id" and row[c] is not KEEP and row[c] != old[c]]
                if not cols:
                    continue
                sets = ", ".join(f"{c} = ?" for c in cols)
                if touch:
                    sets += f", {touch} = '{utc_now()}'"
                self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?",
                                  [row[c] for c in cols] + [row["id"]])
                counts.updated += 1
            else:
                values = {c: (None if v is KEEP else v) for c, v in row.items()}
                self.insert(table, [values])
                counts.created += 1

    def delete_missing(self, kind: str, table: str) -> None:
        """Delete the stored entities the new configuration no longer has."""
        wanted = set(self.ids[kind].values())
        counts = self.counts(table)
        for row_id in self.existing[kind].values():
            if row_id not in wanted:
                counts.deleted += self.conn.execute(
                    f"DELETE FROM {table} WHERE id = ?", (row_id,)).rowcount

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows (all with the same columns)."""
        if not rows:
            return
        cols = list(rows[0])
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) "
               f"VALUES ({', '.join('?' for _ in cols)})")
        self.conn.executemany(sql, [[r[c] for c in cols] for r in rows])

    def replace(self, table: str, rows: list[dict[str, Any]], ignore: Sequence[str] = ()) -> None:
        """Replace every row of a wholly owned child table, counting real differences."""
        old = rows_of(self.conn, f"SELECT * FROM {table}")
        cols = set(rows[0]) if rows else {c for r in old[:1] for c in r} - set(ignore)

        def fingerprint(row: dict[str, Any]) -> tuple[Any, ...]:
            return tuple((c, row.get(c)) for c in sorted(cols) if c not in ignore)

        before = Counter(fingerprint(r) for r in old)
        after = Counter(fingerprint(r) for r in rows)
        if before == after:
            return
        counts = self.counts(table)
        counts.created += sum((after - before).values())
        counts.deleted += sum((before - after).values())
        self.conn.execute(f"DELETE FROM {table}")
        self.insert(table, rows)


