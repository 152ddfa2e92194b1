"""What lines keep in the database: SMS (in and out, parts), USSD history. Writer-thread code.

Every function takes the writer's connection and is run through `Database.awrite`, so a
message is on disk (WAL, committed) before the caller deletes it from the SIM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.db import utc_now

MAX_LIST = 500


def _line_id(conn: sqlite_utils.Database, key: str) -> int | None:
    row = conn.execute("SELECT id FROM lines WHERE key = ?", [key]).fetchone()
    return None if row is None else int(row[0])


def add_part(conn: sqlite_utils.Database, line: str, pdu: str) -> int:
    """Keep one received PDU (before it leaves the SIM); returns its row id."""
    cur = conn.execute("INSERT INTO sms_parts (line_key, pdu) VALUES (?, ?)",
                       [line, "".join(pdu.split()).upper()])
    return int(cur.lastrowid or 0)


def waiting_parts(conn: sqlite_utils.Database, line: str) -> list[tuple[int, str]]:
    """Parts of this line not yet joined into a message (after a restart), oldest first."""
    return [(int(r[0]), str(r[1])) for r in conn.execute(
        "SELECT id, pdu FROM sms_parts WHERE line_key = ? AND sms_id IS NULL ORDER BY id",
        [line]).fetchall()]


@dataclass(frozen=True)
class Received:
    """A whole (or partial) message to store, with the part rows it was made of."""

    line: str
    sender: str
    text: str
    parts: int
    missing: tuple[int, ...]
    part_ids: tuple[int, ...]


def add_received(conn: sqlite_utils.Database, msg: Received) -> int:
    """Store a received message and link its parts to it; returns the sms id."""
    cur = conn.execute(
        "INSERT INTO sms (line_id, line_key, direction, peer, text, parts, status, partial,"
        " missing_parts) VALUES (?, ?, 'in', ?, ?, ?, 'received', ?, ?)",
        [_line_id(conn, msg.line), msg.line, msg.sender or "unknown", msg.text,
         max(1, min(255, msg.parts)), int(bool(msg.missing)),
         json.dumps(list(msg.missing)) if msg.missing else None])
    sms_id = int(cur.lastrowid or 0)
    for part in msg.part_ids:
        conn.execute("UPDATE sms_parts SET sms_id = ? WHERE id = ?", [sms_id, part])
    return sms_id


def add_outgoing(conn: sqlite_utils.Database, line: str, to: str, text: str) -> int:
    """A message queued for sending; returns its sms id."""
    cur = conn.execute(
        "INSERT INTO sms (line_id, line_key, direction, peer, text, status, part_refs,"
        " delivered_parts) VALUES (?, ?, 'out', ?, ?, 'queued', '[]', '[]')",
        [_line_id(conn, line), line, to, text])
    return int(cur.lastrowid or 0)


def mark_sent(conn: sqlite_utils.Database, sms_id: int, refs: list[int], parts: int) -> None:
    """The SMSC took every part: their message references, for matching status reports."""
    conn.execute(
        "UPDATE sms SET status = 'sent', part_refs = ?, parts = ?, sent_at = ?,"
        " attempts = attempts + 1 WHERE id = ?",
        [json.dumps(refs), max(1, min(255, parts)), utc_now(), sms_id])


def mark_failed(conn: sqlite_utils.Database, sms_id: int, error: str,
                refs: list[int] | None = None) -> None:
    """Sending failed (some parts may have gone: their references are kept)."""
    conn.execute(
        "UPDATE sms SET status = 'failed', error = ?, part_refs = coalesce(?, part_refs),"
        " attempts = attempts + 1 WHERE id = ?",
        [error[:500], json.dumps(refs) if refs is not None else None, sms_id])


def match_report(conn: sqlite_utils.Database, line: str, reference: int, delivered: bool,
                 final: bool) -> tuple[int, str] | None:
    """Apply a status report to the newest sent message of line with that part reference.

    Returns (sms id, new status), or None when no message matches. A message is delivered
    once every part is; a final failure for any part fails it.
    """
    rows = conn.execute(
        "SELECT id, part_refs, delivered_parts, status FROM sms WHERE line_key = ?"
        " AND direction = 'out' AND status IN ('sent', 'delivered', 'failed')"
        " ORDER BY id DESC LIMIT 50", [line]).fetchall()
    for sms_id, refs_json, done_json, status in rows:
        refs = json.loads(refs_json or "[]")
        if reference not in refs:
            continue
        done = json.loads(done_json or "[]")
        if delivered and reference not in done:
            done.append(reference)
        if delivered and set(done) >= set(refs):
            status = "delivered"
            conn.execute("UPDATE sms SET delivered_parts = ?, status = ?, delivered_at = ?"
                         " WHERE id = ?", [json.dumps(done), status, utc_now(), sms_id])
        elif not delivered and final:
            status = "failed"
            conn.execute("UPDATE sms SET status = 'failed', error = ? WHERE id = ?",
                         [f"status report: part {reference} not delivered", sms_id])
        else:
            conn.execute("UPDATE sms SET delivered_parts = ? WHERE id = ?",
                         [json.dumps(done), sms_id])
        return int(sms_id), str(status)
    return None


def list_sms(conn: sqlite_utils.Database, line: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
    """Messages newest first (optionally of one line)."""
    limit = max(1, min(MAX_LIST, limit))
    where, args = ("WHERE line_key = ?", [line]) if line else ("", [])
    rows = conn.execute(
        "SELECT id, line_key, direction, peer, text, parts, status, partial, missing_parts,"
        f" error, created_at, sent_at, delivered_at FROM sms {where} ORDER BY id DESC LIMIT ?",
        [*args, limit]).fetchall()
    keys = ("id", "line", "direction", "peer", "text", "parts", "status", "partial",
            "missing_parts", "error", "created_at", "sent_at", "delivered_at")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["partial"] = bool(item["partial"])
        item["missing_parts"] = json.loads(item["missing_parts"] or "[]")
        out.append(item)
    return out


def add_ussd(conn: sqlite_utils.Database, line: str, request: str, response: str | None,
             balance: float | None, currency: str | None, error: str | None) -> int:
    """One USSD exchange (a balance check or a request from the API)."""
    cur = conn.execute(
        "INSERT INTO ussd_history (line_id, line_key, request, response, balance, currency,"
        " ok, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [_line_id(conn, line), line, request, response, balance, currency,
         int(error is None), error])
    return int(cur.lastrowid or 0)


def last_balance(conn: sqlite_utils.Database, line: str) -> dict[str, Any] | None:
    """The newest parsed balance of line."""
    row = conn.execute(
        "SELECT balance, currency, at FROM ussd_history WHERE line_key = ? AND balance IS NOT"
        " NULL ORDER BY id DESC LIMIT 1", [line]).fetchone()
    return None if row is None else {"amount": row[0], "currency": row[1], "at": row[2]}


# lines.state's vocabulary (migration 2) for each LineState value.
DB_STATES = {"ready": "up", "in_call": "up", "down": "down", "resetting": "down",
             "starting": "starting", "failed": "error", "disabled": "disabled"}


def set_line_state(conn: sqlite_utils.Database, line: str, state: str, detail: str) -> None:
    """Record a line's state where the web UI (another process) reads it."""
    conn.execute("UPDATE lines SET state = ?, state_detail = ?, state_changed_at = ?"
                 " WHERE key = ?", [DB_STATES.get(state, "unknown"), detail[:500] or None,
                                    utc_now(), line])
