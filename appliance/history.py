"""The box's own call history as a repeat-caller (ICM) source: who last spoke with a caller.

An employee "spoke with" a number when they answered a call from it, or when a call they
made to it was answered. `managers_from_history` returns those employees newest first, one
fact each, for `routing.repeat_callers.find_manager` (which applies exceptions, disabled
employees and the lookback again, and picks the first usable one). Both lookups run on the
call_records indexes (caller, started_at) and (dialled, started_at).
"""

from __future__ import annotations

import datetime as dt

import sqlite_utils

from .callfacts import ts
from .routing.plan import ManagerFact
from .routing.repeat_callers import full_number

# Enough recent calls to find the few distinct people a caller spoke with; a number that
# calls every day for years must not make routing read its whole history.
_RECENT_CALLS = 50
MAX_FACTS = 5


def dialled_forms(number: str, local_area_code: str | None = None) -> list[str]:
    """How a desk phone may have dialled an E.164 number (the history keeps what was dialled).

    '+74951234567' -> '+74951234567', '74951234567', '84951234567', '4951234567', and
    '1234567' when 495 is the local area code; other countries: '+CC...', 'CC...', '00CC...',
    '810CC...' (Russian international prefix).
    """
    if not number.startswith("+") or not number[1:].isdigit():
        return [number]
    digits = number[1:]
    forms = [number, digits, "00" + digits, "810" + digits]
    if digits.startswith("7") and len(digits) == 11:
        national = digits[1:]
        forms += ["8" + national, national]
        if local_area_code and national.startswith(local_area_code):
            forms.append(national[len(local_area_code):])
    return list(dict.fromkeys(forms))


def _when(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def managers_from_history(conn: sqlite_utils.Database, caller: str, now: dt.datetime,
                          lookback_days: int, *,
                          local_area_code: str | None = None) -> tuple[ManagerFact, ...]:
    """Employees who last spoke with `caller` within `lookback_days`, newest first.

    `caller` is the number as the line gave it; `local_area_code` completes a short local
    number the way routing does (`repeat_callers.full_number`).
    """
    number = full_number(caller, local_area_code)
    since = ts(now - dt.timedelta(days=lookback_days))
    # Answered calls from the number: who answered. Indexed on (caller, started_at).
    inbound = conn.execute(
        "SELECT e.extension, r.answered_at FROM call_records r"
        " JOIN employees e ON e.id = r.answered_by_employee_id"
        " WHERE r.caller = ? AND r.started_at >= ? AND r.direction = 'inbound'"
        " AND r.answered_at IS NOT NULL ORDER BY r.started_at DESC LIMIT ?",
        [number, since, _RECENT_CALLS]).fetchall()
    # Answered calls to it, however it was dialled: who made them. Indexed on
    # (dialled, started_at), one range per form.
    forms = dialled_forms(number, local_area_code)
    marks = ", ".join("?" for _ in forms)
    outbound = conn.execute(
        "SELECT e.extension, r.answered_at FROM call_records r"
        " JOIN employees e ON e.id = r.employee_id"
        f" WHERE r.dialled IN ({marks}) AND r.started_at >= ? AND r.direction = 'outbound'"
        " AND r.answered_at IS NOT NULL ORDER BY r.started_at DESC LIMIT ?",
        [*forms, since, _RECENT_CALLS]).fetchall()
    newest: dict[str, dt.datetime | None] = {}
    for extension, answered in sorted([*inbound, *outbound], key=lambda r: r[1] or "",
                                      reverse=True):
        if extension not in newest:
            newest[extension] = _when(answered)
    return tuple(ManagerFact("call_history", ext, at)
                 for ext, at in list(newest.items())[:MAX_FACTS])
