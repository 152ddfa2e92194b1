"""Outbound configuration: the checks on routes, emergency routes, caller ID rules and line
options, and area_code / confirm_mobile / permissions through the database into a snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config import ConfigError
from appliance.config.yamlio import export_yaml, import_yaml, parse_config
from appliance.db import Database
from appliance.routing.outbound import plan_outbound
from appliance.routing.snapshot import load_snapshot
from tests.support.outbound import OFFICE, config, status
from tests.support.routing import OPEN


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def route(**fields: Any) -> dict[str, Any]:
    return {"key": "r", "pattern": "9.", "route_class": "long_distance", "lines": ["trunk"],
            **fields}


def test_the_office_is_fine() -> None:
    parse_config(config())


def test_route_lines_must_exist() -> None:
    data = config({"outbound_routes": [route(lines=["trunk", "sim-9"])]})
    assert problems(data) == ["outbound_routes[0].lines[1]: no line 'sim-9'"]


def test_bad_patterns_are_refused_by_the_model() -> None:
    assert any("unexpected 'A'" in p
               for p in problems(config({"outbound_routes": [route(pattern="9A.")]})))


@pytest.mark.parametrize(("pattern", "strip", "ok"), [
    ("9.", 1, True), ("9.", 2, False), ("+7XXXXXXXXXX", 2, True),
    ("112", 3, False), ("112", 2, True), ("81[0-9]X.", 4, True), ("81[0-9]X.", 5, False),
])
def test_strip_longer_than_the_pattern(pattern: str, strip: int, ok: bool) -> None:
    data = config({"outbound_routes": [route(pattern=pattern, strip=strip)]})
    if ok:
        parse_config(data)
    else:
        assert problems(data) == [
            f"outbound_routes[0].strip: strips {strip} characters but pattern {pattern!r} "
            f"fixes only {strip - 1 if pattern.endswith('.') else len(pattern)}: the stripped "
            f"part would be digits of the number itself, or all of it"]


def test_emergency_routes_must_reach_an_emergency_number_and_stay_usable() -> None:
    data = config({"outbound_routes": [route(key="e", pattern="8.", route_class="emergency")]})
    assert problems(data) == ["outbound_routes[0].pattern: an emergency route whose pattern "
                              "matches no emergency number (01, 02, 03, 04, 101, 102, 103, "
                              "104, 112, 911)"]
    data = config({"outbound_routes": [route(key="e", pattern="1XX", route_class="emergency",
                                             enabled=False)]})
    assert problems(data) == ["outbound_routes[0].enabled: an emergency route cannot be "
                              "disabled (remove it instead: emergency calls then go out "
                              "through any line)"]
    data = config({"outbound_routes": [route(key="e", pattern="112", route_class="emergency",
                                             lines=["sim-off"])]})
    assert problems(data) == ["outbound_routes[0].lines: every line of this emergency route "
                              "is disabled"]


def test_112_cannot_be_an_extension() -> None:
    data = config()
    data["employees"].append({"extension": "112", "name": "Oops"})
    assert problems(data) == ["employees[5].extension: 112 is an emergency number: dialling "
                              "it must reach emergency services, not a desk phone"]


def test_dial_format_option_and_callee_region_rule() -> None:
    data = config()
    data["lines"][3]["options"] = {"dial_format": "international"}
    for number in data["numbers"]:
        number.pop("region", None)
    assert problems(data) == [
        "lines[3].options.dial_format: 'international': use one of e164, national, as_dialled",
        "caller_id_rules[1].mode: 'callee_region' needs numbers with a `region` (their area "
        "code)"]


# -- through the database ---------------------------------------------------------------------

@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "pbx.db")
    yield database
    database.close()


def test_area_code_confirm_mobile_and_permissions_round_trip(db: Database) -> None:
    import_yaml(db, OFFICE)
    exported = export_yaml(db)
    data = yaml.safe_load(exported)
    assert data["box"]["area_code"] == "495"
    anna, boris = data["employees"][0], data["employees"][1]
    assert anna["confirm_mobile"] is True and boris["confirm_mobile"] is False
    assert boris["allowed_routes"] == ["internal"]
    # 'never' used to vanish from exports (and come back as the default, 10 s).
    assert boris["ring_mobile_after"] == "never"
    assert str(import_yaml(db, exported)) == "no changes"
    snap = load_snapshot(db.read().conn, now=OPEN)
    assert snap.area_code == "495" and snap.employees["101"].confirm_mobile
    assert [r.key for r in snap.outbound_routes][:3] == ["old", "emergency", "mobile"]
    assert snap.lines["fxo"].dial_format == "national"
    # The loaded snapshot routes like the one built from YAML: a local number in 495.
    plan = plan_outbound("123-45-67", "101", snap, status())
    assert plan.route == "moscow" and plan.number.e164 == "+74951234567"
    refused = plan_outbound("8 926 123-45-67", "102", snap, status())
    assert refused.kind == "refused" and refused.sip_code == 403


def test_no_area_code_is_no_area_code(db: Database) -> None:
    data = config()
    data["box"] = {"country": "RU"}
    import_yaml(db, yaml.safe_dump(data, allow_unicode=True))
    assert "area_code" not in yaml.safe_load(export_yaml(db))["box"]
    snap = load_snapshot(db.read().conn, now=OPEN)
    assert snap.area_code is None
    assert plan_outbound("123-45-67", "101", snap, status()).kind == "no_route"
