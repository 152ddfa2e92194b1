"""What the switchboard writes down about a call, and the small types it is built on."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..ringing import RingSet
from ..routing.plan import (
    Leg,
    PlanState,
)


class Disposition(enum.Enum):
    """How a call ended, as the call records say it."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


@dataclass
class Rung:
    """One engine leg dialled for a call: the plan leg it served, when, through which line."""

    uri: str  # what the engine dialled (a contact, or a line's URI for an outside number)
    leg: Leg  # the routing plan's leg: kind (extension, mobile, external, sip_uri), extension
    at: datetime  # when it was dialled
    line: str | None = None  # the line an outside number went out on
    code: int = 0  # its final SIP code when it failed (0: not known, or it answered)


class Directory(Protocol):
    """Who a dialled user part reaches (a snapshot reloaded on SIGHUP)."""

    def contacts(self, user: str) -> list[str] | None:
        """SIP URIs to ring for user; [] if known but offline; None if unknown."""
        ...

    def records(self, user: str) -> bool:
        """Whether calls to user are recorded."""
        ...

    def records_call(self, *parties: str | None) -> bool:
        """Whether a call with these parties is recorded (the first employee decides)."""
        ...

    def owner_of(self, device: str) -> str | None:
        """The extension a device (SIP username) belongs to."""
        ...

    def same_group(self, a: str, b: str) -> bool:
        """Whether two extensions share a pickup group."""
        ...


@dataclass
class CallRecord:
    """One call through the switchboard, as it will be written down."""

    call_id: str
    inbound_leg: str
    caller: str
    dialled: str
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    disposition: Disposition | None = None
    hangup_side: str = ""
    sip_code: int = 0
    answered_leg: str | None = None
    answered_contact: str = ""
    answered_extension: str = ""  # set when someone else's phone picked the call up
    transferred_to: str = ""  # the Refer-To target, when a party transferred the call away
    caller_device: str = ""  # the calling desk phone's SIP username ("" from outside)
    ringing: dict[str, str] = field(default_factory=dict)  # leg id -> contact uri
    rang: list[str] = field(default_factory=list)  # every contact dialled, in order
    recording: str | None = None  # path relative to the data directory, once answered
    failures: list[int] = field(default_factory=list)
    direction: str = "internal"  # 'internal', 'inbound' (from a line) or 'outbound'
    line: str = ""  # the line an inbound call came in on
    plan: PlanState | None = None  # where the call is in its routing plan
    ring: RingSet | None = None  # the Ring step in progress, if any
    dialled_legs: int = 0  # engine legs dialled so far (their ids are numbered)
    unavailable: list[str] = field(default_factory=list)  # plan steps not carried out yet
    # The box's own conversation with the caller (greetings, menus, voicemail: voice.py).
    connected: bool = False  # the box answered the caller's leg itself
    up: asyncio.Event = field(default_factory=asyncio.Event)  # the caller's leg is CONFIRMED
    playing: int | None = None  # the play id of the prompt the caller hears
    after_prompt: Callable[[], Coroutine[Any, Any, None]] | None = None  # what runs when it ends
    timer: asyncio.TimerHandle | None = None  # the current step's timer
    digits: str = ""  # keys pressed in the current menu, not yet acted on
    message: Path | None = None  # the voice message being recorded
    message_box: str = ""
    voicemail_id: int | None = None  # the message filed from this call
    # A feature-code dialogue (services.py): not routed, not written to the call history.
    service: bool = False
    task: asyncio.Task[None] | None = None
    keys: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    # Every engine leg dialled, by leg id, in dialling order: what each one rang (the call
    # record's legs say employee/mobile/outside number from it). Pickups are not in it.
    rung: dict[str, Rung] = field(default_factory=dict)


class CallLog(Protocol):
    """Where call records go (written at start, completed at the end)."""

    def started(self, call: CallRecord) -> None:
        """A call began."""
        ...

    def finished(self, call: CallRecord) -> None:
        """A call ended."""
        ...


def final_code(failures: list[int]) -> int:
    """The reply for the caller when every contact failed."""
    if not failures:
        return 480
    if 486 in failures or 600 in failures:
        return 486
    if all(code in (408, 480, 0) for code in failures):
        return 480
    return min(failures)


def disposition_for(code: int) -> Disposition:
    """Map the final failure code to a disposition."""
    if code in (486, 600):
        return Disposition.BUSY
    if code in (408, 480):
        return Disposition.NO_ANSWER
    return Disposition.FAILED
