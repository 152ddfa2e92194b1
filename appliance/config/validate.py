"""Checks that need the whole configuration: references resolve, numbers are unique,
schedules make sense, and no destination loops back on itself without the caller acting."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import ConfigError, Problem
from .model import BoxConfig, Destination
from .types import WEEKDAYS, compile_dial_pattern, period_minutes

_NAMES = {
    "employee": "employee with extension",
    "department": "department",
    "voice_menu": "voice menu",
    "queue": "queue",
    "voicemail": "voicemail box",
    "flow": "call flow",
    "chain": "forwarding chain",
    "webhook": "webhook",
    "line": "line",
    "prompt": "prompt",
    "schedule": "schedule",
    "holiday_set": "holiday set",
    "crm": "CRM connection",
    "route": "outbound route",
}


@dataclass
class _Index:
    """Known keys per entity kind, built once from the configuration."""

    known: dict[str, set[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def need(self, kind: str, key: str | None, path: str) -> None:
        """Record a problem at `path` unless `key` names a known entity of `kind`."""
        if key is not None and key not in self.known.get(kind, set()):
            what = _NAMES[kind]
            shown = key if kind == "employee" else repr(key)
            self.problems.append(Problem(path, f"no {what} {shown}"))

    def dest(self, dest: Destination | None, path: str) -> None:
        """Check that a destination's target (and line) exist."""
        if dest is None:
            return
        if dest.kind in _NAMES:
            self.need(dest.kind, dest.target, path)
        if dest.line is not None:
            self.need("line", dest.line, path + ".line")


def cross_problems(cfg: BoxConfig) -> list[Problem]:
    """Every cross-reference problem of a configuration, in document order."""
    idx = _Index()
    _unique_keys(cfg, idx)
    _unique_extensions(cfg, idx)
    _unique_values(cfg, idx)
    _references(cfg, idx)
    _schedules(cfg, idx)
    _loops(cfg, idx)
    _dead_ends(cfg, idx)
    _outbound(cfg, idx)
    return idx.problems


def cross_check(cfg: BoxConfig) -> None:
    """Raise ConfigError if `cross_problems` finds anything."""
    problems = cross_problems(cfg)
    if problems:
        raise ConfigError(problems)


def _collections(cfg: BoxConfig) -> Iterator[tuple[str, str, list[str]]]:
    """(kind, collection name, keys) for every keyed collection."""
    yield "employee", "employees", [e.extension for e in cfg.employees]
    yield "department", "departments", [d.key for d in cfg.departments]
    yield "voice_menu", "voice_menus", [m.key for m in cfg.voice_menus]
    yield "queue", "queues", [q.key for q in cfg.queues]
    yield "voicemail", "voicemail_boxes", [v.key for v in cfg.voicemail_boxes]
    yield "flow", "flows", [f.key for f in cfg.flows]
    yield "chain", "forwarding_chains", [c.key for c in cfg.forwarding_chains]
    yield "webhook", "webhooks", [w.key for w in cfg.webhooks]
    yield "line", "lines", [line.key for line in cfg.lines]
    yield "prompt", "prompts", [p.key for p in cfg.prompts]
    yield "schedule", "schedules", [s.key for s in cfg.schedules]
    yield "holiday_set", "holiday_sets", [h.key for h in cfg.holiday_sets]
    yield "crm", "crm", [c.key for c in cfg.crm]
    yield "route", "outbound_routes", [r.key for r in cfg.outbound_routes]


def _unique_keys(cfg: BoxConfig, idx: _Index) -> None:
    for kind, collection, keys in _collections(cfg):
        seen: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key in seen:
                field_name = "extension" if kind == "employee" else "key"
                idx.problems.append(Problem(
                    f"{collection}[{i}].{field_name}",
                    f"{key!r} is already used by {collection}[{seen[key]}]",
                ))
            else:
                seen[key] = i
        idx.known[kind] = set(keys)


