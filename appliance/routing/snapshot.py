"""An immutable snapshot of everything routing needs: configuration plus live state.

`snapshot_from_config` is pure (a validated BoxConfig in, a Snapshot out); `load_snapshot`
is the only I/O of the routing core: one consistent read of the database. Live facts (who
is registered, busy or ringing, round-robin pointers, idle times, call counts) are passed
in by the caller, because they live in the edge and the runner, not in SQLite.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from ..config.model import DEFAULT_ROUTES, BoxConfig
from ..config.model import Destination as ConfigDestination
from ..config.read import read_config_data
from ..config.types import compile_dial_pattern
from .schedules import DayNight, Override, PublicHolidays, Schedule

K = TypeVar("K")
V = TypeVar("V")
Activity = Literal["idle", "busy", "ringing"]


def frozen_map(items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> Mapping[K, V]:
    """A read-only mapping (a snapshot must not change under a running call)."""
    return MappingProxyType(dict(items))


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Dest:
    """Where a call goes: kind (employee, department, ...), target and a line hint."""

    kind: str
    target: str | None = None
    line: str | None = None

    @classmethod
    def of(cls, dest: ConfigDestination | None) -> Dest | None:
        """The routing copy of a configuration destination."""
        if dest is None:
            return None
        return cls(dest.kind, dest.target, dest.line)

    def __str__(self) -> str:
        """`kind:target`, as the configuration writes it."""
        return self.kind if self.target is None else f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class Employee:
    """An employee as routing sees them."""

    extension: str
    name: str
    devices: tuple[str, ...] = ()  # SIP user names of enabled devices that register
    static: bool = False  # has a device with a static contact (reachable without registering)
    mobiles: tuple[str, ...] = ()
    dnd: bool = False
    ring_mobile_after: int | None = 10
    no_answer_timeout: int = 30
    call_waiting: bool = True
    enabled: bool = True
    voicemail: str | None = None  # key of the voicemail box they own
    allowed_routes: frozenset[str] = frozenset(DEFAULT_ROUTES)  # outbound route classes
    confirm_mobile: bool = False  # a mobile must press 1 before it gets a forwarded call
    administrator: bool = False  # may switch day/night mode from a phone


@dataclass(frozen=True)
class Department:
    """A ring group with its strategy."""

    key: str
    name: str
    extension: str | None = None
    strategy: str = "all_at_once"
    members: tuple[str, ...] = ()
    ring_delay: int = 10
    member_timeout: int = 20
    timeout: int = 60
    ring_busy: bool = False  # call_waiting: ring_busy
    overflow: Dest | None = None


@dataclass(frozen=True)
class VoicemailBox:
    """An answering machine."""

    key: str
    name: str
    extension: str | None = None
    owner: str | None = None
    greeting: str | None = None
    email: tuple[str, ...] = ()
    attach_audio: bool = True
    max_message: int = 180


@dataclass(frozen=True)
class VoiceMenu:
    """An IVR menu."""

    key: str
    name: str = ""
    extension: str | None = None
    greeting: str | None = None
    invalid_greeting: str | None = None
    timeout: int = 5
    invalid_retries: int = 2
    direct_dial: bool = True
    parent: str | None = None
    keys: Mapping[str, Dest] = field(default_factory=_empty)
    default: Dest = Dest("hangup")


@dataclass(frozen=True)
class Queue:
    """A call queue (run by the queue runner; routing only hands calls to it)."""

    key: str
    name: str = ""
    extension: str | None = None
    strategy: str = "longest_idle"
    agents: tuple[str, ...] = ()
    max_wait: int = 300
    skip_waiting: bool = False
    overflow: Dest = Dest("hangup")


@dataclass(frozen=True)
class ChainStep:
    """Ring `to` for `timeout` seconds."""

    to: Dest
    timeout: int


@dataclass(frozen=True)
class Chain:
    """A forwarding chain: steps, then a final destination."""

    key: str
    name: str = ""
    steps: tuple[ChainStep, ...] = ()
    final: Dest = Dest("hangup")


@dataclass(frozen=True)
class Branch:
    """One branch of a call flow."""

    when: str
    to: Dest
    greeting: str | None = None


@dataclass(frozen=True)
class Flow:
    """A call flow: branches by schedule state, first match wins."""

    key: str
    name: str = ""
    schedule: str | None = None
    branches: tuple[Branch, ...] = ()


@dataclass(frozen=True)
class Number:
    """An incoming number and its flow."""

    number: str
    flow: str
    line: str | None = None
    label: str | None = None
    repeat_caller: bool = True
    enabled: bool = True
    region: str | None = None  # area code or region name, for "caller ID of the callee's region"


@dataclass(frozen=True)
class Line:
    """A line as outbound routing sees it (its live state is passed in separately)."""

    key: str
    kind: str  # 'sim', 'sip_trunk', 'fxo_gateway'
    name: str = ""
    enabled: bool = True
    operator: str | None = None
    cost_per_minute: float | None = None
    channels: int = 1
    # How numbers are handed to the line: 'e164', 'national' or 'as_dialled' ('' = the
    # kind's default: E.164 for SIMs, as dialled for trunks and gateways). options.dial_format.
    dial_format: str = ""


@dataclass(frozen=True)
class OutboundRoute:
    """An outbound route: a dial pattern, its class, its lines and how to choose among them."""

    key: str
    pattern: str
    route_class: str
    lines: tuple[str, ...]
    name: str = ""
    line_choice: str = "pattern_order"
    failover: bool = True
    strip: int = 0
    prepend: str = ""
    enabled: bool = True
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Compile the pattern once per snapshot, not once per call."""
        if self.regex is None:
            object.__setattr__(self, "regex", _compiled(self.pattern))

    def matches(self, number: str) -> bool:
        """Whether the whole of `number` matches the route's pattern."""
        return self.regex is not None and self.regex.fullmatch(number) is not None


