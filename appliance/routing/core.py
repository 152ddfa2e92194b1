"""Routing decisions: `route` turns a call and a snapshot into a plan, `start` and `next_step`
move a call through it as the runner reports events. Pure: no I/O, no clock, no timers.

Expansion follows the configuration: a destination becomes steps whose failures continue
with `after`, the step the enclosing destination would take next (a chain's next step, a
department's overflow, the employee's voicemail...). At the top of a flow `after` is a
Hangup that counts as missed, so even a misconfigured box ends every call somewhere defined.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .departments import availability, member_legs, ordered, timetable, unavailable
from .plan import (
    Answered,
    Busy,
    Callback,
    CallContext,
    CallerHungUp,
    Done,
    Event,
    Failed,
    Fax,
    Greeting,
    Hangup,
    Hop,
    KeyPressed,
    Leg,
    Menu,
    NoAnswer,
    Outcome,
    Plan,
    PlanState,
    PlayAndHangup,
    Played,
    Queue,
    Reject,
    Ring,
    Skip,
    Step,
    Terminal,
    Voicemail,
    Webhook,
    WebhookReplied,
    Why,
)
from .repeat_callers import find_manager, full_number
from .schedules import status
from .snapshot import Branch, Dest, Flow, Number, Snapshot, frozen_map

# Seconds an outside number or SIP URI rings when nothing else says how long.
OUTSIDE_TIMEOUT = 30
# Guard against configurations that skipped validation (e.g. a hand-edited database).
_MAX_DEPTH = 24
_LOOPING = frozenset({"flow", "chain", "department", "queue", "voice_menu"})
_CLOSED_BRANCHES = frozenset({"closed", "holiday"})


@dataclass(frozen=True)
class _Scope:
    """What expansion knows besides the destination: the call, the snapshot, where we are."""

    call: CallContext
    snap: Snapshot
    flow: str | None = None
    branch: str | None = None
    seen: tuple[tuple[str, str], ...] = ()  # looping kinds entered on this path

    def why(self, rule: str, step: str) -> Why:
        """A route explanation in this scope."""
        return Why(self.flow, self.branch, rule, step)

    def enter(self, kind: str, key: str) -> _Scope | None:
        """This scope inside `kind:key`; None if that would loop."""
        if (kind, key) in self.seen or len(self.seen) >= _MAX_DEPTH:
            return None
        return replace(self, seen=(*self.seen, (kind, key)))

    def loop(self, dest: Dest) -> Hangup:
        """The end of a path that came back to where it started."""
        path = " -> ".join(f"{k}:{v}" for k, v in self.seen)
        return Hangup(why=self.why(f"routing loop: {path} -> {dest}", "hang up"),
                      reason="routing loop", missed_reason="failed")


# -- planning --------------------------------------------------------------------------------


def route(call: CallContext, snap: Snapshot) -> Plan:
    """The plan for a call: blacklist first, then repeat-caller routing, then the flow."""
    scope = _Scope(call, snap)
    if call.direction == "internal":
        return Plan(call, _internal(scope))
    caller = full_number(call.caller, None)
    blocked = snap.blacklist.get(caller)
    if blocked is not None and (blocked.expires_at is None or call.now < blocked.expires_at):
        return Plan(call, Reject(
            why=scope.why(f"blacklist: {caller}", f"reject: {blocked.reason}"),
            reason=blocked.reason, sip_code=403, missed_reason="blacklisted"))
    number = _number(call, snap)
    if number is None:
        return Plan(call, Reject(why=scope.why(f"no number {call.dialled}", "reject"),
                                 reason="no call flow for this number", sip_code=404,
                                 missed_reason="failed"))
    if not number.enabled:
        return Plan(call, Reject(why=scope.why(f"number {number.number} is disabled", "reject"),
                                 reason="number disabled", sip_code=480, missed_reason="failed"))
    normal = _flow(number.flow, None, scope, f"number {number.number}")
    if snap.repeat_caller.enabled and number.repeat_caller:
        return Plan(call, _repeat_caller(replace(scope, flow=number.flow), normal))
    return Plan(call, normal)


def _number(call: CallContext, snap: Snapshot) -> Number | None:
    dialled = full_number(call.dialled, None)
    if dialled in snap.numbers:
        return snap.numbers[dialled]
    # SIM lines and some trunks do not say which number was dialled: the line tells.
    on_line = [n for n in snap.numbers.values() if call.line and n.line == call.line]
    return on_line[0] if on_line else None


def _internal(scope: _Scope) -> Step:
    dialled = scope.call.dialled
    dest = scope.snap.by_extension(dialled)
    if dest is None:
        return Reject(why=scope.why(f"internal call to {dialled}", "reject: unknown number"),
                      reason="no such extension", sip_code=404)
    end = Hangup(why=scope.why("nothing left to try", "hang up"), reason="nobody answered",
                 missed_reason="no_answer")
    return expand(dest, end, scope, f"internal call to {dialled}")


def _end_of_flow(scope: _Scope) -> Hangup:
    missed = "after_hours" if scope.branch in _CLOSED_BRANCHES else "no_answer"
    return Hangup(why=scope.why("end of the flow: nothing left to try", "hang up"),
                  reason="nobody answered", missed_reason=missed)


def _flow(key: str | None, after: Step | None, scope: _Scope, rule: str) -> Step:
    flow = scope.snap.flows.get(key or "")
    inner = scope.enter("flow", key or "")
    if inner is None:
        return scope.loop(Dest("flow", key))
    if flow is None:
        return _missing(Dest("flow", key), after or _end_of_flow(scope), scope, rule)
    state, text = _flow_state(flow, scope)
    branch = _pick(flow, state)
    inner = replace(inner, flow=flow.key, branch=branch.when if branch else None)
    end = after if after is not None else _end_of_flow(inner)
    if branch is None:
        return Skip(why=inner.why(f"{rule}; {text}", "no branch"),
                    reason=f"flow {flow.key} has no branch for '{state}'", then=end)
    rule = f"{rule}; {text}"
    target = expand(branch.to, end, inner, rule)
    if branch.greeting:
        return Greeting(why=inner.why(rule, f"play greeting {branch.greeting}"),
                        prompt=branch.greeting, then=target)
    return target


def _flow_state(flow: Flow, scope: _Scope) -> tuple[str, str]:
    snap = scope.snap
    if snap.live.backup and any(b.when == "backup" for b in flow.branches):
        return "backup", "backup mode (no internet or on battery)"
    schedule = snap.schedules.get(flow.schedule or "")
    if schedule is None:
        return "always", "no schedule"
    found = status(schedule, scope.call.now, snap.day_night)
    return found.state, f"schedule {schedule.key} {found.state}: {found.why}"


def _pick(flow: Flow, state: str) -> Branch | None:
    preferences = {"holiday": ("holiday", "closed"), "backup": ("backup",)}.get(state, (state,))
    for wanted in (*preferences, "always"):
        for branch in flow.branches:
            if branch.when == wanted:
                return branch
    return None


def expand(dest: Dest, after: Step, scope: _Scope, rule: str, *, cap: int | None = None,
           in_chain: bool = False) -> Step:
    """The steps that send a call to `dest`, continuing with `after` if it is not taken.

    `cap` limits how long it rings (a chain step's timeout); inside a chain the chain says
    what comes next, so an employee's own voicemail is not used there.
    """
    kind, target = dest.kind, dest.target or ""
    if kind in _LOOPING and (kind, target) in scope.seen:
        return scope.loop(dest)
    if kind == "employee":
        return _ring_employee(target, after, scope, rule, cap=cap, in_chain=in_chain)
    if kind == "department":
        return _ring_department(target, after, scope, rule, cap=cap, in_chain=in_chain)
    if kind == "voice_menu":
        return _menu(target, after, scope, rule)
    if kind == "queue":
        return _queue(target, after, scope, rule, cap=cap)
    if kind == "voicemail":
        return _voicemail(target, after, scope, rule)
    if kind == "flow":
        return _flow(target, after, scope, rule)
    if kind == "chain":
        return _chain(target, after, scope, rule)
    if kind in ("external", "sip_uri"):
        return _ring_outside(dest, after, scope, rule, cap=cap)
    if kind == "webhook":
        hook = scope.snap.webhooks.get(target)
        if hook is None or not hook.enabled:
            return _missing(dest, after, scope, rule)
        return Webhook(why=scope.why(rule, f"ask webhook {target}"), webhook=target,
                       url=hook.url, timeout=hook.timeout, on_failure=after)
    if kind == "fax":
        return Fax(why=scope.why(rule, "receive a fax"), email=dest.target)
    if kind == "callback":
        return Callback(why=scope.why(rule, "take a callback request"))
    return Hangup(why=scope.why(rule, "hang up"), reason="hangup destination")


def _missing(dest: Dest, after: Step, scope: _Scope, rule: str) -> Step:
    return Skip(why=scope.why(rule, f"go to {dest}"), reason=f"{dest} does not exist or is "
                f"disabled", then=after)


def _ring_employee(extension: str, after: Step, scope: _Scope, rule: str, *,
                   cap: int | None, in_chain: bool) -> Step:
    snap = scope.snap
    employee = snap.employees.get(extension)
    if employee is None or not employee.enabled:
        return _missing(Dest("employee", extension), after, scope, rule)
    fallback = after
    box = employee.voicemail
    if not in_chain and box is not None and box in snap.voicemail:
        fallback = _voicemail(box, after, scope, f"employee {extension} did not answer")
    state = snap.member(extension)
    why = scope.why(rule, f"ring employee {extension} ({employee.name})")
    reason = unavailable(employee, state, ring_busy=True)
    timeout = cap if cap is not None else employee.no_answer_timeout
    desk, mobile_after = True, employee.ring_mobile_after
    if reason == "not registered":
        # The desk phone is offline: no point waiting for it before the mobiles.
        desk, mobile_after = False, (0 if employee.ring_mobile_after is not None else None)
    elif reason is not None:
        return Skip(why=why, reason=f"employee {extension}: {reason}", then=fallback)
    legs = member_legs(employee, 0.0, float(timeout), busy=state.activity == "busy",
                       desk=desk, mobile_after=mobile_after)
    if not legs:
        return Skip(why=why, reason=f"employee {extension}: not registered and no mobile",
                    then=fallback)
    return Ring(why=why, target=f"employee:{extension}", strategy="direct", legs=tuple(legs),
                timeout=float(timeout), on_no_answer=fallback, on_busy=fallback,
                on_failure=fallback)


def _ring_department(key: str, after: Step, scope: _Scope, rule: str, *,
                     cap: int | None, in_chain: bool) -> Step:
    snap = scope.snap
    dept = snap.departments.get(key)
    inner = scope.enter("department", key)
    if inner is None:
        return scope.loop(Dest("department", key))
    if dept is None:
        return _missing(Dest("department", key), after, scope, rule)
    overflow = after
    if dept.overflow is not None:
        overflow = expand(dept.overflow, after, inner, f"department {key} overflow")
    total = dept.timeout if cap is None else min(cap, dept.timeout)
    no_answer = busy = overflow
    if in_chain:
        # In a chain the next step follows; the overflow only when the department's own
        # timeout runs out first (the documented meaning of `overflow`).
        busy = after
        no_answer = overflow if cap is not None and dept.timeout < cap else after
    candidates, skipped = availability(dept, snap)
    order = ordered(dept, candidates, snap, scope.call.seed)
    names = ", ".join(c.employee.extension for c in order) or "nobody"
    why = scope.why(rule, f"ring department {key} ({dept.strategy}: {names})")
    legs = timetable(dept, order, float(total))
    if not legs:
        detail = "; ".join(skipped) or "no members"
        return Skip(why=why, reason=f"department {key}: nobody can take the call ({detail})",
                    then=busy)
    return Ring(why=why, target=f"department:{key}", strategy=dept.strategy, legs=legs,
                timeout=float(total), skipped=tuple(skipped), on_no_answer=no_answer,
                on_busy=busy, on_failure=busy)


def _ring_outside(dest: Dest, after: Step, scope: _Scope, rule: str, *,
                  cap: int | None) -> Step:
    timeout = float(cap if cap is not None else OUTSIDE_TIMEOUT)
    leg = Leg("external" if dest.kind == "external" else "sip_uri", dest.target or "", 0.0,
              timeout, line=dest.line)
    via = f" via {dest.line}" if dest.line else ""
    return Ring(why=scope.why(rule, f"call {dest.target}{via}"), target=str(dest),
                strategy="direct", legs=(leg,), timeout=timeout, on_no_answer=after,
                on_busy=after, on_failure=after)


def _menu(key: str, after: Step, scope: _Scope, rule: str) -> Step:
    snap = scope.snap
    menu = snap.menus.get(key)
    inner = scope.enter("voice_menu", key)
    if inner is None:
        return scope.loop(Dest("voice_menu", key))
    if menu is None:
        return _missing(Dest("voice_menu", key), after, scope, rule)
    keys = dict(menu.keys)
    if menu.parent and "*" not in keys and menu.parent in snap.menus:
        keys["*"] = Dest("voice_menu", menu.parent)  # "back" to the menu above
    default = expand(menu.default, after, inner, f"menu {key}: default")
    return Menu(why=scope.why(rule, f"voice menu {key}"), menu=key, prompt=menu.greeting,
                invalid_prompt=menu.invalid_greeting, timeout=menu.timeout,
                retries=menu.invalid_retries, keys=frozen_map(keys),
                direct_dial=menu.direct_dial, default=default, after=after)


def _queue(key: str, after: Step, scope: _Scope, rule: str, *, cap: int | None) -> Step:
    queue = scope.snap.queues.get(key)
    inner = scope.enter("queue", key)
    if inner is None:
        return scope.loop(Dest("queue", key))
    if queue is None:
        return _missing(Dest("queue", key), after, scope, rule)
    overflow = after if cap is not None else expand(queue.overflow, after, inner,
                                                    f"queue {key} overflow")
    return Queue(why=scope.why(rule, f"queue {key}"), queue=key, overflow=overflow)


def _voicemail(key: str, after: Step, scope: _Scope, rule: str) -> Step:
    box = scope.snap.voicemail.get(key)
    if box is None:
        return _missing(Dest("voicemail", key), after, scope, rule)
    return Voicemail(why=scope.why(rule, f"voicemail {key}"), box=key, greeting=box.greeting,
                     max_message=box.max_message, email=box.email,
                     attach_audio=box.attach_audio)


def _chain(key: str, after: Step, scope: _Scope, rule: str) -> Step:
    chain = scope.snap.chains.get(key)
    inner = scope.enter("chain", key)
    if inner is None:
        return scope.loop(Dest("chain", key))
    if chain is None:
        return _missing(Dest("chain", key), after, scope, rule)
    count = len(chain.steps)
    step = expand(chain.final, after, inner, f"chain {key}: final")
    for i in reversed(range(count)):
        item = chain.steps[i]
        text = f"chain {key}: step {i + 1}/{count} ({item.timeout} s)"
        step = expand(item.to, step, inner, f"{rule}; {text}" if i == 0 else text,
                      cap=item.timeout, in_chain=True)
    return step


def _repeat_caller(scope: _Scope, normal: Step) -> Step:
    snap, call = scope.snap, scope.call
    settings = snap.repeat_caller
    fact, notes = find_manager(settings, call.managers, snap, call.now)
    passed = f" ({'; '.join(notes)})" if notes else ""
    if fact is None:
        if settings.default is not None:
            return expand(settings.default, normal, scope,
                          f"repeat caller: no manager found{passed}; default destination")
        return Skip(why=scope.why("repeat caller", "look for the caller's manager"),
                    reason=f"no manager found{passed}", then=normal)
    extension = fact.extension
    employee = snap.employees[extension]
    state = snap.member(extension)
    why = scope.why(f"repeat caller: {fact.source} says {extension}",
                    f"ring manager {extension} ({employee.name})")
    mobile_after: int | None = None
    if settings.ring_mobiles:
        mobile_after = employee.ring_mobile_after if employee.ring_mobile_after is not None else 0
    desk = True
    # A busy manager sends the call back to the flow at once (call waiting or not): someone
    # free now is better than a sticky call waiting behind another conversation.
    reason = unavailable(employee, state, ring_busy=False)
    if reason == "not registered" and mobile_after is not None and employee.mobiles:
        desk, mobile_after = False, 0
    elif reason is not None:
        return Skip(why=why, reason=f"manager {extension}: {reason}; back to the flow",
                    then=normal)
    timeout = float(settings.answer_timeout)
    legs = member_legs(employee, 0.0, timeout, desk=desk, mobile_after=mobile_after)
    return Ring(why=why, target=f"employee:{extension}", strategy="repeat_caller",
                legs=tuple(legs), timeout=timeout, on_no_answer=normal, on_busy=normal,
                on_failure=normal)


# -- moving through a plan -------------------------------------------------------------------


def start(plan: Plan, snap: Snapshot) -> PlanState:
    """The state at the first step that needs the runner (skipped steps go to the trail)."""
    return _arrive(PlanState(plan, snap, None), plan.root)


def next_step(state: PlanState, event: Event) -> PlanState:
    """The state after the runner reports `event` for the current step.

    Events that do not apply to the current step leave the state unchanged, so a late or
    duplicate event from the runner is harmless.
    """
    step = state.step
    if state.finished or step is None:
        return state
    if isinstance(step, Terminal):
        return _finish(state, _ended(event), _terminal_outcome(step, state, event))
    if isinstance(event, CallerHungUp):
        where = "abandoned_in_queue" if isinstance(step, Queue) else "no_answer"
        return _finish(state, "caller hung up", Outcome(
            "abandoned", f"caller hung up during: {step.why.step}", missed_reason=where))
    if isinstance(step, Ring | Queue) and isinstance(event, Answered):
        return _finish(state, f"answered by {event.by}",
                       Outcome("answered", f"answered by {event.by}", by=event.by))
    if isinstance(step, Ring):
        return _after_ring(state, step, event)
    if isinstance(step, Greeting):
        if isinstance(event, Played | Done | Failed | NoAnswer):
            return _go(state, _ended(event), step.then)
        return state
    if isinstance(step, Menu):
        return _after_menu(state, step, event)
    if isinstance(step, Queue):
        if isinstance(event, NoAnswer | Busy | Failed):
            return _go(state, _ended(event), step.overflow)
        return state
    if isinstance(step, Webhook):
        if isinstance(event, WebhookReplied) and event.destination is not None:
            target = expand(event.destination, step.on_failure, _scope_of(state, step),
                            f"webhook {step.webhook} replied {event.destination}")
            return _go(state, f"replied {event.destination}", target)
        if isinstance(event, WebhookReplied | NoAnswer | Failed):
            return _go(state, _ended(event), step.on_failure)
    return state


def _after_ring(state: PlanState, step: Ring, event: Event) -> PlanState:
    if isinstance(event, NoAnswer):
        return _go(state, f"no answer within {step.timeout:g} s", step.on_no_answer)
    if isinstance(event, Busy):
        return _go(state, "busy", step.on_busy)
    if isinstance(event, Failed):
        return _go(state, _ended(event), step.on_failure)
    return state


def _after_menu(state: PlanState, step: Menu, event: Event) -> PlanState:
    if isinstance(event, NoAnswer):
        return _go(state, f"no key within {step.timeout} s", step.default)
    if isinstance(event, Failed):
        return _go(state, _ended(event), step.default)
    if not isinstance(event, KeyPressed):
        return state
    digits = event.digits
    scope = _scope_of(state, step)
    dest = step.keys.get(digits)
    rule = f"menu {step.menu}: key {digits}"
    if dest is None and step.direct_dial:
        dest = state.snapshot.by_extension(digits)
        rule = f"menu {step.menu}: dialled {digits}"
    if dest is not None:
        return _go(state, f"key {digits}", expand(dest, step.after, scope, rule))
    tries = state.invalid_keys + 1
    if tries > step.retries:
        return _go(state, f"invalid key {digits} ({tries} times)", step.default)
    hop = Hop(step.why, f"invalid key {digits}: replay ({tries}/{step.retries})")
    return replace(state, trail=(*state.trail, hop), invalid_keys=tries)


def _scope_of(state: PlanState, step: Step) -> _Scope:
    return _Scope(state.plan.call, state.snapshot, step.why.flow, step.why.branch)


def _ended(event: Event) -> str:
    if isinstance(event, Failed):
        return f"failed: {event.cause}" if event.cause else "failed"
    if isinstance(event, CallerHungUp):
        return "caller hung up"
    if isinstance(event, NoAnswer):
        return "timed out"
    return {Played: "played", Done: "done", Busy: "busy"}.get(type(event), "done")


def _go(state: PlanState, ended: str, nxt: Step) -> PlanState:
    assert state.step is not None
    trail = (*state.trail, Hop(state.step.why, ended))
    return _arrive(replace(state, trail=trail), nxt)


def _arrive(state: PlanState, step: Step) -> PlanState:
    trail = state.trail
    while isinstance(step, Skip):
        trail = (*trail, Hop(step.why, f"skipped: {step.reason}"))
        step = step.then
    return replace(state, step=step, trail=trail, invalid_keys=0)


def _finish(state: PlanState, ended: str, outcome: Outcome) -> PlanState:
    assert state.step is not None
    trail = (*state.trail, Hop(state.step.why, ended))
    return replace(state, trail=trail, outcome=outcome)


def _terminal_outcome(step: Terminal, state: PlanState, event: Event) -> Outcome:
    """How routing ended at a terminal step (the runner has carried it out)."""
    if isinstance(step, Reject):
        return Outcome("rejected", step.reason, missed_reason=step.missed_reason)
    if isinstance(step, Voicemail):
        why = "after_hours" if step.why.branch in _CLOSED_BRANCHES else "voicemail"
        if isinstance(event, Failed | CallerHungUp):
            # No message was left (hung up before the tone, voicemail down): a plain miss.
            # The runner reports Done once a message is filed.
            cause = event.cause if isinstance(event, Failed) else "caller hung up before the tone"
            return Outcome("hangup", f"voicemail {step.box}: no message ({cause})",
                           missed_reason="after_hours" if why == "after_hours" else "no_answer")
        return Outcome("voicemail", f"voicemail {step.box}", missed_reason=why)
    if isinstance(step, PlayAndHangup):
        return Outcome("played", step.reason)
    if isinstance(step, Fax):
        return Outcome("fax", "fax received" if isinstance(event, Done) else _ended(event))
    if isinstance(step, Callback):
        return Outcome("callback", "callback requested", missed_reason="callback_requested")
    assert isinstance(step, Hangup)
    missed: str | None = step.missed_reason
    if missed == "no_answer" and state.trail and state.trail[-1].ended == "busy":
        missed = "busy"  # the last thing tried was busy: say so in the missed-calls report
    return Outcome("hangup", step.reason, missed_reason=missed)
