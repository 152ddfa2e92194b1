"""Click-to-call and hanging up from the outside (the web UI, the REST API, a CRM).

Click-to-call rings the employee's phones first, showing the number about to be called.
When one answers, that leg becomes the call's "caller" exactly as if the employee had
dialled the number from it: the switchboard routes it (outbound routing with the
employee's permissions and caller-ID rules, or an internal number), plays ringback to the
employee while the far end rings, and bridges the two when it answers. Until then the
legs belong to this module, which the switchboard asks first about every leg event.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..control import BadRequest, ControlServer, Request
from ..directory import DirectorySnapshot
from ..engine import EngineError, LegInfo, LegState
from .records import CallRecord, Disposition

if TYPE_CHECKING:
    from . import Switchboard

log = logging.getLogger(__name__)

EMPLOYEE_RING_S = 45.0  # how long the employee's phones ring before the attempt is dropped
_EXTENSION = re.compile(r"[0-9]{2,6}", re.ASCII)
_NUMBER = re.compile(r"\+?[0-9*#]{1,32}", re.ASCII)
_CALL_ID = re.compile(r"[A-Za-z0-9-]{1,64}", re.ASCII)
# What the employee's phone shows as the caller's name while it rings for a click-to-call,
# in the box's language (the prompts' language; English when the box has no prompts).
_RINGING_NAME = {"ru": "Звонок на {number}", "en": "Call to {number}"}


def ringing_name(number: str, language: str | None) -> str:
    """The caller name the employee's phone shows for a click-to-call to number."""
    return _RINGING_NAME.get(language or "en", _RINGING_NAME["en"]).format(number=number)


class OriginateError(Exception):
    """Click-to-call refused: `status` 400 (bad input), 404 (unknown), 409 (cannot now)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Attempt:
    """One click-to-call while the employee's phones ring."""

    call_id: str
    extension: str
    number: str
    started_at: datetime
    legs: dict[str, str] = field(default_factory=dict)  # ringing leg id -> its device
    timer: asyncio.TimerHandle | None = None
    answered: bool = False


def check_request(body: Any) -> tuple[str, str]:
    """(extension, number) from a control request body, or OriginateError(400)."""
    if not isinstance(body, dict):
        raise OriginateError("the body must be an object {extension, number}", 400)
    extension, number = body.get("extension"), body.get("number")
    if not isinstance(extension, str) or not _EXTENSION.fullmatch(extension):
        raise OriginateError("extension: 2-6 digits", 400)
    if not isinstance(number, str) or not _NUMBER.fullmatch(number):
        raise OriginateError("number: up to 32 digits, * or #, may start with +", 400)
    return extension, number