@dataclass(frozen=True)
class CallerIdRule:
    """Which number the callee sees (first matching rule wins)."""

    mode: str  # line_number, fixed, callee_region, previous_contact, withheld
    pattern: str | None = None
    route: str | None = None
    number: str | None = None
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Compile the pattern once per snapshot."""
        if self.regex is None and self.pattern is not None:
            object.__setattr__(self, "regex", _compiled(self.pattern))


def _compiled(pattern: str) -> re.Pattern[str] | None:
    # A pattern that fails to compile (a hand-edited database) matches nothing.
    try:
        return compile_dial_pattern(pattern)
    except ValueError:
        return None


@dataclass(frozen=True)
class Blocked:
    """A blacklisted number with its mandatory reason."""

    number: str
    reason: str
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class RepeatCaller:
    """Repeat-caller (ICM) settings."""

    enabled: bool = False
    sources: tuple[str, ...] = ("call_history",)
    exceptions: frozenset[str] = frozenset()
    local_area_code: str | None = None
    ring_mobiles: bool = False
    lookback_days: int = 90
    answer_timeout: int = 20
    default: Dest | None = None


@dataclass(frozen=True)
class Webhook:
    """A webhook asked where a call goes."""

    key: str
    url: str
    timeout: int = 10
    enabled: bool = True
    secret: str | None = field(default=None, repr=False)  # signs requests (HMAC-SHA256)


@dataclass(frozen=True)
class MemberState:
    """What the edge and the runner know about an employee right now."""

    activity: Activity = "idle"
    registered: bool = False  # some device holds a live registration
    dnd: bool = False  # switched on from the phone (on top of the configured one)
    idle_since: dt.datetime | None = None  # end of their last call (None: idle for ever)
    last_answer: dt.datetime | None = None
    calls_today: int = 0  # answered calls today, for fewest_calls


@dataclass(frozen=True)
class LiveState:
    """Live facts routing takes as input (never read from a clock or a socket)."""

    members: Mapping[str, MemberState] = field(default_factory=_empty)
    round_robin: Mapping[str, str] = field(default_factory=_empty)  # department -> extension
    backup: bool = False  # degraded: no internet or on battery (flows' backup branch)


@dataclass(frozen=True)
class Snapshot:
    """Everything routing needs, immutable; swapped whole on reload or state change."""

    time_zone: str = "Europe/Moscow"
    country: str = "RU"
    area_code: str | None = None
    day_night: DayNight = "auto"
    employees: Mapping[str, Employee] = field(default_factory=_empty)
    departments: Mapping[str, Department] = field(default_factory=_empty)
    voicemail: Mapping[str, VoicemailBox] = field(default_factory=_empty)
    menus: Mapping[str, VoiceMenu] = field(default_factory=_empty)
    queues: Mapping[str, Queue] = field(default_factory=_empty)
    chains: Mapping[str, Chain] = field(default_factory=_empty)
    flows: Mapping[str, Flow] = field(default_factory=_empty)
    schedules: Mapping[str, Schedule] = field(default_factory=_empty)
    numbers: Mapping[str, Number] = field(default_factory=_empty)
    blacklist: Mapping[str, Blocked] = field(default_factory=_empty)
    webhooks: Mapping[str, Webhook] = field(default_factory=_empty)
    repeat_caller: RepeatCaller = RepeatCaller()
    # Round-robin pointers as stored (departments.rr_last_employee_id); live ones win.
    stored_round_robin: Mapping[str, str] = field(default_factory=_empty)
    live: LiveState = LiveState()
    lines: Mapping[str, Line] = field(default_factory=_empty)  # in configuration order
    outbound_routes: tuple[OutboundRoute, ...] = ()
    caller_id_rules: tuple[CallerIdRule, ...] = ()
    # The box's number each outside party last spoke with (E.164 -> E.164), looked up
    # beforehand from the call history or the CRM; the runner may pass just the callee's.
    previous_contacts: Mapping[str, str] = field(default_factory=_empty)

    def member(self, extension: str) -> MemberState:
        """The live state of an employee (unknown: idle and not registered)."""
        return self.live.members.get(extension, MemberState())

    def last_answerer(self, department: str) -> str | None:
        """Who answered the department's last call (round robin continues after them)."""
        return self.live.round_robin.get(department, self.stored_round_robin.get(department))

    def with_live(self, live: LiveState) -> Snapshot:
        """The same configuration with newer live state."""
        return replace(self, live=live)

    def with_previous_contacts(self, contacts: Mapping[str, str]) -> Snapshot:
        """The same snapshot with previous-contact lookups (callee -> our number) added."""
        return replace(self, previous_contacts=frozen_map({**self.previous_contacts,
                                                           **contacts}))

    def internal_numbers(self) -> frozenset[str]:
        """Every internal number: employees, departments, menus, queues, voicemail boxes."""
        numbers = set(self.employees)
        for items in (self.departments, self.menus, self.queues, self.voicemail):
            numbers.update(x.extension for x in items.values() if x.extension)
        return frozenset(numbers)

    def by_extension(self, extension: str) -> Dest | None:
        """What an internal number reaches (employee, department, menu, queue, mailbox)."""
        employee = self.employees.get(extension)
        if employee is not None:
            return Dest("employee", extension)
        for kind, items in (("department", self.departments), ("voice_menu", self.menus),
                            ("queue", self.queues), ("voicemail", self.voicemail)):
            for item in items.values():
                if getattr(item, "extension", None) == extension:
                    return Dest(kind, item.key)
        return None


