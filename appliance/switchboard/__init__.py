"""The switchboard: connects an inbound leg to whoever it is for.

A back-to-back user agent that carries out routing plans: every call gets a plan from
the pure routing core (`routing.core.route`: an internal call to an extension, or an
inbound call on a line's number through its call flow), and the switchboard walks it.
A Ring step dials its legs on their timetable (desk phones through `Directory` contacts,
mobiles and outside numbers through `Outside`, i.e. outbound routing and the lines),
the first to answer is bridged and the others are cancelled; busy, offline, unknown and
no-answer end with the right SIP code. Greetings, voice menus and voicemail are carried
out by `voice.Voice`. Steps not carried out yet (queues, webhooks, fax, callback) are
reported Failed, so the plan goes on to the step the configuration names for failures,
and the call record says so.
The mechanics (ring sets, answer, bridge, teardown, call records) live here in one place.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import features
from ..engine import (
    DtmfEvent,
    Engine,
    EngineError,
    EngineEvent,
    LegEvent,
    LegInfo,
    LegState,
    PromptEvent,
    ReplacedEvent,
    TransferEvent,
)
from ..presence import NullPresence, Presence
from ..ringing import NoOutside, Outside, OutsideAttempt, Ringing, RingSet
from ..routing import core as routing
from ..routing.plan import (
    Answered,
    CallContext,
    CallerHungUp,
    Done,
    Event,
    Failed,
    Greeting,
    Hangup,
    Leg,
    ManagerFact,
    Menu,
    NoAnswer,
    Plan,
    PlanState,
    PlayAndHangup,
    Reject,
    Ring,
    Terminal,
    Voicemail,
    Webhook,
    WebhookReplied,
    Why,
)
from ..routing.snapshot import LiveState, Snapshot
from ..transfers import Transfer
from ..webhooks import WebhookCall, WebhookError, ask_webhook
from .handover import Handovers
from .live import LiveMembers, dialable, user_of
from .originate import Originations
from .records import (
    CallLog,
    CallRecord,
    Directory,
    Disposition,
    Rung,
    disposition_for,
    final_code,
)
from .services import Services
from .voice import Mailboxes, PromptSource, Voice

__all__ = ["CallLog", "CallRecord", "Directory", "Disposition", "Switchboard",
           "disposition_for", "final_code"]

log = logging.getLogger(__name__)

RING_TIMEOUT_S = 60.0
OUTSIDE_RING_S = 120.0  # an outside call rings until the far network gives up
_MAX_STEPS = 64  # a plan is a finite tree; this only guards against a bug


# Who last spoke with a caller: (caller, now, snapshot) -> facts, newest first.
History = Callable[[str, datetime, Snapshot], tuple[ManagerFact, ...]]


class Switchboard:
    """Reacts to engine events and drives legs through the engine."""

    def __init__(self, engine: Engine, directory: Directory, calllog: CallLog,
                 now: Callable[[], datetime] | None = None,
                 ring_timeout_s: float = RING_TIMEOUT_S,
                 data_dir: Path | None = None, presence: Presence | None = None,
                 snapshot: Snapshot | None = None, outside: Outside | None = None,
                 prompts: PromptSource | None = None,
                 mailboxes: Mailboxes | None = None,
                 history: History | None = None) -> None:
        self.engine = engine
        self.directory = directory
        # The routing configuration (None: every extension rings its contacts directly, for
        # a box without a database, i.e. tests of the mechanics). Swapped whole on reload.
        self.snapshot = snapshot
        self.outside: Outside = outside if outside is not None else NoOutside()
        self.calllog = calllog
        self.accepting = True
        self.ring_timeout_s = ring_timeout_s
        self.data_dir = data_dir  # recordings go under <data_dir>/recordings; None: never
        # Busy lamps (the edge's notifier). Not `or`: an empty LineStates is falsy.
        self.presence = presence if presence is not None else NullPresence()
        self._now = now or (lambda: datetime.now(UTC))
        self._calls: dict[str, CallRecord] = {}
        self._by_leg: dict[str, str] = {}
        self._transfers: dict[str, Transfer] = {}  # by each of its three legs
        self._tasks: set[asyncio.Task[None]] = set()
        self.voice = Voice(self, prompts, mailboxes)
        # Repeat-caller routing's sources: who last spoke with a caller (the call history).
        self.history = history
        self.ask_webhook = ask_webhook
        self.services = Services(self)
        self.handovers = Handovers(self)
        self.originations = Originations(self)  # click-to-call legs until answered

    def attach(self) -> Callable[[], None]:
        """Start receiving engine events; returns the detach function."""
        return self.engine.subscribe(self.on_event)

    def active_calls(self) -> list[CallRecord]:
        """Calls in progress."""
        return list(self._calls.values())

    @property
    def live_calls(self) -> dict[str, CallRecord]:
        """Calls in progress by call id (read-only use)."""
        return self._calls

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine as a task the switchboard keeps until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


    def now(self) -> datetime:
        """The switchboard's clock."""
        return self._now()

    def adopt(self, call: CallRecord) -> None:
        """Track a call the switchboard did not route itself (a feature-code dialogue)."""
        self._calls[call.call_id] = call
        self._by_leg[call.inbound_leg] = call.call_id

    def forget_leg(self, leg_id: str) -> None:
        """Stop claiming a leg that belongs to no call."""
        self._by_leg.pop(leg_id, None)

    def on_event(self, event: EngineEvent) -> None:
        """Engine event entry point (runs on the event loop)."""
        if isinstance(event, PromptEvent | DtmfEvent):
            call = self._calls.get(self._by_leg.get(event.leg_id) or "")
            if call is None:
                return
            if event.leg_id != call.inbound_leg:
                if isinstance(event, DtmfEvent) and call.ring is not None:
                    self.spawn(self.voice.confirm_digit(call, call.ring, event.leg_id,
                                                         event.digit))
                return
            if isinstance(event, PromptEvent):
                self.voice.prompt_ended(call, event.play_id)
            elif call.service:
                call.keys.put_nowait(event.digit)
            else:
                self.voice.digit(call, event.digit)
            return
        if isinstance(event, TransferEvent):
            self.handovers.transfer_started(event)
            return
        if isinstance(event, ReplacedEvent):
            self.handovers.replaced(event)
            return
        if not isinstance(event, LegEvent) or event.media_changed:
            return
        leg = event.leg
        if self.originations.on_leg(leg):
            return
        transfer = self._transfers.get(leg.leg_id)
        if transfer is not None:
            self.handovers.transfer_changed(transfer, leg)
            return
        call_id = self._by_leg.get(leg.leg_id)
        log.debug("leg %s %s (code %s) -> call %s", leg.leg_id, leg.state.value,
                  leg.sip_code, call_id)
        if call_id is None:
            if leg.state is LegState.INCOMING:
                # Claim the leg now: pjsua2 reports INCOMING more than once.
                self._by_leg[leg.leg_id] = ""
                self.spawn(self._inbound(leg))
            return
        if not call_id:
            return  # still being set up by _inbound
        call = self._calls.get(call_id)
        if call is None:
            return
        if leg.leg_id == call.inbound_leg:
            self.spawn(self._inbound_changed(call, leg))
        else:
            self.spawn(self._outbound_changed(call, leg))

    async def _inbound(self, leg: LegInfo) -> None:
        if not self.accepting:
            await self.safe_hangup(leg.leg_id, 503, "Shutting down")
            return
        feature = features.parse(leg.request_user)
        if feature is not None and feature.feature.is_pickup:
            await self.handovers.pickup(leg, feature)
            return
        if feature is not None:
            await self.services.start(leg, feature)
            return
        caller = leg.remote_uri
        if "x-pbx-hairpin" in leg.headers:
            # A transfer's new leg, back from the edge: the caller is the transferee.
            caller = next((t.caller for t in self._transfers.values()
                           if t.target_call_id == leg.sip_call_id and t.caller), caller)
        line = leg.headers.get("x-pbx-line", "")
        device = leg.headers.get("x-pbx-device", "")
        call = CallRecord(
            call_id=str(uuid.uuid4()),
            inbound_leg=leg.leg_id,
            caller=caller,
            # A line's call names the number dialled (a DID) in a trusted header.
            dialled=leg.headers.get("x-pbx-number", "") or leg.request_user,
            started_at=self._now(),
            caller_device=device,
            direction="inbound" if line else "internal",
            line=line,
        )
        self._calls[call.call_id] = call
        self._by_leg[leg.leg_id] = call.call_id
        call.plan = self._plan(call)
        self.calllog.started(call)
        if call.plan.step is not None and not isinstance(call.plan.step, Terminal):
            # Before any await: the caller may hang up meanwhile, and its end must come after.
            self.presence.ringing(call.call_id, call.dialled, device)
            await self._safe(self.engine.answer(leg.leg_id, 180))
        await self._advance(call)

    # --- routing plans -----------------------------------------------------------------
    def plan_for(self, call: CallRecord) -> PlanState:
        """The routing plan of a call the switchboard adopted (click-to-call)."""
        return self._plan(call)

    async def advance(self, call: CallRecord) -> None:
        """Carry out an adopted call's plan from its current step."""
        await self._advance(call)

    def _plan(self, call: CallRecord) -> PlanState:
        """Route the call: the routing core with the configuration, or the bare directory."""
        snap = self.snapshot
        if snap is None:
            bare = Plan(CallContext(call.caller, call.dialled, self._now()),
                        self._direct(call.dialled))
            return routing.start(bare, Snapshot())
        snap = snap.with_live(LiveState(members=LiveMembers(self)))
        now = self._now()
        caller = user_of(call.caller)
        managers: tuple[ManagerFact, ...] = ()
        if call.direction == "inbound" and snap.repeat_caller.enabled and self.history:
            try:
                managers = self.history(caller, now, snap)
            except Exception:
                # Routing goes on without it: the flow is still a good place for the call.
                log.exception("call %s: the repeat-caller lookup failed", call.call_id)
        ctx = CallContext(caller=caller, dialled=call.dialled, now=now,
                          line=call.line or None,
                          direction="inbound" if call.direction == "inbound" else "internal",
                          managers=managers, seed=uuid.UUID(call.call_id).int & 0xFFFF)
        if (ctx.direction == "internal" and call.caller_device
                and snap.by_extension(call.dialled) is None and dialable(call.dialled)):
            # A desk phone dialled a number that is not internal: a call out of the box,
            # through outbound routing under its owner's permissions. Only a device the edge
            # authenticated (x-pbx-device) may: nothing else ever reaches an outside line.
            call.direction = "outbound"
            return routing.start(Plan(ctx, self._outside_plan(call.dialled)), snap)
        return routing.start(routing.route(ctx, snap), snap)

    def _direct(self, dialled: str) -> Ring | Terminal:
        """Without a configuration: ring the extension's contacts, as the directory has them."""
        why = Why(None, None, f"call to {dialled}", f"ring {dialled}")
        contacts = self.directory.contacts(dialled)
        if contacts is None:
            return Reject(why=why, reason="no such extension", sip_code=404)
        end = Hangup(why=why, reason="nobody answered", missed_reason="no_answer")
        if not contacts:
            return end
        return Ring(why=why, target=f"employee:{dialled}", strategy="direct",
                    legs=(Leg("extension", dialled, 0.0, self.ring_timeout_s,
                              extension=dialled),),
                    timeout=self.ring_timeout_s, on_no_answer=end, on_busy=end,
                    on_failure=end)

    def _outside_plan(self, number: str) -> Ring:
        """A desk phone dialled an outside number: one leg, lines chosen by outbound routing."""
        why = Why(None, None, f"outside call to {number}", f"call {number}")
        end = Hangup(why=why, reason="the call did not go through", missed_reason=None)
        return Ring(why=why, target=f"external:{number}", strategy="direct",
                    legs=(Leg("external", number, 0.0, OUTSIDE_RING_S),),
                    timeout=OUTSIDE_RING_S, on_no_answer=end, on_busy=end, on_failure=end)

    def busy_extensions(self) -> set[str]:
        """Extensions on an answered call right now (routing's `activity: busy`)."""
        busy: set[str] = set()
        for call in self._calls.values():
            if call.answered_leg is None:
                continue
            if call.answered_extension:
                busy.add(call.answered_extension)
            elif call.direction == "internal":
                busy.add(call.dialled)
            if call.caller_device:
                owner = self.directory.owner_of(call.caller_device)
                if owner:
                    busy.add(owner)
        return busy

    async def report(self, call: CallRecord, event: Event) -> None:
        """The current step ended with `event`: move the plan on and carry out what follows."""
        if call.plan is None or call.call_id not in self._calls:
            return
        call.plan = routing.next_step(call.plan, event)
        await self._advance(call)

    def move(self, call: CallRecord, event: Event) -> None:
        """Like `report`, but the plan moves now and its next step runs in a task."""
        if call.plan is None or call.call_id not in self._calls:
            return
        call.plan = routing.next_step(call.plan, event)
        self.spawn(self._advance(call))

    def settle(self, call: CallRecord, event: Event) -> None:
        """A terminal step ended with `event` (the outcome is written, nothing follows)."""
        if call.plan is not None:
            call.plan = routing.next_step(call.plan, event)

    async def hang_up(self, call: CallRecord, code: int) -> None:
        """End a call nobody took: `code` for a caller still ringing, BYE once connected."""
        if call.call_id not in self._calls or call.disposition is not None:
            return
        await self._fail(call, code)
        if code < 300:
            call.disposition = Disposition.NO_ANSWER  # the box, not a person, took the call

    async def _advance(self, call: CallRecord) -> None:
        """Carry out the plan's current step."""
        for _ in range(_MAX_STEPS):
            state = call.plan
            if (state is None or state.finished or state.step is None
                    or call.call_id not in self._calls):
                return
            step = state.step
            if isinstance(step, Ring):
                await self._ring(call, step)
                return
            if isinstance(step, Terminal):
                await self._terminal(call, step)
                return
            if isinstance(step, Greeting):
                await self.voice.greeting(call, step)
                return
            if isinstance(step, Menu):
                await self.voice.menu(call, step)
                return
            if isinstance(step, Webhook):
                await self._webhook(call, step)
                return
            # Queues come with their own issue; until then the plan takes the way its
            # configuration gives for a failure.
            what = type(step).__name__.lower()
            log.warning("call %s: %s (%s) is not available yet; going on as for a failure",
                        call.call_id, what, step.why.step)
            call.unavailable.append(what)
            call.plan = routing.next_step(state, Failed(f"{what} not available yet"))
        await self._fail(call, 500)

    async def _webhook(self, call: CallRecord, step: Webhook) -> None:
        """Ask the webhook where the call goes; its answer (or silence) moves the plan on."""
        hook = self.snapshot.webhooks.get(step.webhook) if self.snapshot else None
        if hook is None or not hook.enabled:
            await self.report(call, Failed(f"webhook {step.webhook} is not enabled"))
            return
        about = WebhookCall(call.call_id, user_of(call.caller), call.dialled,
                            call.line or None, call.started_at)
        try:
            dest = await self.ask_webhook(hook, about, float(step.timeout))
        except WebhookError as exc:
            log.warning("call %s: webhook %s: %s", call.call_id, step.webhook, exc)
            await self.report(call, Failed(str(exc)))
            return
        await self.report(call, WebhookReplied(dest))

    async def _terminal(self, call: CallRecord, step: Terminal) -> None:
        """End the call as the plan says."""
        if isinstance(step, Voicemail):
            await self.voice.voicemail(call, step)
            return
        if isinstance(step, PlayAndHangup):
            await self.voice.play_and_hangup(call, step)
            return
        if isinstance(step, Reject):
            code = step.sip_code
        elif isinstance(step, Hangup):
            code = self._hangup_code(call)
        else:
            what = type(step).__name__.lower()
            log.warning("call %s: %s (%s) is not available yet; hanging up", call.call_id,
                        what, step.why.step)
            call.unavailable.append(what)
            await self._fail(call, 480)
            return
        if call.plan is not None:
            call.plan = routing.next_step(call.plan, Done())
        await self._fail(call, code)

    def _hangup_code(self, call: CallRecord) -> int:
        """The caller's final reply when nobody took the call."""
        if call.failures:
            return final_code(call.failures)
        trail = call.plan.trail if call.plan is not None else ()
        if any(hop.ended == "busy" or hop.ended.endswith(": busy") for hop in trail):
            return 486
        return 480

    # --- ringing -----------------------------------------------------------------------
    async def _ring(self, call: CallRecord, step: Ring) -> None:
        """Start a Ring step: legs due now are dialled, the others get timers."""
        loop = asyncio.get_running_loop()
        ring = RingSet.of(step)
        ring.started = loop.time()
        call.ring = ring
        if call.connected:
            # The box answered already (a menu, a greeting): a 180 cannot ring any more.
            await self._safe(self.engine.play(call.inbound_leg, "ringback"))
        ring.timers.append(loop.call_later(
            step.timeout, lambda: self.spawn(self._ring_timeout(call, ring))))
        for leg in list(ring.pending):
            if leg.start <= 0:
                await self._start_leg(call, ring, leg)
            else:
                ring.timers.append(loop.call_later(leg.start, self._start_later, call, ring, leg))
        await self._ring_check(call, ring)

    def _start_later(self, call: CallRecord, ring: RingSet, leg: Leg) -> None:
        self.spawn(self._start_leg(call, ring, leg))

    async def _start_leg(self, call: CallRecord, ring: RingSet, leg: Leg) -> None:
        if call.ring is not ring or call.answered_leg is not None or not ring.take(leg):
            return
        loop = asyncio.get_running_loop()
        if leg.stop < ring.step.timeout:
            ring.timers.append(loop.call_later(
                max(0.0, ring.started + leg.stop - loop.time()),
                lambda: self.spawn(self._stop_leg(call, ring, leg))))
        if leg.kind == "extension":
            contacts = self.directory.contacts(leg.address) or []
            if not contacts:
                ring.codes.append(480)
                call.failures.append(480)
            shown = self._caller_shown(call)
            for uri in contacts:
                await self._dial(call, ring, Ringing(leg, uri), headers=shown)
        elif leg.kind in ("mobile", "external"):
            # The desk phone's own permissions apply to its outside calls; a call the box
            # forwards (a flow's outside number, a mobile) is the box's call.
            caller_ext = (self.directory.owner_of(call.caller_device)
                          if call.direction == "outbound" else None)
            route = self.outside.route(leg.address, extension=caller_ext, line=leg.line)
            if route.attempt is None:
                code = route.refusal or 503
                log.info("call %s: %s cannot go out: %s (%d)", call.call_id, leg.address,
                         route.reason, code)
                ring.codes.append(code)
                call.failures.append(code)
            else:
                await self._dial(call, ring, Ringing(leg, route.attempt.uri, route),
                                 route.attempt)
        else:
            await self._dial(call, ring, Ringing(leg, leg.address))
        await self._ring_check(call, ring)

    def _caller_shown(self, call: CallRecord) -> dict[str, str]:
        """What a ringing desk phone shows: the caller's number and, for a colleague, name
        (the edge puts them in the INVITE's From)."""
        number = user_of(call.caller) or "anonymous"
        headers = {"X-PBX-Caller": number}
        owner = self.directory.owner_of(call.caller_device) if call.caller_device else None
        employee = self.snapshot.employees.get(owner) if owner and self.snapshot else None
        if owner:
            headers["X-PBX-Caller"] = owner
        if employee is not None:
            headers["X-PBX-Caller-Name"] = employee.name
        return headers

    async def _dial(self, call: CallRecord, ring: RingSet, ringing: Ringing,
                    attempt: OutsideAttempt | None = None,
                    headers: dict[str, str] | None = None) -> None:
        """Dial one engine leg for the ring step."""
        call.dialled_legs += 1
        out = f"{call.call_id[:8]}-{call.dialled_legs}"
        # Claim the leg id before dialling: a fast far end answers before the dial
        # command's result is back on this loop.
        call.ringing[out] = ringing.uri
        call.rang.append(ringing.uri)
        call.rung[out] = Rung(ringing.uri, ringing.plan_leg, self._now(),
                              attempt.line if attempt else None)
        ring.live[out] = ringing
        self._by_leg[out] = call.call_id
        try:
            sent = dict(attempt.headers) if attempt else dict(headers or {})
            await self.engine.dial(ringing.uri, leg_id=out, headers=sent or None)
        except EngineError as exc:
            log.warning("call %s: dialling %s failed: %s", call.call_id, ringing.uri, exc)
            call.ringing.pop(out, None)
            ring.live.pop(out, None)
            self._by_leg.pop(out, None)
            ring.codes.append(500)
            call.failures.append(500)
            call.rung[out].code = 500

    async def _stop_leg(self, call: CallRecord, ring: RingSet, leg: Leg) -> None:
        """A leg's window closed: stop ringing it (the next member may start)."""
        if call.ring is not ring or call.answered_leg is not None:
            return
        for out in ring.legs_of(leg):
            ring.live.pop(out, None)
            call.ringing.pop(out, None)
            self._by_leg.pop(out, None)
            await self.safe_hangup(out)
        await self._ring_check(call, ring)

    async def _ring_check(self, call: CallRecord, ring: RingSet) -> None:
        """Start the next member early, or end the step when nothing rings any more."""
        if call.ring is not ring or call.answered_leg is not None:
            return
        early = ring.next_early()
        if early is not None:
            await self._start_leg(call, ring, early)
            return
        outcome = ring.outcome()
        if outcome is not None:
            await self._step_done(call, ring, outcome)

    async def _ring_timeout(self, call: CallRecord, ring: RingSet) -> None:
        if call.ring is ring and call.answered_leg is None:
            await self._step_done(call, ring, NoAnswer())

    async def _step_done(self, call: CallRecord, ring: RingSet, event: Event) -> None:
        """The ring step ended unanswered: stop what still rings, take the plan's next step."""
        self._end_ring(call)
        for out in list(ring.live):
            await self.safe_hangup(out)
        if call.plan is not None:
            call.plan = routing.next_step(call.plan, event)
        await self._advance(call)

    def _end_ring(self, call: CallRecord) -> None:
        """Forget the ring step (timers off; its legs' late events are ignored)."""
        ring = call.ring
        if ring is None:
            return
        ring.cancel()
        call.ring = None
        for out in ring.live:
            call.ringing.pop(out, None)
            self._by_leg.pop(out, None)

    def _recording_path(self, call: CallRecord) -> str | None:
        """Where this call is recorded (both parties mixed), or None."""
        # The employee who answered decides, then the one dialled, then the one calling (an
        # outgoing call); a call between outsiders follows the box's policy.
        parties = (call.answered_extension, call.dialled, call.caller)
        if self.data_dir is None or not self.directory.records_call(*parties):
            return None
        day = (call.answered_at or call.started_at).strftime("%Y/%m/%d")
        relative = f"recordings/{day}/{call.call_id}.wav"
        (self.data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        call.recording = relative
        return str(self.data_dir / relative)

    async def _inbound_changed(self, call: CallRecord, leg: LegInfo) -> None:
        if leg.state is LegState.CONFIRMED:
            call.up.set()
            return
        if leg.state is not LegState.DISCONNECTED:
            return
        # Decide the record before awaiting anything: the other legs' events
        # arrive while we hang them up.
        if call.disposition is None:
            call.disposition = (Disposition.ANSWERED if call.answered_at
                                else Disposition.CANCELLED)
            call.hangup_side = "caller" if leg.hangup_side == "remote" else "system"
            call.sip_code = 200 if call.answered_at else 487
        others = list(call.ringing) + ([call.answered_leg] if call.answered_leg else [])
        if call.message is not None:
            # The caller ended a voice message: file it before the record is written.
            await self.voice.end_message(call)
        elif call.plan is not None and not call.plan.finished:
            call.plan = routing.next_step(call.plan, CallerHungUp())
        self._finish(call)
        for out in others:
            await self.safe_hangup(out)

    async def _outbound_changed(self, call: CallRecord, leg: LegInfo) -> None:
        ring = call.ring
        if (leg.state is LegState.CONFIRMED and call.answered_leg is None and ring is not None
                and leg.leg_id in ring.live):
            if self.voice.must_confirm(ring.live[leg.leg_id]):
                # A mobile answered: its owner must press 1 first (not its voicemail).
                await self.voice.ask_to_confirm(call, ring, leg.leg_id)
                return
            await self.take(call, ring, leg.leg_id)
            return
        if leg.state is LegState.CONFIRMED and leg.leg_id != call.answered_leg:
            # Answered in the same instant as another phone or a pickup: too late.
            self._by_leg.pop(leg.leg_id, None)
            await self.safe_hangup(leg.leg_id)
            return
        await self._outbound_ended(call, ring, leg)

    async def drop_leg(self, call: CallRecord, ring: RingSet, leg_id: str, code: int) -> None:
        """Stop one leg of a ring step as failed with `code` (the others ring on)."""
        if call.ring is not ring or ring.live.pop(leg_id, None) is None:
            return
        call.ringing.pop(leg_id, None)
        self._by_leg.pop(leg_id, None)
        ring.codes.append(code)
        call.failures.append(code)
        await self.safe_hangup(leg_id)
        await self._ring_check(call, ring)

    async def take(self, call: CallRecord, ring: RingSet, leg_id: str) -> None:
        """A ringing leg took the call: the others stop, the caller is bridged to it."""
        if call.answered_leg is not None or call.ring is not ring or leg_id not in ring.live:
            return
        ringing = ring.live.pop(leg_id)
        call.answered_leg = leg_id
        call.answered_at = self._now()
        call.answered_contact = call.ringing.pop(leg_id, "")
        who = ringing.plan_leg.extension or ringing.plan_leg.address
        if ringing.plan_leg.extension and ringing.plan_leg.extension != call.dialled:
            call.answered_extension = ringing.plan_leg.extension  # a department member
        self.presence.answered(call.call_id, call.answered_extension or call.dialled)
        others = list(ring.live)
        self._end_ring(call)
        if call.plan is not None:
            call.plan = routing.next_step(call.plan, Answered(who))
        for out in others:
            await self.safe_hangup(out)
        call.ringing.clear()
        if not call.connected:
            await self._safe(self.engine.answer(call.inbound_leg, 200))
        record_to = self._recording_path(call)
        await self._safe(self.engine.bridge(call.inbound_leg, leg_id, record_to))

    async def _outbound_ended(self, call: CallRecord, ring: RingSet | None,
                              leg: LegInfo) -> None:
        if leg.state is not LegState.DISCONNECTED:
            return
        self._by_leg.pop(leg.leg_id, None)
        if leg.leg_id == call.answered_leg:
            if call.disposition is None:
                call.disposition = Disposition.ANSWERED
                call.hangup_side = "callee" if leg.hangup_side == "remote" else "system"
                call.sip_code = 200
            await self.safe_hangup(call.inbound_leg)
            return
        if leg.leg_id in call.ringing:
            call.ringing.pop(leg.leg_id)
            failed = ring.live.pop(leg.leg_id, None) if ring is not None else None
            code = leg.sip_code
            if leg.leg_id in call.rung:
                call.rung[leg.leg_id].code = code
            if failed is not None and failed.route is not None:
                nxt = self.outside.failover(failed.route, code)
                if nxt.attempt is not None:
                    # The line failed, not the callee: the next line the route allows.
                    log.info("call %s: %s failed with %d, failing over to line %s (%s)",
                             call.call_id, failed.uri, code, nxt.attempt.line, nxt.reason)
                    assert ring is not None
                    await self._dial(call, ring, Ringing(failed.plan_leg, nxt.attempt.uri, nxt),
                                     nxt.attempt)
                    await self._ring_check(call, ring)
                    return
                code = nxt.refusal or code
            call.failures.append(code)
            if ring is not None:
                ring.codes.append(code)
                await self._ring_check(call, ring)

    async def _fail(self, call: CallRecord, code: int) -> None:
        call.disposition = disposition_for(code)
        call.sip_code = code
        call.hangup_side = "system"
        self._end_ring(call)
        await self.safe_hangup(call.inbound_leg, code)

    def _finish(self, call: CallRecord) -> None:
        if self._calls.pop(call.call_id, None) is None:
            return
        for leg_id in [call.inbound_leg, call.answered_leg, *call.ringing]:
            if leg_id:
                self._by_leg.pop(leg_id, None)
        self._end_ring(call)
        self.voice.forget(call)
        if call.task is not None:
            call.task.cancel()
        call.ended_at = self._now()
        self.presence.ended(call.call_id)
        if not call.service:
            self.calllog.finished(call)

    async def shutdown(self) -> None:
        """Stop taking calls, hang up every call and complete its record."""
        self.accepting = False
        for call in list(self._calls.values()):
            if call.disposition is None:
                # An answered call cut by shutdown was still answered; one
                # still ringing never got its outcome.
                call.disposition = (Disposition.ANSWERED if call.answered_at
                                    else Disposition.INTERRUPTED)
                call.hangup_side = "system"
            for out in list(call.ringing):
                await self.safe_hangup(out)
            if call.answered_leg:
                await self.safe_hangup(call.answered_leg)
            await self.safe_hangup(call.inbound_leg, 503)
            self._finish(call)

    async def safe_hangup(self, leg_id: str, code: int = 0, reason: str = "") -> None:
        """Hang a leg up, whether or not it is still there."""
        await self._safe(self.engine.hangup(leg_id, code, reason))


    async def _safe(self, aw: Awaitable[None]) -> None:
        try:
            await aw
        except EngineError as exc:
            # Legs vanish under us all the time (the far end hung up first).
            log.debug("engine command failed: %s", exc)
