"""Schedules (weekly hours in a time zone, holiday sets, special dates, the day/night override)
and holiday sets, which can be filled from the country's public holidays."""

from __future__ import annotations

import re
from typing import Any

import holidays as public_holidays
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.edit import NotFoundError
from appliance.config.errors import ConfigError
from appliance.config.types import WEEKDAYS

from ..auth import actor, admin_required
from ..context import web
from . import NavItem
from ._routing import Section, register

bp = Blueprint("schedules", __name__, url_prefix="/schedules")
NAV = [NavItem("schedules.schedules_list", _l("Schedules"), "routing", order=60)]

_HOURS_PATH = re.compile(r"hours\.(?P<day>[a-z]{3})(?:\[\d+\])?")
_DATE_HOURS_PATH = re.compile(r"dates\[(?P<i>\d+)\]\.hours(?:\[\d+\])?")


def _periods(text: Any) -> list[str]:
    return [p.strip() for p in str(text).split(",") if p.strip()]


def _joined(periods: Any) -> str:
    return ", ".join(str(p) for p in periods) if isinstance(periods, list) else ""


def schedule_to_item(posted: dict[str, Any]) -> dict[str, Any]:
    """Hours typed as '09:00-13:00, 14:00-18:00' per weekday (and per special date)."""
    item = {k: v for k, v in posted.items() if k != "hourstext"}
    text = posted.get("hourstext")
    hours = {day: _periods(value) for day, value in text.items()} if isinstance(
        text, dict) else {}
    item["hours"] = {day: periods for day, periods in hours.items() if periods}
    dates = []
    rows = posted.get("dates")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            row = dict(row)
            row["hours"] = _periods(row.pop("hourstext", ""))
            dates.append(row)
    if dates:
        item["dates"] = dates
    return item


def schedule_to_form(item: dict[str, Any]) -> dict[str, Any]:
    """The stored hours as text per weekday, for the form."""
    if "hourstext" in item:
        return item
    hours = item.get("hours") if isinstance(item.get("hours"), dict) else {}
    text = {day: _joined(hours.get(day)) for day in WEEKDAYS}
    rows = item.get("dates")
    dates = [{**d, "hourstext": _joined(d.get("hours"))}
             for d in (rows if isinstance(rows, list) else []) if isinstance(d, dict)]
    return {**item, "hourstext": text, "dates": dates}


def schedule_fields(errors: dict[str, str], item: dict[str, Any]) -> dict[str, str]:
    """Errors of `hours.mon[0]` land on the Monday field, `dates[1].hours` on its text."""
    out: dict[str, str] = {}
    for path, message in errors.items():
        m = _HOURS_PATH.fullmatch(path)
        d = _DATE_HOURS_PATH.fullmatch(path)
        if m is not None:
            target = f"hourstext.{m.group('day')}" if m.group("day") in WEEKDAYS else "hours"
        elif d is not None:
            target = f"dates[{d.group('i')}].hourstext"
        else:
            target = path
        out[target] = f"{out[target]}; {message}" if target in out else message
    return out


def _hours(item: dict[str, Any]) -> str:
    hours = item.get("hours") or {}
    return "; ".join(f"{day} {', '.join(p)}" for day, p in hours.items() if p)[:120]


SCHEDULES = Section(
    section="schedules", name="schedules", url="", template="routing/schedule.html",
    title=lambda: _("Schedules"), one=lambda: _("Schedule"),
    columns=[(lambda: _("Key"), lambda it: it.get("key", "")),
             (lambda: _("Title"), lambda it: it.get("name", "")),
             (lambda: _("Hours"), _hours),
             (lambda: _("Override"), lambda it: it.get("override", "auto"))],
    to_item=schedule_to_item, to_form=schedule_to_form, to_fields=schedule_fields,
    extra={"weekdays": WEEKDAYS})
HOLIDAYS = Section(
    section="holiday_sets", name="holidays", url="/holidays", template="routing/holidays.html",
    title=lambda: _("Holidays"), one=lambda: _("Holiday set"),
    columns=[(lambda: _("Key"), lambda it: it.get("key", "")),
             (lambda: _("Title"), lambda it: it.get("name", "")),
             (lambda: _("Dates"), lambda it: len(it.get("dates") or []))])
register(bp, SCHEDULES)
register(bp, HOLIDAYS)


def public_dates(country: str, year: int, language: str) -> list[dict[str, str]]:
    """The country's public holidays of one year as holiday-set dates (date, name)."""
    try:
        table = public_holidays.country_holidays(country, years=year, language=language)
    except (NotImplementedError, KeyError):
        table = public_holidays.country_holidays(country, years=year)
    return [{"date": day.isoformat(), "name": str(name)[:100]}
            for day, name in sorted(table.items())]


@bp.post("/holidays/item/<key>/fill")
@admin_required
def holidays_fill(key: str) -> Any:
    """Add the box country's public holidays for a year to a holiday set."""
    ctx = web()
    try:
        year = int(request.form.get("year", ""))
    except ValueError:
        year = 0
    if not 1990 <= year <= 2100:
        flash(_("Give a year between 1990 and 2100."), "error")
        return redirect(url_for(".holidays_edit", key=key))
    try:
        item = ctx.editor.item("holiday_sets", key)
    except NotFoundError:
        abort(404)
    country = str(ctx.box_value("country", "RU") or "RU")
    try:
        found = public_dates(country, year, str(ctx.box_value("language", "ru") or "ru"))
    except NotImplementedError:
        flash(_("No public holidays are known for the country %(country)s.", country=country),
              "error")
        return redirect(url_for(".holidays_edit", key=key))
    have = {d.get("date") for d in item.get("dates", [])}
    added = [d for d in found if d["date"] not in have]
    dates = sorted([*item.get("dates", []), *added], key=lambda d: str(d.get("date")))
    try:
        ctx.editor.save("holiday_sets", {**item, "dates": dates}, key=key, actor=actor())
    except ConfigError as exc:
        flash("; ".join(p.message for p in exc.problems[:3]), "error")
        return redirect(url_for(".holidays_edit", key=key))
    flash(_("%(count)s dates added.", count=len(added)), "ok")
    return redirect(url_for(".holidays_edit", key=key))
