"""Property-based tests (hypothesis) for the YAML importer and the normalisers.

The importer must answer every input with either a configuration or a ConfigError: never
another exception, never a partial write; and whatever it accepts must round-trip.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import ConfigError, Destination
from appliance.config.safeyaml import load_yaml
from appliance.config.types import normalize_phone
from appliance.config.yamlio import export_yaml, import_yaml, parse_config, parse_yaml
from appliance.db import Database

DEMO_TEXT = (Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml"
             ).read_text(encoding="utf-8")
DEMO = yaml.safe_load(DEMO_TEXT)

# PBX_FUZZ_EXAMPLES=5000 for a long run; no example database is written (database=None),
# so the tests leave nothing behind in the work tree.
FUZZ = settings(max_examples=int(os.environ.get("PBX_FUZZ_EXAMPLES", "150")), deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    import_yaml(database, DEMO_TEXT)
    yield database
    database.close()


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.sampled_from(["101", "sales", "+79161234567", "8 916 123-45-67", "09:00-18:00",
                     "hangup", "sim1", "Europe/Moscow", "open", "department:sales", "", " ",
                     "2026-01-01", "never", "*", "#", "sip:101@10.0.0.1"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += _paths(child, (*prefix, i))
    return out


def _mutate(data: dict[str, Any], rnd: random.Random, value: Any, count: int) -> dict[str, Any]:
    """Replace, delete or duplicate a few randomly chosen places in a copy of `data`."""
    data = copy.deepcopy(data)
    for _ in range(count):
        paths = [p for p in _paths(data) if p]
        path = rnd.choice(paths)
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = rnd.choice(["replace", "delete", "duplicate"])
        if action == "replace":
            parent[last] = copy.deepcopy(value)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        else:
            parent[last] = copy.deepcopy(value)
    return data


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_is_a_config_or_a_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_yaml(text)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_config_or_a_config_error(raw: bytes) -> None:
    with contextlib.suppress(ConfigError):
        parse_yaml(raw)


@FUZZ
@given(values)
def test_arbitrary_structures_are_a_config_or_a_config_error(value: Any) -> None:
    for document in (value, {"version": 1, "employees": value}, {"version": 1, "box": value}):
        try:
            parse_config(document)
        except ConfigError as exc:
            assert exc.problems and all(str(p) for p in exc.problems)


@FUZZ
@given(st.randoms(use_true_random=False), values, st.integers(1, 3))
def test_mutated_demo_imports_atomically_and_round_trips(
        db: Database, rnd: random.Random, value: Any, count: int) -> None:
    before = export_yaml(db)
    mutated = _mutate(DEMO, rnd, value, count)
    text = yaml.safe_dump(mutated, allow_unicode=True)
    try:
        import_yaml(db, text)
    except ConfigError:
        assert export_yaml(db) == before  # nothing written
        return
    exported = export_yaml(db)
    assert str(import_yaml(db, exported)) == "no changes"
    assert export_yaml(db) == exported
    assert db.integrity_check() == []
    import_yaml(db, DEMO_TEXT)  # back to the known state for the next example


yaml_fragments = st.lists(st.sampled_from([
    "version: 1\n", "employees:\n", "  - ", "{", "}", "[", "]", "&a ", "*a", "!!str ", "!!int ",
    "!foo ", "? ", ": ", "- ", "'", '"', "#", "\n", "  ", "extension: 101", "name: x", ",",
    "|\n  text\n", ">\n", "%YAML 1.2\n---\n", "---\n", "...\n", "<<: *a\n", "\t", "\\u0000",
]), max_size=40).map("".join)


@FUZZ
@given(yaml_fragments)
def test_yaml_shaped_noise_is_handled(text: str) -> None:
    try:
        load_yaml(text)
        parse_yaml(text)
    except ConfigError:
        pass


@FUZZ
@given(st.text(alphabet="0123456789+-() 8", max_size=20))
def test_phone_normalisation_is_idempotent(raw: str) -> None:
    try:
        number = normalize_phone(raw)
    except ValueError:
        return
    assert number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16
    assert normalize_phone(number) == number


destinations = st.one_of(
    st.builds(lambda k, t: {k: t},
              st.sampled_from(["department", "voice_menu", "queue", "voicemail", "flow", "chain",
                               "webhook"]),
              st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)),
    st.builds(lambda t: {"employee": t}, st.from_regex(r"[0-9]{2,6}", fullmatch=True)),
    st.builds(lambda t: {"external": t}, st.from_regex(r"\+79[0-9]{9}", fullmatch=True)),
    st.sampled_from(["hangup", "callback", "fax"]),
)


@FUZZ
@given(destinations)
def test_destinations_round_trip(written: Any) -> None:
    dest = Destination.model_validate(written)
    assert Destination.model_validate(dest.model_dump()) == dest
    assert Destination.model_validate(str(dest)) == dest
