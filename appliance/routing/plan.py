"""The typed plan a routing decision produces, the events a runner reports, and the state.

A plan is a tree of steps. Every step that can fail names where the call goes next
(`on_no_answer`, `on_busy`, `on_failure`, `then`, `default`, `overflow`), and every branch ends
in a terminal step (Voicemail, Hangup, Reject, PlayAndHangup, Fax, Callback), so a call never
ends "nowhere". Menu keys and webhook answers are the only parts expanded later, by
`core.next_step`, because they depend on what the caller or the webhook says.

Every step carries a `Why` (flow, branch, rule, step) so the call record can explain the
route; `PlanState.trail` keeps the steps taken and how each one ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .snapshot import Dest, Snapshot

LegKind = Literal["extension", "mobile", "external", "sip_uri"]


@dataclass(frozen=True)
class Why:
    """The route explanation of one step: which flow and branch, which rule, what it does."""

    flow: str | None
    branch: str | None
    rule: str
    step: str

    def __str__(self) -> str:
        """'flow main / open: schedule office open (...) -> ring department sales'."""
        where = f"flow {self.flow}" if self.flow else "no flow"
        if self.branch:
            where += f" / {self.branch}"
        return f"{where}: {self.rule} -> {self.step}"


# -- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Step:
    """Base of every plan step."""

    why: Why

    @property
    def terminal(self) -> bool:
        """True for steps after which routing has nothing more to decide."""
        return False


@dataclass(frozen=True, kw_only=True)
class Terminal(Step):
    """A step that ends routing (the call is taken care of or ended)."""

    @property
    def terminal(self) -> bool:
        """Always True."""
        return True


@dataclass(frozen=True, kw_only=True)
class Reject(Terminal):
    """Refuse the call with a SIP code and a reason (blacklist, unknown number)."""

    reason: str
    sip_code: int = 403
    missed_reason: str | None = None  # the missed-calls report's reason, if it counts


@dataclass(frozen=True, kw_only=True)
class Hangup(Terminal):
    """End the call: an explicit `hangup` destination, or nothing left to try."""

    reason: str
    missed_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlayAndHangup(Terminal):
    """Play a prompt, then end the call."""

    prompt: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Voicemail(Terminal):
    """Record a message in a voicemail box (after its greeting)."""

    box: str
    greeting: str | None = None
    max_message: int = 180
    email: tuple[str, ...] = ()
    attach_audio: bool = True


@dataclass(frozen=True, kw_only=True)
class Fax(Terminal):
    """Receive a fax (e-mailed to `email` if given)."""

    email: str | None = None


@dataclass(frozen=True, kw_only=True)
class Callback(Terminal):
    """Take a callback request (it appears in the missed-and-not-called-back report)."""


@dataclass(frozen=True, kw_only=True)
class Skip(Step):
    """A step that was left out at planning time, with why; routing passes it at once."""

    reason: str
    then: Step


@dataclass(frozen=True, kw_only=True)
class Greeting(Step):
    """Play a prompt, then go on (a missing prompt is skipped, never blocks the call)."""

    prompt: str
    then: Step


@dataclass(frozen=True, kw_only=True)
class Menu(Step):
    """A voice menu: play the prompt, wait `timeout` s for a key.

    A key in `keys` goes to its destination; with `direct_dial` an internal number dialled
    in full goes there; an invalid key replays the menu (with `invalid_prompt`) up to
    `retries` times, then `default`; no key at all goes to `default`. A destination reached
    from the menu that ends unanswered continues with `after`.
    """

    menu: str
    prompt: str | None
    invalid_prompt: str | None
    timeout: int
    retries: int
    keys: Mapping[str, Dest]
    direct_dial: bool
    default: Step
    after: Step


@dataclass(frozen=True)
class Leg:
    """One party to ring within a Ring step, with its window in seconds from the step start."""

    kind: LegKind
    address: str  # extension, E.164 number or SIP URI
    start: float
    stop: float
    extension: str | None = None  # the employee the leg belongs to
    line: str | None = None  # line hint for numbers dialled out
    call_waiting: bool = False  # the employee is on a call: rings as a call-waiting signal


@dataclass(frozen=True, kw_only=True)
class Ring(Step):
    """Ring legs on a timetable; the first to answer gets the call, the others stop.

    The step gives up `timeout` s after it starts (NoAnswer); Busy when every leg was busy;
    Failed when nothing could be rung. A leg whose window has not started yet starts when its
    `start` comes (or, for one-at-a-time strategies, as soon as the leg before it failed).
    """

    target: str  # 'department:sales', 'employee:102', 'external:+7...'
    strategy: str
    legs: tuple[Leg, ...]
    timeout: float
    skipped: tuple[str, ...] = ()  # members left out and why ('103: not registered')
    on_no_answer: Step
    on_busy: Step
    on_failure: Step


@dataclass(frozen=True, kw_only=True)
class Queue(Step):
    """Hand the call to the queue runner; `overflow` when it gives the call back."""

    queue: str
    overflow: Step


@dataclass(frozen=True, kw_only=True)
class Webhook(Step):
    """Ask a webhook where the call goes; on no reply or an error, `on_failure`."""

    webhook: str
    url: str
    timeout: int
    on_failure: Step


# -- events a runner reports -----------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """Someone answered (extension or number)."""

    by: str


@dataclass(frozen=True)
class NoAnswer:
    """The step's time ran out (ringing, or a menu waiting for a key)."""


