"""Call records in SQLite: a row when the call starts, completed when it ends.

Writes go through the database's single writer without blocking the event
loop; a crash leaves started rows behind, and `close_interrupted` marks them
at the next start so the history never silently loses a call.

A finished record explains its route (`route`: the steps and the outcome), names the
internal party, who answered, the DID and the line, and has one leg per party rung. An
inbound call nobody answered gets a `missed_calls` row (the missed-and-not-called-back
report) and a `call.missed` event in the outbox; a call the blacklist refused gets a
`blocked_calls` row with the entry's reason. When an employee reaches the client later (an
answered call from or to that number) the client's open missed calls are cleared. What the
record says is decided in `appliance.callfacts` (pure); this module only looks up ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import sqlite_utils

from .callfacts import CallFacts, call_facts, client_number, ts
from .db import Database
from .switchboard import CallRecord
from .switchboard.live import user_of

log = logging.getLogger(__name__)


def _ts(when: datetime | None) -> str | None:
    return ts(when)


def close_interrupted(conn: sqlite_utils.Database) -> int:
    """Mark call records a crash left open as interrupted; returns how many."""
    now = _ts(datetime.now(UTC))
    cur = conn.execute(
        "UPDATE call_records SET ended_at = max(started_at, ?), disposition = 'interrupted',"
        " hangup_side = 'system' WHERE ended_at IS NULL",
        [now],
    )
    conn.execute(
        "UPDATE call_legs SET ended_at = ?, disposition = 'interrupted'"
        " WHERE ended_at IS NULL AND call_id IN"
        " (SELECT id FROM call_records WHERE disposition = 'interrupted')",
        [now],
    )
    return cur.rowcount


def local_area_code(conn: sqlite_utils.Database) -> str | None:
    """The area code a short local caller number is completed with (repeat-caller settings,
    else the box's own), as routing reads it."""
    row = conn.execute("SELECT local_area_code FROM repeat_caller_settings WHERE id = 1"
                       ).fetchone()
    if row is not None and row[0]:
        return str(row[0])
    row = conn.execute("SELECT value FROM box_settings WHERE key = 'area_code'").fetchone()
    if row is None or row[0] is None:
        return None
    value = json.loads(row[0])
    return str(value) if value else None


def _one(conn: sqlite_utils.Database, sql: str, args: list[object]) -> int | None:
    row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else None


def _employee_id(conn: sqlite_utils.Database, extension: str | None) -> int | None:
    if not extension:
        return None
    return _one(conn, "SELECT id FROM employees WHERE extension = ?", [extension])


def _device(conn: sqlite_utils.Database, username: str | None) -> tuple[int, int, str] | None:
    """(device id, employee id, extension) of a desk phone by its SIP username."""
    if not username:
        return None
    row = conn.execute("SELECT d.id, e.id, e.extension FROM devices d"
                       " JOIN employees e ON e.id = d.employee_id WHERE d.username = ?",
                       [username]).fetchone()
    return (int(row[0]), int(row[1]), str(row[2])) if row is not None else None


def _line_id(conn: sqlite_utils.Database, key: str | None) -> int | None:
    if not key:
        return None
    return _one(conn, "SELECT id FROM lines WHERE key = ?", [key])


def _number_id(conn: sqlite_utils.Database, number: str | None,
               line_id: int | None) -> int | None:
    """The DID a call came in on; a line that does not say which number: its first one
    (routing's choice too)."""
    found = _one(conn, "SELECT id FROM numbers WHERE number = ?", [number]) if number else None
    if found is None and line_id is not None:
        found = _one(conn, "SELECT id FROM numbers WHERE line_id = ? ORDER BY number LIMIT 1",
                     [line_id])
    return found


class DbCallLog:
    """The switchboard's CallLog backed by the call_records table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: set[asyncio.Task[None]] = set()

    def _submit(self, what: str, fn: Callable[[sqlite_utils.Database], object]) -> None:
        async def write() -> None:
            try:
                await self.db.awrite(fn)
            except Exception:
                log.exception("writing the call record (%s) failed", what)

        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def started(self, call: CallRecord) -> None:
        """Insert the call's row (ended_at NULL until it ends)."""
        direction = call.direction
        inbound = direction == "inbound"
        caller, device, dialled, line = call.caller, call.caller_device, call.dialled, call.line
        row: dict[str, object] = {"uuid": call.call_id, "direction": direction,
                                  "dialled": dialled, "started_at": _ts(call.started_at),
                                  "line_key": line or None}

        def write(conn: sqlite_utils.Database) -> None:
            row["line_id"] = _line_id(conn, line)
            if inbound:
                row["caller"] = client_number(caller, local_area_code(conn))
                row["number_id"] = _number_id(
                    conn, dialled and client_number(dialled, None), _line_id(conn, line))
            else:
                owner = _device(conn, device)
                row["caller"] = owner[2] if owner is not None else user_of(caller)
                if direction == "outbound" and owner is not None:
                    row["employee_id"] = owner[1]  # known from the start: who is calling out
            conn.table("call_records").insert(row)

        self._submit("start", write)

    def finished(self, call: CallRecord) -> None:
        """Complete the row: route and outcome, parties, legs; missed and blocked rows."""
        assert call.disposition is not None
        talk_s = ((call.ended_at - call.answered_at).total_seconds()
                  if call.ended_at and call.answered_at else None)

        # Decided now, on the event loop, from a copy: the writer thread must not see the
        # record change under it (the switchboard still hangs up legs after it ends).
        call = replace(call, rang=list(call.rang), rung=dict(call.rung),
                       unavailable=list(call.unavailable))
        facts = call_facts(call, local_area_code=local_area_code(self.db.read()))

        def write(conn: sqlite_utils.Database) -> None:
            row_id = conn.execute("SELECT id FROM call_records WHERE uuid = ?",
                                  [call.call_id]).fetchone()[0]
            update = _record_update(conn, call, facts)
            if call.recording:
                # The engine closes the file when the legs are released; its size is read
                # when the recording is listed, the duration is the talk time.
                rec = conn.table("recordings").insert(
                    {"path": call.recording, "format": "wav", "duration_s": talk_s})
                update["recording_id"] = rec.last_pk
            conn.table("call_records").update(row_id, update)
            for leg in facts.legs:
                device = _device(conn, leg.device) if leg.device else None
                employee = _employee_id(conn, leg.extension)
                conn.table("call_legs").insert({
                    "call_id": row_id, "position": leg.position, "party_kind": leg.party_kind,
                    "employee_id": employee,
                    # A contact's user part names a device only when it is that employee's.
                    "device_id": device[0] if device and device[1] == employee else None,
                    "extension": leg.extension, "target": leg.target, "rang_at": leg.rang_at,
                    "answered_at": leg.answered_at, "ended_at": leg.ended_at,
                    "disposition": leg.disposition, "sip_cause": leg.sip_cause})
            _side_rows(conn, call, facts, row_id, update)

        self._submit("finish", write)

    async def flush(self) -> None:
        """Wait for every queued write (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def _inside_caller(conn: sqlite_utils.Database, call: CallRecord) -> str:
    """A desk phone's caller as the history keeps it: its owner's extension."""
    found = _device(conn, call.caller_device)
    return found[2] if found is not None else user_of(call.caller)


def _record_update(conn: sqlite_utils.Database, call: CallRecord,
                   facts: CallFacts) -> dict[str, object]:
    """The columns a finished call completes."""
    assert call.disposition is not None
    line_id = _line_id(conn, facts.line)
    caller_device = _device(conn, facts.caller_device)
    employee = _employee_id(conn, facts.employee)
    if employee is None and call.direction == "outbound" and caller_device is not None:
        employee = caller_device[1]  # an outside call: the calling phone's owner
    update: dict[str, object] = {
        "caller": facts.caller if call.direction == "inbound" else _inside_caller(conn, call),
        "caller_name": facts.caller_name,
        "answered_at": _ts(call.answered_at),
        "ended_at": _ts(call.ended_at),
        "disposition": call.disposition.value,
        "hangup_side": call.hangup_side or "system",
        "sip_cause": call.sip_code if 100 <= call.sip_code <= 699 else None,
        "answered_by": call.answered_leg and call.answered_contact,
        "employee_id": employee,
        "answered_by_employee_id": _employee_id(conn, facts.answered_by),
        "line_key": facts.line,
        "route": json.dumps(facts.route, ensure_ascii=False),
    }
    if line_id is not None:
        update["line_id"] = line_id
    if call.direction == "inbound":
        update["number_id"] = _number_id(conn, facts.number, line_id)
    return update


def _side_rows(conn: sqlite_utils.Database, call: CallRecord, facts: CallFacts, row_id: int,
               update: dict[str, object]) -> None:
    """Blocked and missed rows, the missed-call event, and clearing called-back clients."""
    number_id = update.get("number_id")
    if facts.blocked is not None:
        blocked_number = client_number(call.caller, None)  # as the blacklist is matched
        conn.table("blocked_calls").insert({
            "at": _ts(call.started_at), "caller": blocked_number, "dialled": call.dialled,
            "line_id": update.get("line_id"),
            "blacklist_id": _one(conn, "SELECT id FROM blacklist WHERE number = ?",
                                 [blocked_number]),
            "reason": facts.blocked, "call_id": row_id})
    if facts.missed is not None and facts.client is not None:
        responsible = _employee_id(conn, facts.responsible)
        conn.table("missed_calls").insert({
            "call_id": row_id, "caller": facts.client, "number_id": number_id,
            "reason": facts.missed, "responsible_employee_id": responsible,
            "created_at": _ts(call.ended_at or call.started_at)})
        payload = {
            "call_id": call.call_id, "caller": facts.client, "caller_name": facts.caller_name,
            "dialled": call.dialled, "line": facts.line, "reason": facts.missed,
            "responsible": facts.responsible if responsible is not None else None,
            "started_at": _ts(call.started_at), "ended_at": _ts(call.ended_at),
            "route": facts.route.get("steps", []),
        }
        # A blacklisted caller is not someone to call back: the event says it was blocked.
        conn.table("event_outbox").insert({
            "kind": "call.blocked" if facts.blocked is not None else "call.missed",
            "call_id": row_id, "payload": json.dumps(payload, ensure_ascii=False)})
    if facts.clears and facts.client is not None and call.answered_at is not None:
        # Reaching the client answers every earlier missed call of theirs.
        conn.execute(
            "UPDATE missed_calls SET cleared_at = ?, cleared_by_call_id = ?"
            " WHERE caller = ? AND cleared_at IS NULL AND created_at <= ?",
            [_ts(call.answered_at), row_id, facts.client, _ts(call.answered_at)])
