"""What a finished call record says, decided without I/O: the route explanation, the outcome,
who the internal party is, who answered, which outside number it was with, its legs, and
whether it counts as missed or blocked.

`call_facts` is pure (a CallRecord in, CallFacts out); `appliance.calllog` turns the facts
into rows (looking up ids by extension, number and line key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .routing.plan import PlanState, Voicemail
from .routing.repeat_callers import find_manager, full_number
from .switchboard.live import dialable, user_of
from .switchboard.records import CallRecord, Disposition, Rung

# The missed-calls report's reasons (the CHECK list of missed_calls.reason).
MISSED_REASONS = frozenset({"no_answer", "busy", "after_hours", "abandoned_in_queue",
                            "blacklisted", "all_lines_busy", "failed", "voicemail",
                            "callback_requested"})
# Routing or switchboard wording that is not in the list, mapped onto it.
_REASON_ALIASES = {"abandoned": "no_answer", "cancelled": "no_answer", "timeout": "no_answer",
                   "unavailable": "no_answer", "interrupted": "failed", "rejected": "failed",
                   "callback": "callback_requested", "lines_busy": "all_lines_busy"}
_BUSY_CODES = frozenset({486, 600})
_NO_ANSWER_CODES = frozenset({408, 480, 487})
# call_legs.party_kind for each kind of plan leg.
_PARTY_KIND = {"extension": "employee", "mobile": "external", "external": "external",
               "sip_uri": "sip_uri"}


def missed_reason(reason: str | None) -> str:
    """A routing or switchboard reason as one of the missed-calls report's reasons."""
    if reason in MISSED_REASONS:
        return reason
    return _REASON_ALIASES.get(reason or "", "failed")


def ts(when: datetime | None) -> str | None:
    """A timestamp as the call tables store it (UTC, milliseconds)."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds") if when else None


def caller_name(uri: str) -> str | None:
    """The display name of a name-addr ('"Anna" <sip:...>'), if there is one."""
    text = uri.strip()
    if "<" not in text:
        return None
    name = text[:text.index("<")].strip().strip('"').strip()
    return name or None


def client_number(text: str, local_area_code: str | None) -> str:
    """An outside party's number as the history keeps it (E.164 where it can be read)."""
    return full_number(user_of(text), local_area_code)


@dataclass(frozen=True)
class LegFacts:
    """One row of call_legs, with the extension the I/O side turns into an employee id."""

    position: int
    party_kind: str
    extension: str | None
    target: str
    rang_at: str | None
    answered_at: str | None
    ended_at: str | None
    disposition: str
    sip_cause: int | None
    device: str | None = None  # the contact's user part (a device's SIP username, maybe)


@dataclass(frozen=True)
class CallFacts:
    """Everything the call record says about a finished call, before ids are looked up."""

    caller: str  # E.164 of an outside caller; the SIP user part of a desk phone
    caller_name: str | None
    caller_device: str | None  # the calling desk phone's SIP username
    client: str | None  # the outside party (inbound caller, outbound callee), E.164 if readable
    number: str | None  # the dialled DID of an inbound call (E.164 if readable)
    employee: str | None  # extension of the internal party (None: look up caller_device)
    answered_by: str | None  # extension of the employee who answered
    responsible: str | None  # extension answerable for a missed call
    line: str | None  # the line key (inbound: the line it came in on; outbound: went out on)
    route: dict[str, Any]
    legs: tuple[LegFacts, ...]
    missed: str | None  # the missed-calls report's reason; None when not missed
    blocked: str | None  # the blacklist reason when the blacklist refused the call
    clears: bool  # the client was reached: their open missed calls are called back


def call_facts(call: CallRecord, *, local_area_code: str | None = None) -> CallFacts:
    """The facts of a finished call (pure)."""
    state = call.plan
    outcome = state.outcome if state is not None else None
    inbound = call.direction == "inbound"
    outbound = call.direction == "outbound"
    caller = client_number(call.caller, local_area_code) if inbound else user_of(call.caller)
    client: str | None = None
    if inbound:
        client = caller
    elif outbound and dialable(call.dialled):
        client = full_number(call.dialled, local_area_code)
    legs = _legs(call)
    answered = _answered_by(call)
    outcome_json = None
    if outcome is not None:
        outcome_json = {"kind": outcome.kind, "detail": outcome.detail, "by": outcome.by,
                        "missed_reason": outcome.missed_reason}
    person_answered = call.answered_at is not None and (outcome is None
                                                        or outcome.kind == "answered")
    missed: str | None = None
    if inbound and not person_answered:
        if outcome is not None and outcome.kind != "answered":
            if outcome.missed_reason is not None:
                missed = missed_reason(outcome.missed_reason)
        else:
            missed = _missed_without_outcome(call)
    blocked = None
    if (outcome is not None and outcome.kind == "rejected"
            and outcome.missed_reason == "blacklisted"):
        blocked = outcome.detail
    responsible = answered or _responsible(call, state)
    if outbound:
        employee = None  # the calling desk phone's owner: looked up by its device
    elif call.direction == "internal" and state is not None and call.dialled in (
            state.snapshot.employees):
        employee = call.dialled
    elif call.direction == "internal" and state is None:
        employee = call.dialled  # a bare switchboard: extensions are dialled directly
    else:
        employee = responsible
    route: dict[str, Any] = {"dialled": call.dialled, "rang": call.rang}
    if call.transferred_to:
        route["transferred_to"] = call.transferred_to
    if state is not None:
        route["steps"] = state.explain()
    if outcome_json is not None:
        route["outcome"] = outcome_json
    if call.unavailable:
        route["not_available"] = call.unavailable
    out_line = next((r.line for r in call.rung.values() if r.line), None)
    return CallFacts(
        caller=caller, caller_name=caller_name(call.caller),
        caller_device=call.caller_device or None, client=client,
        number=full_number(call.dialled, None) if inbound and call.dialled else None,
        employee=employee, answered_by=answered,
        responsible=responsible,
        line=call.line or (out_line if outbound else None) or None,
        route=route, legs=legs, missed=missed, blocked=blocked,
        # A withheld or unreadable caller ('anonymous') is nobody in particular: reaching one
        # such caller says nothing about the others.
        clears=person_answered and client is not None and _is_number(client))


