"""Calls changing hands: pickup of a call ringing elsewhere, blind and attended transfers.

The switchboard hands these events over; the call's legs, ring step and record stay the
switchboard's, so this module works on them through it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..engine import LegInfo, LegState, ReplacedEvent, TransferEvent
from ..features import Feature, FeatureCall
from ..routing import core as routing
from ..routing.plan import Answered
from ..transfers import Bridge, Transfer
from .records import CallRecord, Disposition

if TYPE_CHECKING:
    from . import Switchboard

log = logging.getLogger(__name__)


class Handovers:
    """Pickups and transfers for the switchboard."""

    def __init__(self, board: Switchboard) -> None:
        self.board = board

    # --- pickup ---------------------------------------------------------------------
    def ringing_call(self, picker: str, feature: FeatureCall) -> CallRecord | None:
        """The oldest unanswered call this pickup may take."""
        candidates = [
            call for call in self.board._calls.values()
            if call.answered_leg is None and call.disposition is None and call.ringing
            and (call.dialled == feature.target if feature.feature is Feature.DIRECTED_PICKUP
                 else self.board.directory.same_group(picker, call.dialled))]
        return min(candidates, key=lambda c: c.started_at, default=None)

    async def pickup(self, leg: LegInfo, feature: FeatureCall) -> None:
        """Answer a call ringing elsewhere on the phone that dialled the pickup code."""
        picker = self.board.directory.owner_of(leg.headers.get("x-pbx-device", ""))
        if picker is None:
            self.board._by_leg.pop(leg.leg_id, None)
            await self.board.safe_hangup(leg.leg_id, 403, "Pickup is for desk phones")
            return
        call = self.ringing_call(picker, feature)
        if call is None:
            log.info("pickup by %s (%s): nothing ringing", picker, feature.feature.value)
            self.board._by_leg.pop(leg.leg_id, None)
            await self.board.safe_hangup(leg.leg_id, 404, "Nothing to pick up")
            return
        log.info("call %s to %s picked up by %s", call.call_id, call.dialled, picker)
        self.board._by_leg[leg.leg_id] = call.call_id
        call.answered_leg = leg.leg_id
        call.answered_at = self.board._now()
        call.answered_contact = leg.remote_uri
        call.answered_extension = picker
        call.rang.append(leg.remote_uri)
        self.board.presence.answered(call.call_id, picker)
        ringing = list(call.ringing)
        self.board._end_ring(call)
        call.ringing.clear()
        if call.plan is not None:
            call.plan = routing.next_step(call.plan, Answered(picker))
        for out in ringing:
            await self.board.safe_hangup(out)
        await self.board._safe(self.board.engine.answer(leg.leg_id, 200))
        await self.board._safe(self.board.engine.answer(call.inbound_leg, 200))
        await self.board._safe(self.board.engine.bridge(call.inbound_leg, leg.leg_id,
                                            self.board._recording_path(call)))

    # --- transfers ------------------------------------------------------------------
    def transfer_started(self, event: TransferEvent) -> None:
        """A party of an answered call sent REFER: its call record ends, the transfer starts."""
        call = self.board._calls.get(self.board._by_leg.get(event.transferor) or "")
        if call is None or call.answered_leg is None:
            log.warning("transfer from leg %s outside an answered call", event.transferor)
            self.board.spawn(self.board.safe_hangup(event.new_leg))
            return
        by_callee = event.transferor == call.answered_leg
        transferee = call.inbound_leg if by_callee else call.answered_leg
        transfer = Transfer(
            transferee=transferee, transferor=event.transferor, target_leg=event.new_leg,
            target=event.target,
            caller=call.caller if by_callee else call.answered_contact)
        call.disposition = Disposition.ANSWERED
        call.hangup_side = "callee" if by_callee else "caller"
        call.sip_code = 200
        call.transferred_to = event.target
        self.board._finish(call)
        # The transferee is still on the phone: its busy lamp stays lit through the transfer.
        transferee_ext: str | None
        if by_callee:
            transferee_ext = (self.board.directory.owner_of(call.caller_device)
                              if call.caller_device else None)
        else:
            transferee_ext = call.answered_extension or call.dialled
        if transferee_ext:
            transfer.lamp = transferee_ext
            self.board.presence.ringing(transfer.presence_id, transferee_ext)
            self.board.presence.answered(transfer.presence_id, transferee_ext)
        for leg_id in transfer.legs():
            self.board._transfers[leg_id] = transfer
        log.info("call %s: %s transfers %s to %s", call.call_id, event.transferor,
                 transferee, event.target)
        self.board.spawn(self.board._safe(self.board.engine.play(transferee, "ringback")))

    def transfer_changed(self, transfer: Transfer, leg: LegInfo) -> None:
        if leg.leg_id == transfer.target_leg and leg.sip_call_id:
            transfer.target_call_id = leg.sip_call_id
        actions = transfer.step(leg.leg_id, leg.state)
        if leg.state is LegState.DISCONNECTED:
            self.board._transfers.pop(leg.leg_id, None)
            if leg.leg_id == transfer.transferee and transfer.lamp:
                self.board.presence.ended(transfer.presence_id)
        for action in actions:
            if isinstance(action, Bridge):
                self.board.spawn(self.board._safe(self.board.engine.bridge(action.a, action.b)))
            else:
                self.board.spawn(self.board.safe_hangup(action.leg))

    def replaced(self, event: ReplacedEvent) -> None:
        """An attended transfer's INVITE with Replaces took over a leg of a call."""
        call = self.board._calls.get(self.board._by_leg.pop(event.old_leg, "") or "")
        if call is None:
            return
        if call.inbound_leg == event.old_leg:
            call.inbound_leg = event.new_leg
        elif call.answered_leg == event.old_leg:
            call.answered_leg = event.new_leg
        self.board._by_leg[event.new_leg] = call.call_id
