"""Arming the PCM path, per family: ^DDSETEX (huawei), +QPCMV (quectel), +CPCMREG (simcom).

Audio flows only while a call is active and the path is armed. The families differ in
how long an arming lasts, which is exactly what drivers get wrong (gsm-modems.md 1.1-1.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .framing import CmeError, Command, Handler, PlainError
from .profiles import HUAWEI, QUECTEL, SIMCOM

if TYPE_CHECKING:
    from .core import Modem


class AudioPath:
    """Whether the host has armed the serial PCM path."""

    def __init__(self, modem: Modem) -> None:
        self.modem = modem
        self.ddsetex = False
        self.qpcmv: tuple[int, int] = (0, 0)
        self.cpcmreg = False
        self.cpcmfrm = 0

    @property
    def armed(self) -> bool:
        """True if PCM goes over the audio pty."""
        family = self.modem.profile.family
        if family == HUAWEI:
            return self.ddsetex
        if family == QUECTEL:
            # 1,0 is the serial (NMEA port) PCM; 1,2 sends it to USB audio instead.
            return self.qpcmv == (1, 0)
        return self.cpcmreg

    def reset(self) -> None:
        """Power cycle: nothing armed, 8 kHz."""
        self.ddsetex = False
        self.qpcmv = (0, 0)
        self.cpcmreg = False
        self.cpcmfrm = 0
        self.modem.audio.set_rate(8000)

    def call_ended(self, still_active: bool) -> None:
        """After a call: ^DDSETEX and +CPCMREG last one call; +QPCMV stays set."""
        if not still_active:
            self.ddsetex = False
            self.cpcmreg = False

    def commands(self) -> dict[str, Handler]:
        """The AT commands this part answers."""
        family = self.modem.profile.family
        if family == HUAWEI:
            return {"^CVOICE": self._cvoice, "^DDSETEX": self._ddsetex}
        if family == QUECTEL:
            return {"+QPCMV": self._qpcmv}
        if family == SIMCOM:
            return {"+CPCMREG": self._cpcmreg, "+CPCMFRM": self._cpcmfrm}
        return {}

    def _cvoice(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return ["^CVOICE:0,8000,16,20"]
        if cmd.op == "=?":
            return ["^CVOICE:(0)"]
        if cmd.int_param(0, 0) != 0:
            raise PlainError("^CVOICE mode")
        return None

    def _ddsetex(self, cmd: Command) -> list[str] | None:
        if cmd.op == "=?":
            return ["^DDSETEX: (2)"]
        if cmd.op != "=" or cmd.int_param(0) != 2:
            raise PlainError("^DDSETEX takes 2")
        self.ddsetex = True
        return None

    def _qpcmv(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            enable, port = self.qpcmv
            return [f"+QPCMV: {enable},{port}" if enable else "+QPCMV: 0"]
        if cmd.op == "=?":
            return ["+QPCMV: (0,1),(0-2)"]
        enable = cmd.int_param(0)
        if enable == 0:
            self.qpcmv = (0, 0)
            return None
        port = cmd.int_param(1, 0)
        if enable != 1 or port not in (0, 1, 2):
            raise CmeError(4)
        current_enable, current_port = self.qpcmv
        if current_enable and current_port != port:
            # Switching tty <-> UAC directly is refused: QPCMV=0 first.
            raise PlainError("QPCMV: switch ports through QPCMV=0")
        self.qpcmv = (1, port)
        return None

    def _cpcmreg(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CPCMREG: {int(self.cpcmreg)}"]
        if cmd.op == "=?":
            return ["+CPCMREG: (0,1)"]
        value = cmd.int_param(0)
        if value == 1:
            if not self.modem.calls.any_active():
                # The path can only be registered on a connected call (chan_quectel arms it
                # when +CLCC shows the call active).
                raise PlainError("CPCMREG=1 without an active call")
            self.cpcmreg = True
        elif value == 0:
            self.cpcmreg = False
        else:
            raise PlainError("CPCMREG takes 0 or 1")
        return None

    def _cpcmfrm(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CPCMFRM: {self.cpcmfrm}"]
        value = cmd.int_param(0)
        if value not in (0, 1):
            raise PlainError("CPCMFRM takes 0 or 1")
        self.cpcmfrm = value
        self.modem.audio.set_rate(16000 if value else 8000)
        return None