def _unique_extensions(cfg: BoxConfig, idx: _Index) -> None:
    """One internal number space: employees, departments, menus, queues, voicemail boxes."""
    owners: dict[str, str] = {}
    items: list[tuple[str, str | None, str]] = []
    items += [(f"employees[{i}].extension", e.extension, f"employee {e.name}")
              for i, e in enumerate(cfg.employees)]
    items += [(f"departments[{i}].extension", d.extension, f"department {d.key!r}")
              for i, d in enumerate(cfg.departments)]
    items += [(f"voice_menus[{i}].extension", m.extension, f"voice menu {m.key!r}")
              for i, m in enumerate(cfg.voice_menus)]
    items += [(f"queues[{i}].extension", q.extension, f"queue {q.key!r}")
              for i, q in enumerate(cfg.queues)]
    items += [(f"voicemail_boxes[{i}].extension", v.extension, f"voicemail box {v.key!r}")
              for i, v in enumerate(cfg.voicemail_boxes)]
    for path, extension, owner in items:
        if extension is None:
            continue
        if extension in owners and not path.startswith("employees["):
            idx.problems.append(
                Problem(path, f"{extension} is already used by {owners[extension]}"))
        elif extension in owners:
            continue  # duplicate employee extensions are reported by _unique_keys
        else:
            owners[extension] = owner


def _duplicates(values: Iterable[tuple[str, str]], what: str, idx: _Index) -> None:
    seen: dict[str, str] = {}
    for path, value in values:
        if value in seen:
            idx.problems.append(Problem(path, f"{what} {value} is already used by {seen[value]}"))
        else:
            seen[value] = path


def _unique_values(cfg: BoxConfig, idx: _Index) -> None:
    # An FXO gateway that registers to the box logs in like a phone: its name is a SIP
    # user name like a device's, and two of them would be one account.
    gateways = [(f"lines[{i}].username", line.username) for i, line in enumerate(cfg.lines)
                if line.kind == "fxo_gateway" and not line.registration and line.username]
    _duplicates(
        [*((f"employees[{i}].devices[{j}].username", d.username)
           for i, e in enumerate(cfg.employees) for j, d in enumerate(e.devices)),
         *gateways],
        "SIP user name", idx,
    )
    _duplicates(((f"numbers[{i}].number", n.number) for i, n in enumerate(cfg.numbers)),
                "number", idx)
    _duplicates(((f"blacklist[{i}].number", b.number) for i, b in enumerate(cfg.blacklist)),
                "number", idx)
    sims = [(i, line) for i, line in enumerate(cfg.lines) if line.kind == "sim"]
    _duplicates(((f"lines[{i}].iccid", line.iccid) for i, line in sims if line.iccid),
                "ICCID", idx)
    _duplicates(((f"lines[{i}].imei", line.imei) for i, line in sims if line.imei),
                "IMEI", idx)
    realm = cfg.box.sip_realm
    for i, employee in enumerate(cfg.employees):
        for j, device in enumerate(employee.devices):
            if device.realm is not None and device.realm != realm:
                idx.problems.append(Problem(
                    f"employees[{i}].devices[{j}].realm",
                    f"the digests were made for realm {device.realm!r} but the box realm is "
                    f"{realm!r}: the phone could not log in; give the `password` again",
                ))


