"""Voice calls: the +CLCC call list, ringing, dialling scripts, hang-ups, DTMF and the
call-state URCs each family sends."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .clock import Timer
from .framing import CmeError, Command, FinalResult, Handler, PlainError
from .profiles import HUAWEI, QUECTEL, SIMCOM

if TYPE_CHECKING:
    from .core import Modem

ACTIVE, HELD, DIALING, ALERTING, INCOMING, WAITING = 0, 1, 2, 3, 4, 5
RING_EVERY_S = 3.0
MISSED_AFTER_S = 30.0
ALERT_AFTER_S = 0.3
BUSY_AFTER_S = 0.5
NO_ANSWER_S = 30.0
DEFAULT_ANSWER_S = 1.0
DTMF_DIGITS = "0123456789*#ABCD"
# ^DSCI numbers its states differently from +CLCC (Quectel AT manual, AT^DSCI).
DSCI_STAT = {ACTIVE: 3, HELD: 1, DIALING: 2, ALERTING: 7, INCOMING: 4, WAITING: 5}
CAUSE_NORMAL, CAUSE_BUSY, CAUSE_NO_ANSWER, CAUSE_TEMPORARY = 16, 17, 19, 41
# What AT+CEER prints for a cause (3GPP TS 24.008 annex H names; the rest by number).
CEER_TEXTS = {
    1: "Unassigned (unallocated) number", 3: "No route to destination",
    16: "Normal call clearing", 17: "User busy", 18: "No user responding",
    19: "User alerting, no answer", 21: "Call rejected", 27: "Destination out of order",
    28: "Invalid number format (incomplete number)", 31: "Normal, unspecified",
    34: "No circuit/channel available", 38: "Network out of order", 41: "Temporary failure",
    42: "Switching equipment congestion", 47: "Resources unavailable, unspecified",
    127: "Interworking, unspecified",
}
CEER_NONE = "No cause information available"


@dataclass
class Call:
    """One call as +CLCC lists it."""

    idx: int
    direction: int  # 0 mobile-originated, 1 mobile-terminated
    stat: int
    number: str
    ton: int
    clir: bool = False
    connected_at: float | None = None
    timers: list[Timer] = field(default_factory=list)

    def shown(self) -> tuple[str, int]:
        """(number, type) as the modem shows them: withheld numbers are empty, type 128."""
        return ("", 128) if self.clir else (self.number, self.ton)

    def cancel_timers(self) -> None:
        """Stop this call's pending script steps and rings."""
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


@dataclass(frozen=True)
class Script:
    """What the far end does when we dial a number."""

    answer_after: float | None = DEFAULT_ANSWER_S
    busy: bool = False
    no_answer: bool = False
    hangup_after: float | None = None
    fail_cause: int | None = None


