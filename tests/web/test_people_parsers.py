"""The people areas' small parsers, fuzzed: destinations, page numbers, hosts, LIKE patterns."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from webui.areas._people import hostname, like, page_number
from webui.destination import destination_parts

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=3),
    max_leaves=8)


@given(VALUES)
def test_destination_parts_never_raises(value: object) -> None:
    parts = destination_parts(value)
    assert len(parts) == 3 and all(isinstance(p, str) for p in parts)


@given(st.one_of(st.none(), st.text(max_size=30)))
def test_page_number_is_always_in_range(raw: str | None) -> None:
    assert 1 <= page_number(raw) <= 100_000


@given(st.text(max_size=60))
def test_hostname_drops_only_the_port(host: str) -> None:
    name = hostname(host)
    assert isinstance(name, str) and len(name) <= len(host)
    assert hostname(f"{name}:8443") == name or ":" in name or name.startswith("[")


def test_hostname_examples() -> None:
    assert hostname("pbx.local:8443") == "pbx.local"
    assert hostname("[fd00::1]:443") == "fd00::1"
    assert hostname("192.168.1.10") == "192.168.1.10"


# SQLite ends a string compared by LIKE at its first NUL, and no admin types one.
_NO_NUL = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


@given(st.text(_NO_NUL, max_size=20), st.text(_NO_NUL, max_size=5),
       st.text(_NO_NUL, max_size=5))
def test_like_matches_the_text_literally(text: str, before: str, after: str) -> None:
    conn = sqlite3.connect(":memory:")
    match = conn.execute("SELECT ? LIKE ? ESCAPE '\\'",
                         (before + text + after, like(text))).fetchone()[0]
    assert match == 1
    # A wildcard typed by the admin does not match other text.
    if text and set(text) <= {"%", "_"}:
        assert conn.execute("SELECT ? LIKE ? ESCAPE '\\'", ("x" * 30, like(text))
                            ).fetchone()[0] == 0
