"""The routing pages' form converters (key rows <-> key map, hours text <-> periods, error
paths -> field names) on arbitrary posted data: they never raise, and round-trip real items."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from webui.areas.menus import menu_fields, menu_to_form, menu_to_item
from webui.areas.schedules import (
    public_dates,
    schedule_fields,
    schedule_to_form,
    schedule_to_item,
)

posted = st.recursive(
    st.none() | st.text(max_size=12) | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["keyrows", "digit", "to", "hourstext", "dates", "hours", "mon", "x"])
        | st.text(max_size=5), inner, max_size=4),
    max_leaves=25)
paths = st.one_of(
    st.text(max_size=30),
    st.builds(lambda d, rest: f"keys['{d}']{rest}", st.text(max_size=3),
              st.sampled_from(["", ".kind", "[0]"])),
    st.builds(lambda d: f"keys.{d}['[key]']", st.text(max_size=3)),
    st.builds(lambda d, i: f"hours.{d}[{i}]", st.sampled_from(["mon", "sun", "xyz"]),
              st.integers(0, 9)),
    st.builds(lambda i: f"dates[{i}].hours[0]", st.integers(0, 99)))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), posted, max_size=5), posted)
def test_converters_never_raise(form: dict[str, Any], extra: Any) -> None:
    for data in (form, {**form, "keyrows": extra}, {**form, "hourstext": extra,
                                                   "dates": extra}):
        menu_to_form(menu_to_item(data))
        schedule_to_form(schedule_to_item(data))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(paths, st.text(max_size=10), max_size=5),
       st.dictionaries(st.sampled_from(list("0123456789*#")), st.just("hangup"), max_size=4))
def test_error_paths_always_land_somewhere(errors: dict[str, str], keys: dict[str, Any]) -> None:
    for mapped in (menu_fields(errors, {"keys": keys}), schedule_fields(errors, {})):
        # Nothing is lost: every message appears under some field.
        for message in errors.values():
            assert any(message in text for text in mapped.values())


def test_menu_rows_round_trip() -> None:
    item = {"key": "m", "keys": {"1": {"department": "sales"}, "#": "hangup"},
            "default": "hangup"}
    form = menu_to_form(item)
    assert form["keyrows"] == [{"digit": "1", "to": {"department": "sales"}},
                               {"digit": "#", "to": "hangup"}]
    assert menu_to_item({k: v for k, v in form.items() if k != "keys"}) == item
    # A digit given twice keeps both rows, so that validation names the second one.
    twice = menu_to_item({"keyrows": [{"digit": "1", "to": "hangup"},
                                      {"digit": "1", "to": "callback"}]})
    assert list(twice["keys"]) == ["1", "1 "]
    fields = menu_fields({"keys.1 ['[key]']": "bad digit"}, twice)
    assert fields == {"keyrows[1].digit": "bad digit"}


def test_schedule_hours_round_trip() -> None:
    item = {"key": "s", "hours": {"mon": ["09:00-13:00", "14:00-18:00"]},
            "dates": [{"date": "2026-12-31", "hours": ["09:00-14:00"], "note": "n"}]}
    form = schedule_to_form(item)
    assert form["hourstext"]["mon"] == "09:00-13:00, 14:00-18:00"
    assert form["hourstext"]["sun"] == ""
    back = schedule_to_item({k: v for k, v in form.items() if k != "hours"})
    assert back["hours"] == item["hours"] and back["dates"][0]["hours"] == ["09:00-14:00"]
    assert schedule_fields({"hours.mon[1]": "bad", "dates[0].hours[0]": "worse"}, {}) == {
        "hourstext.mon": "bad", "dates[0].hourstext": "worse"}


def test_public_holidays_of_russia() -> None:
    dates = {d["date"]: d["name"] for d in public_dates("RU", 2027, "ru")}
    assert "2027-01-07" in dates and "2027-05-09" in dates
    assert all(len(name) <= 100 for name in dates.values())
