"""The steps in which the box itself talks to the caller: greetings, voice menus, voicemail.

The switchboard hands these steps over; this module answers the caller's leg, plays prompts
(`Engine.play_prompt`, one PromptEvent at the end), collects digits (RFC 4733 from SIP
phones and trunks, in-band from SIM lines: both arrive as DtmfEvents), records voice
messages and hands them to the mailboxes. Every wait has a timer, and every timer and
continuation belongs to the call, so a caller hanging up cancels them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..engine import EngineError
from ..prompts import PromptError, duration_s
from ..ringing import Ringing, RingSet
from ..routing.mobile import ConfirmAction, Confirmation, decide_confirmation
from ..routing.plan import (
    Done,
    Failed,
    Greeting,
    KeyPressed,
    Menu,
    NoAnswer,
    PlayAndHangup,
    Played,
    Voicemail,
)
from .records import CallRecord

if TYPE_CHECKING:
    from . import Switchboard

log = logging.getLogger(__name__)

CONNECT_S = 8.0  # the caller's leg must be up this soon after the box answers it
DIGIT_GAP_S = 2.0  # wait this long for the next digit of an extension dialled in a menu
PROMPT_GRACE_S = 5.0  # a prompt's end event may come this late before we stop waiting
SAVED_WAIT_S = 6.0  # the "message saved" prompt after a message reached its length limit
BEEP = "voicemail-beep"
VOICEMAIL_GREETING = "voicemail-greeting"
MENU_DEFAULT = "menu-default"
INVALID_KEY = "invalid-key"
SAVED = "voicemail-saved"


class PromptSource(Protocol):
    """Where prompt files come from (the admin's recordings, then the built-in set)."""

    def path(self, key: str, language: str | None = None) -> Path | None:
        """The WAV file of a prompt, or None if there is none."""
        ...


class Mailboxes(Protocol):
    """Where voice messages go."""

    def message_path(self, box: str, call_id: str) -> Path:
        """A fresh absolute path for a message in this box."""
        ...

    async def deliver(self, box: str, caller: str, call_id: str, path: Path,
                      duration_s: float) -> int | None:
        """File a recorded message; its id, or None if it was too short to keep."""
        ...


def wav_seconds(path: Path) -> float:
    """Length of a WAV file in seconds (0 if it cannot be read)."""
    try:
        return duration_s(path)
    except PromptError:
        return 0.0


class Voice:
    """Carries out Greeting, Menu, Voicemail and PlayAndHangup steps for the switchboard."""

    def __init__(self, board: Switchboard, prompts: PromptSource | None,
                 mailboxes: Mailboxes | None) -> None:
        self.board = board
        self.prompts = prompts
        self.mailboxes = mailboxes
        self.digit_gap_s = DIGIT_GAP_S
        self.confirmation = Confirmation()  # what a mobile must press, and how soon
        self._play_ids = itertools.count(1)

    # --- the caller's leg --------------------------------------------------------------
    async def connect(self, call: CallRecord) -> bool:
        """Answer the caller (once) and wait until the leg is up; False if it never came."""
        if not call.connected:
            call.connected = True
            self.board.presence.answered(call.call_id, call.dialled)
            try:
                await self.board.engine.answer(call.inbound_leg, 200)
            except EngineError as exc:
                log.warning("call %s: answering failed: %s", call.call_id, exc)
                return False
        try:
            async with asyncio.timeout(CONNECT_S):
                await call.up.wait()
        except TimeoutError:
            log.warning("call %s: the caller's leg did not come up", call.call_id)
            return False
        return call.call_id in self.board.live_calls

    def _prompt_files(self, keys: Sequence[str | None]) -> list[Path]:
        """The files to play: prompt keys looked up, absolute paths (messages) as they are."""
        found = []
        for key in keys:
            if key and key.startswith("/"):
                found.append(Path(key))
            elif key and self.prompts is not None:
                path = self.prompts.path(key)
                if path is None:
                    log.warning("prompt %r is missing", key)
                else:
                    found.append(path)
        return found

    async def play(self, call: CallRecord, keys: Sequence[str | None],
                   then: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Play these prompts to the caller, then run `then`; False if there was nothing."""
        files = self._prompt_files(keys)
        if not files:
            return False
        play_id = next(self._play_ids)
        call.playing = play_id
        call.after_prompt = then
        guard = sum(wav_seconds(p) for p in files) + PROMPT_GRACE_S
        self.arm(call, guard, lambda: self._prompt_stuck(call, play_id))
        try:
            await self.board.engine.play_prompt(call.inbound_leg, [str(p) for p in files],
                                                play_id)
        except EngineError as exc:
            log.warning("call %s: playing %s failed: %s", call.call_id, keys, exc)
            call.playing = None
            call.after_prompt = None
            self.disarm(call)
            return False
        return True

    def prompt_ended(self, call: CallRecord, play_id: int) -> None:
        """The engine says a prompt ended: go on with what was waiting for it."""
        if call.playing != play_id:
            return
        self.disarm(call)
        then = call.after_prompt
        call.playing = None
        call.after_prompt = None
        if then is not None:
            self.board.spawn(then())

    async def _prompt_stuck(self, call: CallRecord, play_id: int) -> None:
        log.warning("call %s: prompt %d never ended; going on", call.call_id, play_id)
        self.prompt_ended(call, play_id)

    def arm(self, call: CallRecord, seconds: float,
            then: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `then` after `seconds` unless the call moves on first (one timer per call)."""
        self.disarm(call)
        call.timer = asyncio.get_running_loop().call_later(
            seconds, lambda: self.board.spawn(then()))

    @staticmethod
    def disarm(call: CallRecord) -> None:
        """Cancel the call's step timer."""
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None

    def forget(self, call: CallRecord) -> None:
        """The call is over: nothing of it may run later."""
        self.disarm(call)
        call.playing = None
        call.after_prompt = None

    # --- greetings --------------------------------------------------------------------
    async def greeting(self, call: CallRecord, step: Greeting) -> None:
        """Play the greeting, then the plan's next step (a missing prompt is passed over)."""
        if not await self.connect(call):
            await self.board.report(call, Failed("the caller's line did not come up"))
            return
        if not await self.play(call, [step.prompt],
                               lambda: self.board.report(call, Played())):
            await self.board.report(call, Failed(f"prompt {step.prompt} is missing"))

    async def play_and_hangup(self, call: CallRecord, step: PlayAndHangup) -> None:
        """Play a prompt, then end the call."""
        async def done() -> None:
            self.board.settle(call, Done())
            await self.board.hang_up(call, 200)

        if not await self.connect(call) or not await self.play(call, [step.prompt], done):
            await done()

    # --- voice menus ------------------------------------------------------------------
    async def menu(self, call: CallRecord, step: Menu) -> None:
        """Play the menu (after 'invalid key' when replaying) and wait for keys."""
        if not await self.connect(call):
            await self.board.report(call, Failed("the caller's line did not come up"))
            return
        call.digits = ""
        replay = call.plan is not None and call.plan.invalid_keys > 0
        keys = [step.invalid_prompt or INVALID_KEY] if replay else []
        keys.append(step.prompt or MENU_DEFAULT)
        wait = self._menu_timeout(call, step)
        if not await self.play(call, keys, wait):
            await wait()

    def _menu_timeout(self, call: CallRecord,
                      step: Menu) -> Callable[[], Coroutine[Any, Any, None]]:
        async def wait() -> None:
            if call.plan is not None and call.plan.step is step:
                self.arm(call, step.timeout, lambda: self._no_key(call, step))
        return wait

    async def _no_key(self, call: CallRecord, step: Menu) -> None:
        if call.plan is not None and call.plan.step is step:
            if call.digits:
                self._submit(call, step)
            else:
                await self.board.report(call, NoAnswer())

    def digit(self, call: CallRecord, digit: str) -> None:
        """A key the caller pressed: in a menu it may choose, otherwise it is ignored.

        Synchronous, so keys are taken in the order they came (a phone sends an extension
        as fast as RFC 4733 allows); only the prompt's stop and the next step are awaited.
        """
        step = call.plan.step if call.plan is not None else None
        log.debug("call %s: key %s (%s)", call.call_id, digit, type(step).__name__)
        if not isinstance(step, Menu):
            return
        self.cut_prompt(call)
        if digit == "#":
            if call.digits:
                self._submit(call, step)
            return
        call.digits += digit
        digits = call.digits
        longer = bool(step.direct_dial) and any(
            len(n) > len(digits) and n.startswith(digits) for n in self._internal(call))
        if longer:
            # An extension may still be on its way: '1' could be a key or the start of 101.
            self.arm(call, self.digit_gap_s, lambda: self._submit_later(call, step))
        else:
            self._submit(call, step)

    def cut_prompt(self, call: CallRecord) -> None:
        """Stop the prompt now (the caller pressed a key); the engine is told in a task."""
        play_id = call.playing
        if play_id is None:
            return
        call.playing = None
        call.after_prompt = None
        self.disarm(call)
        self.board.spawn(self._silence(call, play_id))

    async def _silence(self, call: CallRecord, play_id: int) -> None:
        # The play id: should a new prompt start before this reaches the engine, it stays.
        with contextlib.suppress(EngineError):
            await self.board.engine.silence(call.inbound_leg, play_id)

    def _internal(self, call: CallRecord) -> frozenset[str]:
        return call.plan.snapshot.internal_numbers() if call.plan is not None else frozenset()

    def _submit(self, call: CallRecord, step: Menu) -> None:
        if call.plan is None or call.plan.step is not step or not call.digits:
            return
        digits, call.digits = call.digits, ""
        self.disarm(call)
        log.info("call %s: menu %s: keys %s", call.call_id, step.menu, digits)
        self.board.move(call, KeyPressed(digits))

    async def _submit_later(self, call: CallRecord, step: Menu) -> None:
        self._submit(call, step)

    # --- "press 1 to accept" on a mobile -------------------------------------------------
    def must_confirm(self, ringing: Ringing) -> bool:
        """Whether this answering leg is a mobile whose owner must press 1 first."""
        leg = ringing.plan_leg
        snap = self.board.snapshot
        if leg.kind != "mobile" or not leg.extension or snap is None:
            return False
        employee = snap.employees.get(leg.extension)
        return employee is not None and employee.confirm_mobile

    async def ask_to_confirm(self, call: CallRecord, ring: RingSet, leg_id: str) -> None:
        """Play 'press 1' to the mobile that answered; the call waits, the others ring on."""
        ringing = ring.live[leg_id]
        confirm = self.confirmation
        files = self._prompt_files([confirm.prompt])
        if not files:
            log.error("call %s: prompt %s is missing; %s gets the call unconfirmed",
                      call.call_id, confirm.prompt, ringing.uri)
            await self.board.take(call, ring, leg_id)
            return
        loop = asyncio.get_running_loop()
        ringing.confirming_since = loop.time()
        ring.timers.append(loop.call_later(
            confirm.timeout, lambda: self.board.spawn(self.confirm_digit(call, ring, leg_id, ""))))
        log.info("call %s: %s answered; asking for %s", call.call_id, ringing.uri, confirm.digit)
        try:
            await self.board.engine.play_prompt(leg_id, [str(f) for f in files],
                                                next(self._play_ids))
        except EngineError as exc:
            log.warning("call %s: the confirmation prompt failed: %s", call.call_id, exc)

    async def confirm_digit(self, call: CallRecord, ring: RingSet, leg_id: str,
                            digit: str) -> None:
        """A key from a mobile being asked to confirm ("" when its time ran out)."""
        ringing = ring.live.get(leg_id)
        if (call.ring is not ring or ringing is None or ringing.confirming_since is None
                or call.answered_leg is not None):
            return
        elapsed = asyncio.get_running_loop().time() - ringing.confirming_since
        decision = decide_confirmation(self.confirmation, digit or None, elapsed)
        if decision.action is ConfirmAction.WAIT:
            return
        log.info("call %s: %s %s", call.call_id, ringing.uri, decision.reason)
        if decision.action is ConfirmAction.BRIDGE:
            await self.board.take(call, ring, leg_id)
        else:
            await self.board.drop_leg(call, ring, leg_id, 480)

    # --- voicemail --------------------------------------------------------------------
    async def voicemail(self, call: CallRecord, step: Voicemail) -> None:
        """Greeting, tone, then record until the caller hangs up or the time limit."""
        if self.mailboxes is None:
            call.unavailable.append("voicemail")
            self.board.settle(call, Failed("voicemail is not set up"))
            await self.board.hang_up(call, 480)
            return
        if not await self.connect(call):
            self.board.settle(call, Failed("the caller's line did not come up"))
            await self.board.hang_up(call, 480)
            return
        greeting = [step.greeting or VOICEMAIL_GREETING, BEEP]
        if not await self.play(call, greeting, lambda: self._record(call, step)):
            await self._record(call, step)

    async def _record(self, call: CallRecord, step: Voicemail) -> None:
        assert self.mailboxes is not None
        if call.call_id not in self.board.live_calls:
            return
        path = self.mailboxes.message_path(step.box, call.call_id)
        try:
            await self.board.engine.record(call.inbound_leg, str(path))
        except EngineError as exc:
            log.warning("call %s: recording a message failed: %s", call.call_id, exc)
            self.board.settle(call, Failed("the message could not be recorded"))
            await self.board.hang_up(call, 200)
            return
        call.message = path
        call.message_box = step.box
        self.arm(call, step.max_message, lambda: self._message_limit(call))

    async def _message_limit(self, call: CallRecord) -> None:
        """The message reached its length limit: keep it, say so, hang up."""
        await self.end_message(call)
        if not await self.play(call, [SAVED], lambda: self.board.hang_up(call, 200)):
            await self.board.hang_up(call, 200)

    async def end_message(self, call: CallRecord) -> None:
        """Close the recording (the caller hung up, or the limit) and file it."""
        path, call.message = call.message, None
        if path is None or self.mailboxes is None:
            return
        self.disarm(call)
        with contextlib.suppress(EngineError):
            await self.board.engine.stop_record(call.inbound_leg)
        seconds = wav_seconds(path)
        try:
            call.voicemail_id = await self.mailboxes.deliver(
                call.message_box, call.caller, call.call_id, path, seconds)
        except Exception:
            # The message is on disk; losing the row must not lose the call record.
            log.exception("call %s: filing the message failed", call.call_id)
        if call.voicemail_id is None:
            self.board.settle(call, Failed(f"no message kept ({seconds:.1f} s)"))
        else:
            self.board.settle(call, Done())
