"""Writing a validated BoxConfig into the configuration tables, in one transaction."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlite_utils

from ..db import Database
from .errors import ConfigError
from .model import BOX_SETTINGS, BoxConfig, Destination, FxoGatewayLine, SimLine, SipTrunkLine
from .store import KEEP, ImportReport, Sync, dest_columns, to_json
from .types import WEEKDAYS


def _flag(value: bool) -> int:
    return 1 if value else 0


def _secret(value: Any, keep: bool) -> Any:
    """A secret for storage: the new value, or KEEP the stored one when none was given."""
    if value is not None:
        return value.get_secret_value()
    return KEEP if keep else None


def write_sections(sync: Sync, cfg: BoxConfig) -> None:
    """Write every section of `cfg` through `sync` (inside the import transaction)."""
    conn = sync.conn
    # 1. ids for every keyed entity, so rows can reference each other before they exist.
    keyed = [
        ("employee", "employees", "extension", [e.extension for e in cfg.employees]),
        ("device", "devices", "username",
         [d.username for e in cfg.employees for d in e.devices]),
        ("prompt", "prompts", "key", [p.key for p in cfg.prompts]),
        ("voicemail", "voicemail_boxes", "key", [v.key for v in cfg.voicemail_boxes]),
        ("line", "lines", "key", [x.key for x in cfg.lines]),
        ("webhook", "webhooks", "key", [w.key for w in cfg.webhooks]),
        ("holiday_set", "holiday_sets", "key", [h.key for h in cfg.holiday_sets]),
        ("schedule", "schedules", "key", [s.key for s in cfg.schedules]),
        ("blacklist", "blacklist", "number", [b.number for b in cfg.blacklist]),
        ("route", "outbound_routes", "key", [r.key for r in cfg.outbound_routes]),
        ("department", "departments", "key", [d.key for d in cfg.departments]),
        ("voice_menu", "voice_menus", "key", [m.key for m in cfg.voice_menus]),
        ("queue", "queues", "key", [q.key for q in cfg.queues]),
        ("chain", "forwarding_chains", "key", [c.key for c in cfg.forwarding_chains]),
        ("flow", "call_flows", "key", [f.key for f in cfg.flows]),
        ("number", "numbers", "number", [n.number for n in cfg.numbers]),
        ("crm", "crm_connections", "key", [c.key for c in cfg.crm]),
    ]
    for kind, table, key_col, keys in keyed:
        sync.assign(kind, table, key_col, keys)
    ids = sync.ids

    def dest(prefix: str, d: Destination | None) -> dict[str, Any]:
        return dest_columns(prefix, d, ids)

    def ref(kind: str, key: str | None) -> int | None:
        return None if key is None else ids[kind][key]

    # Live state kept across the rebuild of queue agents (an agent's pause is not config).
    paused: dict[tuple[int, int], tuple[Any, Any, Any]] = {
        (row[0], row[1]): (row[2], row[3], row[4]) for row in conn.execute(
            "SELECT queue_id, employee_id, paused, paused_at, paused_reason FROM queue_agents")}

    _box_settings(sync, cfg)

    sync.upsert("prompt", "prompts", [
        {"id": ids["prompt"][p.key], "key": p.key, "name": p.name, "path": p.file,
         "language": p.language} for p in cfg.prompts])

    sync.upsert("employee", "employees", [
        {"id": ids["employee"][e.extension], "extension": e.extension, "name": e.name,
         "role": e.role, "email": e.email, "enabled": _flag(e.enabled), "dnd": _flag(e.dnd),
         "ring_mobile_after_s": e.ring_mobile_after, "no_answer_timeout_s": e.no_answer_timeout,
         "call_waiting": _flag(e.call_waiting), "recording": e.recording,
         "confirm_mobile": _flag(e.confirm_mobile), "daily_call_plan": e.daily_call_plan}
        for e in cfg.employees], touch="updated_at")
    sync.upsert("device", "devices", [
        {"id": ids["device"][d.username], "employee_id": ids["employee"][e.extension],
         "username": d.username, "kind": d.kind, "label": d.label, "realm": d.realm,
         "ha1_md5": d.ha1_md5, "ha1_sha256": d.ha1_sha256, "static_contact": d.static_contact,
         "auth": d.auth,
         "codecs": to_json(list(d.codecs)), "recording": d.recording, "enabled": _flag(d.enabled)}
        for e in cfg.employees for d in e.devices])

    # Extensions may move between departments, menus, queues and boxes within one import.
    numbered: list[tuple[str, str, list[tuple[str, str | None]]]] = [
        ("voicemail", "voicemail_boxes", [(x.key, x.extension) for x in cfg.voicemail_boxes]),
        ("department", "departments", [(x.key, x.extension) for x in cfg.departments]),
        ("voice_menu", "voice_menus", [(x.key, x.extension) for x in cfg.voice_menus]),
        ("queue", "queues", [(x.key, x.extension) for x in cfg.queues]),
    ]
    for kind, table, items in numbered:
        sync.free_unique(kind, table, "extension", {ids[kind][k]: ext for k, ext in items})
    sync.upsert("voicemail", "voicemail_boxes", [
        {"id": ids["voicemail"][v.key], "key": v.key, "name": v.name, "extension": v.extension,
         "employee_id": ref("employee", v.owner), "greeting_prompt_id": ref("prompt", v.greeting),
         "notify_emails": to_json(list(v.email)), "attach_audio": _flag(v.attach_audio),
         "max_message_s": v.max_message, "language": v.language} for v in cfg.voicemail_boxes])

    _lines(sync, cfg)

    existing_hooks = set(sync.existing["webhook"])
    sync.upsert("webhook", "webhooks", [
        {"id": ids["webhook"][w.key], "key": w.key, "name": w.name, "url": w.url,
         "secret": _secret(w.secret, w.key in existing_hooks), "events": to_json(list(w.events)),
         "enabled": _flag(w.enabled), "timeout_s": w.timeout} for w in cfg.webhooks])

    sync.upsert("holiday_set", "holiday_sets", [
        {"id": ids["holiday_set"][h.key], "key": h.key, "name": h.name}
        for h in cfg.holiday_sets])
    sync.upsert("schedule", "schedules", [
        {"id": ids["schedule"][s.key], "key": s.key, "name": s.name,
         "time_zone": s.time_zone or cfg.box.time_zone, "override": s.override}
        for s in cfg.schedules])

    existing_blocked = set(sync.existing["blacklist"])
    sync.upsert("blacklist", "blacklist", [
        {"id": ids["blacklist"][b.number], "number": b.number, "reason": b.reason,
         "added_by": b.added_by if b.added_by is not None
         else (KEEP if b.number in existing_blocked else None)}
        for b in cfg.blacklist])

    sync.upsert("route", "outbound_routes", [
        {"id": ids["route"][r.key], "key": r.key, "name": r.name, "position": i,
         "pattern": r.pattern, "route_class": r.route_class, "line_choice": r.line_choice,
         "failover": _flag(r.failover), "strip_digits": r.strip, "prepend": r.prepend,
         "enabled": _flag(r.enabled)} for i, r in enumerate(cfg.outbound_routes)])

    sync.upsert("department", "departments", [
        {"id": ids["department"][d.key], "key": d.key, "name": d.name, "extension": d.extension,
         "strategy": d.strategy, "ring_delay_s": d.ring_delay,
         "member_timeout_s": d.member_timeout, "timeout_s": d.timeout,
         "call_waiting": d.call_waiting, "recording": d.recording,
         **dest("overflow", d.overflow)} for d in cfg.departments])
    sync.upsert("voice_menu", "voice_menus", [
        {"id": ids["voice_menu"][m.key], "key": m.key, "name": m.name, "extension": m.extension,
         "greeting_prompt_id": ref("prompt", m.greeting),
         "invalid_prompt_id": ref("prompt", m.invalid_greeting), "timeout_s": m.timeout,
         "invalid_retries": m.invalid_retries, "direct_dial": _flag(m.direct_dial),
         "parent_id": ref("voice_menu", m.parent), **dest("default", m.default)}
        for m in cfg.voice_menus])
    sync.upsert("queue", "queues", [
        {"id": ids["queue"][q.key], "key": q.key, "name": q.name, "extension": q.extension,
         "strategy": q.strategy, "moh_prompt_id": ref("prompt", q.music_on_hold),
         "announce_position": _flag(q.announce_position), "announce_every_s": q.announce_every,
         "max_wait_s": q.max_wait, "max_callers": q.max_callers,
         "agent_timeout_s": q.agent_timeout, "wrapup_s": q.wrapup,
         "skip_waiting": _flag(q.skip_waiting), "service_level_s": q.service_level,
         "recording": q.recording, **dest("overflow", q.overflow)} for q in cfg.queues])
    sync.upsert("chain", "forwarding_chains", [
        {"id": ids["chain"][c.key], "key": c.key, "name": c.name, **dest("final", c.final)}
        for c in cfg.forwarding_chains])
    sync.upsert("flow", "call_flows", [
        {"id": ids["flow"][f.key], "key": f.key, "name": f.name,
         "schedule_id": ref("schedule", f.schedule), "description": f.description}
        for f in cfg.flows])
    sync.upsert("number", "numbers", [
        {"id": ids["number"][n.number], "number": n.number, "line_id": ref("line", n.line),
         "flow_id": ids["flow"][n.flow], "label": n.label, "ad_source": n.ad_source,
         "region": n.region, "recording": n.recording, "repeat_caller": _flag(n.repeat_caller),
         "enabled": _flag(n.enabled)} for n in cfg.numbers])

    existing_crm = set(sync.existing["crm"])
    sync.upsert("crm", "crm_connections", [
        {"id": ids["crm"][c.key], "key": c.key, "name": c.name, "adapter": c.adapter,
         "enabled": _flag(c.enabled), "base_url": c.base_url,
         "api_secret": _secret(c.api_secret, c.key in existing_crm),
         "signing_secret": _secret(c.signing_secret, c.key in existing_crm),
         "options": to_json(dict(c.options)), "sync_interval_s": c.sync_interval,
         "callback_deadline_min": c.callback_deadline} for c in cfg.crm])

    _children(sync, cfg, dest, paused)
    _single_rows(sync, cfg, dest)

    # Removed entities go last: by now nothing that survives points at them any more (a
    # device moved to another employee is not swept away by the old employee's cascade).
    for kind, table in (("number", "numbers"), ("flow", "call_flows"),
                        ("chain", "forwarding_chains"), ("voice_menu", "voice_menus"),
                        ("queue", "queues"), ("department", "departments"),
                        ("voicemail", "voicemail_boxes"), ("device", "devices"),
                        ("employee", "employees"), ("route", "outbound_routes"),
                        ("line", "lines"), ("prompt", "prompts"), ("schedule", "schedules"),
                        ("holiday_set", "holiday_sets"), ("webhook", "webhooks"),
                        ("crm", "crm_connections"), ("blacklist", "blacklist")):
        sync.delete_missing(kind, table)


def _box_settings(sync: Sync, cfg: BoxConfig) -> None:
    counts = sync.counts("box_settings")
    for key in BOX_SETTINGS:
        value = to_json(getattr(cfg.box, key))
        row = sync.conn.execute("SELECT value FROM box_settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            sync.conn.execute("INSERT INTO box_settings (key, value) VALUES (?, ?)", (key, value))
            counts.created += 1
        elif row[0] != value:
            sync.conn.execute(
                "UPDATE box_settings SET value = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', "
                "'now') WHERE key = ?", (value, key))
            counts.updated += 1


def _lines(sync: Sync, cfg: BoxConfig) -> None:
    ids = sync.ids["line"]
    kinds = dict(sync.conn.execute("SELECT key, kind FROM lines").fetchall())
    rows = []
    for line in cfg.lines:
        same_kind = kinds.get(line.key) == line.kind
        row: dict[str, Any] = {
            "id": ids[line.key], "key": line.key, "name": line.name, "kind": line.kind,
            "enabled": _flag(line.enabled), "operator": line.operator,
            "cost_per_minute": line.cost_per_minute, "options": to_json(dict(line.options)),
            "channels": 1, "sim_imei": None, "sim_iccid": None, "sim_pin": None,
            "sim_usb_path": None, "sim_simulated": 0, "sim_sms": 0, "sim_ussd_balance": None,
            "sip_host": None, "sip_port": None, "sip_transport": None, "sip_username": None,
            "sip_auth_username": None, "sip_secret": None, "sip_register": 0,
            "sip_from_domain": None, "sip_outbound_proxy": None,
        }
        if isinstance(line, SimLine):
            row.update(sim_imei=line.imei, sim_iccid=line.iccid,
                       sim_pin=_secret(line.pin, same_kind), sim_usb_path=line.usb_path,
                       sim_simulated=_flag(line.simulated), sim_sms=_flag(line.sms),
                       sim_ussd_balance=line.ussd_balance)
        else:
            row.update(channels=line.channels, sip_host=line.host, sip_port=line.port,
                       sip_transport=line.transport, sip_username=line.username,
                       sip_secret=_secret(line.secret, same_kind),
                       sip_register=_flag(line.registration))
            if isinstance(line, SipTrunkLine):
                row.update(sip_auth_username=line.auth_username,
                           sip_from_domain=line.from_domain,
                           sip_outbound_proxy=line.outbound_proxy)
            else:
                assert isinstance(line, FxoGatewayLine)
        rows.append(row)
    wanted_iccid = {r["id"]: r["sim_iccid"] for r in rows}
    wanted_imei = {r["id"]: r["sim_imei"] for r in rows}
    sync.free_unique("line", "lines", "sim_iccid", wanted_iccid)
    sync.free_unique("line", "lines", "sim_imei", wanted_imei)
    sync.upsert("line", "lines", rows)


def _children(sync: Sync, cfg: BoxConfig, dest: Any, paused: dict[Any, Any]) -> None:
    ids = sync.ids
    sync.replace("employee_mobiles", [
        {"employee_id": ids["employee"][e.extension], "position": i, "number": number}
        for e in cfg.employees for i, number in enumerate(e.mobiles)])
    sync.replace("employee_route_permissions", [
        {"employee_id": ids["employee"][e.extension], "route_class": rc}
        for e in cfg.employees for rc in e.allowed_routes])
    sync.replace("holiday_dates", [
        {"set_id": ids["holiday_set"][h.key], "date": d.date, "name": d.name}
        for h in cfg.holiday_sets for d in h.dates])
    sync.replace("schedule_hours", [
        {"schedule_id": ids["schedule"][s.key], "weekday": WEEKDAYS.index(day),
         "opens": period.split("-")[0], "closes": period.split("-")[1]}
        for s in cfg.schedules for day, periods in s.hours.items() for period in periods],
        ignore=("id",))
    closed_all_day: list[tuple[str | None, str | None]] = [(None, None)]
    sync.replace("schedule_dates", [
        {"schedule_id": ids["schedule"][s.key], "date": d.date, "opens": opens, "closes": closes,
         "note": d.note}
        for s in cfg.schedules for d in s.dates
        for opens, closes in ([_split(p) for p in d.hours] or closed_all_day)],
        ignore=("id",))
    sync.replace("schedule_holiday_sets", [
        {"schedule_id": ids["schedule"][s.key], "set_id": ids["holiday_set"][key]}
        for s in cfg.schedules for key in s.holidays])
    sync.replace("outbound_route_lines", [
        {"route_id": ids["route"][r.key], "line_id": ids["line"][key], "position": i}
        for r in cfg.outbound_routes for i, key in enumerate(r.lines)])
    sync.replace("caller_id_rules", [
        {"position": i, "route_id": None if c.route is None else ids["route"][c.route],
         "pattern": c.pattern, "mode": c.mode, "number": c.number}
        for i, c in enumerate(cfg.caller_id_rules)], ignore=("id",))
    sync.replace("department_members", [
        {"department_id": ids["department"][d.key], "employee_id": ids["employee"][ext],
         "position": i} for d in cfg.departments for i, ext in enumerate(d.members)])
    sync.replace("menu_keys", [
        {"menu_id": ids["voice_menu"][m.key], "digit": digit, "label": None,
         **dest("dest", to)} for m in cfg.voice_menus for digit, to in sorted(m.keys.items())])
    agents = []
    for q in cfg.queues:
        for i, ext in enumerate(q.agents):
            key = (ids["queue"][q.key], ids["employee"][ext])
            state = paused.get(key, (0, None, None))
            agents.append({"queue_id": key[0], "employee_id": key[1], "position": i,
                           "penalty": 0, "paused": state[0], "paused_at": state[1],
                           "paused_reason": state[2]})
    sync.replace("queue_agents", agents)
    sync.replace("queue_key_options", [
        {"queue_id": ids["queue"][q.key], "digit": digit, "label": None, **dest("dest", to)}
        for q in cfg.queues for digit, to in sorted(q.keys.items())])
    sync.replace("chain_steps", [
        {"chain_id": ids["chain"][c.key], "position": i, "timeout_s": step.timeout,
         **dest("dest", step.to)} for c in cfg.forwarding_chains for i, step in enumerate(c.steps)])
    sync.replace("flow_branches", [
        {"flow_id": ids["flow"][f.key], "position": i, "condition": b.when,
         "greeting_prompt_id": None if b.greeting is None else ids["prompt"][b.greeting],
         **dest("dest", b.to)} for f in cfg.flows for i, b in enumerate(f.branches)],
        ignore=("id",))
    sync.replace("crm_user_map", [
        {"crm_id": ids["crm"][c.key], "external_user_id": user, "employee_id":
         ids["employee"][ext]} for c in cfg.crm for user, ext in sorted(c.users.items())])


def _split(period: str) -> tuple[str | None, str | None]:
    opens, closes = period.split("-")
    return opens, closes


def _single_rows(sync: Sync, cfg: BoxConfig, dest: Any) -> None:
    ids = sync.ids
    conn = sync.conn
    rc = cfg.repeat_caller
    _upsert_single(sync, "repeat_caller_settings", {
        "enabled": _flag(rc.enabled), "local_area_code": rc.local_area_code,
        "ring_mobiles": _flag(rc.ring_mobiles), "lookback_days": rc.lookback_days,
        "answer_timeout_s": rc.answer_timeout, **dest("default", rc.default)})
    sync.replace("repeat_caller_sources", [
        {"position": i, "source": "call_history" if s == "call_history" else "crm",
         "crm_id": None if s == "call_history" else ids["crm"][s[4:]]}
        for i, s in enumerate(rc.sources)])
    sync.replace("repeat_caller_exceptions", [
        {"employee_id": ids["employee"][ext]} for ext in rc.exceptions])
    notes = cfg.notifications
    smtp = notes.smtp
    had_smtp = conn.execute(
        "SELECT smtp_host IS NOT NULL FROM notification_settings WHERE id = 1").fetchone()
    _upsert_single(sync, "notification_settings", {
        "smtp_host": smtp.host if smtp else None, "smtp_port": smtp.port if smtp else None,
        "smtp_security": smtp.security if smtp else "starttls",
        "smtp_username": smtp.username if smtp else None,
        "smtp_password": _secret(smtp.password, bool(had_smtp and had_smtp[0])) if smtp else None,
        "from_address": smtp.from_address if smtp else None,
        "sms_line_id": None if notes.sms_line is None else ids["line"][notes.sms_line],
        "low_balance_threshold": notes.low_balance_threshold}, touch="updated_at")
    sync.replace("notification_rules", [
        {"position": i, "event": r.event, "channel": r.channel, "recipients": to_json(r.to),
         "responsible_manager": _flag(r.responsible_manager)}
        for i, r in enumerate(notes.rules)], ignore=("id",))


def _upsert_single(sync: Sync, table: str, row: dict[str, Any], touch: str | None = None) -> None:
    """Insert or update the one row (id = 1) of a settings table."""
    sync.existing[table] = {"1": 1} if sync.conn.execute(
        f"SELECT 1 FROM {table} WHERE id = 1").fetchone() else {}
    sync.upsert(table, table, [{"id": 1, **row}], touch=touch)


def write_config(conn: sqlite_utils.Database, cfg: BoxConfig, actor: str) -> ImportReport:
    """Replace the stored configuration with `cfg` inside the caller's transaction."""
    report = replace_config(conn, cfg)
    conn.conn.execute(
        "INSERT INTO audit_log (actor, area, action, object, after) VALUES (?, ?, ?, ?, ?)",
        (actor, "config", "import", None,
         to_json({t: vars(c) for t, c in report.changes.items() if c})),
    )
    return report


def replace_config(conn: sqlite_utils.Database, cfg: BoxConfig) -> ImportReport:
    """Write `cfg` over the stored configuration in the caller's transaction (no audit row)."""
    raw = conn.conn
    # References between config rows are checked at COMMIT, so rows can go in any order.
    raw.execute("PRAGMA defer_foreign_keys = ON")
    sync = Sync(raw)
    try:
        write_sections(sync, cfg)
    except sqlite3.IntegrityError as exc:
        raise ConfigError(f"the database refused the configuration: {exc}") from None
    broken = raw.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        details = ", ".join(f"{t} row {r} -> {p}" for t, r, p, _ in broken[:10])
        raise ConfigError(f"the configuration leaves dangling references: {details}")
    return sync.report


def apply_config(db: Database, cfg: BoxConfig, *, actor: str = "system") -> ImportReport:
    """Write a validated configuration in one writer transaction (all or nothing)."""
    try:
        return db.write(lambda conn: write_config(conn, cfg, actor))
    except sqlite3.IntegrityError as exc:
        raise ConfigError(f"the database refused the configuration: {exc}") from None
