"""What the calls areas (dashboard, history, reports) share: the box's time zone, reading the
history filters from a query string (pure), formatting, and server-side SVG bar charts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from appliance.reports import DIRECTIONS, OUTCOMES, Filters, day_range

MAX_NUMBER = 32  # a number filter longer than any phone number or SIP user is refused
MAX_DAYS = 400  # a chart or range longer than this is refused (about a year and a month)
_NUMBER = re.compile(r"[0-9+*#A-Za-z@._-]*")

DIRECTION_LABELS = {"inbound": _l("Incoming"), "outbound": _l("Outgoing"),
                    "internal": _l("Internal")}
OUTCOME_LABELS = {"answered": _l("Answered"), "busy": _l("Busy"),
                  "no_answer": _l("No answer"), "failed": _l("Failed"),
                  "cancelled": _l("Cancelled"), "interrupted": _l("Interrupted"),
                  "missed": _l("Missed"), "blocked": _l("Blocked"), "other": _l("Other"),
                  "rejected": _l("Rejected")}
MISSED_REASONS = {"no_answer": _l("Nobody answered"), "busy": _l("Busy"),
                  "after_hours": _l("After hours"),
                  "abandoned_in_queue": _l("Hung up in the queue"),
                  "blacklisted": _l("Blacklisted"), "all_lines_busy": _l("All lines busy"),
                  "failed": _l("Failed"), "voicemail": _l("Left a voice message"),
                  "callback_requested": _l("Asked for a callback")}


def box_zone(name: Any) -> ZoneInfo:
    """The box's time zone by name; UTC when the name is missing or unknown."""
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def parse_time(text: str | None) -> datetime | None:
    """A stored timestamp ('...Z' or '...+00:00') as an aware datetime; None if unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def local(text: str | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored timestamp in the box's time zone, formatted; '' if there is none."""
    when = parse_time(text)
    return when.astimezone(tz).strftime(fmt) if when else ""


class LocalTimes:
    """Stored timestamps as local 'YYYY-MM-DD HH:MM:SS', fast for a whole export: the UTC
    offset is looked up once per UTC hour, unless the offset changes within that hour (a DST
    switch in a zone with a half-hour offset), which is then looked up per timestamp."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[str, timedelta | None] = {}

    def _offset(self, when: datetime) -> timedelta:
        return when.replace(tzinfo=UTC).astimezone(self.tz).utcoffset() or timedelta()

    def __call__(self, text: str | None) -> str:
        """The local time of one stored timestamp ('' if unreadable)."""
        if not text:
            return ""
        try:
            naive = datetime.fromisoformat(text[:19])
        except ValueError:
            return ""
        hour = text[:13]
        if hour not in self._offsets:
            start = naive.replace(minute=0, second=0)
            first, last = self._offset(start), self._offset(start + timedelta(seconds=3599))
            self._offsets[hour] = first if first == last else None
        offset = self._offsets[hour]
        return (naive + (offset if offset is not None else self._offset(naive))).isoformat(" ")


def duration(seconds: float | None) -> str:
    """Seconds as m:ss or h:mm:ss; '' for None."""
    if seconds is None:
        return ""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class Query:
    """The history filters as read from the query string, and what was wrong with them."""

    first: date
    last: date
    number: str
    employee_id: int | None
    direction: str | None
    outcome: str | None
    page: int
    errors: dict[str, str]

    def filters(self, tz: ZoneInfo, **viewer: Any) -> Filters:
        """The Filters the query layer takes (the local days as a UTC range)."""
        start, end = day_range(self.first, self.last, tz)
        return Filters(start=start, end=end, number=self.number,
                       employee_id=self.employee_id, direction=self.direction,
                       outcome=self.outcome, **viewer)

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for pager links and the CSV link)."""
        out = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        if self.number:
            out["number"] = self.number
        if self.employee_id is not None:
            out["employee"] = str(self.employee_id)
        if self.direction:
            out["direction"] = self.direction
        if self.outcome:
            out["outcome"] = self.outcome
        return out


def _day(text: str | None, default: date, name: str, errors: dict[str, str]) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text.strip()[:10]) if len(text) <= 32 else default
    except ValueError:
        errors[name] = str(_l("Enter a date like 2025-01-31."))
        return default


