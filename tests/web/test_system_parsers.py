"""The lines and system areas' small parsers, fuzzed: they answer or refuse, never crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webui.areas._archive import ArchiveError, check_name
from webui.areas._linestate import strip_kind
from webui.areas.audit import filters
from webui.areas.security import ban_rows
from webui.areas.settings import notification_data
from webui.areas.sms import page_number

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
                     | st.text(max_size=6),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=10)


@given(st.one_of(st.none(), st.text(max_size=12)))
def test_page_number(raw: str | None) -> None:
    page = page_number(raw)
    assert isinstance(page, int) and 1 <= page < 10**6


@given(st.dictionaries(st.sampled_from(["area", "actor", "from", "to", "x"]),
                       st.text(max_size=300), max_size=5))
def test_audit_filters(args: dict[str, str]) -> None:
    where, params, shown = filters(args)
    assert where.count("?") == len(params)
    assert all(isinstance(p, str) and len(p) <= 100 for p in params)
    assert set(shown) <= {"area", "actor", "from", "to"}


@given(_json, st.floats(0, 2e9))
def test_ban_rows(bans: Any, now: float) -> None:
    for row in ban_rows(bans, now):
        assert isinstance(row["host"], str)
        assert row["left"] is None or row["left"] >= 0


@given(st.dictionaries(st.sampled_from(["smtp", "rules", "sms_line", "x"]), _json, max_size=4))
def test_notification_data(form: dict[str, Any]) -> None:
    data = notification_data(form)
    if "smtp" in data:
        assert isinstance(data["smtp"], dict) and data["smtp"].get("host")
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        assert rules == form["rules"]  # left for the model to refuse
        return
    for rule in rules:
        assert isinstance(rule, dict)
        assert not isinstance(rule.get("to"), str)


@given(st.text(max_size=60))
def test_check_name(name: str) -> None:
    try:
        parts = check_name(name)
    except ArchiveError:
        return
    assert parts and ".." not in parts and "" not in parts
    assert parts[0] in ("pbx-backup.json", "pbx.sqlite3", "recordings", "voicemail")
    assert not name.startswith("/") and "\\" not in name


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=5), max_size=5),
       st.sampled_from(["sim", "sip_trunk", "fxo_gateway"]))
def test_strip_kind(errors: dict[str, str], kind: str) -> None:
    out = strip_kind(errors, kind)
    for path, message in errors.items():
        stripped = "" if path == kind else path.removeprefix(kind + ".")
        assert message in out[stripped]
    assert len(out) <= len(errors)


@pytest.mark.parametrize("raw, page", [("3", 3), ("0", 1), ("-2", 1), ("9999999", 1), ("", 1),
                                       ("²", 1), ("٣", 1)])
def test_page_number_examples(raw: str, page: int) -> None:
    assert page_number(raw) == page