class Originations:
    """Click-to-call attempts whose employee has not answered yet."""

    def __init__(self, board: Switchboard, ring_s: float = EMPLOYEE_RING_S) -> None:
        self.board = board
        self.ring_s = ring_s
        self._by_leg: dict[str, Attempt] = {}
        self._attempts: dict[str, Attempt] = {}

    def _devices(self, extension: str) -> list[tuple[str, str]]:
        """(contact, device) to ring for the employee: only phones that registered, since
        the device is who the call is from (its owner's permissions apply)."""
        directory = self.board.directory
        if not isinstance(directory, DirectorySnapshot):
            return []
        ext = directory.extensions.get(extension)
        if ext is None or ext.dnd:
            return []
        return [(contact, device) for device in ext.devices
                for contact in directory.registered(device)]

    async def originate(self, extension: str, number: str) -> str:
        """Ring the employee's phones; returns the call id the call will have."""
        board = self.board
        if not board.accepting:
            raise OriginateError("the box is shutting down", 409)
        if board.directory.contacts(extension) is None:
            raise OriginateError(f"no employee with extension {extension}", 404)
        targets = self._devices(extension)
        if not targets:
            raise OriginateError(f"no phone of {extension} is registered (or do not disturb)",
                                 409)
        attempt = Attempt(str(uuid.uuid4()), extension, number, board.now())
        self._attempts[attempt.call_id] = attempt
        # The desk phone shows the number it is about to call (the edge puts these in From).
        language = getattr(board.voice.prompts, "language", None)
        headers = {"X-PBX-Caller": number,
                   "X-PBX-Caller-Name": ringing_name(number, language)}
        for n, (contact, device) in enumerate(targets, 1):
            if attempt.answered:
                break  # a phone answered while the next was being dialled
            leg_id = f"{attempt.call_id[:8]}-o{n}"
            attempt.legs[leg_id] = device
            self._by_leg[leg_id] = attempt  # claimed before dialling: events may come first
            try:
                await board.engine.dial(contact, leg_id=leg_id, headers=headers)
            except EngineError as exc:
                log.warning("click-to-call %s: dialling %s failed: %s", attempt.call_id,
                            contact, exc)
                attempt.legs.pop(leg_id, None)
                self._by_leg.pop(leg_id, None)
        if attempt.answered:
            return attempt.call_id
        if not attempt.legs:
            self._attempts.pop(attempt.call_id, None)
            raise OriginateError("the employee's phones could not be called", 409)
        loop = asyncio.get_running_loop()
        attempt.timer = loop.call_later(self.ring_s,
                                        lambda: board.spawn(self._give_up(attempt)))
        log.info("click-to-call %s: ringing %s for %s", attempt.call_id, extension, number)
        return attempt.call_id

    def on_leg(self, leg: LegInfo) -> bool:
        """A leg event: True if it was one of ours (the switchboard then ignores it)."""
        attempt = self._by_leg.get(leg.leg_id)
        if attempt is None:
            return False
        if leg.state is LegState.CONFIRMED and not attempt.answered:
            self._answered(attempt, leg)
        elif leg.state is LegState.DISCONNECTED:
            self._by_leg.pop(leg.leg_id, None)
            attempt.legs.pop(leg.leg_id, None)
            if not attempt.legs and not attempt.answered:
                log.info("click-to-call %s: %s did not answer (%s)", attempt.call_id,
                         attempt.extension, leg.sip_code)
                self._forget(attempt)
        return True

    def _answered(self, attempt: Attempt, leg: LegInfo) -> None:
        """The employee answered: the call goes on as if they had dialled the number."""
        board = self.board
        attempt.answered = True
        device = attempt.legs.pop(leg.leg_id)
        self._by_leg.pop(leg.leg_id, None)  # the switchboard's own from now on
        others = list(attempt.legs)
        self._forget(attempt)
        call = CallRecord(
            call_id=attempt.call_id, inbound_leg=leg.leg_id, caller=leg.remote_uri,
            dialled=attempt.number, started_at=attempt.started_at, caller_device=device,
            direction="internal", connected=True)
        call.up.set()
        # From here on the switchboard owns the leg: the employee hanging up ends the call.
        board.adopt(call)
        call.plan = board.plan_for(call)  # "outbound" when the number is not internal
        board.calllog.started(call)
        board.spawn(self._go(call, others))

    async def _go(self, call: CallRecord, others: list[str]) -> None:
        for leg_id in others:
            await self.board.safe_hangup(leg_id)
        await self.board.advance(call)

    async def _give_up(self, attempt: Attempt) -> None:
        """Nobody answered in time: stop ringing."""
        if attempt.answered or attempt.call_id not in self._attempts:
            return
        legs = list(attempt.legs)
        self._forget(attempt)
        for leg_id in legs:
            await self.board.safe_hangup(leg_id)

    def _forget(self, attempt: Attempt) -> None:
        self._attempts.pop(attempt.call_id, None)
        for leg_id in list(attempt.legs):
            self._by_leg.pop(leg_id, None)
        if attempt.timer is not None:
            attempt.timer.cancel()

    async def cancel(self, call_id: str) -> bool:
        """Stop a click-to-call still ringing the employee; False if there is none."""
        attempt = self._attempts.get(call_id)
        if attempt is None:
            return False
        attempt.answered = True  # nothing may connect any more
        legs = list(attempt.legs)
        self._forget(attempt)
        for leg_id in legs:
            await self.board.safe_hangup(leg_id)
        return True


async def hang_up_call(board: Switchboard, call_id: str) -> bool:
    """End a call in progress as the box (an admin's or a CRM's hang-up); False if unknown."""
    if await board.originations.cancel(call_id):
        return True
    call = board.live_calls.get(call_id)
    if call is None:
        return False
    if call.answered_leg is not None:
        if call.disposition is None:
            call.disposition = Disposition.ANSWERED
            call.hangup_side = "system"
            call.sip_code = 200
        await board.safe_hangup(call.answered_leg)
        await board.safe_hangup(call.inbound_leg)
    else:
        await board.hang_up(call, 480)  # the caller still waiting hears "not available"
    return True


def register(control: ControlServer, board: Callable[[], Switchboard | None]) -> None:
    """Serve `POST /originate` and `POST /calls/{call_id}/hangup`."""

    def switchboard() -> Switchboard:
        found = board()
        if found is None:
            raise BadRequest("the switchboard is not running", 409)
        return found

    async def originate(req: Request) -> dict[str, Any]:
        try:
            extension, number = check_request(req.body)
            call_id = await switchboard().originations.originate(extension, number)
        except OriginateError as exc:
            raise BadRequest(str(exc), exc.status) from None
        return {"call_id": call_id}

    async def hangup(req: Request) -> dict[str, Any]:
        call_id = req.params.get("call_id", "")
        if not _CALL_ID.fullmatch(call_id):
            raise BadRequest("no such call", 404)
        if not await hang_up_call(switchboard(), call_id):
            raise BadRequest(f"no call {call_id} in progress", 404)
        return {"hung_up": call_id}

    control.route("POST", "/originate", originate)
    control.route("POST", "/calls/{call_id}/hangup", hangup)