def parse_query(args: Mapping[str, str], today: date, *, default_days: int = 7) -> Query:
    """Read the history filters from query arguments; bad values become errors (and are
    ignored), never exceptions."""
    errors: dict[str, str] = {}
    last = _day(args.get("to"), today, "to", errors)
    first = _day(args.get("from"), last - timedelta(days=default_days - 1), "from", errors)
    if first > last:
        errors["from"] = str(_l("The first day is after the last one."))
        first = last
    if (last - first).days >= MAX_DAYS:
        errors["from"] = str(_l("At most %(days)d days at a time.", days=MAX_DAYS))
        first = last - timedelta(days=MAX_DAYS - 1)
    number = (args.get("number") or "").strip()
    if len(number) > MAX_NUMBER or not _NUMBER.fullmatch(number):
        errors["number"] = str(_l("Digits, +, * and # only (part of a number is fine)."))
        number = ""
    employee_id: int | None = None
    raw = (args.get("employee") or "").strip()
    if raw:
        if raw.isascii() and raw.isdigit() and len(raw) <= 9:
            employee_id = int(raw)
        else:
            errors["employee"] = str(_l("Choose an employee from the list."))
    direction = args.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        errors["direction"] = str(_l("Choose a direction from the list."))
        direction = None
    outcome = args.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        errors["outcome"] = str(_l("Choose an outcome from the list."))
        outcome = None
    raw_page = args.get("page") or "1"
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 7 \
        else 1
    return Query(first, last, number, employee_id, direction, outcome, max(1, page), errors)


# --- charts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    """One colour of a stacked bar chart: its label, CSS class and a value per bar."""

    label: str
    css: str
    values: Sequence[int]


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: str) -> Markup:
    """Text for inside the SVG: escaped, and without characters XML does not allow."""
    return escape(_NOT_XML.sub("", value))


def _nice_max(value: int) -> int:
    """The chart's top: the smallest 1/2/5 x 10^n not below value (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return max(1, m * step)
        step *= 10


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, title: str,
                 line: Sequence[int | None] | None = None, height: int = 180,
                 plot: int = 760) -> Markup:
    """An SVG stacked bar chart (one bar per label), optionally with a target line per bar
    (a daily plan); text is escaped, sizes scale with the bar count."""
    count = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    targets = [t for t in (line or []) if t]
    top = _nice_max(max([*totals, *targets, 0]))
    left, bottom, top_pad = 34, 22, 8
    # Bars share a `plot` units wide plot (the SVG then scales to its box); a few days get
    # wide bars, a year of days thin ones.
    gap = 4 if count <= 120 else 1
    bar_w = max(2, min(48, (plot - left) // max(1, count) - gap))
    width = left + count * (bar_w + gap) + 8
    plot_h = height - bottom - top_pad
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{_text(title)}</title>"]
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        out.append(f'<line class="grid" x1="{left}" x2="{width - 4}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text class="axis" x="{left - 4}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{int(top * frac)}</text>')
    every = max(1, -(-count * 34 // (width - left)))  # a date label needs about 34 units
    for i in range(count):
        x = left + i * (bar_w + gap)
        y = top_pad + plot_h
        tip = [f"{labels[i]}"]
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            tip.append(f"{s.label}: {value}")
            out.append(f'<rect class="{_text(s.css)}" x="{x}" y="{y:.1f}" width="{bar_w}" '
                       f'height="{h:.1f}"><title>{_text(labels[i])} · {_text(s.label)}: '
                       f"{value}</title></rect>")
        if line is not None and i < len(line) and line[i]:
            ty = top_pad + plot_h * (1 - (line[i] or 0) / top)
            out.append(f'<line class="target" x1="{x - 1}" x2="{x + bar_w + 1}" '
                       f'y1="{ty:.1f}" y2="{ty:.1f}"/>')
        if i % every == 0:
            out.append(f'<text class="axis" x="{x}" y="{height - 6}">'
                       f"{_text(labels[i])}</text>")
    out.append("</svg>")
    return Markup("".join(out))


def legend(series: Sequence[Series]) -> Markup:
    """The chart's legend as HTML."""
    items = "".join(f'<span><i class="{_text(s.css)}"></i>{_text(s.label)}</span>'
                    for s in series)
    return Markup(f'<p class="legend">{items}</p>')
