"""Feature codes that talk to the caller: listening to voicemail, the day/night switch.

Each is a small voice dialogue written as one coroutine (say something, collect keys,
act), run as a task that the caller hanging up cancels. The calls are not routed and
are not written to the call history: they are the box's own service lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..engine import LegInfo
from ..features import Feature, FeatureCall
from .records import CallRecord
from .voice import wav_seconds

if TYPE_CHECKING:
    from . import Switchboard

log = logging.getLogger(__name__)

KEY_WAIT_S = 8.0  # how long a dialogue waits for a key after its prompt
PIN_TRIES = 3
MAX_BOX_DIGITS = 6
MAX_PIN_DIGITS = 12
GOODBYE = "goodbye"


class Message(Protocol):
    """A stored voice message as the listening dialogue needs it."""

    @property
    def id(self) -> int:
        """The message's row id."""
        ...

    @property
    def path(self) -> Path:
        """Its WAV file."""
        ...

    @property
    def is_read(self) -> bool:
        """Whether it was listened to already."""
        ...


class VoicemailAccess(Protocol):
    """What listening to messages from a phone needs of voicemail."""

    def check_pin(self, box: str, pin: str) -> bool:
        """Whether pin opens the box."""
        ...

    def messages(self, box: str) -> Sequence[Message]:
        """The box's messages (not deleted)."""
        ...

    async def mark_read(self, message_id: int) -> None:
        """Mark a message listened to."""
        ...

    async def delete(self, message_id: int) -> None:
        """Delete a message."""
        ...


DayNightSwitch = Callable[[str], Coroutine[Any, Any, None]]
# Keep a greeting recorded from a phone: (box key, the WAV file) -> stored.
GreetingSaver = Callable[[str, Path], Coroutine[Any, Any, None]]
GREETING_MAX_S = 60.0
GREETING_MIN_S = 1.0


