"""Configurations where a call could end nowhere or loop are refused at import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.config import ConfigError
from appliance.config.yamlio import parse_config, parse_yaml
from tests.support.routing import config

DEMO = Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml"


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def test_the_test_office_and_the_demo_are_fine() -> None:
    parse_config(config())
    parse_yaml(DEMO.read_text(encoding="utf-8"))


def test_department_with_nobody_to_ring_and_no_overflow() -> None:
    data = config()
    data["departments"].append({"key": "empty", "name": "Empty", "members": ["106"]})
    data["departments"][-1]["members"] = []
    data["flows"][1]["branches"] = [{"to": {"department": "empty"}}]
    assert problems(data) == [
        "flows[1].branches[0].to: calls sent here would end nowhere: department 'empty' has "
        "nobody to ring and no overflow"]
    # As a chain step it is fine: the chain's next step follows.
    data["flows"][1]["branches"] = [{"to": {"chain": "duty"}}]
    data["forwarding_chains"][0]["steps"].insert(0, {"to": {"department": "empty"}})
    parse_config(data)
    # With an overflow that takes the call it is fine too.
    data["departments"][-1]["overflow"] = {"voicemail": "general"}
    data["flows"][1]["branches"] = [{"to": {"department": "empty"}}]
    parse_config(data)


def test_overflow_into_a_dead_end_is_followed() -> None:
    data = config()
    data["employees"].append({"extension": "107", "name": "No phone yet"})
    data["departments"] += [
        {"key": "a", "name": "A", "members": ["107"], "overflow": {"department": "b"}},
        {"key": "b", "name": "B", "members": ["107"]},
    ]
    data["voice_menus"][0]["keys"]["5"] = {"department": "a"}
    found = problems(data)
    assert "voice_menus[0].keys['5']: calls sent here would end nowhere: department 'b' " \
           "has nobody to ring and no overflow" in found
    assert "departments[2].overflow: calls sent here would end nowhere: department 'b' " \
           "has nobody to ring and no overflow" in found


@pytest.mark.parametrize(("employee", "fine"), [
    ({"extension": "107", "name": "Nothing"}, False),
    ({"extension": "107", "name": "Mobile", "mobiles": ["+79160000107"]}, True),
    ({"extension": "107", "name": "Never", "mobiles": ["+79160000107"],
      "ring_mobile_after": "never"}, False),
    ({"extension": "107", "name": "Off", "enabled": False,
      "devices": [{"username": "107", "password": "Kx7-phone-pw-7"}]}, False),
])
def test_employee_destinations_must_ring_someone_or_have_voicemail(
        employee: dict[str, Any], fine: bool) -> None:
    data = config()
    data["employees"].append(employee)
    data["voice_menus"][0]["default"] = {"employee": "107"}
    if fine:
        parse_config(data)
        return
    assert problems(data) == [
        "voice_menus[0].default: calls sent here would end nowhere: employee 107 has no phone "
        "or mobile to ring and no voicemail box"]
    data["voicemail_boxes"].append({"key": "e107", "name": "107", "owner": "107"})
    parse_config(data)


def test_chains_referring_to_each_other_loop() -> None:
    data = config()
    data["forwarding_chains"] += [
        {"key": "a", "steps": [{"to": {"employee": "101"}}], "final": {"chain": "b"}},
        {"key": "b", "steps": [{"to": {"employee": "102"}}], "final": {"chain": "a"}},
    ]
    found = problems(data)
    assert len(found) == 1 and "loop forever" in found[0]
    assert "forwarding chain 'a' -> forwarding chain 'b' -> forwarding chain 'a'" in found[0]


def test_overflow_back_into_the_flow_loops() -> None:
    data = config()
    data["departments"][0]["overflow"] = {"flow": "main"}
    found = problems(data)
    assert len(found) == 1 and "loop forever" in found[0]


def test_menu_default_to_itself_and_parents_cycling() -> None:
    data = config()
    data["voice_menus"][1]["default"] = {"voice_menu": "support"}
    assert any("voice menu 'support' -> voice menu 'support'" in p for p in problems(data))
    data = config()
    data["voice_menus"][0]["parent"] = "support"
    assert problems(data) == [
        "voice_menus[0].parent: menus are each other's parents (a loop)",
        "voice_menus[1].parent: menus are each other's parents (a loop)"]