class Calls:
    """The modem's calls and the commands that act on them."""

    def __init__(self, modem: Modem) -> None:
        self.modem = modem
        self.calls: dict[int, Call] = {}
        self.scripts: dict[str, Script] = {}
        self.dtmf_sent: list[tuple[int, str]] = []
        # The last release (cause, whether the call had connected) for AT+CEER.
        self.last_release: tuple[int, bool] | None = None
        # Quectel firmware that reports "<category>",<cause>,"<text>" instead of the text.
        self.ceer_numeric = False

    # -- queries ---------------------------------------------------------------------

    def any_active(self) -> bool:
        """True if a call is connected."""
        return any(c.stat == ACTIVE for c in self.calls.values())

    def snapshot(self) -> list[Call]:
        """The calls, by index (copies without timers)."""
        return [Call(c.idx, c.direction, c.stat, c.number, c.ton, c.clir, c.connected_at)
                for _, c in sorted(self.calls.items())]

    def _get(self, idx: int) -> Call:
        try:
            return self.calls[idx]
        except KeyError:
            raise ValueError(f"no call {idx}") from None

    def _new(self, direction: int, stat: int, number: str, ton: int, clir: bool) -> Call:
        for idx in range(1, 8):
            if idx not in self.calls:
                call = Call(idx, direction, stat, number, ton, clir)
                self.calls[idx] = call
                return call
        raise CmeError(3)

    def _later(self, call: Call, seconds: float, action: Callable[[], None]) -> None:
        # Steps of a call that has ended since they were planned do nothing.
        def fire() -> None:
            if self.calls.get(call.idx) is call:
                action()

        call.timers.append(self.modem.timers.call_later(seconds, fire))

    # -- URCs ------------------------------------------------------------------------

    def _state_urcs(self, call: Call, stat: int | None) -> None:
        """The URCs for a call entering stat (None: released)."""
        m = self.modem
        number, ton = call.shown()
        family = m.profile.family
        if family == QUECTEL:
            if m.cfg.qindcfg.get("ccinfo"):
                state = -1 if stat is None else stat
                m.urc(f'+QIND: "ccinfo",{call.idx},{call.direction},{state},0,0,"{number}",{ton}')
            if m.cfg.dsci:
                dsci = 6 if stat is None else DSCI_STAT[stat]
                m.urc(f"^DSCI: {call.idx},{call.direction},{dsci},0,{number},{ton},0")
        if m.cfg.clcc_push:
            # SIMCom's pushed list uses stat 6 for a released call.
            shown = 6 if stat is None else stat
            m.urc(f'+CLCC: {call.idx},{call.direction},{shown},0,0,"{number}",{ton}')
        if family == HUAWEI and call.direction == 0:
            if stat == DIALING:
                m.urc(f"^ORIG:{call.idx},0")
            elif stat == ALERTING:
                m.urc(f"^CONF:{call.idx}")
        if stat == ACTIVE:
            if family == HUAWEI:
                m.urc(f"^CONN:{call.idx},0")
            elif family == SIMCOM:
                m.urc("VOICE CALL: BEGIN")

    def _set(self, call: Call, stat: int) -> None:
        call.stat = stat
        if stat == ACTIVE and call.connected_at is None:
            call.connected_at = time.monotonic()
        self._state_urcs(call, stat)

    def _end(self, call: Call, *, remote: bool, cause: int, result: str | None,
             missed: bool = False) -> None:
        if self.calls.get(call.idx) is not call:
            return
        call.cancel_timers()
        del self.calls[call.idx]
        self.last_release = (cause, call.connected_at is not None)
        m = self.modem
        duration = int(time.monotonic() - call.connected_at) if call.connected_at else 0
        self._state_urcs(call, None)
        family = m.profile.family
        if family == HUAWEI:
            # End status: 104 when the network or the far end released, 29 when we did.
            m.urc(f"^CEND:{call.idx},{duration},{104 if remote else 29},{cause}")
        elif family == SIMCOM:
            if call.connected_at is not None:
                m.urc(f"VOICE CALL: END: {duration:06d}")
            if missed:
                m.urc(f"MISSED_CALL: {m.network_time():%H:%M} {call.shown()[0]}")
        if remote and result:
            m.urc(result)
        m.audiopath.call_ended(self.any_active())

    # -- the far end (facade) -----------------------------------------------------------

    def ring(self, number: str, ton: int, clir: bool, clip_delay: float) -> int:
        """An incoming call: RING every 3 s, +CLIP clip_delay after each; missed after 30 s."""
        if not self.modem.plugged or not self.modem.network.registered():
            raise RuntimeError("the modem is not registered: no call can reach it")
        busy = any(c.stat in (ACTIVE, HELD, DIALING, ALERTING) for c in self.calls.values())
        call = self._new(1, WAITING if busy else INCOMING, number, ton, clir)
        self._state_urcs(call, call.stat)
        if call.stat == WAITING:
            if self.modem.cfg.ccwa:
                shown, shown_ton = call.shown()
                self.modem.urc(f'+CCWA: "{shown}",{shown_ton},1')
        else:
            self._ring_cycle(call, clip_delay)
        self._later(call, MISSED_AFTER_S, lambda: self._end(
            call, remote=True, cause=CAUSE_NO_ANSWER, result="NO CARRIER", missed=True))
        return call.idx

    def _ring_cycle(self, call: Call, clip_delay: float) -> None:
        if call.stat != INCOMING:
            return
        cfg = self.modem.cfg
        self.modem.urc("+CRING: VOICE" if cfg.crc else "RING")
        if cfg.clip:
            # +CLIP comes as a separate, later write: drivers that take the caller from the
            # RING burst alone miss it (python-gsmmodem defect (a)).
            def clip() -> None:
                if call.stat == INCOMING and self.modem.cfg.clip:
                    if call.clir:
                        self.modem.urc('+CLIP: "",128')
                    else:
                        self.modem.urc(f'+CLIP: "{call.number}",{call.ton},,,,0')

            self._later(call, clip_delay, clip)
        self._later(call, RING_EVERY_S, lambda: self._ring_cycle(call, clip_delay))

    def remote_answer(self, idx: int) -> None:
        """The far end answers our call."""
        call = self._get(idx)
        if call.direction != 0 or call.stat not in (DIALING, ALERTING):
            raise ValueError(f"call {idx} is not an outgoing call being set up")
        call.cancel_timers()
        self._connect(call, self.scripts.get(call.number))

    def remote_hangup(self, idx: int, cause: int) -> None:
        """The far end hangs up (or gives up ringing)."""
        call = self._get(idx)
        missed = call.direction == 1 and call.stat in (INCOMING, WAITING)
        self._end(call, remote=True, cause=cause, result="NO CARRIER", missed=missed)

    def remote_dtmf(self, idx: int, digits: str) -> None:
        """The far end presses keys: in-band tones on the downlink, plus the detector URC."""
        call = self._get(idx)
        if call.stat != ACTIVE:
            raise ValueError(f"call {idx} is not active")
        if any(d not in DTMF_DIGITS for d in digits.upper()):
            raise ValueError(f"not DTMF digits: {digits!r}")
        self.modem.audio.dtmf(digits)
        detector = self.modem.profile.dtmf_detector
        cfg = self.modem.cfg
        for i, digit in enumerate(digits.upper()):
            if detector == "+QTONEDET" and cfg.qtonedet:
                line = f"+QTONEDET: {ord(digit)}"
            elif detector == "+RXDTMF" and cfg.ddet:
                line = f"+RXDTMF: {digit}"
            else:
                continue
            self._later(call, i * 0.14, functools.partial(self.modem.urc, line))

    def network_lost(self) -> None:
        """Registration lost: every call ends with NO CARRIER."""
        for call in list(self.calls.values()):
            self._end(call, remote=True, cause=CAUSE_TEMPORARY, result="NO CARRIER")

    def power_off(self) -> None:
        """Unplugged or rebooting: calls vanish without a word."""
        for call in self.calls.values():
            call.cancel_timers()
        self.calls.clear()
        self.last_release = None

    # -- scripts -------------------------------------------------------------------------

    def _connect(self, call: Call, script: Script | None) -> None:
        self._set(call, ACTIVE)
        if script is not None and script.hangup_after is not None:
            self._later(call, script.hangup_after, lambda: self._end(
                call, remote=True, cause=CAUSE_NORMAL, result="NO CARRIER"))

    def _run_script(self, call: Call, script: Script) -> None:
        if script.busy:
            self._later(call, BUSY_AFTER_S, lambda: self._end(
                call, remote=True, cause=CAUSE_BUSY, result="BUSY"))
            return
        if script.fail_cause is not None:
            cause = script.fail_cause
            self._later(call, BUSY_AFTER_S, lambda: self._end(
                call, remote=True, cause=cause, result="NO CARRIER"))
            return
        answer = script.answer_after
        alert_at = ALERT_AFTER_S if answer is None else min(ALERT_AFTER_S, answer / 2)

        def alert() -> None:
            if call.stat == DIALING:
                self._set(call, ALERTING)

        self._later(call, alert_at, alert)
        if script.no_answer or answer is None:
            self._later(call, NO_ANSWER_S, lambda: self._end(
                call, remote=True, cause=CAUSE_NO_ANSWER, result="NO ANSWER"))
        else:
            self._later(call, answer, lambda: self._connect(call, script))

    # -- commands --------------------------------------------------------------------

    def commands(self) -> dict[str, Handler]:
        """The AT commands this part answers."""
        table: dict[str, Handler] = {
            "D": self._dial, "A": self._answer, "H": self._hangup, "+CHUP": self._hangup,
            "+CLCC": self._clcc, "+CLIP": self._clip, "+CRC": self._crc, "+CHLD": self._chld,
            "+VTS": self._vts, "+VTD": self._vtd, "+CCWA": self._ccwa, "+CLIR": self._clir,
            "+CEER": self._ceer,
        }
        family = self.modem.profile.family
        if family == HUAWEI:
            table["^DTMF"] = self._huawei_dtmf
        elif family == QUECTEL:
            table["+QHUP"] = self._qhup
            table["^DSCI"] = self._dsci
            table["+QTONEDET"] = self._qtonedet
        elif family == SIMCOM:
            table["+DDET"] = self._ddet
        return table

    def _flag(self, cmd: Command, name: str, attr: str) -> list[str] | None:
        if cmd.op == "?":
            return [f"{name}: {int(getattr(self.modem.cfg, attr))}"]
        if cmd.op == "=?":
            return [f"{name}: (0,1)"]
        setattr(self.modem.cfg, attr, cmd.int_param(0, 0) == 1)
        return None

    def _clip(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CLIP: {int(self.modem.cfg.clip)},1"]
        return self._flag(cmd, "+CLIP", "clip")

    def _crc(self, cmd: Command) -> list[str] | None:
        return self._flag(cmd, "+CRC", "crc")

    def _dsci(self, cmd: Command) -> list[str] | None:
        return self._flag(cmd, "^DSCI", "dsci")

    def _qtonedet(self, cmd: Command) -> list[str] | None:
        return self._flag(cmd, "+QTONEDET", "qtonedet")

    def _ddet(self, cmd: Command) -> list[str] | None:
        return self._flag(cmd, "+DDET", "ddet")

    def _clir(self, cmd: Command) -> list[str] | None:
        return ["+CLIR: 0,4"] if cmd.op == "?" else None

    def _ccwa(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CCWA: {int(self.modem.cfg.ccwa)}"]
        self.modem.cfg.ccwa = cmd.int_param(0, 0) == 1
        return None

    def _dial(self, cmd: Command) -> None:
        raw = cmd.raw.strip()
        if not raw.endswith(";"):
            raise FinalResult("NO CARRIER")  # a data call: not simulated
        number = raw[:-1].strip()
        if number[:1].upper() in ("T", "P"):
            number = number[1:]
        # 'I' withholds our number for this call, 'i' shows it (V.250 / 27.007 CLIR).
        withheld = number.endswith("I")
        number = number.rstrip("Ii")
        if not re.fullmatch(r"\+?[0-9*#]+", number):
            raise PlainError(f"bad dial string {raw!r}")
        self.modem.network.require_sim()
        if not self.modem.network.registered():
            raise FinalResult("NO CARRIER")
        if any(c.stat in (ACTIVE, DIALING, ALERTING) for c in self.calls.values()):
            raise CmeError(3)
        ton = 145 if number.startswith("+") else 129
        call = self._new(0, DIALING, number, ton, withheld)
        self._set(call, DIALING)
        self._run_script(call, self.scripts.get(number, Script()))

    def _answer(self, cmd: Command) -> None:
        others = any(c.stat in (ACTIVE, HELD) for c in self.calls.values())
        for call in sorted(self.calls.values(), key=lambda c: c.idx):
            if call.stat == INCOMING or (call.stat == WAITING and not others):
                call.cancel_timers()
                self._connect(call, None)
                return
        raise FinalResult("NO CARRIER")

    def _hangup(self, cmd: Command) -> None:
        if cmd.op in ("?", "=?"):
            return
        for call in list(self.calls.values()):
            self._end(call, remote=False, cause=CAUSE_NORMAL, result=None)

    def _qhup(self, cmd: Command) -> None:
        cause = cmd.int_param(0, CAUSE_NORMAL)
        idx = cmd.int_param(1, 0)
        targets = [self._call_or_error(idx)] if idx else list(self.calls.values())
        for call in targets:
            self._end(call, remote=False, cause=cause, result=None)

    def _call_or_error(self, idx: int) -> Call:
        call = self.calls.get(idx)
        if call is None:
            raise CmeError(3)
        return call

    def _chld(self, cmd: Command) -> list[str] | None:
        if cmd.op == "=?":
            return ["+CHLD: (0,1,1x,2,2x)"]
        arg = cmd.param(0, "2")
        calls = sorted(self.calls.values(), key=lambda c: c.idx)
        waiting = [c for c in calls if c.stat == WAITING]
        held = [c for c in calls if c.stat == HELD]
        active = [c for c in calls if c.stat == ACTIVE]
        if arg == "0":
            for call in held + waiting:
                self._end(call, remote=False, cause=CAUSE_BUSY, result=None)
        elif arg == "1":
            for call in active:
                self._end(call, remote=False, cause=CAUSE_NORMAL, result=None)
            for call in (waiting or held)[:1]:
                call.cancel_timers()
                self._connect(call, None)
        elif arg.startswith("1") and arg[1:].isdigit():
            self._end(self._call_or_error(int(arg[1:])), remote=False, cause=CAUSE_NORMAL,
                      result=None)
        elif arg == "2":
            for call in active:
                self._set(call, HELD)
            for call in (waiting or held)[:1]:
                call.cancel_timers()
                self._connect(call, None)
        elif arg.startswith("2") and arg[1:].isdigit():
            keep = self._call_or_error(int(arg[1:]))
            for call in active:
                if call is not keep:
                    self._set(call, HELD)
            if keep.stat != ACTIVE:
                keep.cancel_timers()
                self._connect(keep, None)
        else:
            raise CmeError(4)
        return None

    def _clcc(self, cmd: Command) -> list[str] | None:
        if cmd.op == "=":
            self.modem.cfg.clcc_push = cmd.int_param(0, 0) == 1
            return None
        if cmd.op == "?":
            return [f"+CLCC: {int(self.modem.cfg.clcc_push)}"]
        lines = []
        for call in sorted(self.calls.values(), key=lambda c: c.idx):
            number, ton = call.shown()
            lines.append(f'+CLCC: {call.idx},{call.direction},{call.stat},0,0,"{number}",{ton}')
        return lines

    def _active(self) -> Call:
        for call in self.calls.values():
            if call.stat == ACTIVE:
                return call
        raise CmeError(3)

    def _vts(self, cmd: Command) -> list[str] | None:
        if cmd.op == "=?":
            return ["+VTS: (0-9,*,#,A,B,C,D)"]
        call = self._active()
        digits = [ch for ch in cmd.param(0).upper() if ch not in ", "]
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise CmeError(4)
        self.dtmf_sent.extend((call.idx, d) for d in digits)
        return None

    def _vtd(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+VTD: {self.modem.cfg.vtd}"]
        if cmd.op == "=?":
            return ["+VTD: (0-255)"]
        self.modem.cfg.vtd = cmd.int_param(0, 1)
        return None

    def _ceer(self, cmd: Command) -> list[str] | None:
        """The last release in the family's words: Quectel quotes the text (or, numeric,
        category, cause and text), SIMCom and Huawei print it bare."""
        if cmd.op == "=?":
            return None
        if cmd.op:
            raise CmeError(4)
        family = self.modem.profile.family
        if self.last_release is None:
            text = CEER_NONE
            if family == QUECTEL:
                return ['+CEER: "No report available"' if self.ceer_numeric
                        else f'+CEER: "{text}"']
            return [f"+CEER: {text}"]
        cause, connected = self.last_release
        text = CEER_TEXTS.get(cause, f"Cause {cause}")
        if family == QUECTEL:
            if self.ceer_numeric:
                category = "CC release" if connected else "CC setup error"
                return [f'+CEER: "{category}",{cause},"{text}"']
            return [f'+CEER: "{text}"']
        return [f"+CEER: {text}"]

    def _huawei_dtmf(self, cmd: Command) -> None:
        idx, digit = cmd.int_param(0), cmd.param(1)
        call = self.calls.get(idx)
        # The E1550 sends only 0-9 * # this way, and only on a connected call.
        if call is None or call.stat != ACTIVE or len(digit) != 1 or digit not in "0123456789*#":
            raise PlainError("^DTMF: no such active call or digit")
        self.dtmf_sent.append((idx, digit))