def _references(cfg: BoxConfig, idx: _Index) -> None:
    need, dest = idx.need, idx.dest
    for i, d in enumerate(cfg.departments):
        _members(d.members, f"departments[{i}].members", idx)
        dest(d.overflow, f"departments[{i}].overflow")
    for i, v in enumerate(cfg.voicemail_boxes):
        need("employee", v.owner, f"voicemail_boxes[{i}].owner")
        need("prompt", v.greeting, f"voicemail_boxes[{i}].greeting")
    for i, n in enumerate(cfg.numbers):
        need("line", n.line, f"numbers[{i}].line")
        need("flow", n.flow, f"numbers[{i}].flow")
    for i, s in enumerate(cfg.schedules):
        for j, key in enumerate(s.holidays):
            need("holiday_set", key, f"schedules[{i}].holidays[{j}]")
    for i, f in enumerate(cfg.flows):
        need("schedule", f.schedule, f"flows[{i}].schedule")
        for j, b in enumerate(f.branches):
            need("prompt", b.greeting, f"flows[{i}].branches[{j}].greeting")
            dest(b.to, f"flows[{i}].branches[{j}].to")
    for i, c in enumerate(cfg.forwarding_chains):
        for j, step in enumerate(c.steps):
            dest(step.to, f"forwarding_chains[{i}].steps[{j}].to")
        dest(c.final, f"forwarding_chains[{i}].final")
    for i, m in enumerate(cfg.voice_menus):
        need("prompt", m.greeting, f"voice_menus[{i}].greeting")
        need("prompt", m.invalid_greeting, f"voice_menus[{i}].invalid_greeting")
        need("voice_menu", m.parent, f"voice_menus[{i}].parent")
        for digit, to in m.keys.items():
            dest(to, f"voice_menus[{i}].keys[{digit!r}]")
        dest(m.default, f"voice_menus[{i}].default")
    _menu_parents(cfg, idx)
    need("prompt", cfg.box.music_on_hold, "box.music_on_hold")
    for i, q in enumerate(cfg.queues):
        _members(q.agents, f"queues[{i}].agents", idx)
        need("prompt", q.music_on_hold, f"queues[{i}].music_on_hold")
        dest(q.overflow, f"queues[{i}].overflow")
        for digit, to in q.keys.items():
            dest(to, f"queues[{i}].keys[{digit!r}]")
    rc = cfg.repeat_caller
    for j, source in enumerate(rc.sources):
        if source.startswith("crm:"):
            need("crm", source[4:], f"repeat_caller.sources[{j}]")
    _members(rc.exceptions, "repeat_caller.exceptions", idx)
    dest(rc.default, "repeat_caller.default")
    for i, r in enumerate(cfg.outbound_routes):
        for j, key in enumerate(r.lines):
            need("line", key, f"outbound_routes[{i}].lines[{j}]")
    for i, rule in enumerate(cfg.caller_id_rules):
        need("route", rule.route, f"caller_id_rules[{i}].route")
    for i, crm in enumerate(cfg.crm):
        for user, extension in crm.users.items():
            need("employee", extension, f"crm[{i}].users[{user!r}]")
    notes = cfg.notifications
    need("line", notes.sms_line, "notifications.sms_line")
    kinds = {line.key: line.kind for line in cfg.lines}
    if notes.sms_line in kinds and kinds[notes.sms_line] != "sim":
        idx.problems.append(Problem("notifications.sms_line", "SMS are sent through a SIM line"))
    if any(r.channel == "sms" for r in notes.rules) and notes.sms_line is None:
        idx.problems.append(Problem("notifications.sms_line", "SMS rules need an `sms_line`"))
    if any(r.channel == "email" for r in notes.rules) and notes.smtp is None:
        idx.problems.append(Problem("notifications.smtp", "e-mail rules need `smtp` settings"))


def _members(extensions: list[str], path: str, idx: _Index) -> None:
    seen: set[str] = set()
    for j, extension in enumerate(extensions):
        idx.need("employee", extension, f"{path}[{j}]")
        if extension in seen:
            idx.problems.append(Problem(f"{path}[{j}]", f"{extension} is listed twice"))
        seen.add(extension)


def _menu_parents(cfg: BoxConfig, idx: _Index) -> None:
    parents = {m.key: m.parent for m in cfg.voice_menus}
    for i, menu in enumerate(cfg.voice_menus):
        seen = {menu.key}
        parent = menu.parent
        while parent is not None and parent in parents:
            if parent in seen:
                idx.problems.append(Problem(f"voice_menus[{i}].parent",
                                            "menus are each other's parents (a loop)"))
                break
            seen.add(parent)
            parent = parents[parent]


def _schedules(cfg: BoxConfig, idx: _Index) -> None:
    week = 7 * 1440
    for i, schedule in enumerate(cfg.schedules):
        spans: list[tuple[int, int, str]] = []
        for day, periods in schedule.hours.items():
            base = WEEKDAYS.index(day) * 1440
            for j, period in enumerate(periods):
                opens, closes = period_minutes(period)
                start = base + opens
                end = base + closes if closes > opens else base + 1440 + closes
                path = f"schedules[{i}].hours.{day}[{j}]"
                if end > week:  # Sunday night into Monday morning
                    spans += [(start, week, path), (0, end - week, path)]
                else:
                    spans.append((start, end, path))
        spans.sort()
        for (_s1, e1, p1), (s2, _e2, p2) in itertools.pairwise(spans):
            if s2 < e1 and p1 != p2:
                idx.problems.append(Problem(p2, f"overlaps {p1}"))
        for j, special in enumerate(schedule.dates):
            ranges = sorted(period_minutes(p) for p in special.hours)
            for (o1, c1), (o2, _c2) in itertools.pairwise(ranges):
                if o2 < (c1 if c1 > o1 else 1440):
                    idx.problems.append(Problem(f"schedules[{i}].dates[{j}].hours",
                                                "periods overlap"))
        dates = [d.date for d in schedule.dates]
        for j, date in enumerate(dates):
            if date in dates[:j]:
                idx.problems.append(Problem(f"schedules[{i}].dates[{j}].date",
                                            f"{date} is listed twice"))
    for i, hs in enumerate(cfg.holiday_sets):
        dates = [d.date for d in hs.dates]
        for j, date in enumerate(dates):
            if date in dates[:j]:
                idx.problems.append(Problem(f"holiday_sets[{i}].dates[{j}].date",
                                            f"{date} is listed twice"))


