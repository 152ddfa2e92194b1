"""Outbound routing: what an employee dialled -> the lines to try, in order, with caller IDs.

Pure: the configuration comes in the snapshot, the lines' live state in `line_status` (a
plain mapping the line manager fills), the round-robin pointers in `RotationState`; the plan
says everything the runner needs and returns the new rotation state for it to keep.

The order of decisions in `plan_outbound`:
1. an internal number (an extension, a department ...) is not dialled out: kind `internal`;
2. an emergency number is always allowed, whoever dials it and whatever the routes say, and
   goes out through the lines of the route it matches first, then through every other usable
   line (a SIM without signal last: a GSM modem can still reach 112 on another network);
3. otherwise the first enabled route whose pattern matches (the normalised E.164 form, else
   the digits as dialled) and whose class the employee may use; routes they may not use are
   passed over, and if only such routes match, the call is refused with 403;
4. lines by the route's `line_choice`; lines that are down, busy or without signal are left
   out (with the reason), and the route's `failover` says whether more than one is tried.

`next_attempt` decides, after an attempt failed, whether to try the next line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .numbers import (
    DialledNumber,
    Dialling,
    classify,
    clean,
    national_digits,
    operator_key,
    places_of,
)
from .snapshot import Line, OutboundRoute, Snapshot, frozen_map

OutboundKind = Literal["dial", "internal", "refused", "no_route", "invalid", "no_line"]
# What the box may dial on its own behalf (calls forwarded to staff mobiles): never
# international or premium numbers, whoever typed the "mobile" into the configuration.
BOX_CLASSES = frozenset({"local", "mobile", "long_distance"})
# Classes that cost real money: a route declared for cheaper calls never carries them for
# someone who is not allowed them (a catch-all `X.` route declared `local`, say).
TOLL_CLASSES = frozenset({"international", "premium"})

# Answers that mean the line (or the provider behind it) could not carry the call: another
# line may. 0 is "no answer at all" (transport failure, transaction timeout).
LINE_FAILURES = frozenset({0, 401, 402, 403, 407, 408, 415, 488, 500, 502, 503, 504, 606})
# The caller gave up: nothing more is tried, not even for an emergency call.
CANCELLED = frozenset({487})


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineStatus:
    """A line's live state, read from the plain mapping the line manager reports."""

    up: bool = False
    busy: bool = False  # a SIM line in a call
    free_channels: int | None = None  # trunks and gateways: channels left
    signal: int | None = None  # CSQ 0-31 (99: unknown); 0 and 99 mean no signal
    registered: bool | None = None  # on a network (SIM) / to the provider (trunk)
    known: bool = True  # False: the manager reported nothing for this line

    @classmethod
    def of(cls, raw: object) -> LineStatus:
        """Read a status mapping leniently: missing or odd values count as the safe side."""
        if not isinstance(raw, Mapping):
            return cls(known=False)

        def number(key: str) -> int | None:
            value = raw.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return int(value) if math.isfinite(value) else None

        registered = raw.get("registered")
        return cls(up=raw.get("up") is True, busy=raw.get("busy") is True,
                   free_channels=number("free_channels"), signal=number("signal"),
                   registered=registered if isinstance(registered, bool) else None)

    def problem(self, kind: str, *, emergency: bool = False) -> str | None:
        """Why the line cannot take a new call now (None: it can).

        For an emergency call a SIM line without signal is still usable: a GSM modem reaches
        112 through any network it can hear, registered or not.
        """
        if not self.known:
            return "no status reported"
        if not self.up:
            return "down"
        if self.busy or (self.free_channels is not None and self.free_channels <= 0):
            return "busy"
        no_signal = (kind == "sim" and self.signal is not None
                     and (self.signal <= 0 or self.signal == 99))
        if (no_signal or self.registered is False) and not emergency:
            return "no signal" if kind == "sim" else "not registered"
        return None


@dataclass(frozen=True)
class RotationState:
    """Round-robin pointers: the line each route used last (the runner keeps this)."""

    last: Mapping[str, str] = field(default_factory=frozen_map)

    def used(self, route: str, line: str) -> RotationState:
        """The state after `route` sent a call out through `line`."""
        return RotationState(frozen_map({**self.last, route: line}))


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerId:
    """What the callee sees: a number, the line's own (number None), or nothing (withheld)."""

    mode: str
    number: str | None = None
    withheld: bool = False
    why: str = ""


