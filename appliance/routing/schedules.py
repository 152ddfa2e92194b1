"""Is a schedule open at a given instant, and when does that next change.

Working hours are wall-clock times in the schedule's time zone: "09:00-18:00" means nine on
the office clock whatever the UTC offset that day, so a DST change moves the instant, not the
hours. A period belongs to the day it starts on (a Friday "22:00-06:00" shift still runs on
a Saturday holiday morning). Precedence, strongest first: the box's manual day/night switch,
the schedule's own override, a one-off date, a holiday (public or the admin's), the week.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import holidays as holidays_lib

from ..config.types import WEEKDAYS, period_minutes

State = Literal["open", "closed", "holiday"]
DayNight = Literal["auto", "day", "night"]
Override = Literal["auto", "open", "closed"]

_EMPTY_DATES: Mapping[dt.date, str] = MappingProxyType({})
# How far next_change looks ahead before saying "never" (a schedule with no hours at all).
_HORIZON_DAYS = 400


@dataclass(frozen=True)
class Period:
    """Opening hours of one day in minutes since midnight; `closes <= opens` crosses midnight."""

    opens: int
    closes: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """'09:00-18:00' -> Period(540, 1080)."""
        opens, closes = period_minutes(text)
        return cls(opens, closes)

    @property
    def crosses_midnight(self) -> bool:
        """True for night periods such as 22:00-06:00."""
        return self.closes <= self.opens

    def bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """Naive wall-clock start and end of this period on `day`."""
        start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=self.opens)
        end_day = day + dt.timedelta(days=1) if self.crosses_midnight else day
        end = dt.datetime.combine(end_day, dt.time()) + dt.timedelta(minutes=self.closes)
        return start, end

    def __str__(self) -> str:
        """'09:00-18:00'."""
        return f"{_hhmm(self.opens)}-{_hhmm(self.closes)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class PublicHolidays:
    """Public holidays of one country: precomputed for some years, computed for the rest."""

    country: str | None
    years: frozenset[int] = frozenset()
    dates: Mapping[dt.date, str] = field(default_factory=lambda: _EMPTY_DATES)

    @classmethod
    def for_years(cls, country: str | None, years: Iterable[int]) -> PublicHolidays:
        """The holidays of `country` (ISO 3166 code) for `years`; none for unknown countries."""
        wanted = frozenset(years)
        return cls(country, wanted, MappingProxyType(_country_dates(country, wanted)))

    def name(self, day: dt.date) -> str | None:
        """The holiday's name if `day` is a public holiday, else None."""
        if day.year in self.years:
            return self.dates.get(day)
        # Outside the precomputed years (a long search ahead): same answer, only slower.
        return _country_dates(self.country, {day.year}).get(day)


def _country_dates(country: str | None, years: Iterable[int]) -> dict[dt.date, str]:
    if not country:
        return {}
    try:
        found = holidays_lib.country_holidays(country, years=sorted(years))
    except NotImplementedError:  # a country the package does not know: no public holidays
        return {}
    return {day: str(name) for day, name in found.items()}


NO_PUBLIC_HOLIDAYS = PublicHolidays(None)


@dataclass(frozen=True)
class Schedule:
    """Working hours per weekday in a time zone, with holidays and one-off dates."""

    key: str
    time_zone: str
    week: tuple[tuple[Period, ...], ...] = ((),) * 7  # Monday first
    # One-off dates: their periods replace the week's; an empty tuple closes the day.
    dates: Mapping[dt.date, tuple[Period, ...]] = field(
        default_factory=lambda: MappingProxyType({}))
    notes: Mapping[dt.date, str] = field(default_factory=lambda: _EMPTY_DATES)
    holidays: Mapping[dt.date, str] = field(default_factory=lambda: _EMPTY_DATES)  # admin's
    public: PublicHolidays = NO_PUBLIC_HOLIDAYS
    override: Override = "auto"
    override_until: dt.datetime | None = None  # None: until switched back to auto

    @classmethod
    def build(cls, key: str, time_zone: str, hours: Mapping[str, Iterable[str]], *,
              dates: Mapping[dt.date, Iterable[str]] | None = None,
              notes: Mapping[dt.date, str] | None = None,
              holidays: Mapping[dt.date, str] | None = None,
              public: PublicHolidays = NO_PUBLIC_HOLIDAYS, override: Override = "auto",
              override_until: dt.datetime | None = None) -> Schedule:
        """A schedule from config-style text: hours {'mon': ['09:00-18:00']}, dates."""
        week = tuple(tuple(sorted((Period.parse(p) for p in hours.get(day, ())),
                                  key=lambda p: p.opens))
                     for day in WEEKDAYS)
        return cls(
            key, time_zone, week,
            MappingProxyType({d: tuple(Period.parse(p) for p in ps)
                              for d, ps in (dates or {}).items()}),
            MappingProxyType(dict(notes or {})), MappingProxyType(dict(holidays or {})),
            public, override, override_until)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The schedule's time zone."""
        return zoneinfo.ZoneInfo(self.time_zone)

    def holiday_name(self, day: dt.date) -> str | None:
        """The admin's or the country's holiday name for `day`, if it is one."""
        name = self.holidays.get(day)
        if name is not None:
            return name or "holiday"
        return self.public.name(day)

    def periods_of(self, day: dt.date) -> tuple[Period, ...]:
        """The hours that apply on `day`: a one-off date, none on a holiday, else the week's."""
        if day in self.dates:
            return self.dates[day]
        if self.holiday_name(day) is not None:
            return ()
        return self.week[day.weekday()]