class Services:
    """Runs the feature-code dialogues for the switchboard."""

    def __init__(self, board: Switchboard) -> None:
        self.board = board
        self.voicemail: VoicemailAccess | None = None
        self.set_day_night: DayNightSwitch | None = None
        self.save_greeting: GreetingSaver | None = None
        self.key_wait_s = KEY_WAIT_S

    async def start(self, leg: LegInfo, feature: FeatureCall) -> None:
        """A desk phone dialled a feature code: check who it is, then run the dialogue."""
        board = self.board
        device = leg.headers.get("x-pbx-device", "")
        owner = board.directory.owner_of(device) if device else None
        if owner is None:
            board.forget_leg(leg.leg_id)
            await board.safe_hangup(leg.leg_id, 403, "Feature codes are for desk phones")
            return
        call = CallRecord(call_id=str(uuid.uuid4()), inbound_leg=leg.leg_id,
                          caller=leg.remote_uri, dialled=leg.request_user,
                          started_at=board.now(), caller_device=device, service=True)
        board.adopt(call)
        if feature.feature is Feature.DAY_NIGHT:
            dialogue = self._day_night(call, owner, feature.target)
        elif feature.feature is Feature.MY_GREETING:
            dialogue = self._record_greeting(call, owner)
        else:
            dialogue = self._listen(call, owner, own=feature.feature is Feature.MY_VOICEMAIL)
        call.task = asyncio.get_running_loop().create_task(self._run(call, dialogue))

    async def _run(self, call: CallRecord, dialogue: Coroutine[Any, Any, None]) -> None:
        try:
            await dialogue
        except asyncio.CancelledError:
            return  # the caller hung up
        except Exception:
            log.exception("call %s: %s failed", call.call_id, call.dialled)
        await self.board.hang_up(call, 500)

    # --- talking ----------------------------------------------------------------------
    async def say(self, call: CallRecord, keys: list[str | None]) -> None:
        """Play prompts to the end (keys pressed meanwhile wait in the queue)."""
        ended = asyncio.Event()

        async def mark() -> None:
            ended.set()

        if await self.board.voice.play(call, keys, mark):
            await ended.wait()

    async def ask(self, call: CallRecord, keys: list[str | None], max_digits: int,
                  timeout: float | None = None, *, hash_ends: bool = True) -> str:
        """Play prompts, cut short by the first key; collect keys up to '#' (with
        hash_ends; otherwise '#' is a key), max_digits or a pause of `timeout`."""
        ended = asyncio.Event()

        async def mark() -> None:
            ended.set()

        if not await self.board.voice.play(call, keys, mark):
            ended.set()
        digits = ""
        while True:
            if ended.is_set():
                try:
                    key = await asyncio.wait_for(call.keys.get(), timeout or self.key_wait_s)
                except TimeoutError:
                    return digits
            else:
                get = asyncio.ensure_future(call.keys.get())
                end = asyncio.ensure_future(ended.wait())
                done, _ = await asyncio.wait({get, end}, return_when=asyncio.FIRST_COMPLETED)
                end.cancel()
                if get not in done:
                    get.cancel()
                    continue
                key = get.result()
                self.board.voice.cut_prompt(call)
                ended.set()
            if key == "#" and hash_ends:
                return digits
            digits += key
            if len(digits) >= max_digits:
                return digits

    async def bye(self, call: CallRecord, keys: list[str | None]) -> None:
        """Say the last words, then hang up."""
        await self.say(call, [*keys, GOODBYE])
        await self.board.hang_up(call, 200)

    # --- day and night --------------------------------------------------------------
    async def _day_night(self, call: CallRecord, owner: str, mode: str) -> None:
        snap = self.board.snapshot
        employee = snap.employees.get(owner) if snap is not None else None
        if employee is None or not employee.administrator or self.set_day_night is None:
            log.warning("day/night switch to %s refused for %s", mode, owner)
            await self.board.hang_up(call, 403)
            return
        await self.set_day_night(mode)
        log.info("%s switched the office to %s mode from a phone", owner, mode)
        if await self.board.voice.connect(call):
            await self.bye(call, [f"mode-{mode}"])
        else:
            await self.board.hang_up(call, 200)

    # --- recording a mailbox greeting -----------------------------------------------
    async def _record_greeting(self, call: CallRecord, owner: str) -> None:
        box = self._box_of(owner)
        data_dir = self.board.data_dir
        if box is None or self.save_greeting is None or data_dir is None:
            await self.board.hang_up(call, 404)
            return
        if not await self.board.voice.connect(call):
            await self.board.hang_up(call, 200)
            return
        await self.say(call, ["vm-record-greeting", "voicemail-beep"])
        folder = data_dir / "prompts"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".recording-{call.call_id}.wav"
        try:
            engine = self.board.engine
            await engine.record(call.inbound_leg, str(path))
            # '#' ends it; so does the time limit (the caller hanging up discards it).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GREETING_MAX_S):
                    while await call.keys.get() != "#":
                        pass
            await engine.stop_record(call.inbound_leg)
            if wav_seconds(path) < GREETING_MIN_S:
                await self.bye(call, ["invalid-key"])
                return
            await self.save_greeting(box, path)
            log.info("%s recorded a new greeting for mailbox %s from a phone", owner, box)
            await self.bye(call, ["vm-greeting-saved"])
        finally:
            path.unlink(missing_ok=True)

    # --- listening to voicemail -----------------------------------------------------
    def _box_of(self, extension: str) -> str | None:
        snap = self.board.snapshot
        if snap is None:
            return None
        for box in snap.voicemail.values():
            if extension in (box.extension, box.owner):
                return box.key
        return None

    async def _listen(self, call: CallRecord, owner: str, *, own: bool) -> None:
        access = self.voicemail
        box = self._box_of(owner) if own else None
        if access is None or (own and box is None):
            await self.board.hang_up(call, 404)
            return
        if not await self.board.voice.connect(call):
            await self.board.hang_up(call, 200)
            return
        if box is None:
            # Any box: its number, then its PIN (the owner's own phone skips neither).
            number = await self.ask(call, ["vm-enter-box"], MAX_BOX_DIGITS)
            box = self._box_of(number)
            if box is None:
                await self.bye(call, ["vm-wrong-pin"])
                return
            for attempt in range(PIN_TRIES):
                pin = await self.ask(call, ["vm-enter-pin"], MAX_PIN_DIGITS)
                if pin and access.check_pin(box, pin):
                    break
                if attempt == PIN_TRIES - 1:
                    log.warning("call %s: wrong voicemail PIN for %s from %s, %d times",
                                call.call_id, box, owner, PIN_TRIES)
                    await self.bye(call, ["vm-wrong-pin"])
                    return
                await self.say(call, ["vm-wrong-pin"])
        await self._play_messages(call, access, box)

    async def _play_messages(self, call: CallRecord, access: VoicemailAccess,
                             box: str) -> None:
        # New messages first, oldest first within each group (the order they came in).
        queue = sorted(access.messages(box), key=lambda m: (m.is_read, m.id))
        if not queue:
            await self.bye(call, ["vm-no-messages"])
            return
        first = "vm-new-messages" if not queue[0].is_read else None
        await self.say(call, [first])
        index = 0
        while index < len(queue):
            message = queue[index]
            key = await self.ask(call, ["vm-message", str(message.path), "vm-options"], 1,
                                 hash_ends=False)
            if key == "1":
                continue  # replay
            if key == "7":
                await access.delete(message.id)
            elif not message.is_read:
                await access.mark_read(message.id)
            if key == "#" or (key == "" and call.call_id not in self.board.live_calls):
                break
            index += 1
        await self.bye(call, [])
