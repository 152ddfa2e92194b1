"""Dialled numbers: E.164 normalisation with the box's country and area code, route classes,
emergency numbers, mobile operators (table tests, then hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.routing.numbers import (
    Dialling,
    classify,
    clean,
    is_emergency,
    national_digits,
    operator_key,
    places_of,
    to_e164,
)

MOSCOW = Dialling("RU", "495")
NO_AREA = Dialling("RU")


@pytest.mark.parametrize(("dialled", "e164"), [
    ("8 495 123-45-67", "+74951234567"),
    ("8 (495) 123-45-67", "+74951234567"),
    ("+7 495 123 45 67", "+74951234567"),
    ("7 495 1234567", "+74951234567"),
    ("4951234567", "+74951234567"),
    ("123-45-67", "+74951234567"),  # local: the box's area code is added
    ("89261234567", "+79261234567"),
    ("8 10 44 20 7123 4567", "+442071234567"),
    ("00 44 20 7123 4567", "+442071234567"),
    ("+44 (20) 7123-4567", "+442071234567"),
    ("8 800 555-35-35", "+78005553535"),
    ("112", None),
    ("0611", None),
    ("*100#", None),
    ("8495", None),
    ("", None),
    ("hello", None),
])
def test_to_e164(dialled: str, e164: str | None) -> None:
    assert to_e164(dialled, MOSCOW) == e164


def test_local_number_needs_the_area_code() -> None:
    assert to_e164("123-45-67", NO_AREA) is None
    assert classify("123-45-67", NO_AREA).route_class is None


@pytest.mark.parametrize(("dialled", "route_class"), [
    ("8 495 123-45-67", "local"),
    ("123-45-67", "local"),
    ("+7 499 123 45 67", "long_distance"),  # another code: only `area_code` is local
    ("8 812 234-56-78", "long_distance"),
    ("8 343 123-45-67", "long_distance"),
    ("8 926 123-45-67", "mobile"),
    ("+7 903 123 45 67", "mobile"),
    ("8 10 44 20 7123 4567", "international"),
    ("+1 202 555 0123", "international"),
    ("+7 701 234 56 78", "international"),  # +7 is Kazakhstan too
    ("8 809 555 12 34", "premium"),
    ("+7 803 555 12 34", "premium"),
    ("8 800 555 35 35", "service"),
    ("0611", "service"),
    ("*100#", "service"),
    ("112", "emergency"),
    ("911", "emergency"),
    ("01", "emergency"),
    ("103", "emergency"),
    ("104", "emergency"),
    ("8495", None),
    ("8", None),
])
def test_route_classes(dialled: str, route_class: str | None) -> None:
    assert classify(dialled, MOSCOW).route_class == route_class


def test_internal_numbers_win_over_short_codes_but_not_over_112() -> None:
    internal = {"101", "112", "500"}
    assert classify("101", MOSCOW, internal).route_class == "internal"
    assert classify("500", MOSCOW, internal).route_class == "internal"
    got = classify("112", MOSCOW, internal)
    assert got.route_class == "emergency" and got.emergency


def test_emergency_numbers_per_country() -> None:
    assert is_emergency("112", "DE") and is_emergency("911", "DE")
    assert is_emergency("110", "DE")  # phonenumbers' data for other countries
    assert not is_emergency("110", "RU")
    assert is_emergency(" 1 0 2 ", "RU")
    assert not is_emergency("1120", "RU") and not is_emergency("", "RU")


def test_mobile_operators_are_a_hint_from_the_number_range() -> None:
    assert classify("+7 926 123 45 67", MOSCOW).operator == "megafon"
    assert classify("+7 903 123 45 67", MOSCOW).operator == "beeline"
    assert classify("+7 950 123 45 67", MOSCOW).operator == "t2"
    assert classify("+7 982 123 45 67", MOSCOW).operator == "mts"
    assert classify("8 495 123 45 67", MOSCOW).operator is None  # not a mobile


@pytest.mark.parametrize(("name", "key"), [
    ("MTS", "mts"), ("МТС", "mts"), ("MTS RUS", "mts"), ("25001", "mts"),
    ("MegaFon", "megafon"), ("Мегафон", "megafon"), ("МегаФон", "megafon"),
    ("Beeline", "beeline"), ("Билайн", "beeline"), ("25099", "beeline"),
    ("Tele2", "t2"), ("TELE2", "t2"), ("T2", "t2"), ("Т2", "t2"), ("Теле2", "t2"),
    ("Some Telecom", "sometelecom"), ("", None), (None, None), (" - ", None),
])
def test_operator_keys(name: str | None, key: str | None) -> None:
    assert operator_key(name) == key


def test_places_and_national_digits() -> None:
    spb = classify("8 812 234 56 78", MOSCOW)
    assert spb.area == "812" and spb.national == "8122345678"
    assert "St Petersburg" in places_of(spb.e164)  # looked up on demand only
    assert national_digits("+74951234567", MOSCOW) == "84951234567"
    assert national_digits("+442071234567", MOSCOW) == "810442071234567"


def test_clean_keeps_only_what_a_phone_dials() -> None:
    assert clean(" +7 (495) 123-45-67 ") == "+74951234567"
    assert clean("*100#") == "*100#"
    assert clean("12a") == "" and clean("+") == "" and clean("1+2") == ""


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["RU", "DE", "US", "KZ", "XX"]),
       st.one_of(st.none(), st.from_regex(r"[0-9]{1,5}", fullmatch=True)))
def test_classify_never_raises(text: str, country: str, area: str | None) -> None:
    dialling = Dialling(country, area)
    got = classify(text, dialling)
    if got.e164 is not None:
        # E.164 is a fixed point: reading it again gives the same number.
        assert to_e164(got.e164, dialling) == got.e164
        assert got.e164.startswith("+") and got.e164[1:].isdigit()
    if got.emergency:
        assert got.route_class == "emergency" and got.e164 is None


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"9[0-9]{9}", fullmatch=True),
       st.sampled_from(["8", "+7", "7", "8 ", "+7 (", ""]))
def test_every_russian_mobile_spelling_gives_one_number(digits: str, prefix: str) -> None:
    expected = to_e164("+7" + digits, MOSCOW)
    text = prefix + digits[:3] + (") " if prefix.endswith("(") else " ") + digits[3:]
    assert to_e164(text, MOSCOW) == expected
