"""Reports: calls per day by direction and by outcome (SVG stacked bars) and each employee's
outgoing calls against their daily plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from appliance import reports
from appliance.reports import DIRECTIONS

from ..auth import admin_required
from ..context import web
from . import NavItem
from ._callshared import (
    DIRECTION_LABELS,
    OUTCOME_LABELS,
    Series,
    box_zone,
    legend,
    parse_query,
    stacked_bars,
)

bp = Blueprint("reports", __name__, url_prefix="/reports")
NAV = [NavItem("reports.index", _l("Reports"), "calls", order=30)]

OUTCOME_SERIES = ("answered", "missed", "other")
DAILY_BARS_DAYS = 62  # longer ranges are charted by week
DAILY_TABLE_DAYS = 62  # and have no per-day table per employee (it would be huge)


def buckets(days: list[date]) -> list[list[date]]:
    """The chart's bars: one per day, or one per week (from Monday) for a long range."""
    if len(days) <= DAILY_BARS_DAYS:
        return [[d] for d in days]
    out: list[list[date]] = []
    for d in days:
        if not out or d.weekday() == 0:
            out.append([])
        out[-1].append(d)
    return out


@bp.get("/")
@admin_required
def index() -> Any:
    """Charts for a range of days and the per-employee call plan table."""
    ctx = web()
    tz = box_zone(ctx.box_value("time_zone", "UTC"))
    query = parse_query(request.args, ctx.now().astimezone(tz).date(), default_days=14)
    conn = ctx.db.read().conn
    days = reports.counts_by_day(conn, query.first, query.last, tz)
    people = [p for p in reports.per_employee(conn, query.first, query.last, tz)
              if p.plan or p.total]
    dates = [d.day for d in days]
    groups = buckets(dates)
    labels = [g[0].strftime("%d.%m") for g in groups]

    def summed(get: Callable[[date], int]) -> list[int]:
        return [sum(get(d) for d in g) for g in groups]

    by_day = {d.day: d for d in days}

    def direction(key: str) -> Callable[[date], int]:
        return lambda d: by_day[d].by_direction.get(key, 0)

    def outcome(key: str) -> Callable[[date], int]:
        return lambda d: by_day[d].by_outcome.get(key, 0)

    by_direction = [Series(str(DIRECTION_LABELS[k]), f"s-{k}", summed(direction(k)))
                    for k in DIRECTIONS]
    by_outcome = [Series(str(OUTCOME_LABELS[k]), f"s-{k}", summed(outcome(k)))
                  for k in OUTCOME_SERIES]
    def calls_of(person: reports.EmployeePlan) -> Callable[[date], int]:
        return lambda d: person.per_day.get(d, 0)

    # A week's target: the daily plan times its working days (at most 5).
    targets = [min(5, len(g)) if len(groups) < len(dates) else 1 for g in groups]
    plan_charts = {
        p.employee_id: stacked_bars(
            labels, [Series(str(_l("Outgoing")), "s-outbound", summed(calls_of(p)))],
            title=f"{p.extension} {p.name}",
            line=[(p.plan or 0) * t for t in targets], height=100, plot=320)
        for p in people}
    totals = {k: sum(s.values) for k, s in zip(DIRECTIONS, by_direction, strict=True)}
    return render_template(
        "calls/reports.html", query=query, args=query.args(), errors=query.errors,
        direction_chart=stacked_bars(labels, by_direction, title=str(_l("Calls by direction"))),
        direction_legend=legend(by_direction),
        outcome_chart=stacked_bars(labels, by_outcome, title=str(_l("Calls by outcome"))),
        outcome_legend=legend(by_outcome), totals=totals,
        answered=sum(by_outcome[0].values), missed=sum(by_outcome[1].values),
        people=people, plan_charts=plan_charts, dates=dates, days=len(dates),
        weekly=len(groups) < len(dates), per_day_table=len(dates) <= DAILY_TABLE_DAYS)