@dataclass(frozen=True)
class Attempt:
    """One try: dial `number` on `line`, presenting `caller_id`."""

    line: str
    number: str
    caller_id: CallerId
    why: str = ""


@dataclass(frozen=True)
class OutboundPlan:
    """An outbound decision. `attempts[position]` is the one to dial now."""

    kind: OutboundKind
    dialled: str
    caller: str | None
    number: DialledNumber  # the callee as classified (after strip/prepend)
    route: str | None = None
    route_class: str | None = None  # the route's declared class
    attempts: tuple[Attempt, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (line, why it is not tried)
    failover: bool = True
    position: int = 0
    sip_code: int | None = None  # the answer to the desk phone when nothing is dialled
    reason: str = ""
    rotation: RotationState = field(default_factory=RotationState)
    why: tuple[str, ...] = ()

    @property
    def emergency(self) -> bool:
        """True for an emergency call."""
        return self.number.emergency

    @property
    def current(self) -> Attempt | None:
        """The attempt to dial now (None when there is nothing to dial)."""
        if self.kind != "dial" or self.position >= len(self.attempts):
            return None
        return self.attempts[self.position]


@dataclass(frozen=True)
class NextAttempt:
    """After a failed attempt: try `plan.current` (retry) or answer the caller `sip_code`."""

    retry: bool
    plan: OutboundPlan
    sip_code: int | None
    reason: str


# -- planning --------------------------------------------------------------------------------


def plan_outbound(dialled: str, caller: str | None, snapshot: Snapshot,
                  line_status: Mapping[str, Any], state: RotationState | None = None, *,
                  as_box: bool = False) -> OutboundPlan:
    """The plan for a call an employee (`caller`, an extension) dialled.

    With `as_box` the box places the call itself (a call forwarded to a staff mobile): the
    employee's own permissions do not apply, the box's do (`BOX_CLASSES`).
    """
    rotation = state or RotationState()
    dialling = Dialling(snapshot.country, snapshot.area_code)
    raw = clean(dialled)
    internal = frozenset() if as_box else snapshot.internal_numbers()
    first = classify(raw, dialling, internal)
    base = OutboundPlan(kind="invalid", dialled=raw, caller=caller, number=first,
                        rotation=rotation)
    if not raw:
        return replace(base, sip_code=484, reason="not a number a phone can dial",
                       why=(f"dialled {dialled!r}: not a number",))
    if first.emergency:
        return _emergency(base, raw, snapshot, line_status, dialling)
    allowed, who = _allowed(caller, snapshot, as_box)
    if first.route_class == "internal":
        if "internal" not in allowed:
            return _refused(base, f"{who} may not make internal calls")
        return replace(base, kind="internal", route_class="internal",
                       reason="an internal number", why=(f"{raw}: an internal number",))
    matches = _matches(snapshot.outbound_routes, raw, first)
    for route, form in matches:
        # The exit prefix goes (strip); what the line needs comes in front (prepend).
        stripped = form[route.strip:]
        callee = _callee(stripped, route.prepend + stripped, dialling)
        if callee.emergency:
            return _emergency(base, callee.dialled, snapshot, line_status, dialling)
        needed = {route.route_class}
        if callee.route_class in TOLL_CLASSES:
            needed.add(callee.route_class)
        if not needed <= allowed:
            continue
        return _dial(replace(base, number=callee), route, route.prepend + stripped, snapshot,
                     line_status, dialling)
    if matches:
        route, form = matches[0]
        callee = _callee(form[route.strip:], route.prepend + form[route.strip:], dialling)
        classes = sorted({route.route_class}
                         | ({callee.route_class} if callee.route_class in TOLL_CLASSES
                            else set()))
        missing = [c for c in classes if c not in allowed]
        return _refused(replace(base, number=callee, route=route.key),
                        f"{who} may not call {', '.join(missing)} numbers "
                        f"({raw}: {callee.why}; route {route.key})")
    if first.route_class is None:
        # Most likely still being dialled (a phone that sends after a pause): 484 lets a
        # phone with overlap dialling ask for more digits.
        return replace(base, kind="no_route", sip_code=484, reason=f"{raw}: {first.why}",
                       why=(f"{raw}: {first.why}, no route matches",))
    return replace(base, kind="no_route", sip_code=404, reason=f"no outbound route for {raw}",
                   why=(f"{raw}: {first.why}, no route matches",))


def _allowed(caller: str | None, snapshot: Snapshot, as_box: bool) -> tuple[frozenset[str], str]:
    if as_box:
        return BOX_CLASSES, "the box"
    employee = snapshot.employees.get(caller or "")
    if employee is None or not employee.enabled:
        return frozenset(), f"caller {caller or 'unknown'} (not an active employee)"
    return employee.allowed_routes, f"employee {employee.extension}"


def _refused(base: OutboundPlan, reason: str) -> OutboundPlan:
    return replace(base, kind="refused", sip_code=403, reason=reason, why=(reason,))


def _callee(stripped: str, dialled: str, dialling: Dialling) -> DialledNumber:
    # What the user meant is the number without the exit prefix; the prepended form is
    # only read when that says nothing (a prepend that supplies the area code, say).
    meant = classify(stripped, dialling)
    if meant.route_class is not None:
        return meant
    return classify(dialled, dialling)


def _matches(routes: tuple[OutboundRoute, ...], raw: str,
             number: DialledNumber) -> list[tuple[OutboundRoute, str]]:
    """Enabled routes matching the E.164 form (docs: numbers are normalised first) or the
    digits as dialled (prefix patterns such as `9.` with `strip: 1`), in route order."""
    forms = [f for f in (number.e164, raw) if f]
    found = []
    for route in routes:
        if not route.enabled:
            continue
        form = next((f for f in forms if route.matches(f)), None)
        if form is not None:
            found.append((route, form))
    return found


def _dial(base: OutboundPlan, route: OutboundRoute, dialled: str, snap: Snapshot,
          line_status: Mapping[str, Any], dialling: Dialling) -> OutboundPlan:
    callee = base.number
    order, how = order_lines(route, snap, callee.operator, base.rotation)
    attempts: list[Attempt] = []
    skipped: list[tuple[str, str]] = []
    for key in order:
        line = snap.lines.get(key)
        if line is None or not line.enabled:
            skipped.append((key, "not configured" if line is None else "disabled"))
            continue
        problem = LineStatus.of(line_status.get(key)).problem(line.kind)
        if problem is not None:
            skipped.append((key, problem))
            continue
        caller_id = choose_caller_id(snap, route.key, base.dialled, callee, line)
        attempts.append(Attempt(key, line_number(line, dialled, callee, dialling), caller_id,
                                why=f"route {route.key}: {how}"))
    if not route.failover:
        attempts = attempts[:1]
    why = (f"{base.dialled}: {callee.why}", f"route {route.key} ({route.route_class}): {how}",
           *(f"line {k} skipped: {r}" for k, r in skipped))
    plan = replace(base, route=route.key, route_class=route.route_class,
                   attempts=tuple(attempts), skipped=tuple(skipped), failover=route.failover,
                   why=why)
    if not attempts:
        return replace(plan, kind="no_line", sip_code=503,
                       reason=f"no line of route {route.key} can take the call now")
    rotation = base.rotation.used(route.key, attempts[0].line)
    return replace(plan, kind="dial", rotation=rotation, reason=f"route {route.key}")


def order_lines(route: OutboundRoute, snap: Snapshot, operator: str | None,
                rotation: RotationState) -> tuple[list[str], str]:
    """The route's lines in the order its `line_choice` tries them, and why."""
    lines = list(route.lines)
    choice = route.line_choice
    if choice == "same_operator":
        if operator is None:
            return lines, "callee's operator unknown: lines in route order"
        same = [k for k in lines if _line_operator(snap, k) == operator]
        rest = [k for k in lines if k not in same]
        # Operator data says where the number was issued; ported numbers make it a hint.
        return same + rest, f"callee's operator {operator} first"
    if choice == "least_cost":
        def cost(item: tuple[int, str]) -> tuple[bool, float, int]:
            line = snap.lines.get(item[1])
            price = line.cost_per_minute if line is not None else None
            return price is None, price or 0.0, item[0]
        return [k for _, k in sorted(enumerate(lines), key=cost)], "cheapest line first"
    if choice == "round_robin":
        last = rotation.last.get(route.key)
        if last in lines:
            start = lines.index(last) + 1
            lines = lines[start:] + lines[:start]
            return lines, f"round robin after {last}"
        return lines, "round robin from the first line"
    return lines, "lines in route order"


def _line_operator(snap: Snapshot, key: str) -> str | None:
    line = snap.lines.get(key)
    return operator_key(line.operator) if line is not None else None


def line_number(line: Line, dialled: str, callee: DialledNumber, dialling: Dialling) -> str:
    """What `line` is given to dial: E.164 on SIM lines by default (a mobile network knows
    no local numbers), the route's result as is on trunks and gateways (strip/prepend shape
    it for the provider), or what the line's `dial_format` option asks for."""
    fmt = line.dial_format or ("e164" if line.kind == "sim" else "as_dialled")
    if callee.e164 is None or callee.emergency or fmt == "as_dialled":
        return dialled
    if fmt == "national":
        return national_digits(callee.e164, dialling)
    return callee.e164


# -- emergency -------------------------------------------------------------------------------


def _emergency(base: OutboundPlan, code: str, snap: Snapshot, line_status: Mapping[str, Any],
               dialling: Dialling) -> OutboundPlan:
    number = classify(code, dialling)
    routes = [r for r, _ in _matches(snap.outbound_routes, code, number)]
    # A route declared for emergency calls wins over a broader route that also matches.
    route = next((r for r in routes if r.route_class == "emergency"), None)
    route = route or (routes[0] if routes else None)
    first = list(route.lines) if route is not None else []
    order = first + [k for k in snap.lines if k not in first]
    ready: list[Attempt] = []
    weak: list[Attempt] = []  # SIMs without signal: tried last
    skipped: list[tuple[str, str]] = []
    for key in order:
        line = snap.lines.get(key)
        if line is None or not line.enabled:
            skipped.append((key, "not configured" if line is None else "disabled"))
            continue
        status = LineStatus.of(line_status.get(key))
        problem = status.problem(line.kind, emergency=True)
        if problem is not None:
            skipped.append((key, problem))
            continue
        # Emergency services must see who calls: never withheld, whatever the rules say.
        attempt = Attempt(key, code, CallerId("line_number", _own_number(snap, key),
                                              why="emergency calls always show the number"),
                          why="emergency: " + (f"route {route.key}" if route and key in first
                                               else "any usable line"))
        weak_signal = status.problem(line.kind) is not None
        (weak if weak_signal else ready).append(attempt)
    attempts = tuple(ready + weak)
    why = (f"{code}: an emergency number, always allowed",
           *(f"line {k} skipped: {r}" for k, r in skipped))
    plan = replace(base, number=number, route=route.key if route else None,
                   route_class="emergency", attempts=attempts, skipped=tuple(skipped),
                   failover=True, why=why)
    if not attempts:
        return replace(plan, kind="no_line", sip_code=503,
                       reason="no line can take an emergency call now")
    return replace(plan, kind="dial", reason="emergency call")


# -- caller ID -------------------------------------------------------------------------------


def _own_number(snap: Snapshot, line: str) -> str | None:
    numbers = sorted(n.number for n in snap.numbers.values() if n.line == line and n.enabled)
    return numbers[0] if numbers else None


def choose_caller_id(snap: Snapshot, route: str | None, dialled: str, callee: DialledNumber,
                     line: Line) -> CallerId:
    """The caller ID for one attempt, by the first matching `caller_id_rules` entry.

    A rule matches when its `route` is the route used and its `pattern` matches the number as
    dialled or in E.164. A SIM line always presents its own number (GSM lets us withhold it,
    not choose another), so on SIMs only `withheld` differs from `line_number`. A trunk may
    present any of its own numbers; a wanted number that is not one of the line's falls back
    to the line's own.
    """
    forms = [f for f in (dialled, callee.e164) if f]
    rule = next((r for r in snap.caller_id_rules
                 if (r.route is None or r.route == route)
                 and (r.pattern is None or any(r.regex is not None and r.regex.fullmatch(f)
                                               for f in forms))), None)
    own = _own_number(snap, line.key)
    if rule is None:
        return CallerId("line_number", own, why="no caller ID rule: the line's own number")
    if rule.mode == "withheld":
        return CallerId("withheld", None, withheld=True, why="rule: withheld")
    if rule.mode == "line_number":
        return CallerId("line_number", own, why="rule: the line's own number")
    if line.kind == "sim":
        return CallerId(rule.mode, own, why=f"rule {rule.mode}: a SIM line shows its own number")
    if rule.mode == "fixed":
        return CallerId("fixed", rule.number, why="rule: a fixed number")
    wanted: str | None
    if rule.mode == "previous_contact":
        wanted = snap.previous_contacts.get(callee.e164 or "")
        what = "the number they spoke with before"
    else:
        wanted = _regional(snap, line.key, callee)
        what = "a number in the callee's region"
    mine = {n.number for n in snap.numbers.values() if n.line == line.key and n.enabled}
    if wanted is not None and wanted in mine:
        return CallerId(rule.mode, wanted, why=f"rule {rule.mode}: {what}")
    return CallerId(rule.mode, own, why=f"rule {rule.mode}: no {what} on line {line.key}; "
                                        f"the line's own number")


def _regional(snap: Snapshot, line: str, callee: DialledNumber) -> str | None:
    nsn = callee.national
    places: set[str] | None = None  # looked up once, only if a region is named by name
    for n in sorted(snap.numbers.values(), key=lambda n: n.number):
        if n.line != line or not n.enabled or not n.region:
            continue
        region = n.region.strip()
        if region.isdigit():
            if (nsn is not None and nsn.startswith(region)) or region == callee.area:
                return n.number
            continue
        if places is None:
            places = {p.casefold() for p in callee.places or places_of(callee.e164)}
        if region.casefold() in places:
            return n.number
    return None


# -- failover --------------------------------------------------------------------------------


def next_attempt(plan: OutboundPlan, failed_code: int, *, local: bool = False) -> NextAttempt:
    """After the current attempt failed with `failed_code`: try the next line or give up.

    `local` says the line itself refused before reaching the network (busy with another
    call, no signal, no free channel): always worth the next line. Otherwise line and
    provider failures (`LINE_FAILURES`: 503, 408, 500, 403 from the provider ...) fail
    over, and answers about the callee do not: busy (486, 600), no answer or unreachable
    (480), wrong number (404, 484), declined (603). A busy callee is busy whichever line
    calls them, so a far-end 486 ends the call with busy at once instead of holding more
    lines and delaying the tone. An emergency call tries the next line after anything but
    the caller hanging up (487).
    """
    if plan.current is None:
        return NextAttempt(False, plan, plan.sip_code or failed_code or 503,
                           "nothing is being dialled")
    line = plan.current.line
    if failed_code in CANCELLED:
        return NextAttempt(False, plan, failed_code, "the caller hung up")
    retry = local or failed_code in LINE_FAILURES or plan.emergency
    answer = 503 if local or failed_code == 0 else failed_code
    if not retry:
        return NextAttempt(False, plan, answer,
                           f"{failed_code} from the far end on line {line}: not a line problem")
    if not (plan.failover or plan.emergency):
        return NextAttempt(False, plan, answer, f"line {line} failed; route has no failover")
    position = plan.position + 1
    if position >= len(plan.attempts):
        return NextAttempt(False, replace(plan, position=position), answer,
                           f"line {line} failed ({failed_code}); no line left to try")
    nxt = plan.attempts[position]
    rotation = plan.rotation
    if plan.route is not None and not plan.emergency:
        rotation = rotation.used(plan.route, nxt.line)
    advanced = replace(plan, position=position, rotation=rotation)
    return NextAttempt(True, advanced, None,
                       f"line {line} failed ({failed_code}); trying line {nxt.line}")