_LOOP_KINDS = frozenset({"flow", "chain", "department", "queue", "voice_menu"})


def _loops(cfg: BoxConfig, idx: _Index) -> None:
    """Find destinations that lead back to themselves with no caller action (endless loop)."""
    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    paths: dict[tuple[str, str], str] = {}

    def add(node: tuple[str, str], path: str, targets: Iterable[Destination | None]) -> None:
        paths[node] = path
        edges[node] = [(d.kind, d.target) for d in targets
                       if d is not None and d.kind in _LOOP_KINDS and d.target is not None]

    for i, f in enumerate(cfg.flows):
        add(("flow", f.key), f"flows[{i}]", (b.to for b in f.branches))
    for i, c in enumerate(cfg.forwarding_chains):
        add(("chain", c.key), f"forwarding_chains[{i}]", [*(s.to for s in c.steps), c.final])
    for i, d in enumerate(cfg.departments):
        add(("department", d.key), f"departments[{i}]", [d.overflow])
    for i, q in enumerate(cfg.queues):
        add(("queue", q.key), f"queues[{i}]", [q.overflow])
    for i, m in enumerate(cfg.voice_menus):
        add(("voice_menu", m.key), f"voice_menus[{i}]", [m.default])

    state: dict[tuple[str, str], int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[tuple[str, str]]] = set()
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[tuple[str, str], Iterator[tuple[str, str]]]] = [
            (start, iter(edges[start]))]
        trail = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                trail.pop()
                continue
            if child not in edges:
                continue
            if state.get(child) == 1:
                cycle = [*trail[trail.index(child):], child]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    text = " -> ".join(f"{_NAMES[k]} {key!r}" for k, key in cycle)
                    idx.problems.append(Problem(
                        paths[child], f"calls would loop forever without the caller doing "
                                      f"anything: {text}"))
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(edges[child])))
                trail.append(child)


def _dead_ends(cfg: BoxConfig, idx: _Index) -> None:
    """Find destinations where a call would end nowhere: nobody to ring and nothing after.

    Only places where nothing follows are checked (flow branches, menu keys and defaults,
    overflows, chain finals); a chain step or the repeat-caller default is followed by the
    chain's next step or the normal flow. Unknown keys are reported by `_references`.
    """
    employees = {e.extension: e for e in cfg.employees}
    departments = {d.key: d for d in cfg.departments}
    owners = {v.owner for v in cfg.voicemail_boxes if v.owner is not None}

    def rings(extension: str) -> bool:
        e = employees.get(extension)
        if e is None or not e.enabled:
            return False
        mobiles = bool(e.mobiles) and e.ring_mobile_after is not None
        return any(d.enabled for d in e.devices) or mobiles

    def why_not(dest: Destination | None, seen: frozenset[str]) -> str | None:
        if dest is None or dest.target is None:
            return None
        if dest.kind == "employee" and dest.target in employees:
            if rings(dest.target) or dest.target in owners:
                return None
            return (f"employee {dest.target} has no phone or mobile to ring and no voicemail "
                    f"box")
        if dest.kind == "department" and dest.target in departments:
            dept = departments[dest.target]
            if any(rings(m) for m in dept.members) or dest.target in seen:
                return None  # a loop through overflows is reported by _loops
            if dept.overflow is None:
                return f"department {dept.key!r} has nobody to ring and no overflow"
            return why_not(dept.overflow, seen | {dept.key})
        return None

    places: list[tuple[str, Destination | None]] = []
    for i, f in enumerate(cfg.flows):
        places += [(f"flows[{i}].branches[{j}].to", b.to) for j, b in enumerate(f.branches)]
    for i, m in enumerate(cfg.voice_menus):
        places += [(f"voice_menus[{i}].keys[{d!r}]", to) for d, to in m.keys.items()]
        places.append((f"voice_menus[{i}].default", m.default))
    for i, d in enumerate(cfg.departments):
        places.append((f"departments[{i}].overflow", d.overflow))
    for i, q in enumerate(cfg.queues):
        places.append((f"queues[{i}].overflow", q.overflow))
        places += [(f"queues[{i}].keys[{d!r}]", to) for d, to in q.keys.items()]
    for i, c in enumerate(cfg.forwarding_chains):
        places.append((f"forwarding_chains[{i}].final", c.final))
    for path, dest in places:
        reason = why_not(dest, frozenset())
        if reason is not None:
            idx.problems.append(Problem(path, f"calls sent here would end nowhere: {reason}"))