@dataclass(frozen=True)
class Busy:
    """Everyone rung was busy."""


@dataclass(frozen=True)
class Failed:
    """The step could not be carried out (no one reachable, line down, missing prompt...)."""

    cause: str = ""


@dataclass(frozen=True)
class CallerHungUp:
    """The caller went away."""


@dataclass(frozen=True)
class KeyPressed:
    """The caller entered digits in a menu (one key, or a full extension)."""

    digits: str


@dataclass(frozen=True)
class Played:
    """A greeting finished playing."""


@dataclass(frozen=True)
class WebhookReplied:
    """The webhook named a destination (None: it had no opinion)."""

    destination: Dest | None


@dataclass(frozen=True)
class Done:
    """A terminal step finished (message recorded, prompt played, fax received...)."""


Event = (Answered | NoAnswer | Busy | Failed | CallerHungUp | KeyPressed | Played
         | WebhookReplied | Done)


# -- the call and its state ------------------------------------------------------------------


@dataclass(frozen=True)
class ManagerFact:
    """A repeat-caller lookup result: this caller belongs to / last spoke with `extension`."""

    source: str  # 'call_history' or 'crm:<key>'
    extension: str
    at: dt.datetime | None = None  # when they last spoke (call history); None for a CRM owner


@dataclass(frozen=True)
class CallContext:
    """One call as routing sees it; `now` is an input, never read from a clock."""

    caller: str
    dialled: str
    now: dt.datetime
    line: str | None = None
    direction: Literal["inbound", "internal"] = "inbound"
    managers: tuple[ManagerFact, ...] = ()  # looked up beforehand (history, CRM cache)
    seed: int = 0  # for the random strategy: the same seed gives the same order


@dataclass(frozen=True)
class Plan:
    """A routing decision: the call and the first step of its tree."""

    call: CallContext
    root: Step


@dataclass(frozen=True)
class Hop:
    """A step taken and how it ended, for the call record's route explanation."""

    why: Why
    ended: str

    def __str__(self) -> str:
        """'<why> [ended]'."""
        return f"{self.why} [{self.ended}]"


OutcomeKind = Literal["answered", "voicemail", "rejected", "hangup", "abandoned", "fax",
                      "callback", "played"]


@dataclass(frozen=True)
class Outcome:
    """How routing ended, for the call record (and the missed-calls report)."""

    kind: OutcomeKind
    detail: str
    by: str | None = None  # who answered
    missed_reason: str | None = None  # reason in the missed-calls report, if it is missed


@dataclass(frozen=True)
class PlanState:
    """Where a call is in its plan: the current step, the trail so far, the outcome at the end.

    The snapshot travels with the state so that menu keys and webhook replies are expanded
    with it; a runner may swap in a newer one with `dataclasses.replace`.
    """

    plan: Plan
    snapshot: Snapshot
    step: Step | None
    trail: tuple[Hop, ...] = ()
    invalid_keys: int = 0  # invalid keys pressed in the current menu
    outcome: Outcome | None = None

    @property
    def finished(self) -> bool:
        """True once routing has ended (see `outcome`)."""
        return self.outcome is not None

    def explain(self) -> list[str]:
        """The route in words, one line per step, then the outcome."""
        lines = [str(hop) for hop in self.trail]
        if self.step is not None and not self.finished:
            lines.append(f"{self.step.why} [in progress]")
        if self.outcome is not None:
            lines.append(f"outcome: {self.outcome.kind}: {self.outcome.detail}")
        return lines
