"""The typed configuration model: field rules, normalisation, cross-reference checks."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest

from appliance.config import BoxConfig, ConfigError, Destination
from appliance.config.model import Device, Employee
from appliance.config.types import (
    compile_dial_pattern,
    normalize_extension,
    normalize_period,
    normalize_phone,
    normalize_time_zone,
    sip_ha1,
)
from appliance.config.yamlio import parse_config, parse_model, parse_yaml

DEMO = Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml"


def base() -> dict[str, Any]:
    """A small valid configuration to break in each test."""
    return {
        "version": 1,
        "box": {"name": "Test", "time_zone": "Europe/Moscow"},
        "employees": [
            {"extension": "101", "name": "Иван", "devices": [
                {"username": "101", "password": "correct-horse-1"}]},
            {"extension": "102", "name": "Мария"},
            {"extension": "103", "name": "Олег"},
        ],
        "departments": [{"key": "sales", "name": "Продажи", "extension": "500",
                         "members": ["101", "102"]}],
        "lines": [{"key": "sim1", "kind": "sim", "simulated": True}],
        "schedules": [{"key": "office", "hours": {"mon": ["09:00-18:00"]}}],
        "voicemail_boxes": [{"key": "general", "name": "Общий"}],
        "flows": [{"key": "main", "schedule": "office", "branches": [
            {"when": "open", "to": {"department": "sales"}},
            {"when": "closed", "to": {"voicemail": "general"}}]}],
        "numbers": [{"number": "+7 495 123-45-67", "line": "sim1", "flow": "main"}],
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


# -- normalisers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("+7 (916) 123-45-67", "+79161234567"),
    ("8 916 123 45 67", "+79161234567"),
    ("89161234567", "+79161234567"),
    ("79161234567", "+79161234567"),
    ("9161234567", "+79161234567"),
    ("8 (495) 123-45-67", "+74951234567"),
    (89161234567, "+79161234567"),
    ("+44 20 7946 0958", "+442079460958"),
    ("00 49 30 1234567", "+49301234567"),
    ("8-10-49-30-1234567", "+49301234567"),
])
def test_phone_numbers_are_normalised(raw: object, expected: str) -> None:
    assert normalize_phone(raw) == expected
    assert normalize_phone(expected) == expected


@pytest.mark.parametrize("raw", [
    "", "12345", "abc", "+7 916 123", "+7916123456789", "+0123456789", "891612345",
    "+", "++79161234567", True, None, 1.5, "８９１６１２３４５６７", "+7 916 12x 45 67",
])
def test_bad_phone_numbers_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_extensions() -> None:
    assert normalize_extension(101) == "101"
    assert normalize_extension(" 5000 ") == "5000"
    for bad in ("1", "1234567", "10a", True, "１０１", None, "-10"):
        with pytest.raises(ValueError):
            normalize_extension(bad)


def test_time_zones() -> None:
    assert normalize_time_zone("Europe/Moscow") == "Europe/Moscow"
    assert normalize_time_zone("UTC") == "UTC"
    for bad in ("Mars/Olympus", "../../etc/passwd", "localtime", "", "Europe/", "MSK", 3):
        with pytest.raises(ValueError):
            normalize_time_zone(bad)


def test_opening_hours() -> None:
    assert normalize_period("9:00-18:00") == "09:00-18:00"
    assert normalize_period("22:00 - 06:00") == "22:00-06:00"  # crosses midnight
    assert normalize_period("00:00-24:00") == "00:00-24:00"
    for bad in ("25:00-26:00", "09:00-09:00", "9-18", "09:60-10:00", "24:00-10:00",
                "10:00-24:30", 540):
        with pytest.raises(ValueError):
            normalize_period(bad)


def test_dial_patterns() -> None:
    mobile = compile_dial_pattern("+79XXXXXXXXX")
    assert mobile.fullmatch("+79161234567")
    assert not mobile.fullmatch("+74951234567")
    assert compile_dial_pattern("8N.").fullmatch("8495123")
    assert compile_dial_pattern("1[0-2]Z").fullmatch("112")
    assert not compile_dial_pattern("1[0-2]Z").fullmatch("130")
    assert compile_dial_pattern("*100#").fullmatch("*100#")
    assert compile_dial_pattern("0!").fullmatch("0")
    for bad in ("", "abc", "[5-1]", "[]", "1[2", "+", "X" * 65, "12.3"):
        with pytest.raises(ValueError):
            compile_dial_pattern(bad)


# -- destinations ------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "kind", "target", "line"), [
    ({"department": "sales"}, "department", "sales", None),
    ({"employee": 101}, "employee", "101", None),
    ({"menu": "main"}, "voice_menu", "main", None),
    ({"external": "8 916 123-45-67", "line": "sim1"}, "external", "+79161234567", "sim1"),
    ("hangup", "hangup", None, None),
    ("callback", "callback", None, None),
    ("department:sales", "department", "sales", None),
    ("sip:reception@10.0.0.5", "sip_uri", "sip:reception@10.0.0.5", None),
    ({"kind": "queue", "target": "support"}, "queue", "support", None),
    ({"fax": "fax@example.ru"}, "fax", "fax@example.ru", None),
    ("fax", "fax", None, None),
])
def test_destination_forms(written: Any, kind: str, target: str | None, line: str | None) -> None:
    dest = Destination.model_validate(written)
    assert (dest.kind, dest.target, dest.line) == (kind, target, line)
    again = Destination.model_validate(dest.model_dump())
    assert again == dest


@pytest.mark.parametrize("written", [
    {"department": "sales", "queue": "x"}, {}, {"line": "sim1"}, {"hangup": "now"},
    {"department": "Sales Team"}, {"employee": "1"}, {"queue": "q", "line": "sim1"},
    {"external": "123"}, {"sip_uri": "http://x"}, "nowhere", {"department": None}, 42,
    {"department": "sales", "extra": 1},
])
def test_bad_destinations(written: Any) -> None:
    with pytest.raises(ConfigError):
        parse_model(Destination, written)


# -- devices and passwords ---------------------------------------------------------------------

def test_device_password_becomes_digests() -> None:
    cfg = parse_config(base())
    device = cfg.employees[0].devices[0]
    assert device.password is None
    assert device.realm == "office-pbx"
    assert device.ha1_md5 == hashlib.md5(b"101:office-pbx:correct-horse-1").hexdigest()
    assert device.ha1_sha256 == hashlib.sha256(b"101:office-pbx:correct-horse-1").hexdigest()
    assert device.ha1_md5 == sip_ha1("101", "office-pbx", "correct-horse-1")
    dumped = repr(cfg.model_dump()) + cfg.model_dump_json()
    assert "correct-horse-1" not in dumped


@pytest.mark.parametrize(("device", "message"), [
    ({"username": "101", "password": "short"}, "at least 8"),
    ({"username": "101", "password": "my-101-password"}, "user name"),
    ({"username": "101", "password": "пароль-на-русском"}, "latin"),
    ({"username": "101"}, "needs a `password`"),
    ({"username": "101", "password": "correct-horse-1", "ha1_md5": "0" * 32}, "either"),
    ({"username": "101", "ha1_md5": "0" * 32, "ha1_sha256": "a" * 64}, "go together"),
    ({"username": "101", "ha1_md5": "xyz", "ha1_sha256": "a" * 64, "realm": "r"}, "hexadecimal"),
    ({"username": "user name", "password": "correct-horse-1"}, "latin letters"),
    ({"username": "101", "password": "correct-horse-1", "codecs": ["pcma", "pcma"]}, "twice"),
    ({"username": "101", "password": "correct-horse-1", "codecs": ["g729"]}, "should be"),
    ({"username": "101", "static_contact": "101@10.0.0.1"}, "SIP URI"),
])
def test_bad_devices(device: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model(Device, device)


def test_static_contact_device_needs_no_password() -> None:
    device = parse_model(Device, {"username": "103", "static_contact": "sip:103@10.0.0.3:5060"})
    assert device.ha1_md5 is None


def test_digest_realm_must_match_the_box() -> None:
    data = base()
    data["employees"][0]["devices"] = [
        {"username": "101", "realm": "other", "ha1_md5": "0" * 32, "ha1_sha256": "a" * 64}]
    assert problems(data) == [
        "employees[0].devices[0].realm: the digests were made for realm 'other' but the box "
        "realm is 'office-pbx': the phone could not log in; give the `password` again"]


# -- whole-configuration checks ----------------------------------------------------------------

def test_base_and_demo_are_valid() -> None:
    assert parse_config(base()).numbers[0].number == "+74951234567"
    demo = parse_yaml(DEMO.read_text(encoding="utf-8"))
    assert demo.box.time_zone == "Europe/Moscow"
    assert [e.extension for e in demo.employees] == ["101", "102", "103", "104", "105"]
    assert any(d.static_contact for e in demo.employees for d in e.devices)
    assert [line.kind for line in demo.lines] == ["sim", "sip_trunk"]
    assert demo.lines[0].simulated  # type: ignore[union-attr]
    assert demo.departments[0].extension == "500"
    assert demo.blacklist and demo.voice_menus and demo.schedules


def test_demo_passwords_are_demo_only() -> None:
    import yaml

    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    passwords = [d["password"] for e in raw["employees"] for d in e.get("devices", [])
                 if "password" in d]
    assert passwords and all(p.startswith("demo-only-") for p in passwords)


def test_unknown_department_member() -> None:
    data = base()
    data["departments"][0]["members"] = ["101", "102", "105"]
    assert problems(data) == ["departments[0].members[2]: no employee with extension 105"]


def test_extensions_are_unique_across_entities() -> None:
    data = base()
    data["departments"][0]["extension"] = "101"
    data["voicemail_boxes"][0]["extension"] = "500"
    data["voice_menus"] = [{"key": "m", "extension": "500", "default": "hangup"}]
    data["employees"].append({"extension": "102", "name": "Дубль"})
    assert problems(data) == [
        "employees[3].extension: '102' is already used by employees[1]",
        "departments[0].extension: 101 is already used by employee Иван",
        "voicemail_boxes[0].extension: 500 is already used by voice menu 'm'",
    ]


def test_references_must_resolve() -> None:
    data = base()
    data["flows"][0]["branches"][0]["to"] = {"voice_menu": "mian"}
    data["flows"][0]["branches"][1]["greeting"] = "closed"
    data["numbers"][0]["line"] = "sim9"
    data["numbers"][0]["flow"] = "night"
    data["flows"][0]["schedule"] = "ofice"
    assert problems(data) == [
        "numbers[0].line: no line 'sim9'",
        "numbers[0].flow: no call flow 'night'",
        "flows[0].schedule: no schedule 'ofice'",
        "flows[0].branches[0].to: no voice menu 'mian'",
        "flows[0].branches[1].greeting: no prompt 'closed'",
    ]


def test_many_problems_are_reported_together() -> None:
    data = base()
    data["employees"][1]["extension"] = "1"
    data["employees"][2]["mobiles"] = ["12"]
    data["lines"][0]["kind"] = "gsm"
    data["blacklist"] = [{"number": "+79990000000", "reason": " "}, {"number": "+79990000001"}]
    data["emploees"] = []
    found = problems(data)
    assert "employees[1].extension: an extension is 2-6 digits, got '1'" in found
    assert any(p.startswith("employees[2].mobiles[0]: '12' is not a full phone number")
               for p in found)
    assert any(p.startswith("lines[0]: unknown kind") for p in found)
    assert "blacklist[0].reason: a reason is mandatory: say why this number is blocked" in found
    assert "blacklist[1].reason: required, but missing" in found
    assert "emploees: unknown field (check the spelling; see docs/config.md)" in found


def test_line_errors_have_plain_paths() -> None:
    data = base()
    data["lines"][0]["imei"] = "123"
    data["lines"].append({"key": "t", "kind": "sip_trunk"})
    assert problems(data) == ["lines[0].imei: an IMEI is 15 digits",
                              "lines[1].host: required, but missing"]


def test_chains_end_somewhere() -> None:
    data = base()
    data["forwarding_chains"] = [{"key": "duty", "steps": [{"to": {"employee": "101"}}]}]
    assert problems(data) == ["forwarding_chains[0].final: required, but missing"]
    data["forwarding_chains"][0]["final"] = "hangup"
    assert problems(data)[0].startswith("forwarding_chains[0].final: a chain must end where")
    data["forwarding_chains"][0]["final"] = {"voicemail": "general"}
    data["forwarding_chains"][0]["steps"].append({"to": {"voicemail": "general"}})
    assert problems(data)[0].startswith("forwarding_chains[0].steps[1].to: a step rings")


def test_flows_cover_open_and_closed_hours() -> None:
    data = base()
    data["flows"][0]["branches"].pop()
    assert problems(data) == [
        "flows[0]: calls must go somewhere both in and out of hours: add 'open' and 'closed' "
        "branches, or an 'always' branch"]
    data["flows"][0]["branches"] = [{"when": "always", "to": "hangup"},
                                    {"when": "backup", "to": "hangup"}]
    assert "must be the last" in problems(data)[0]
    data["flows"][0]["schedule"] = None
    data["flows"][0]["branches"] = [{"when": "open", "to": "hangup"},
                                    {"when": "closed", "to": "hangup"}]
    assert "need a `schedule`" in problems(data)[0]


def test_endless_loops_are_refused() -> None:
    data = base()
    data["flows"].append({"key": "night", "branches": [{"to": {"chain": "duty"}}]})
    data["forwarding_chains"] = [{"key": "duty", "steps": [{"to": {"employee": "101"}}],
                                  "final": {"flow": "night"}}]
    found = problems(data)
    assert len(found) == 1
    assert "loop forever" in found[0]
    assert "call flow 'night' -> forwarding chain 'duty' -> call flow 'night'" in found[0]


def test_menu_parent_loop() -> None:
    data = base()
    data["voice_menus"] = [
        {"key": "a", "parent": "b", "default": "hangup", "keys": {1: {"voice_menu": "b"}}},
        {"key": "b", "parent": "a", "default": "hangup", "keys": {"*": {"voice_menu": "a"}}},
    ]
    assert problems(data) == ["voice_menus[0].parent: menus are each other's parents (a loop)",
                              "voice_menus[1].parent: menus are each other's parents (a loop)"]


def test_menu_keys_from_yaml_integers() -> None:
    data = base()
    data["voice_menus"] = [{"key": "m", "default": "hangup",
                            "keys": {1: {"department": "sales"}, "#": "callback"}}]
    cfg = parse_config(data)
    assert set(cfg.voice_menus[0].keys) == {"1", "#"}
    data["voice_menus"][0]["keys"] = {"10": "hangup"}
    assert "keys" in problems(data)[0]


def test_schedules() -> None:
    data = base()
    data["schedules"][0]["hours"] = {"mon": ["09:00-13:00", "12:00-18:00"],
                                     "sun": ["22:00-02:00"], "tue": ["01:00-03:00"]}
    data["schedules"][0]["dates"] = [{"date": "2026-12-31"}, {"date": "2026-12-31"}]
    assert problems(data) == [
        "schedules[0].hours.mon[1]: overlaps schedules[0].hours.mon[0]",
        "schedules[0].dates[1].date: 2026-12-31 is listed twice",
    ]
    data["schedules"][0]["hours"] = {"sun": ["22:00-02:00"], "mon": ["01:00-03:00"]}
    data["schedules"][0]["dates"] = []
    assert problems(data) == ["schedules[0].hours.mon[0]: overlaps schedules[0].hours.sun[0]"]
    data["schedules"][0]["hours"] = {"sun": ["22:00-02:00"], "mon": ["09:00-18:00"]}
    cfg = parse_config(data)
    assert cfg.schedules[0].hours["sun"] == ["22:00-02:00"]
    data["schedules"][0]["time_zone"] = "Moscow"
    assert problems(data)[0].startswith("schedules[0].time_zone: 'Moscow' is not a time zone")
    data["schedules"][0]["time_zone"] = "Europe/Moscow"
    data["schedules"][0]["hours"] = {"monday": ["09:00-18:00"]}
    assert problems(data)[0].startswith("schedules[0].hours.monday")
    data["schedules"][0]["hours"] = {"mon": [900]}
    assert "quoted text" in problems(data)[0]
    data["schedules"][0]["hours"] = {}
    data["schedules"][0]["dates"] = [{"date": "2026-02-30"}]
    assert "not a date" in problems(data)[0]


def test_notifications_need_their_transport() -> None:
    data = base()
    data["notifications"] = {"rules": [
        {"event": "missed_call", "channel": "sms", "to": ["8 916 123-45-67"]},
        {"event": "voicemail", "channel": "email", "to": ["boss@example.ru"]}]}
    assert problems(data) == ["notifications.sms_line: SMS rules need an `sms_line`",
                              "notifications.smtp: e-mail rules need `smtp` settings"]
    data["notifications"]["sms_line"] = "sim1"
    data["notifications"]["smtp"] = {"host": "smtp.example.ru", "from_address": "pbx@example.ru"}
    cfg = parse_config(data)
    assert cfg.notifications.rules[0].to == ["+79161234567"]
    data["notifications"]["rules"][1]["to"] = ["not-an-address"]
    assert "not an e-mail address" in problems(data)[0]


def test_repeat_caller_and_routes() -> None:
    data = base()
    data["repeat_caller"] = {"enabled": True, "sources": ["crm:amo", "call_history"],
                             "exceptions": ["109"], "default": {"department": "sales"}}
    data["outbound_routes"] = [{"key": "mob", "pattern": "+79X.", "route_class": "mobile",
                                "lines": ["sim1", "trunk"]}]
    data["caller_id_rules"] = [{"mode": "fixed"}, {"mode": "line_number", "route": "x"}]
    found = problems(data)
    assert "caller_id_rules[0]: `number` is given exactly when mode is 'fixed'" in found
    data["caller_id_rules"] = [{"mode": "line_number", "route": "x"}]
    assert problems(data) == [
        "repeat_caller.sources[0]: no CRM connection 'amo'",
        "repeat_caller.exceptions[0]: no employee with extension 109",
        "outbound_routes[0].lines[1]: no line 'trunk'",
        "caller_id_rules[0].route: no outbound route 'x'",
    ]


def test_yaml_surprises_are_handled() -> None:
    text = """
