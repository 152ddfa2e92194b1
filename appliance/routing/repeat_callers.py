"""Repeat-caller routing (ICM): which manager a known caller goes to, from facts looked up
beforehand (the box's call history, CRM caches), in the configured order of sources."""

from __future__ import annotations

import datetime as dt

from ..config.types import normalize_phone
from .plan import ManagerFact
from .snapshot import RepeatCaller, Snapshot


def full_number(caller: str, local_area_code: str | None, country_code: str = "7") -> str:
    """The caller's number in E.164, adding the local area code to a short local number.

    Lines often deliver local calls without the area code ('5550123'); history and CRM keep
    full numbers, so lookups use this form. Anything unreadable is returned unchanged.
    """
    text = caller.strip()
    digits = text.lstrip("+")
    local = (local_area_code is not None and digits.isascii() and digits.isdigit()
             and not text.startswith("+") and 5 <= len(digits) <= 10 - len(local_area_code))
    if local:
        return f"+{country_code}{local_area_code}{digits}"
    try:
        return normalize_phone(text)
    except ValueError:
        return text


def find_manager(settings: RepeatCaller, facts: tuple[ManagerFact, ...], snap: Snapshot,
                 now: dt.datetime) -> tuple[ManagerFact | None, list[str]]:
    """The first usable fact by source order (newest first within call history), and notes
    on the facts passed over (exceptions, unknown or disabled employees, too old)."""
    notes: list[str] = []
    oldest = now - dt.timedelta(days=settings.lookback_days)
    for source in settings.sources:
        found = [f for f in facts if f.source == source]
        if source == "call_history":
            recent = [f for f in found if f.at is None or f.at >= oldest]
            if len(recent) != len(found):
                notes.append(f"{source}: calls older than {settings.lookback_days} days ignored")
            found = sorted(recent, key=lambda f: f.at or now, reverse=True)
        for fact in found:
            employee = snap.employees.get(fact.extension)
            if fact.extension in settings.exceptions:
                notes.append(f"{source}: {fact.extension} is an exception (never sticky)")
            elif employee is None or not employee.enabled:
                notes.append(f"{source}: {fact.extension} is not an active employee")
            else:
                return fact, notes
    return None, notes