# -- from the configuration (pure) -----------------------------------------------------------


def _dest(dest: ConfigDestination | None) -> Dest | None:
    return Dest.of(dest)


def _must(dest: ConfigDestination) -> Dest:
    out = Dest.of(dest)
    assert out is not None
    return out


def snapshot_from_config(cfg: BoxConfig, *, live: LiveState | None = None,
                         years: Iterable[int] = (),
                         override_until: Mapping[str, dt.datetime] | None = None,
                         blacklist_expiry: Mapping[str, dt.datetime] | None = None,
                         round_robin: Mapping[str, str] | None = None,
                         webhook_secrets: Mapping[str, str] | None = None) -> Snapshot:
    """Build a snapshot from a validated configuration.

    `years` are the years whose public holidays are precomputed (others are computed on
    demand); the mappings carry database-only facts the configuration model does not hold.
    """
    public = PublicHolidays.for_years(cfg.box.country, years)
    holiday_sets = {hs.key: {dt.date.fromisoformat(d.date): d.name for d in hs.dates}
                    for hs in cfg.holiday_sets}
    owners = {v.owner: v.key for v in cfg.voicemail_boxes if v.owner is not None}
    until = override_until or {}
    expiry = blacklist_expiry or {}
    return Snapshot(
        time_zone=cfg.box.time_zone,
        country=cfg.box.country,
        day_night=cfg.box.day_night,
        employees=frozen_map((e.extension, Employee(
            extension=e.extension, name=e.name,
            devices=tuple(d.username for d in e.devices
                          if d.enabled and d.static_contact is None),
            static=any(d.enabled and d.static_contact is not None for d in e.devices),
            mobiles=tuple(e.mobiles), dnd=e.dnd, ring_mobile_after=e.ring_mobile_after,
            no_answer_timeout=e.no_answer_timeout, call_waiting=e.call_waiting,
            enabled=e.enabled, voicemail=owners.get(e.extension),
            allowed_routes=frozenset(e.allowed_routes), confirm_mobile=e.confirm_mobile,
            administrator=e.role == "administrator"))
            for e in cfg.employees),
        departments=frozen_map((d.key, Department(
            key=d.key, name=d.name, extension=d.extension, strategy=d.strategy,
            members=tuple(d.members), ring_delay=d.ring_delay, member_timeout=d.member_timeout,
            timeout=d.timeout, ring_busy=d.call_waiting == "ring_busy",
            overflow=_dest(d.overflow)))
            for d in cfg.departments),
        voicemail=frozen_map((v.key, VoicemailBox(
            key=v.key, name=v.name, extension=v.extension, owner=v.owner, greeting=v.greeting,
            email=tuple(v.email), attach_audio=v.attach_audio, max_message=v.max_message))
            for v in cfg.voicemail_boxes),
        menus=frozen_map((m.key, VoiceMenu(
            key=m.key, name=m.name, extension=m.extension, greeting=m.greeting,
            invalid_greeting=m.invalid_greeting, timeout=m.timeout,
            invalid_retries=m.invalid_retries, direct_dial=m.direct_dial, parent=m.parent,
            keys=frozen_map((k, _must(v)) for k, v in m.keys.items()),
            default=_must(m.default)))
            for m in cfg.voice_menus),
        queues=frozen_map((q.key, Queue(
            key=q.key, name=q.name, extension=q.extension, strategy=q.strategy,
            agents=tuple(q.agents), max_wait=q.max_wait, skip_waiting=q.skip_waiting,
            overflow=_must(q.overflow)))
            for q in cfg.queues),
        chains=frozen_map((c.key, Chain(
            key=c.key, name=c.name,
            steps=tuple(ChainStep(_must(s.to), s.timeout) for s in c.steps),
            final=_must(c.final)))
            for c in cfg.forwarding_chains),
        flows=frozen_map((f.key, Flow(
            key=f.key, name=f.name, schedule=f.schedule,
            branches=tuple(Branch(b.when, _must(b.to), b.greeting) for b in f.branches)))
            for f in cfg.flows),
        schedules=frozen_map((s.key, Schedule.build(
            s.key, s.time_zone or cfg.box.time_zone,
            {str(day): periods for day, periods in s.hours.items()},
            dates={dt.date.fromisoformat(d.date): d.hours for d in s.dates},
            notes={dt.date.fromisoformat(d.date): d.note for d in s.dates if d.note},
            holidays={day: name for key in s.holidays
                      for day, name in holiday_sets.get(key, {}).items()},
            public=public, override=_override(s.override), override_until=until.get(s.key)))
            for s in cfg.schedules),
        numbers=frozen_map((n.number, Number(
            number=n.number, flow=n.flow, line=n.line, label=n.label,
            repeat_caller=n.repeat_caller, enabled=n.enabled, region=n.region))
            for n in cfg.numbers),
        blacklist=frozen_map((b.number, Blocked(b.number, b.reason, expiry.get(b.number)))
                             for b in cfg.blacklist),
        webhooks=frozen_map((w.key, Webhook(
            w.key, w.url, w.timeout, w.enabled,
            secret=w.secret.get_secret_value() if w.secret is not None
            else (webhook_secrets or {}).get(w.key)))
            for w in cfg.webhooks),
        repeat_caller=RepeatCaller(
            enabled=cfg.repeat_caller.enabled, sources=tuple(cfg.repeat_caller.sources),
            exceptions=frozenset(cfg.repeat_caller.exceptions),
            local_area_code=cfg.repeat_caller.local_area_code,
            ring_mobiles=cfg.repeat_caller.ring_mobiles,
            lookback_days=cfg.repeat_caller.lookback_days,
            answer_timeout=cfg.repeat_caller.answer_timeout,
            default=_dest(cfg.repeat_caller.default)),
        stored_round_robin=frozen_map(round_robin or {}),
        live=live or LiveState(),
        area_code=cfg.box.area_code,
        lines=frozen_map((line.key, Line(
            key=line.key, kind=line.kind, name=line.name, enabled=line.enabled,
            operator=line.operator, cost_per_minute=line.cost_per_minute,
            channels=1 if line.kind == "sim" else line.channels,
            dial_format=str(line.options.get("dial_format") or "")))
            for line in cfg.lines),
        outbound_routes=tuple(OutboundRoute(
            key=r.key, name=r.name, pattern=r.pattern, route_class=r.route_class,
            line_choice=r.line_choice, lines=tuple(r.lines), failover=r.failover,
            strip=r.strip, prepend=r.prepend, enabled=r.enabled)
            for r in cfg.outbound_routes),
        caller_id_rules=tuple(CallerIdRule(mode=c.mode, pattern=c.pattern, route=c.route,
                                           number=c.number)
                              for c in cfg.caller_id_rules),
    )


