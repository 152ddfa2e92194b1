"""Call transfer as a small state machine (pure): who is bridged, who hangs up.

A phone in a call sends REFER; the engine accepts it and places a new leg to
the target (`target_leg`). Until that leg answers, the transferee (the
party left behind) hears ringback. Then:

- the target answers: the transferee is bridged to it and the transferor is
  hung up (its part is done);
- the target fails: the transferee goes back to the transferor if it is still
  there, else the call ends;
- anyone left alone hangs up the others.

Attended transfer is the same machine: the target leg is the INVITE with
Replaces, which the engine answers at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .engine import LegState


class Stage(enum.Enum):
    """Where a transfer is."""

    RINGING = "ringing"  # the target leg is being set up; the transferee hears ringback
    DONE = "done"  # the transferee talks to the target
    RETURNED = "returned"  # the target failed; the transferee talks to the transferor again
    OVER = "over"


@dataclass(frozen=True)
class Bridge:
    """Connect two legs' audio."""

    a: str
    b: str


@dataclass(frozen=True)
class Hangup:
    """End a leg."""

    leg: str


Action = Bridge | Hangup


@dataclass
class Transfer:
    """One transfer in progress; `step` decides what each leg event means."""

    transferee: str
    transferor: str
    target_leg: str
    target: str  # the Refer-To URI
    caller: str = ""  # who the transferee is (for the target call's record)
    target_call_id: str = ""  # SIP Call-ID of the target leg (its hairpin keeps it)
    lamp: str = ""  # the transferee's extension, whose busy lamp the transfer keeps lit
    stage: Stage = Stage.RINGING
    transferor_up: bool = True

    @property
    def presence_id(self) -> str:
        """The id under which busy lamps see the transferee's ongoing call."""
        return f"transfer-{self.target_leg}"

    def legs(self) -> tuple[str, str, str]:
        """The three legs this transfer watches."""
        return self.transferee, self.transferor, self.target_leg

    def step(self, leg: str, state: LegState) -> list[Action]:
        """The actions after `leg` reached `state` (CONFIRMED or DISCONNECTED matter)."""
        if self.stage is Stage.OVER:
            return []
        if leg == self.transferor and state is LegState.DISCONNECTED:
            self.transferor_up = False
            if self.stage is Stage.RETURNED:
                return self._over(self.transferee)
            return []
        if leg == self.target_leg:
            if state is LegState.CONFIRMED and self.stage is Stage.RINGING:
                self.stage = Stage.DONE
                actions: list[Action] = [Bridge(self.transferee, self.target_leg)]
                if self.transferor_up:
                    actions.append(Hangup(self.transferor))
                    self.transferor_up = False
                return actions
            if state is LegState.DISCONNECTED:
                if self.stage is Stage.RINGING and self.transferor_up:
                    self.stage = Stage.RETURNED
                    return [Bridge(self.transferee, self.transferor)]
                return self._over(self.transferee)
            return []
        if leg == self.transferee and state is LegState.DISCONNECTED:
            others = [self.target_leg] if self.stage is not Stage.RETURNED else []
            if self.transferor_up:
                others.append(self.transferor)
            self.stage = Stage.OVER
            return [Hangup(other) for other in others]
        return []

    def _over(self, *legs: str) -> list[Action]:
        self.stage = Stage.OVER
        return [Hangup(leg) for leg in legs]