_DIAL_FORMATS = ("e164", "national", "as_dialled")


def _outbound(cfg: BoxConfig, idx: _Index) -> None:
    """Outbound routes, caller ID rules and emergency numbers (route lines are checked by
    `_references`)."""
    # Imported here: the routing package imports the configuration model, not the reverse.
    from ..routing.numbers import GSM_EMERGENCY, emergency_numbers

    for i, employee in enumerate(cfg.employees):
        if employee.extension in GSM_EMERGENCY:
            idx.problems.append(Problem(
                f"employees[{i}].extension",
                f"{employee.extension} is an emergency number: dialling it must reach "
                f"emergency services, not a desk phone"))
    lines = {line.key: line for line in cfg.lines}
    codes = sorted(emergency_numbers(cfg.box.country))
    for i, route in enumerate(cfg.outbound_routes):
        path = f"outbound_routes[{i}]"
        regex = compile_dial_pattern(route.pattern)
        fixed, open_tail = _fixed_length(route.pattern)
        if route.strip > fixed or (route.strip == fixed and route.strip and not open_tail):
            idx.problems.append(Problem(
                f"{path}.strip", f"strips {route.strip} characters but pattern "
                f"{route.pattern!r} fixes only {fixed}: the stripped part would be digits of "
                f"the number itself, or all of it"))
        if route.route_class != "emergency":
            continue
        caught = [c for c in codes if regex.fullmatch(c)]
        if not caught:
            idx.problems.append(Problem(
                f"{path}.pattern", f"an emergency route whose pattern matches no emergency "
                f"number ({', '.join(codes)})"))
        if not route.enabled:
            idx.problems.append(Problem(
                f"{path}.enabled", "an emergency route cannot be disabled (remove it instead: "
                "emergency calls then go out through any line)"))
        if route.lines and all(k in lines and not lines[k].enabled for k in route.lines):
            idx.problems.append(Problem(
                f"{path}.lines", "every line of this emergency route is disabled"))
    for i, line in enumerate(cfg.lines):
        fmt = line.options.get("dial_format")
        if fmt is not None and fmt not in _DIAL_FORMATS:
            idx.problems.append(Problem(
                f"lines[{i}].options.dial_format",
                f"{fmt!r}: use one of {', '.join(_DIAL_FORMATS)}"))
    regions = any(n.region for n in cfg.numbers)
    for i, rule in enumerate(cfg.caller_id_rules):
        if rule.mode == "callee_region" and not regions:
            idx.problems.append(Problem(
                f"caller_id_rules[{i}].mode", "'callee_region' needs numbers with a `region` "
                "(their area code)"))


def _fixed_length(pattern: str) -> tuple[int, bool]:
    """Characters a dial pattern fixes before its open tail ('.' or '!'), and whether it
    has such a tail (`9.` -> (1, True), `+7XXXXXXXXXX` -> (12, False))."""
    body = pattern.removeprefix("+")
    count = 1 if pattern.startswith("+") else 0
    open_tail = body.endswith((".", "!"))
    if open_tail:
        body = body[:-1]
    depth = 0
    for ch in body:
        if ch == "[":
            depth += 1
            count += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            count += 1
    return count, open_tail
