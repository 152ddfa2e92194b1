"""Reading the configuration back out of the database as a BoxConfig (stable order)."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from ..db import Database
from .errors import ConfigError, Problem, problems_from_validation
from .model import BOX_SETTINGS, BoxConfig
from .store import dest_from_row
from .store import rows_of as _rows
from .types import WEEKDAYS

Names = dict[str, dict[int, str]]


_NAME_SOURCES = {
    "employee": ("employees", "extension"),
    "department": ("departments", "key"),
    "voice_menu": ("voice_menus", "key"),
    "queue": ("queues", "key"),
    "voicemail": ("voicemail_boxes", "key"),
    "flow": ("call_flows", "key"),
    "chain": ("forwarding_chains", "key"),
    "webhook": ("webhooks", "key"),
    "line": ("lines", "key"),
    "prompt": ("prompts", "key"),
    "schedule": ("schedules", "key"),
    "holiday_set": ("holiday_sets", "key"),
    "crm": ("crm_connections", "key"),
    "route": ("outbound_routes", "key"),
}


def read_config_data(conn: sqlite3.Connection) -> dict[str, Any]:
    """The stored configuration as plain data (BoxConfig input), in a stable order."""
    names: dict[str, dict[int, str]] = {
        kind: dict(conn.execute(f"SELECT id, {col} FROM {table}").fetchall())
        for kind, (table, col) in _NAME_SOURCES.items()
    }
    return read_sections(conn, names)


def export_config(db: Database) -> BoxConfig:
    """Read the whole configuration from the database (secrets left out)."""
    reader = db.read()
    conn = reader.conn
    conn.execute("BEGIN")  # one snapshot for all the queries
    try:
        data = read_config_data(conn)
    finally:
        conn.execute("ROLLBACK")
    try:
        return BoxConfig.model_validate(data, context={"from_database": True})
    except ValidationError as exc:
        raise ConfigError(
            [Problem("database: " + p.path, p.message) for p in problems_from_validation(exc)]
        ) from None


def _bool(value: int) -> bool:
    return bool(value)


def _group(rows: list[dict[str, Any]], key: str) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    return out


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def read_sections(conn: sqlite3.Connection, names: Names) -> dict[str, Any]:
    """Every section of the configuration as plain data."""
    settings = {k: json.loads(v) for k, v in
                conn.execute("SELECT key, value FROM box_settings").fetchall()}
    data: dict[str, Any] = {
        "version": 1,
        "box": {k: settings[k] for k in BOX_SETTINGS if settings.get(k) is not None},
        "prompts": [_drop_none({"key": r["key"], "name": r["name"], "file": r["path"],
                                "language": r["language"]})
                    for r in _rows(conn, "SELECT * FROM prompts ORDER BY key")],
        "employees": _employees(conn),
        "departments": _departments(conn, names),
        "lines": _lines(conn),
        "numbers": [_drop_none({
            "number": r["number"], "line": names["line"].get(r["line_id"]),
            "flow": names["flow"][r["flow_id"]], "label": r["label"],
            "ad_source": r["ad_source"], "region": r["region"], "recording": r["recording"],
            "repeat_caller": _bool(r["repeat_caller"]), "enabled": _bool(r["enabled"])})
            for r in _rows(conn, "SELECT * FROM numbers ORDER BY number")],
        "schedules": _schedules(conn, names),
        "holiday_sets": _holiday_sets(conn),
        "flows": _flows(conn, names),
        "forwarding_chains": _chains(conn, names),
        "voice_menus": _menus(conn, names),
        "queues": _queues(conn, names),
        "voicemail_boxes": [_drop_none({
            "key": r["key"], "name": r["name"], "extension": r["extension"],
            "owner": names["employee"].get(r["employee_id"]),
            "greeting": names["prompt"].get(r["greeting_prompt_id"]),
            "email": json.loads(r["notify_emails"]), "attach_audio": _bool(r["attach_audio"]),
            "max_message": r["max_message_s"], "language": r["language"]})
            for r in _rows(conn, "SELECT * FROM voicemail_boxes ORDER BY key")],
        "blacklist": [_drop_none({"number": r["number"], "reason": r["reason"],
                                  "added_by": r["added_by"]})
                      for r in _rows(conn, "SELECT * FROM blacklist ORDER BY number")],
        "repeat_caller": _repeat_caller(conn, names),
        "outbound_routes": _routes(conn, names),
        "caller_id_rules": [_drop_none({
            "pattern": r["pattern"], "route": names["route"].get(r["route_id"]),
            "mode": r["mode"], "number": r["number"]})
            for r in _rows(conn, "SELECT * FROM caller_id_rules ORDER BY position, id")],
        "crm": _crm(conn, names),
        "webhooks": [{"key": r["key"], "name": r["name"], "url": r["url"],
                      "events": json.loads(r["events"]), "enabled": _bool(r["enabled"]),
                      "timeout": r["timeout_s"]}
                     for r in _rows(conn, "SELECT * FROM webhooks ORDER BY key")],
        "notifications": _notifications(conn, names),
    }
    return data


def _employees(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    mobiles = _group(_rows(conn, "SELECT * FROM employee_mobiles ORDER BY position"),
                     "employee_id")
    routes = _group(_rows(conn, "SELECT * FROM employee_route_permissions"), "employee_id")
    devices = _group(_rows(conn, "SELECT * FROM devices ORDER BY username"), "employee_id")
    out = []
    for r in _rows(conn, "SELECT * FROM employees ORDER BY extension"):
        allowed = {x["route_class"] for x in routes[r["id"]]}
        out.append(_drop_none({
            "extension": r["extension"], "name": r["name"], "role": r["role"],
            "email": r["email"], "mobiles": [m["number"] for m in mobiles[r["id"]]],
            "devices": [_drop_none({
                "username": d["username"], "kind": d["kind"], "label": d["label"],
                "realm": d["realm"], "ha1_md5": d["ha1_md5"], "ha1_sha256": d["ha1_sha256"],
                "static_contact": d["static_contact"], "auth": d["auth"],
                "codecs": json.loads(d["codecs"]),
                "recording": d["recording"], "enabled": _bool(d["enabled"])})
                for d in devices[r["id"]]],
            "dnd": _bool(r["dnd"]), "ring_mobile_after": r["ring_mobile_after_s"],
            "no_answer_timeout": r["no_answer_timeout_s"],
            "call_waiting": _bool(r["call_waiting"]), "recording": r["recording"],
            # The model's order, so an export is stable whatever order rows were written in.
            "allowed_routes": [c for c in ("internal", "local", "mobile", "long_distance",
                                           "international", "emergency", "service", "premium")
                               if c in allowed],
            "confirm_mobile": _bool(r["confirm_mobile"]),
            "enabled": _bool(r["enabled"]), "daily_call_plan": r["daily_call_plan"]}))
        out[-1]["ring_mobile_after"] = r["ring_mobile_after_s"]
    return out


def _departments(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    members = _group(_rows(conn, "SELECT * FROM department_members ORDER BY position"),
                     "department_id")
    return [_drop_none({
        "key": r["key"], "name": r["name"], "extension": r["extension"],
        "strategy": r["strategy"],
        "members": [names["employee"][m["employee_id"]] for m in members[r["id"]]],
        "ring_delay": r["ring_delay_s"], "member_timeout": r["member_timeout_s"],
        "timeout": r["timeout_s"], "call_waiting": r["call_waiting"],
        "recording": r["recording"], "overflow": dest_from_row(r, "overflow", names)})
        for r in _rows(conn, "SELECT * FROM departments ORDER BY key")]


def _lines(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    out = []
    for r in _rows(conn, "SELECT * FROM lines ORDER BY key"):
        line: dict[str, Any] = {
            "key": r["key"], "kind": r["kind"], "name": r["name"],
            "enabled": _bool(r["enabled"]), "operator": r["operator"],
            "cost_per_minute": r["cost_per_minute"], "options": json.loads(r["options"]),
        }
        if r["kind"] == "sim":
            line.update(imei=r["sim_imei"], iccid=r["sim_iccid"], usb_path=r["sim_usb_path"],
                        simulated=_bool(r["sim_simulated"]), sms=_bool(r["sim_sms"]),
                        ussd_balance=r["sim_ussd_balance"])
        else:
            line.update(host=r["sip_host"], port=r["sip_port"], transport=r["sip_transport"],
                        username=r["sip_username"], registration=_bool(r["sip_register"]),
                        channels=r["channels"])
            if r["kind"] == "sip_trunk":
                line.update(auth_username=r["sip_auth_username"],
                            from_domain=r["sip_from_domain"],
                            outbound_proxy=r["sip_outbound_proxy"])
        out.append(_drop_none(line))
    return out


def _schedules(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    hours = _group(_rows(conn, "SELECT * FROM schedule_hours ORDER BY weekday, opens"),
                   "schedule_id")
    dates = _group(_rows(conn, "SELECT * FROM schedule_dates ORDER BY date, opens"),
                   "schedule_id")
    sets = _group(_rows(conn, "SELECT * FROM schedule_holiday_sets"), "schedule_id")
    out = []
    for r in _rows(conn, "SELECT * FROM schedules ORDER BY key"):
        week: dict[str, list[str]] = {}
        for h in hours[r["id"]]:
            week.setdefault(WEEKDAYS[h["weekday"]], []).append(f"{h['opens']}-{h['closes']}")
        special: dict[str, dict[str, Any]] = {}
        for d in dates[r["id"]]:
            entry = special.setdefault(d["date"], _drop_none(
                {"date": d["date"], "hours": [], "note": d["note"]}))
            if d["opens"] is not None:
                entry["hours"].append(f"{d['opens']}-{d['closes']}")
        out.append({
            "key": r["key"], "name": r["name"], "time_zone": r["time_zone"], "hours": week,
            "holidays": sorted(names["holiday_set"][s["set_id"]] for s in sets[r["id"]]),
            "dates": list(special.values()), "override": r["override"]})
    return out


def _holiday_sets(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    dates = _group(_rows(conn, "SELECT * FROM holiday_dates ORDER BY date"), "set_id")
    return [{"key": r["key"], "name": r["name"],
             "dates": [{"date": d["date"], "name": d["name"]} for d in dates[r["id"]]]}
            for r in _rows(conn, "SELECT * FROM holiday_sets ORDER BY key")]


def _flows(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    branches = _group(_rows(conn, "SELECT * FROM flow_branches ORDER BY position"), "flow_id")
    return [_drop_none({
        "key": r["key"], "name": r["name"], "schedule": names["schedule"].get(r["schedule_id"]),
        "description": r["description"],
        "branches": [_drop_none({"when": b["condition"],
                                 "greeting": names["prompt"].get(b["greeting_prompt_id"]),
                                 "to": dest_from_row(b, "dest", names)})
                     for b in branches[r["id"]]]})
        for r in _rows(conn, "SELECT * FROM call_flows ORDER BY key")]


def _chains(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    steps = _group(_rows(conn, "SELECT * FROM chain_steps ORDER BY position"), "chain_id")
    return [{"key": r["key"], "name": r["name"],
             "steps": [{"to": dest_from_row(s, "dest", names), "timeout": s["timeout_s"]}
                       for s in steps[r["id"]]],
             "final": dest_from_row(r, "final", names)}
            for r in _rows(conn, "SELECT * FROM forwarding_chains ORDER BY key")]


def _menus(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    keys = _group(_rows(conn, "SELECT * FROM menu_keys ORDER BY digit"), "menu_id")
    return [_drop_none({
        "key": r["key"], "name": r["name"], "extension": r["extension"],
        "greeting": names["prompt"].get(r["greeting_prompt_id"]),
        "invalid_greeting": names["prompt"].get(r["invalid_prompt_id"]),
        "timeout": r["timeout_s"], "invalid_retries": r["invalid_retries"],
        "direct_dial": _bool(r["direct_dial"]),
        "parent": names["voice_menu"].get(r["parent_id"]),
        "keys": {k["digit"]: dest_from_row(k, "dest", names) for k in keys[r["id"]]},
        "default": dest_from_row(r, "default", names)})
        for r in _rows(conn, "SELECT * FROM voice_menus ORDER BY key")]


def _queues(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    agents = _group(_rows(conn, "SELECT * FROM queue_agents ORDER BY position"), "queue_id")
    keys = _group(_rows(conn, "SELECT * FROM queue_key_options ORDER BY digit"), "queue_id")
    return [_drop_none({
        "key": r["key"], "name": r["name"], "extension": r["extension"],
        "strategy": r["strategy"],
        "agents": [names["employee"][a["employee_id"]] for a in agents[r["id"]]],
        "music_on_hold": names["prompt"].get(r["moh_prompt_id"]),
        "announce_position": _bool(r["announce_position"]),
        "announce_every": r["announce_every_s"], "max_wait": r["max_wait_s"],
        "max_callers": r["max_callers"], "agent_timeout": r["agent_timeout_s"],
        "wrapup": r["wrapup_s"], "skip_waiting": _bool(r["skip_waiting"]),
        "service_level": r["service_level_s"], "recording": r["recording"],
        "overflow": dest_from_row(r, "overflow", names),
        "keys": {k["digit"]: dest_from_row(k, "dest", names) for k in keys[r["id"]]}})
        for r in _rows(conn, "SELECT * FROM queues ORDER BY key")]


def _repeat_caller(conn: sqlite3.Connection, names: Names) -> dict[str, Any]:
    rows = _rows(conn, "SELECT * FROM repeat_caller_settings WHERE id = 1")
    if not rows:
        return {}
    r = rows[0]
    sources = [("call_history" if s["source"] == "call_history"
                else f"crm:{names['crm'][s['crm_id']]}")
               for s in _rows(conn, "SELECT * FROM repeat_caller_sources ORDER BY position")]
    exceptions = sorted(names["employee"][e["employee_id"]]
                        for e in _rows(conn, "SELECT * FROM repeat_caller_exceptions"))
    return _drop_none({
        "enabled": _bool(r["enabled"]), "sources": sources, "exceptions": exceptions,
        "local_area_code": r["local_area_code"], "ring_mobiles": _bool(r["ring_mobiles"]),
        "lookback_days": r["lookback_days"], "answer_timeout": r["answer_timeout_s"],
        "default": dest_from_row(r, "default", names)})


def _routes(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    lines = _group(_rows(conn, "SELECT * FROM outbound_route_lines ORDER BY position"),
                   "route_id")
    return [{"key": r["key"], "name": r["name"], "pattern": r["pattern"],
             "route_class": r["route_class"], "line_choice": r["line_choice"],
             "lines": [names["line"][x["line_id"]] for x in lines[r["id"]]],
             "failover": _bool(r["failover"]), "strip": r["strip_digits"],
             "prepend": r["prepend"], "enabled": _bool(r["enabled"])}
            for r in _rows(conn, "SELECT * FROM outbound_routes ORDER BY position, key")]


def _crm(conn: sqlite3.Connection, names: Names) -> list[dict[str, Any]]:
    users = _group(_rows(conn, "SELECT * FROM crm_user_map ORDER BY external_user_id"),
                   "crm_id")
    return [{"key": r["key"], "name": r["name"], "adapter": r["adapter"],
             "enabled": _bool(r["enabled"]), "base_url": r["base_url"],
             "sync_interval": r["sync_interval_s"],
             "callback_deadline": r["callback_deadline_min"],
             "users": {u["external_user_id"]: names["employee"][u["employee_id"]]
                       for u in users[r["id"]]},
             "options": json.loads(r["options"])}
            for r in _rows(conn, "SELECT * FROM crm_connections ORDER BY key")]


def _notifications(conn: sqlite3.Connection, names: Names) -> dict[str, Any]:
    rows = _rows(conn, "SELECT * FROM notification_settings WHERE id = 1")
    rules = [{"event": r["event"], "channel": r["channel"], "to": json.loads(r["recipients"]),
              "responsible_manager": _bool(r["responsible_manager"])}
             for r in _rows(conn, "SELECT * FROM notification_rules ORDER BY position, id")]
    if not rows:
        return {"rules": rules}
    r = rows[0]
    smtp = None
    if r["smtp_host"] is not None:
        smtp = _drop_none({"host": r["smtp_host"], "port": r["smtp_port"],
                           "security": r["smtp_security"], "username": r["smtp_username"],
                           "from_address": r["from_address"]})
    return _drop_none({"smtp": smtp, "sms_line": names["line"].get(r["sms_line_id"]),
                       "low_balance_threshold": r["low_balance_threshold"], "rules": rules})