def _override(value: str) -> Override:
    return "open" if value == "open" else "closed" if value == "closed" else "auto"


# -- from the database (the only I/O) --------------------------------------------------------


def _timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def load_snapshot(conn: sqlite3.Connection, *, now: dt.datetime,
                  live: LiveState | None = None) -> Snapshot:
    """Read the configuration and stored routing state in one transaction.

    `now` picks the years whose public holidays are precomputed (last year to next year).
    """
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # one consistent snapshot for all the queries
    try:
        data = read_config_data(conn)
        until = {key: ts for key, text in conn.execute(
            "SELECT key, override_until FROM schedules WHERE override_until IS NOT NULL")
            if (ts := _timestamp(text)) is not None}
        expiry = {number: ts for number, text in conn.execute(
            "SELECT number, expires_at FROM blacklist WHERE expires_at IS NOT NULL")
            if (ts := _timestamp(text)) is not None}
        # Secrets are left out of the configuration as read; webhooks need theirs to sign.
        secrets = dict(conn.execute(
            "SELECT key, secret FROM webhooks WHERE secret IS NOT NULL").fetchall())
        pointers = dict(conn.execute(
            "SELECT d.key, e.extension FROM departments d"
            " JOIN employees e ON e.id = d.rr_last_employee_id").fetchall())
    finally:
        if own:
            conn.execute("ROLLBACK")
    cfg = BoxConfig.model_validate(data, context={"from_database": True})
    return snapshot_from_config(cfg, live=live, years=range(now.year - 1, now.year + 2),
                                override_until=until, blacklist_expiry=expiry,
                                round_robin=pointers, webhook_secrets=secrets)
