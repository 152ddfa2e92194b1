"""One call leg in the engine: a pjsua2 Call whose callbacks only copy data out.

Every callback body is wrapped: an exception escaping into SWIG keeps a
traceback that references the Call, and that Call later aborts the process
at shutdown. Legs keep no references to other legs (peers are ids).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from .events import Direction, LegInfo, LegState, MediaStats

if TYPE_CHECKING:
    from .owner import Owner

log = logging.getLogger(__name__)

_STATES = {
    pj.PJSIP_INV_STATE_NULL: LegState.CALLING,
    pj.PJSIP_INV_STATE_CALLING: LegState.CALLING,
    pj.PJSIP_INV_STATE_INCOMING: LegState.INCOMING,
    pj.PJSIP_INV_STATE_EARLY: LegState.EARLY,
    pj.PJSIP_INV_STATE_CONNECTING: LegState.CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: LegState.CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: LegState.DISCONNECTED,
}

_REQUEST_LINE = re.compile(r"^[A-Z]+\s+(?:sips?|tel):(?:([^@;>\s]+)@)?", re.ASCII)


# Headers of an inbound INVITE the switchboard acts on (the X-PBX ones only the edge sets).
# The edge's trusted headers (it strips them from anything arriving from outside): which
# device called, a transfer's hairpin, and a line's call with the number it was for.
KEPT_HEADERS = ("x-pbx-device", "x-pbx-hairpin", "x-pbx-line", "x-pbx-number", "referred-by")


def headers_of(message: str, names: tuple[str, ...] = KEPT_HEADERS) -> dict[str, str]:
    """The first value of each wanted header (lower-case names) in a SIP message's head."""
    found: dict[str, str] = {}
    head = message.split("\r\n\r\n", 1)[0]
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if sep and key in names and key not in found:
            found[key] = value.strip()
    return found


def request_user_of(message: str) -> str:
    """The user part of a SIP request's Request-URI ('' when there is none)."""
    match = _REQUEST_LINE.match(message)
    return match.group(1) or "" if match else ""


class Leg(pj.Call):
    """A pjsua2 call owned by the engine's owner thread."""

    def __init__(
        self,
        owner: Owner,
        account: pj.Account,
        call_id: int,
        *,
        outbound: bool,
        request_user: str = "",
        leg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(account, call_id)
        self._owner = owner
        self.leg_id = leg_id or owner.new_leg_id()
        self.direction = Direction.OUTBOUND if outbound else Direction.INBOUND
        self.request_user = request_user
        self.headers = headers or {}
        self.hanging_up = False
        self.local_hangup = False
        self._connected_at: float | None = None

    def snapshot(self) -> LegInfo:
        """Copy what the rest of the box needs out of pjsua2."""
        try:
            ci = self.getInfo()
        except pj.Error as exc:
            log.debug("getInfo of %s failed: %s", self.leg_id, exc.info())
            return LegInfo(self.leg_id, self.direction, LegState.DISCONNECTED, "", "",
                           self.request_user,
                           hangup_side="local" if self.local_hangup else "remote")
        state = _STATES.get(ci.state, LegState.CALLING)
        if state is LegState.CONFIRMED and self._connected_at is None:
            self._connected_at = time.monotonic()
        index = self._audio_index(ci)
        media_active = index >= 0
        held = any(m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
                   for m in ci.media)
        codec = self._codec_name(index) if media_active else ""
        duration = time.monotonic() - self._connected_at if self._connected_at else 0.0
        return LegInfo(
            leg_id=self.leg_id,
            direction=self.direction,
            state=state,
            local_uri=ci.localUri,
            remote_uri=ci.remoteUri,
            request_user=self.request_user,
            sip_code=int(ci.lastStatusCode),
            reason=ci.lastReason,
            media_active=media_active,
            held=held,
            codec=codec,
            duration_s=round(duration, 3),
            headers=self.headers,
            sip_call_id=ci.callIdString,
            hangup_side=("local" if self.local_hangup else "remote")
            if state is LegState.DISCONNECTED
            else "",
        )

    def _codec_name(self, index: int) -> str:
        try:
            info = self.getStreamInfo(index)
            return f"{info.codecName}/{info.codecClockRate}"
        except pj.Error:
            return ""

    @staticmethod
    def _audio_index(ci: Any) -> int:
        """Index of the first active audio stream in a CallInfo, or -1."""
        for index in range(len(ci.media)):
            media = ci.media[index]
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                return index
        return -1

    def audio_port(self) -> tuple[Any | None, bool]:
        """The leg's AudioMedia (None before media is up) and whether the far end holds it."""
        try:
            ci = self.getInfo()
            for index in range(len(ci.media)):
                media = ci.media[index]
                if media.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                if media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    return self.getAudioMedia(index), False
                if media.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD:
                    return self.getAudioMedia(index), True
            return None, False
        except pj.Error:
            return None, False

    def media_stats(self) -> MediaStats:
        """RTP counters and bridge listeners of the leg's active audio."""
        try:
            index = self._audio_index(self.getInfo())
            if index < 0:
                return MediaStats(self.leg_id)
            port = self.getAudioMedia(index).getPortInfo()
            rtcp = self.getStreamStat(index).rtcp
            transport = self.getMedTransportInfo(index)
            return MediaStats(
                self.leg_id, slot=int(port.portId), listeners=tuple(int(x) for x in port.listeners),
                rx_packets=int(rtcp.rxStat.pkt), tx_packets=int(rtcp.txStat.pkt),
                rx_lost=int(rtcp.rxStat.loss),
                jitter_ms=round(rtcp.rxStat.jitterUsec.mean / 1000, 2),
                local_rtp=str(transport.localRtpName),
                remote_rtp=str(self.getStreamInfo(index).remoteRtpAddress),
                source_rtp=str(transport.srcRtpName))
        except pj.Error:
            return MediaStats(self.leg_id)

    # --- callbacks: copy out, never raise ------------------------------------------
    def onCallState(self, prm: Any) -> None:
        try:
            self._owner.on_leg_state(self, self.snapshot())
        except Exception:
            log.exception("onCallState of %s failed", self.leg_id)

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self._owner.on_leg_media(self, self.snapshot())
        except Exception:
            log.exception("onCallMediaState of %s failed", self.leg_id)

    def onCallTransferRequest(self, prm: Any) -> None:
        try:
            self._owner.on_transfer_request(self, prm)
        except Exception:
            prm.statusCode = 500
            log.exception("onCallTransferRequest of %s failed", self.leg_id)

    def onCallReplaceRequest(self, prm: Any) -> None:
        try:
            self._owner.on_replace_request(self, prm)
        except Exception:
            log.exception("onCallReplaceRequest of %s failed", self.leg_id)

    def onCallReplaced(self, prm: Any) -> None:
        try:
            self._owner.on_replaced(self)
        except Exception:
            log.exception("onCallReplaced of %s failed", self.leg_id)

    def onDtmfDigit(self, prm: Any) -> None:
        try:
            self._owner.on_dtmf(self, str(prm.digit))
        except Exception:
            log.exception("onDtmfDigit of %s failed", self.leg_id)
