"""USSD: AT+CUSD requests and the +CUSD replies, in each family's encoding.

Huawei wants the request as packed GSM7 hex (plain text only after ^USSDMODE=0) and
answers packed hex (dcs 15) or UCS2 hex (dcs 72). Quectel and SIMCom follow AT+CSCS:
UCS2 hex both ways with "UCS2", plain text with "GSM"/"IRA" (gsm-modems.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import gsm7
from .clock import Timer
from .framing import CmeError, Command, Handler, PlainError
from .profiles import HUAWEI

if TYPE_CHECKING:
    from .core import Modem

UNKNOWN_DELAY_S = 0.3
SESSION_IDLE_S = 30.0
DCS_GSM7, DCS_UCS2 = 15, 72


@dataclass(frozen=True)
class UssdReply:
    """What the network answers to one code."""

    text: str | None
    dcs: int = DCS_UCS2
    m: int = 0
    delay: float = 0.3
    timeout: bool = False


class Ussd:
    """The modem's USSD client and the network's canned answers."""

    def __init__(self, modem: Modem) -> None:
        self.modem = modem
        self.replies: dict[str, UssdReply] = {}
        self.requests: list[str] = []  # decoded codes the host sent, in order
        self.session_open = False
        self._pending: Timer | None = None
        self._idle: Timer | None = None

    def set_reply(self, code: str, reply: UssdReply) -> None:
        """Answer code with reply from now on."""
        if reply.dcs not in (DCS_GSM7, DCS_UCS2):
            raise ValueError("dcs must be 15 (GSM7) or 72 (UCS2)")
        if reply.dcs == DCS_GSM7 and reply.text is not None and not gsm7.fits(reply.text):
            raise ValueError("text does not fit the GSM 7-bit alphabet: use dcs=72")
        self.replies[code] = reply

    def reset(self) -> None:
        """Power cycle: no session, nothing pending."""
        self._cancel()
        self.session_open = False

    def _cancel(self) -> None:
        for timer in (self._pending, self._idle):
            if timer is not None:
                timer.cancel()
        self._pending = self._idle = None

    # -- encodings -------------------------------------------------------------------

    def _decode_request(self, payload: str) -> str:
        cfg = self.modem.cfg
        if self.modem.profile.family == HUAWEI:
            if cfg.ussdmode == 0:
                return payload
            if not gsm7.is_hex(payload):
                raise PlainError("huawei wants packed GSM7 hex (or ^USSDMODE=0)")
            return gsm7.ussd_unpack_hex(payload)
        if cfg.cscs == "UCS2":
            try:
                return gsm7.from_ucs2_hex(payload)
            except ValueError:
                raise CmeError(25) from None
        return payload

    def _encode_reply(self, text: str, dcs: int) -> str:
        cfg = self.modem.cfg
        if self.modem.profile.family == HUAWEI:
            if dcs == DCS_UCS2:
                return gsm7.ucs2_hex(text)
            return text if cfg.ussdmode == 0 else gsm7.ussd_pack_hex(text)
        if cfg.cscs == "UCS2" or dcs == DCS_UCS2:
            return gsm7.ucs2_hex(text)
        return text

    # -- commands --------------------------------------------------------------------

    def commands(self) -> dict[str, Handler]:
        """The AT commands this part answers."""
        table: dict[str, Handler] = {"+CUSD": self._cusd}
        if self.modem.profile.family == HUAWEI:
            table["^USSDMODE"] = self._ussdmode
        return table

    def _ussdmode(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"^USSDMODE: {self.modem.cfg.ussdmode}"]
        value = cmd.int_param(0)
        if value not in (0, 1):
            raise PlainError("^USSDMODE takes 0 or 1")
        self.modem.cfg.ussdmode = value
        return None

    def _cusd(self, cmd: Command) -> list[str] | None:
        cfg = self.modem.cfg
        if cmd.op == "?":
            return [f"+CUSD: {cfg.cusd_n}"]
        if cmd.op == "=?":
            return ["+CUSD: (0-2)"]
        n = cmd.int_param(0, 0)
        if n == 2:
            self._cancel()
            self.session_open = False
            return None
        if n not in (0, 1):
            raise CmeError(4)
        cfg.cusd_n = n
        if len(cmd.params) < 2:
            return None
        self.modem.network.require_sim()
        if not self.modem.network.registered():
            raise CmeError(30)
        if self._pending is not None:
            raise CmeError(3)  # one request at a time
        code = self._decode_request(cmd.param(1))
        self.requests.append(code)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        reply = self.replies.get(code)
        delay = reply.delay if reply else UNKNOWN_DELAY_S
        self._pending = self.modem.timers.call_later(delay, lambda: self._answer(reply))
        return None

    def _answer(self, reply: UssdReply | None) -> None:
        self._pending = None
        m = self.modem
        if reply is None or (reply.text is None and not reply.timeout):
            self.session_open = False
            m.urc("+CUSD: 4")
            return
        if reply.timeout:
            self.session_open = False
            m.urc("+CUSD: 5")
            return
        assert reply.text is not None
        payload = self._encode_reply(reply.text, reply.dcs)
        m.urc(f'+CUSD: {reply.m},"{payload}",{reply.dcs}')
        self.session_open = reply.m == 1
        if self.session_open:
            def idle() -> None:
                self._idle = None
                self.session_open = False
                self.modem.urc("+CUSD: 5")

            self._idle = m.timers.call_later(SESSION_IDLE_S, idle)