@dataclass(frozen=True)
class Status:
    """A schedule's state at an instant and why, in words for the call record."""

    state: State
    why: str

    @property
    def is_open(self) -> bool:
        """True in working hours."""
        return self.state == "open"


def _aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("schedules need an aware datetime (with a time zone)")


def status(schedule: Schedule, at: dt.datetime, day_night: DayNight = "auto") -> Status:
    """The schedule's state at the aware instant `at`."""
    _aware(at)
    if day_night == "day":
        return Status("open", "manual day switch")
    if day_night == "night":
        return Status("closed", "manual night switch")
    if schedule.override != "auto" and (schedule.override_until is None
                                        or at < schedule.override_until):
        until = (f" until {schedule.override_until.isoformat()}"
                 if schedule.override_until else "")
        return Status(schedule.override, f"schedule switched to {schedule.override}{until}")
    return _by_hours(schedule, at.astimezone(schedule.zone).replace(tzinfo=None))


def _by_hours(schedule: Schedule, wall: dt.datetime) -> Status:
    today = wall.date()
    for day in (today - dt.timedelta(days=1), today):
        for period in schedule.periods_of(day):
            start, end = period.bounds(day)
            if start <= wall < end:
                what = "one-off date" if day in schedule.dates else WEEKDAYS[day.weekday()]
                return Status("open", f"{what} {day.isoformat()} {period}")
    if today in schedule.dates:
        note = schedule.notes.get(today)
        suffix = f" ({note})" if note else ""
        if not schedule.dates[today]:
            return Status("holiday", f"closed one-off date {today.isoformat()}{suffix}")
        return Status("closed", f"outside the hours of one-off date {today.isoformat()}{suffix}")
    name = schedule.holiday_name(today)
    if name is not None:
        return Status("holiday", f"holiday {today.isoformat()} ({name})")
    return Status("closed", "outside working hours")


def next_change(schedule: Schedule, at: dt.datetime,
                day_night: DayNight = "auto") -> dt.datetime | None:
    """The first instant after `at` when the state differs from the state at `at`.

    None if it never changes within about a year (a manual day/night switch, a schedule with
    no hours). The runner sets its timer to this; the result is an aware UTC datetime.
    """
    _aware(at)
    if day_night != "auto":
        return None
    now = status(schedule, at, day_night).state
    at_utc = at.astimezone(dt.UTC)
    start_day = at.astimezone(schedule.zone).date() - dt.timedelta(days=1)
    done = 0
    for span in (3, 14, 60, _HORIZON_DAYS):
        first = start_day + dt.timedelta(days=done)
        last = start_day + dt.timedelta(days=span)
        # Candidates of later days are never earlier than the local midnight that starts them
        # (give or take the DST hour), so this window is complete up to that margin.
        limit = _instants(schedule, [(last, 0)])[0] - dt.timedelta(hours=3)
        for instant in sorted(set(_candidates(schedule, first, last, at_utc))):
            if instant <= at_utc:
                continue
            if span != _HORIZON_DAYS and instant >= limit:
                break
            if status(schedule, instant).state != now:
                return instant
        done = max(0, span - 1)
    return None


def _candidates(schedule: Schedule, first: dt.date, last: dt.date,
                at_utc: dt.datetime) -> Iterator[dt.datetime]:
    """Every instant in [first, last] where the state could flip (a superset)."""
    if schedule.override != "auto" and schedule.override_until is not None:
        yield schedule.override_until.astimezone(dt.UTC)
    day = first
    while day <= last:
        walls: list[tuple[dt.date, int]] = [(day, 0)]  # midnight: holidays start and end
        periods = set(schedule.week[day.weekday()]) | set(schedule.dates.get(day, ()))
        for period in periods:
            walls.append((day, period.opens))
            walls.append((day + dt.timedelta(days=1) if period.crosses_midnight else day,
                          period.closes))
        yield from _instants(schedule, walls)
        yield from _transitions(schedule.zone, day)
        day += dt.timedelta(days=1)


def _instants(schedule: Schedule, walls: Iterable[tuple[dt.date, int]]) -> list[dt.datetime]:
    """UTC instants of wall-clock times; both readings of a time the clock shows twice."""
    zone = schedule.zone
    out = []
    for day, minutes in walls:
        naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
        for fold in (0, 1):
            out.append(naive.replace(tzinfo=zone, fold=fold).astimezone(dt.UTC))
    return out


def _transitions(zone: zoneinfo.ZoneInfo, day: dt.date) -> Iterator[dt.datetime]:
    """The instant of a UTC-offset change during `day` (the wall clock jumps: a flip point)."""
    low = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    high = low + dt.timedelta(hours=26)
    if low.astimezone(zone).utcoffset() == high.astimezone(zone).utcoffset():
        return
    offset = low.astimezone(zone).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).utcoffset() == offset:
            low = mid
        else:
            high = mid
    yield high.replace(microsecond=0)