def _is_number(text: str) -> bool:
    digits = text[1:] if text.startswith("+") else text
    return digits.isascii() and digits.isdigit() and len(digits) >= 5


def _missed_without_outcome(call: CallRecord) -> str:
    """The reason for an unanswered call whose plan never finished (e.g. hung up early)."""
    if call.disposition is Disposition.BUSY:
        return "busy"
    if call.disposition in (Disposition.NO_ANSWER, Disposition.CANCELLED, None):
        return "no_answer"
    return "failed"


def _answered_by(call: CallRecord) -> str | None:
    """The extension of the employee who answered (a pickup, a member, the dialled one)."""
    if call.answered_at is None:
        return None
    if call.answered_extension:
        return call.answered_extension
    rung = call.rung.get(call.answered_leg or "")
    if rung is not None:
        return rung.leg.extension or (rung.leg.address if rung.leg.kind == "extension"
                                      else None)
    state = call.plan
    by = state.outcome.by if state is not None and state.outcome is not None else None
    if by is not None and (state is None or by in state.snapshot.employees):
        return by
    if call.direction == "internal" and call.answered_leg:
        return call.dialled
    return None


def _responsible(call: CallRecord, state: PlanState | None) -> str | None:
    """Who answers for an unanswered call: the caller's manager, the one employee rung,
    the owner of the voicemail box it ended in, or the employee dialled."""
    if state is not None:
        snap = state.snapshot
        settings = snap.repeat_caller
        if settings.enabled and state.plan.call.managers:
            fact, _notes = find_manager(settings, state.plan.call.managers, snap,
                                        state.plan.call.now)
            if fact is not None:
                return fact.extension
        if isinstance(state.step, Voicemail):
            box = snap.voicemail.get(state.step.box)
            if box is not None and box.owner:
                return box.owner
    people = {r.leg.extension for r in call.rung.values() if r.leg.extension}
    if len(people) == 1:
        return people.pop()
    if call.direction == "internal" and (state is None
                                         or call.dialled in state.snapshot.employees):
        return call.dialled
    return None


def _leg_disposition(call: CallRecord, leg_id: str | None, rung: Rung | None) -> str:
    if leg_id is not None and leg_id == call.answered_leg:
        return "answered"
    code = rung.code if rung is not None else 0
    if code in _BUSY_CODES:
        return "busy"
    if code in _NO_ANSWER_CODES:
        return "no_answer"
    if code >= 400:
        return "failed"
    if call.answered_at is not None:
        return "cancelled"
    assert call.disposition is not None
    return call.disposition.value


def _legs(call: CallRecord) -> tuple[LegFacts, ...]:
    """One leg per party rung, from what the switchboard noted of each engine leg."""
    ended = ts(call.ended_at)
    answered = ts(call.answered_at)
    if not call.rung:
        return _legs_from_uris(call)
    legs: list[LegFacts] = []
    for pos, (leg_id, rung) in enumerate(call.rung.items()):
        kind = rung.leg.kind
        is_answer = leg_id == call.answered_leg
        legs.append(LegFacts(
            position=pos, party_kind=_PARTY_KIND.get(kind, "sip_uri"),
            extension=rung.leg.extension or (rung.leg.address if kind == "extension" else None),
            target=rung.leg.address if kind in ("mobile", "external") else rung.uri,
            rang_at=ts(rung.at), answered_at=answered if is_answer else None, ended_at=ended,
            disposition=_leg_disposition(call, leg_id, rung),
            sip_cause=rung.code if 100 <= rung.code <= 699 else None,
            device=user_of(rung.uri) if kind == "extension" else None))
    if call.answered_at is not None and call.answered_leg not in call.rung:
        # Picked up from another phone: that phone's leg was never dialled by the call.
        legs.append(LegFacts(
            position=len(legs), party_kind="employee",
            extension=call.answered_extension or None, target=call.answered_contact,
            rang_at=answered, answered_at=answered, ended_at=ended, disposition="answered",
            sip_cause=None, device=user_of(call.answered_contact) or None))
    return tuple(legs)


def _legs_from_uris(call: CallRecord) -> tuple[LegFacts, ...]:
    """Legs when only the contacts are known (a switchboard that does not fill `rung`)."""
    answered = ts(call.answered_at)
    out = []
    for pos, uri in enumerate(call.rang):
        is_answer = call.answered_leg is not None and uri == call.answered_contact
        out.append(LegFacts(
            position=pos, party_kind="sip_uri",
            extension=call.answered_extension if call.answered_extension and is_answer
            else call.dialled,
            target=uri, rang_at=ts(call.started_at), answered_at=answered if is_answer else None,
            ended_at=ts(call.ended_at),
            disposition="answered" if is_answer else _leg_disposition(call, None, None),
            sip_cause=None))
    return tuple(out)
