"""The +CEER release report parser: real replies of each family, and fuzzing (only
CeerParseError may come out)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.modem.ceer import (
    CAUSE_TEXTS,
    CeerParseError,
    ReleaseReport,
    cause_for_text,
    parse_ceer,
    parse_ceer_lines,
    parse_report,
)
from hw.modem.commands import expected_prefixes

EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=1000, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("line", "cause", "category", "code"), [
    # Quectel, text form.
    ('+CEER: "No circuit/channel available"', 34, None, None),
    ('+CEER: "Network out of order"', 38, None, None),
    ('+CEER: "No cause information available"', None, None, None),
    # Quectel numeric form, Cinterion-derived firmware.
    ('+CEER: "CC setup error",34,"No circuit/channel available"', 34, "CC setup error", 34),
    ('+CEER: "CC setup error", 16, "Normal call clearing"', 16, "CC setup error", 16),
    ('+CEER: "CC setup error",1,"Unassigned (unallocated) number"', 1, "CC setup error", 1),
    ('+CEER: "SM detach",0,"No cause information available"', None, "SM detach", 0),
    # A vendor code outside 24.008: the text decides (here: no known cause).
    ('+CEER: "CC setup error",288,"MM no service"', None, "CC setup error", 288),
    ('+CEER: "CC setup error",999,"Temporary failure"', 41, "CC setup error", 999),
    ('+CEER: "No report available"', None, None, None),
    # SIMCom and Huawei: bare text, commas included.
    ("+CEER: Switching equipment congestion", 42, None, None),
    ("+CEER: User alerting, no answer", 19, None, None),
    ("+CEER: Resources unavailable, unspecified", 47, None, None),
    ("+CEER: Temporary failure", 41, None, None),
    ("+CEER: Normal call clearing", 16, None, None),
    ("+CEER:userbusy", 17, None, None),
    ("+CEER: USER_BUSY", 17, None, None),
    ("+CEER: Call rejected", 21, None, None),
    ("+CEER: No cause information available", None, None, None),
    ("+CEER: EPS_AND_NON_EPS_SERVICES_NOT_ALLOWED", None, None, None),
    # Category and text, no number.
    ('+CEER: "CC INFO","No user responding"', 18, "CC INFO", None),
    # Numbers only (Siemens lineage: location, reason, SS release).
    ("+CEER: 34", 34, None, 34),
    ("+CEER: 1,38", 38, None, 38),
    ("+CEER: 0,0,0", None, None, 0),
    ("+CEER: 8,47,0", 47, None, 47),
])
def test_real_replies(line: str, cause: int | None, category: str | None,
                      code: int | None) -> None:
    report = parse_ceer(line)
    assert (report.cause, report.category, report.code) == (cause, category, code)


def test_the_text_is_kept() -> None:
    assert parse_ceer('+CEER: "CC setup error",34,"No circuit/channel available"').text == \
        "No circuit/channel available"
    assert parse_ceer("+CEER: User alerting, no answer").text == "User alerting, no answer"


@pytest.mark.parametrize("line", [
    "", "OK", "+CSQ: 20,99", "+CEER", "+CEER:", "+CEER:   ", '+CEER: ""',
    "+CEER: 1,2,3,4", "+CEER: bad\x00byte", "+CEER: " + "x" * 3000,
])
def test_not_a_report(line: str) -> None:
    with pytest.raises(CeerParseError):
        parse_ceer(line)


def test_answer_lines() -> None:
    assert parse_ceer_lines(["+CEER: Temporary failure"]).cause == 41
    # Some firmwares print an echo or an empty line first; a broken line before a good one.
    assert parse_ceer_lines(["", "+CEER:", '+CEER: "Network out of order"']).cause == 38
    with pytest.raises(CeerParseError):
        parse_ceer_lines([])
    with pytest.raises(CeerParseError):
        parse_ceer_lines(["+CEER:"])
    with pytest.raises(CeerParseError):
        parse_ceer_lines(["No circuit/channel available"])
    # The AT layer routes +CEER lines to the command (not out as URCs).
    assert expected_prefixes("AT+CEER") == frozenset({"+CEER"})


@pytest.mark.parametrize("cause", sorted(CAUSE_TEXTS))
def test_every_cause_round_trips_in_every_form(cause: int) -> None:
    text = CAUSE_TEXTS[cause]
    assert cause_for_text(text) == cause
    assert parse_ceer(f'+CEER: "{text}"').cause == cause
    assert parse_ceer(f"+CEER: {text}").cause == cause
    assert parse_ceer(f"+CEER: {text.upper().replace(' ', '_')}").cause == cause
    assert parse_ceer(f'+CEER: "CC setup error",{cause},"{text}"').cause == cause
    assert parse_ceer(f"+CEER: 1,{cause},0").cause == cause


FIELD = st.one_of(st.text(max_size=16), st.integers(-5, 400).map(str),
                  st.sampled_from(['""', '"CC setup error"', ",", '"', "34", "User busy",
                                   '"No circuit/channel available"', " ", "\t"]))


@FUZZ
@given(st.lists(FIELD, max_size=6), st.sampled_from(["+CEER:", "+CEER: ", "+ceer:", "", "+C"]))
def test_fuzz_only_parse_errors(fields: list[str], head: str) -> None:
    try:
        report = parse_ceer(head + ",".join(fields))
    except CeerParseError:
        return
    assert isinstance(report, ReleaseReport)
    assert report.cause is None or 1 <= report.cause <= 127


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_any_text(body: str) -> None:
    try:
        report = parse_report(body)
    except CeerParseError:
        return
    assert report.cause is None or report.cause in CAUSE_TEXTS or 1 <= report.cause <= 127


@FUZZ
@given(st.lists(st.text(max_size=60), max_size=6))
def test_fuzz_answer_lines(lines: list[str]) -> None:
    try:
        report = parse_ceer_lines(lines)
    except CeerParseError:
        assert not any(line.strip().upper().startswith("+CEER:") and line.split(":", 1)[1]
                       .strip() in CAUSE_TEXTS.values() for line in lines)
        return
    assert any(line.lstrip().upper().startswith("+CEER") for line in lines)
    assert report.cause is None or 1 <= report.cause <= 127