version: 1
box: {name: Офис, country: NO, time_zone: Europe/Oslo}
employees:
  - {extension: 0101, name: Ноль, ring_mobile_after: never}
schedules:
  - key: s
    hours: {mon: [09:00-18:00]}
"""
    cfg = parse_yaml(text)
    assert cfg.box.country == "NO"
    assert cfg.employees[0].extension == "0101"
    assert cfg.employees[0].ring_mobile_after is None
    assert cfg.employees[0].model_dump()["ring_mobile_after"] == "never"


def test_single_entity_validation_for_the_api() -> None:
    employee = parse_model(Employee, {"extension": "110", "name": "Новый"})
    assert employee.ring_mobile_after == 10
    assert "mobile" in employee.allowed_routes and "international" not in employee.allowed_routes
    with pytest.raises(ConfigError) as info:
        parse_model(Employee, {"extension": "x", "name": ""}, path="employees[4]")
    assert [p.path for p in info.value.problems] == ["employees[4].extension",
                                                    "employees[4].name"]


def test_version_is_required_and_must_be_known() -> None:
    data = base()
    del data["version"]
    assert problems(data) == ["version: required, but missing"]
    data["version"] = 2
    assert problems(data)[0].startswith("version: should be 1")
    with pytest.raises(ConfigError, match="mapping"):
        parse_config([1, 2])  # type: ignore[arg-type]


def test_parsing_does_not_modify_the_input() -> None:
    data = base()
    original = copy.deepcopy(data)
    parse_config(data)
    assert data == original


def test_config_roundtrips_through_plain_data() -> None:
    cfg = parse_yaml(DEMO.read_text(encoding="utf-8"))
    again = parse_config(cfg.model_dump(mode="json", exclude_none=True))
    assert isinstance(again, BoxConfig)
    assert again.model_dump() == cfg.model_dump()  # secrets are never dumped


def test_json_schema_for_the_api() -> None:
    schema = BoxConfig.model_json_schema()
    assert "employees" in schema["properties"]
    assert "password" in schema["$defs"]["Device"]["properties"]  # accepted on input ...
    output = BoxConfig.model_json_schema(mode="serialization")
    assert "password" not in output["$defs"]["Device"]["properties"]  # ... never shown
