"""The modem's life cycle as an explicit state machine: a pure transition function and events.

The driver loop (a later step) feeds it what it observes (port found or lost, SIM status,
registration, calls, hangs, resets) and publishes the StateChange it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ModemState(enum.Enum):
    """Where a modem is in its life: only READY takes new calls."""

    ABSENT = "absent"
    INITIALISING = "initialising"
    SIM_LOCKED = "sim_locked"
    REGISTERING = "registering"
    READY = "ready"
    IN_CALL = "in_call"
    RESETTING = "resetting"
    FAILED = "failed"


class Sim(enum.Enum):
    """What +CPIN says, reduced to what the state machine needs."""

    READY = "ready"
    PIN = "pin"
    PUK = "puk"
    ABSENT = "absent"


@dataclass(frozen=True)
class PortFound:
    """The AT port appeared (boot, hot-plug, or back after a reset)."""


@dataclass(frozen=True)
class PortLost:
    """The AT port vanished (unplugged, or re-enumerating after AT+CFUN=1,1)."""


@dataclass(frozen=True)
class SimChanged:
    """The SIM status, from +CPIN? at start-up or a +CPIN URC."""

    sim: Sim


@dataclass(frozen=True)
class RegistrationChanged:
    """Registered (home or roaming) or not, from +CREG/+CEREG."""

    registered: bool


@dataclass(frozen=True)
class CallStarted:
    """A call is set up on the SIM (ringing in, dialling out, or talking)."""


@dataclass(frozen=True)
class CallEnded:
    """The last call on the SIM is over."""


@dataclass(frozen=True)
class Hung:
    """The modem stopped answering (command timeouts, silence): it will be reset."""

    detail: str = ""


@dataclass(frozen=True)
class ResetStarted:
    """A reset was sent (AT+CFUN=1,1 or a power-key cycle)."""


@dataclass(frozen=True)
class Failed:
    """Start-up failed, the PIN was refused, or resets gave up: a person has to look."""

    detail: str = ""


ModemEvent = (PortFound | PortLost | SimChanged | RegistrationChanged | CallStarted | CallEnded
              | Hung | ResetStarted | Failed)


@dataclass(frozen=True)
class StateChange:
    """A transition, for subscribers (LEDs, the line's availability, alerts, the API)."""

    old: ModemState
    new: ModemState
    event: ModemEvent


S = ModemState
_ALIVE = frozenset({S.INITIALISING, S.SIM_LOCKED, S.REGISTERING, S.READY, S.IN_CALL})


def next_state(state: ModemState, event: ModemEvent) -> ModemState:
    """The state after event; the same state when the event means nothing there."""
    if isinstance(event, PortFound):
        return S.INITIALISING if state in (S.ABSENT, S.RESETTING, S.FAILED) else state
    if isinstance(event, PortLost):
        # During a reset the port is expected to vanish and come back on a new path.
        return state if state is S.RESETTING else S.ABSENT
    if isinstance(event, ResetStarted | Hung):
        return S.RESETTING if state in _ALIVE or state is S.FAILED else state
    if isinstance(event, Failed):
        return S.FAILED if state is not S.ABSENT else state
    if state not in _ALIVE:
        # Absent, resetting and failed modems have no SIM, network or calls to speak of.
        return state
    if isinstance(event, SimChanged):
        return _on_sim(state, event.sim)
    if isinstance(event, RegistrationChanged):
        if state is S.SIM_LOCKED or state is S.INITIALISING:
            return state
        if not event.registered:
            # An active call dies with the network; the call end will follow as its own event.
            return S.REGISTERING
        return S.READY if state is S.REGISTERING else state
    if isinstance(event, CallStarted):
        return S.IN_CALL if state is S.READY else state
    if isinstance(event, CallEnded):
        return S.READY if state is S.IN_CALL else state
    return state


def _on_sim(state: ModemState, sim: Sim) -> ModemState:
    if sim is Sim.READY:
        return S.REGISTERING if state in (S.INITIALISING, S.SIM_LOCKED) else state
    if sim is Sim.ABSENT:
        return S.FAILED
    return S.SIM_LOCKED


def apply(state: ModemState, event: ModemEvent) -> tuple[ModemState, StateChange | None]:
    """next_state plus the StateChange to publish (None when nothing changed)."""
    new = next_state(state, event)
    return new, (StateChange(state, new, event) if new is not state else None)


def takes_calls(state: ModemState) -> bool:
    """True when the line can be offered a new call."""
    return state is S.READY
