"""An office with SIMs of three operators, a SIP trunk and an FXO gateway, for outbound
routing tests: YAML in, a snapshot out, and line states."""

from __future__ import annotations

from typing import Any

import yaml

from appliance.config.yamlio import parse_config
from appliance.routing.snapshot import Snapshot, snapshot_from_config

OFFICE = """
version: 1
box: {country: RU, area_code: "495"}
employees:
  - {extension: "101", name: Anna, confirm_mobile: true, ring_mobile_after: 5,
     mobiles: ["+7 903 111-01-01", "+7 926 111-01-01"],
     devices: [{username: "101", password: Kx7-phone-pw-1}]}
  - {extension: "102", name: Boris, allowed_routes: [internal],
     mobiles: ["+7 916 111-01-02"], ring_mobile_after: never,
     devices: [{username: "102", password: Kx7-phone-pw-2}]}
  - {extension: "103", name: Vera,
     allowed_routes: [internal, local, mobile, long_distance, international, premium, service],
     mobiles: ["+44 20 7123 4567"], ring_mobile_after: 0,
     devices: [{username: "103", password: Kx7-phone-pw-3}]}
  - {extension: "104", name: Gleb, allowed_routes: [internal, local, service],
     devices: [{username: "104", password: Kx7-phone-pw-4}]}
  - {extension: "105", name: Gone, enabled: false,
     devices: [{username: "105", password: Kx7-phone-pw-5}]}
lines:
  - {key: sim-mts, kind: sim, simulated: true, operator: МТС, cost_per_minute: 1.5}
  - {key: sim-mega, kind: sim, simulated: true, operator: MegaFon, cost_per_minute: 1.0}
  - {key: sim-bee, kind: sim, simulated: true, operator: Билайн, cost_per_minute: 2.0}
  - {key: trunk, kind: sip_trunk, host: sip.example.net, channels: 2, cost_per_minute: 0.5}
  - {key: fxo, kind: fxo_gateway, username: fxo1, options: {dial_format: national}}
  - {key: sim-off, kind: sim, simulated: true, enabled: false}
numbers:
  - {number: "+7 495 555-00-01", line: trunk, region: "495", flow: main}
  - {number: "+7 812 555-00-01", line: trunk, region: "812", flow: main}
  - {number: "+7 926 555-00-02", line: sim-mega, flow: main}
  - {number: "+7 903 555-00-03", line: sim-bee, flow: main}
flows:
  - {key: main, branches: [{to: hangup}]}
outbound_routes:
  - {key: old, pattern: "+7XXXXXXXXXX", route_class: long_distance, lines: [trunk],
     enabled: false}
  - {key: emergency, pattern: "1XX", route_class: emergency, lines: [sim-mts, trunk]}
  - {key: mobile, pattern: "+79XXXXXXXXX", route_class: mobile, line_choice: same_operator,
     lines: [sim-mts, sim-mega, sim-bee, trunk]}
  - {key: moscow, pattern: "+7495XXXXXXX", route_class: local, line_choice: least_cost,
     lines: [sim-mts, sim-mega, trunk]}
  - {key: premium, pattern: "+780[39]XXXXXXX", route_class: premium, lines: [trunk]}
  - {key: free, pattern: "+7800XXXXXXX", route_class: service, lines: [trunk, sim-mts]}
  - {key: spb, pattern: "+7812XXXXXXX", route_class: long_distance, strip: 2, prepend: "8",
     lines: [trunk, sim-mts]}
  - {key: russia, pattern: "+7XXXXXXXXXX", route_class: long_distance,
     line_choice: round_robin, lines: [sim-mts, sim-mega, sim-bee]}
  - {key: short, pattern: "0XX!", route_class: service, lines: [sim-mts, sim-mega]}
  - {key: world, pattern: "+X.", route_class: international, lines: [trunk, sim-mts],
     failover: false}
  - {key: exit9, pattern: "9X.", route_class: long_distance, strip: 1, lines: [fxo]}
caller_id_rules:
  - {route: world, mode: withheld}
  - {route: spb, mode: callee_region}
  - {route: premium, mode: fixed, number: "+7 495 555-00-09"}
  - {pattern: "+7495XXXXXXX", mode: previous_contact}
  - {mode: line_number}
"""

ALL_UP: dict[str, dict[str, Any]] = {
    "sim-mts": {"up": True, "busy": False, "signal": 20},
    "sim-mega": {"up": True, "busy": False, "signal": 25},
    "sim-bee": {"up": True, "busy": False, "signal": 18},
    "trunk": {"up": True, "free_channels": 2, "registered": True},
    "fxo": {"up": True, "free_channels": 1},
    "sim-off": {"up": True, "signal": 20},
}


def config(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The office as plain data, with top-level sections replaced by `changes`."""
    data: dict[str, Any] = yaml.safe_load(OFFICE)
    changes = changes or {}
    data.update(changes)
    if "outbound_routes" in changes and "caller_id_rules" not in changes:
        # Rules naming routes that are gone would be refused by the configuration check.
        keys = {r["key"] for r in changes["outbound_routes"]}
        data["caller_id_rules"] = [r for r in data["caller_id_rules"]
                                   if r.get("route") in (None, *keys)]
    return data


def snapshot(changes: dict[str, Any] | None = None) -> Snapshot:
    """The office's snapshot."""
    return snapshot_from_config(parse_config(config(changes)), years=[2026])


def status(**lines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every line up, with the given lines' states replaced (sim_mts= for 'sim-mts')."""
    out = {key: dict(value) for key, value in ALL_UP.items()}
    out.update({key.replace("_", "-"): value for key, value in lines.items()})
    return out
