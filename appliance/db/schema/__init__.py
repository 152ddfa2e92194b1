"""Numbered schema migrations, one module per migration, and the SQL helpers they share.

The helpers here are part of every migration that uses them: once a migration has shipped,
the SQL a helper produces for it must never change (that would make two boxes at the "same"
schema version differ). To change a shape, add a new helper and a new migration.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

#: Default for timestamp columns: ISO-8601 UTC with milliseconds, e.g. 2025-01-31T09:15:02.123Z.
NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

#: Every kind of place a call can be sent to (flows, chains, menus, queues ... all use these).
DESTINATION_KINDS: tuple[str, ...] = (
    "employee",
    "department",
    "voice_menu",
    "queue",
    "voicemail",
    "flow",
    "chain",
    "external",
    "sip_uri",
    "webhook",
    "fax",
    "callback",
    "hangup",
)

#: Destination kinds that point at a configured entity: kind -> (column suffix, table).
DESTINATION_REFS: dict[str, tuple[str, str]] = {
    "employee": ("employee_id", "employees"),
    "department": ("department_id", "departments"),
    "voice_menu": ("menu_id", "voice_menus"),
    "queue": ("queue_id", "queues"),
    "voicemail": ("voicemail_id", "voicemail_boxes"),
    "flow": ("flow_id", "call_flows"),
    "chain": ("chain_id", "forwarding_chains"),
    "webhook": ("webhook_id", "webhooks"),
}

#: Route classes an outbound route belongs to and an employee may be allowed to use.
ROUTE_CLASSES: tuple[str, ...] = (
    "internal",
    "local",
    "mobile",
    "long_distance",
    "international",
    "emergency",
    "service",
    "premium",
)


def sql_list(values: Iterable[str]) -> str:
    """Render Python strings as an SQL list literal for IN (...) checks."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def flag(name: str, default: int) -> str:
    """A boolean column: INTEGER 0/1 with a CHECK, because SQLite has no boolean type."""
    return f"{name} INTEGER NOT NULL DEFAULT {default} CHECK ({name} IN (0, 1))"


def destination_columns(prefix: str, *, required: bool) -> str:
    """Columns (and CHECKs) for one polymorphic destination named `prefix`.

    A destination is a kind plus exactly the matching reference: a real foreign key per
    target table, so the database itself refuses a flow that points at a deleted department.
    `<prefix>_text` carries the external number, SIP URI or fax e-mail; `<prefix>_line_id`
    the optional line an external number is dialled through.
    """
    kind = f"{prefix}_kind"
    parts = []
    for suffix, table in DESTINATION_REFS.values():
        parts.append(f"{prefix}_{suffix} INTEGER REFERENCES {table}(id)")
    parts.append(f"{prefix}_line_id INTEGER REFERENCES lines(id)")
    parts.append(f"{prefix}_text TEXT")
    # The consistency CHECKs hang off the kind column (SQLite lets a column CHECK look at the
    # whole row), so the group can sit among other column definitions.
    # coalesce() so that a NULL kind cannot make a CHECK pass vacuously (NULL = pass).
    k = f"coalesce({kind}, '')"
    checks = [f"CHECK ({kind} IN ({sql_list(DESTINATION_KINDS)}))"]
    for ref_kind, (suffix, _table) in DESTINATION_REFS.items():
        checks.append(f"CHECK (({k} = '{ref_kind}') = ({prefix}_{suffix} IS NOT NULL))")
    checks.append(
        f"CHECK (CASE {k} WHEN 'external' THEN {prefix}_text IS NOT NULL "
        f"WHEN 'sip_uri' THEN {prefix}_text IS NOT NULL "
        f"WHEN 'fax' THEN 1 ELSE {prefix}_text IS NULL END)"
    )
    checks.append(f"CHECK ({prefix}_line_id IS NULL OR {k} = 'external')")
    not_null = " NOT NULL" if required else ""
    parts.append(f"{kind} TEXT{not_null}\n    " + "\n    ".join(checks))
    return ",\n  ".join(parts)


def iso_check(column: str) -> str:
    """CHECK that a nullable column holds an ISO-8601 UTC timestamp like 2025-01-31T09:15:02Z.

    Both UTC spellings are accepted ("Z" and "+00:00", what datetime.isoformat() writes);
    local times with other offsets are refused, so ordering by the text stays chronological.
    """
    return (
        f"CHECK ({column} IS NULL OR ({column} GLOB "
        f"'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*' "
        f"AND ({column} LIKE '%Z' OR {column} LIKE '%+00:00')))"
    )


def run_statements(db: sqlite_utils.Database, statements: Iterable[str]) -> None:
    """Execute DDL statements one by one on the migration's open transaction."""
    for statement in statements:
        db.conn.execute(statement)


def timestamp(name: str, *, now: bool = False) -> str:
    """A timestamp column; `now=True` makes it NOT NULL with the current time as default."""
    head = f"{name} TEXT NOT NULL DEFAULT {NOW}" if now else f"{name} TEXT"
    return f"{head} {iso_check(name)}"


def extension_check(column: str) -> str:
    """CHECK for an internal number: 2-6 digits (NULL allowed; add NOT NULL separately)."""
    return (
        f"CHECK ({column} IS NULL OR (length({column}) BETWEEN 2 AND 6 "
        f"AND {column} NOT GLOB '*[^0-9]*'))"
    )


def key_check(column: str) -> str:
    """CHECK for an entity key (slug): lower-case letters, digits, '-' and '_', 1-40 chars."""
    return (
        f"CHECK (length({column}) BETWEEN 1 AND 40 AND {column} NOT GLOB '*[^a-z0-9_-]*' "
        f"AND substr({column}, 1, 1) NOT IN ('-', '_'))"
    )


def phone_check(column: str) -> str:
    """CHECK for a normalised phone number: '+' and 7-15 digits (E.164)."""
    return (
        f"CHECK ({column} IS NULL OR (substr({column}, 1, 1) = '+' "
        f"AND length({column}) BETWEEN 8 AND 16 "
        f"AND substr({column}, 2) NOT GLOB '*[^0-9]*'))"
    )


def json_check(column: str) -> str:
    """CHECK that a nullable column holds valid JSON text."""
    return f"CHECK ({column} IS NULL OR json_valid({column}))"
