"""Schedules: open or closed at an instant, and the next change (pure; fake clock values)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.routing.schedules import (
    PublicHolidays,
    Schedule,
    next_change,
    status,
)

UTC = dt.UTC
MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu")} | {"fri": ["09:00-17:00"]}
RU = PublicHolidays.for_years("RU", [2025, 2026, 2027])


def at(zone: dt.tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0,
       second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=zone)


def office(zone: str = "Europe/Moscow", **kwargs: object) -> Schedule:
    return Schedule.build("office", zone, WEEKDAYS, **kwargs)  # type: ignore[arg-type]


# -- weekly hours ----------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "state"), [
    (at(MSK, 2026, 3, 3, 8, 59, 59), "closed"),   # Tuesday, a second before opening
    (at(MSK, 2026, 3, 3, 9, 0), "open"),          # opening is inclusive
    (at(MSK, 2026, 3, 3, 17, 59), "open"),
    (at(MSK, 2026, 3, 3, 18, 0), "closed"),       # closing is exclusive
    (at(MSK, 2026, 3, 6, 17, 30), "closed"),      # Friday closes at 17:00
    (at(MSK, 2026, 3, 7, 12, 0), "closed"),       # Saturday: no hours
    (at(UTC, 2026, 3, 3, 6, 0), "open"),          # 09:00 in Moscow is 06:00 UTC
    (at(UTC, 2026, 3, 3, 5, 59), "closed"),
])
def test_weekly_hours_in_the_schedules_zone(when: dt.datetime, state: str) -> None:
    assert status(office(), when).state == state


def test_split_day_has_a_lunch_break() -> None:
    schedule = Schedule.build("o", "Europe/Moscow", {"mon": ["09:00-13:00", "14:00-18:00"]})
    assert status(schedule, at(MSK, 2026, 3, 2, 13, 30)).state == "closed"
    assert status(schedule, at(MSK, 2026, 3, 2, 14, 0)).state == "open"
    assert next_change(schedule, at(MSK, 2026, 3, 2, 12, 0)) == at(MSK, 2026, 3, 2, 13, 0)
    assert next_change(schedule, at(MSK, 2026, 3, 2, 13, 0)) == at(MSK, 2026, 3, 2, 14, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        status(office(), dt.datetime(2026, 3, 3, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        next_change(office(), dt.datetime(2026, 3, 3, 10, 0))


# -- midnight ---------------------------------------------------------------------------------

def test_period_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    night = Schedule.build("night", "Europe/Moscow", {"fri": ["22:00-06:00"]})
    assert status(night, at(MSK, 2026, 3, 6, 21, 59)).state == "closed"
    assert status(night, at(MSK, 2026, 3, 6, 23, 0)).state == "open"
    assert status(night, at(MSK, 2026, 3, 7, 5, 59)).state == "open"  # Saturday morning
    assert status(night, at(MSK, 2026, 3, 7, 6, 0)).state == "closed"
    assert status(night, at(MSK, 2026, 3, 5, 23, 0)).state == "closed"  # Thursday night
    assert next_change(night, at(MSK, 2026, 3, 6, 23, 0)) == at(MSK, 2026, 3, 7, 6, 0)


def test_sunday_night_into_monday() -> None:
    night = Schedule.build("night", "Europe/Moscow", {"sun": ["22:00-02:00"]})
    assert status(night, at(MSK, 2026, 3, 9, 1, 0)).state == "open"  # Monday 01:00
    assert status(night, at(MSK, 2026, 3, 9, 2, 0)).state == "closed"


def test_whole_day_and_midnight_end() -> None:
    schedule = Schedule.build("o", "Europe/Moscow", {"sat": ["00:00-24:00"],
                                                     "sun": ["20:00-00:00"]})
    assert status(schedule, at(MSK, 2026, 3, 7, 0, 0)).state == "open"
    assert status(schedule, at(MSK, 2026, 3, 7, 23, 59)).state == "open"
    assert next_change(schedule, at(MSK, 2026, 3, 7, 12, 0)) == at(MSK, 2026, 3, 8, 0, 0)
    assert status(schedule, at(MSK, 2026, 3, 8, 21, 0)).state == "open"
    assert next_change(schedule, at(MSK, 2026, 3, 8, 21, 0)) == at(MSK, 2026, 3, 9, 0, 0)


def test_night_shift_runs_into_a_holiday_morning() -> None:
    night = Schedule.build("night", "Europe/Moscow", {"fri": ["22:00-06:00"]},
                           holidays={dt.date(2026, 3, 7): "Corporate day"})
    assert status(night, at(MSK, 2026, 3, 7, 3, 0)).state == "open"
    after = status(night, at(MSK, 2026, 3, 7, 7, 0))
    assert after.state == "holiday" and "Corporate day" in after.why


# -- holidays and one-off dates --------------------------------------------------------------

def test_public_holidays_of_the_country() -> None:
    schedule = office(public=RU)
    christmas = status(schedule, at(MSK, 2026, 1, 7, 12, 0))
    assert christmas.state == "holiday" and "2026-01-07" in christmas.why
    assert status(schedule, at(MSK, 2026, 1, 12, 12, 0)).state == "open"
    assert status(schedule, at(MSK, 2026, 6, 12, 12, 0)).state == "holiday"  # Russia Day
    # A year outside the precomputed ones is computed on demand.
    assert status(schedule, at(MSK, 2031, 1, 1, 12, 0)).state == "holiday"


def test_unknown_country_has_no_public_holidays() -> None:
    assert PublicHolidays.for_years("XX", [2026]).name(dt.date(2026, 1, 1)) is None
    assert PublicHolidays.for_years(None, [2026]).name(dt.date(2026, 1, 1)) is None


def test_admin_holiday_set() -> None:
    schedule = office(holidays={dt.date(2026, 3, 4): "Office move"})
    found = status(schedule, at(MSK, 2026, 3, 4, 12, 0))
    assert found.state == "holiday" and "Office move" in found.why
    assert status(schedule, at(MSK, 2026, 3, 5, 12, 0)).state == "open"


def test_holiday_run_ends_at_local_midnight() -> None:
    # 1-9 January 2026 are days off in Russia, the 10th is a Saturday: the state turns from
    # holiday to closed at midnight, Moscow time.
    schedule = office(public=RU)
    assert next_change(schedule, at(MSK, 2026, 1, 5, 11, 0)) == at(MSK, 2026, 1, 10, 0, 0)
    assert next_change(schedule, at(MSK, 2026, 1, 10, 0, 0)) == at(MSK, 2026, 1, 12, 9, 0)


def test_one_off_dates_win_over_week_and_holidays() -> None:
    schedule = office(public=RU, dates={
        dt.date(2026, 12, 31): ["09:00-14:00"],   # shortened day on a public day off
        dt.date(2026, 8, 14): [],                 # closed Friday
        dt.date(2026, 3, 7): ["10:00-15:00"],     # working Saturday
    }, notes={dt.date(2026, 8, 14): "Корпоратив"})
    assert status(schedule, at(MSK, 2026, 12, 31, 13, 0)).state == "open"
    short = status(schedule, at(MSK, 2026, 12, 31, 15, 0))
    assert short.state == "closed" and "one-off" in short.why
    closed = status(schedule, at(MSK, 2026, 8, 14, 12, 0))
    assert closed.state == "holiday" and "Корпоратив" in closed.why
    assert status(schedule, at(MSK, 2026, 3, 7, 10, 0)).state == "open"
    assert next_change(schedule, at(MSK, 2026, 3, 7, 10, 0)) == at(MSK, 2026, 3, 7, 15, 0)


# -- manual switches --------------------------------------------------------------------------

def test_box_day_night_switch_wins_over_everything() -> None:
    schedule = office(public=RU, override="closed")
    holiday = at(MSK, 2026, 1, 7, 12, 0)
    assert status(schedule, holiday, "day").state == "open"
    assert status(schedule, at(MSK, 2026, 3, 3, 12, 0), "night").state == "closed"
    assert next_change(schedule, holiday, "day") is None
    assert next_change(schedule, holiday, "night") is None


def test_schedule_override_until_a_time() -> None:
    until = at(MSK, 2026, 3, 3, 20, 0)
    schedule = office(override="open", override_until=until)
    assert status(schedule, at(MSK, 2026, 3, 3, 19, 0)).state == "open"  # after hours
    assert "until" in status(schedule, at(MSK, 2026, 3, 3, 19, 0)).why
    assert next_change(schedule, at(MSK, 2026, 3, 3, 19, 0)) == until
    assert status(schedule, until).state == "closed"  # back to the hours
    closed = office(override="closed")
    assert status(closed, at(MSK, 2026, 3, 3, 12, 0)).state == "closed"
    assert next_change(closed, at(MSK, 2026, 3, 3, 12, 0)) is None


# -- daylight saving time --------------------------------------------------------------------

def test_moscow_has_no_dst_weekend() -> None:
    assert next_change(office(), at(MSK, 2026, 3, 6, 17, 0)) == at(UTC, 2026, 3, 9, 6, 0)


@pytest.mark.parametrize(("friday", "monday_utc"), [
    (at(NEW_YORK, 2026, 3, 6, 17, 0), at(UTC, 2026, 3, 9, 13, 0)),    # EST -> EDT
    (at(NEW_YORK, 2026, 10, 30, 17, 0), at(UTC, 2026, 11, 2, 14, 0)),  # EDT -> EST
])
def test_office_hours_follow_the_wall_clock_across_dst(friday: dt.datetime,
                                                       monday_utc: dt.datetime) -> None:
    schedule = office("America/New_York")
    assert status(schedule, friday).state == "closed"
    assert next_change(schedule, friday) == monday_utc
    assert monday_utc.astimezone(NEW_YORK).hour == 9


@pytest.mark.parametrize(("saturday", "hours"), [(dt.date(2026, 3, 28), 7),
                                                 (dt.date(2026, 10, 24), 9)])
def test_night_shift_over_a_berlin_dst_night(saturday: dt.date, hours: int) -> None:
    night = Schedule.build("night", "Europe/Berlin", {"sat": ["22:00-06:00"]})
    opens = dt.datetime.combine(saturday, dt.time(22, 0), tzinfo=BERLIN)
    assert next_change(night, opens - dt.timedelta(hours=1)) == opens
    closes = next_change(night, opens)
    assert closes is not None
    assert closes.astimezone(BERLIN).time() == dt.time(6, 0)
    assert closes - opens == dt.timedelta(hours=hours)  # the night is an hour shorter/longer


def test_opening_inside_the_spring_gap_opens_when_the_clock_jumps() -> None:
    # 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT; 02:30 never shows on the clock.
    schedule = Schedule.build("o", "America/New_York", {"sun": ["02:30-10:00"]})
    jump = at(UTC, 2026, 3, 8, 7, 0)
    assert status(schedule, jump - dt.timedelta(seconds=1)).state == "closed"
    assert status(schedule, jump).state == "open"
    assert next_change(schedule, at(UTC, 2026, 3, 8, 5, 0)) == jump
    assert next_change(schedule, jump) == at(NEW_YORK, 2026, 3, 8, 10, 0)


def test_closing_inside_the_repeated_autumn_hour() -> None:
    # Berlin 2026-10-25: 03:00 CEST goes back to 02:00 CET. Hours are wall-clock times, so a
    # period ending at 02:30 ends at the first 02:30 and opens again while the clock repeats.
    schedule = Schedule.build("o", "Europe/Berlin", {"sun": ["00:00-02:30"]})
    first = at(UTC, 2026, 10, 25, 0, 30)  # 02:30 CEST
    assert next_change(schedule, at(UTC, 2026, 10, 24, 23, 0)) == first
    again = next_change(schedule, first)
    assert again == at(UTC, 2026, 10, 25, 1, 0)  # 03:00 CEST is 02:00 CET
    assert next_change(schedule, again) == at(UTC, 2026, 10, 25, 1, 30)


def test_a_schedule_that_never_changes() -> None:
    assert next_change(Schedule.build("never", "Europe/Berlin", {}),
                       at(UTC, 2026, 1, 1, 0, 0)) is None


# -- property: next_change is the first flip -------------------------------------------------

NIGHT_AND_DAY = Schedule.build(
    "mixed", "Europe/Berlin",
    {"mon": ["08:00-12:00", "13:00-17:30"], "wed": ["22:00-02:30"], "fri": ["09:00-24:00"],
     "sat": ["01:30-03:30"], "sun": ["02:15-02:45", "23:00-01:00"]},
    dates={dt.date(2026, 3, 30): [], dt.date(2026, 10, 26): ["02:00-04:00"]},
    public=PublicHolidays.for_years("DE", [2026]))


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=365 * 24 * 60 - 1))
def test_next_change_is_the_first_instant_that_differs(minute: int) -> None:
    start = at(UTC, 2026, 1, 1, 0, 0) + dt.timedelta(minutes=minute, seconds=17)
    before = status(NIGHT_AND_DAY, start).state
    change = next_change(NIGHT_AND_DAY, start)
    assert change is not None and change > start
    assert status(NIGHT_AND_DAY, change).state != before
    # Nothing in between differs (sampled every 10 minutes and just before the change).
    probe = start
    while probe < change:
        assert status(NIGHT_AND_DAY, probe).state == before
        probe += dt.timedelta(minutes=10)
    assert status(NIGHT_AND_DAY, change - dt.timedelta(seconds=1)).state == before
