"""What the call engine tells the rest of the box: leg states and events.

Plain data, no pjsua2: the asyncio side and its tests use these without
importing the SIP stack.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class LegState(enum.Enum):
    """Where one call leg is in its life."""

    CALLING = "calling"  # we sent INVITE (outbound leg)
    INCOMING = "incoming"  # we received INVITE (inbound leg)
    EARLY = "early"  # 18x seen or sent
    CONNECTING = "connecting"  # 200 sent or received, waiting for ACK
    CONFIRMED = "confirmed"  # the call is up
    DISCONNECTED = "disconnected"  # over; the leg is gone from the engine


class Direction(enum.Enum):
    """Which side started the leg."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class LegInfo:
    """A snapshot of one leg, copied out of pjsua2 in the owner thread."""

    leg_id: str
    direction: Direction
    state: LegState
    local_uri: str
    remote_uri: str
    request_user: str = ""
    sip_code: int = 0
    reason: str = ""
    media_active: bool = False
    held: bool = False  # the far end has put this leg on hold
    codec: str = ""
    duration_s: float = 0.0
    # Which side ended the call, once it is DISCONNECTED: "local" or "remote".
    hangup_side: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    sip_call_id: str = ""


@dataclass(frozen=True)
class MediaStats:
    """RTP counters and bridge wiring of one leg's audio, for diagnostics."""

    leg_id: str
    slot: int = -1  # the leg's port in the conference bridge (-1: no active audio)
    listeners: tuple[int, ...] = ()  # bridge ports this leg's audio is sent to
    rx_packets: int = 0
    tx_packets: int = 0
    rx_lost: int = 0
    jitter_ms: float = 0.0
    local_rtp: str = ""  # where the engine receives this leg's RTP
    remote_rtp: str = ""  # where it sends it (from the far end's SDP, or learned)
    source_rtp: str = ""  # where the RTP it receives comes from
    # "sip" for a call leg; "port" for a modem's audio port (then rx/tx_packets count the
    # frames the bridge took from and gave to it, and `port` holds its rings' counters).
    kind: str = "sip"
    port: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LegEvent:
    """A leg changed state (or its media did)."""

    leg: LegInfo
    media_changed: bool = False


@dataclass(frozen=True)
class DtmfEvent:
    """A digit arrived on a leg (RFC 4733 or SIP INFO; in-band on a modem's port leg)."""

    leg_id: str
    digit: str


@dataclass(frozen=True)
class PromptEvent:
    """A prompt started by `Engine.play_prompt` has played to its end on a leg."""

    leg_id: str
    play_id: int


@dataclass(frozen=True)
class TransferEvent:
    """A phone asked (REFER) to transfer its peer; the engine dials `target` as new_leg."""

    transferor: str  # the leg the REFER came in on
    new_leg: str  # the engine's call to the target, placed by pjsua2
    target: str  # the Refer-To URI


@dataclass(frozen=True)
class ReplacedEvent:
    """An INVITE with Replaces took over a leg (attended transfer): new_leg stands for old."""

    old_leg: str
    new_leg: str


EngineEvent = LegEvent | DtmfEvent | PromptEvent | TransferEvent | ReplacedEvent
