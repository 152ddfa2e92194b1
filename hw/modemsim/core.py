"""The simulated modem: its thread, the AT command loop, settings and the basic commands.

One thread owns all modem state: it reads the AT pty, runs timers and the calls the
facade posts to it, and writes replies and URCs in order. The domain modules (network,
calls, audio path, SMS, USSD) keep their own state and register their commands here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar

from . import framing
from .audio import AudioChannel
from .audiopath import AudioPath
from .calls import Calls
from .clock import Scheduler
from .faults import Faults
from .framing import AtFailure, Command, Handler, PlainError, Prompt, Reply, Unsupported
from .links import ByImeiLinks
from .network import Network
from .port import Output, Pty, open_ptys
from .profiles import HUAWEI, QUECTEL, SIMCOM, Profile
from .sms import Sms
from .ussd import Ussd

T = TypeVar("T")
log = logging.getLogger(__name__)

RESPONSE_DELAY = 0.005
UNPLUG_AFTER_CFUN = 0.05
BOOT_URC_DELAY = 0.3
# The modem's network clock starts where the spec's fixture PDU was stamped.
NETWORK_EPOCH = datetime(2025, 11, 30, 21, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Identity:
    """What the modem and its SIM say about themselves."""

    imei: str
    imsi: str
    iccid: str
    own_number: str | None
    operator: str
    mcc_mnc: str = "25099"
    smsc: str = "+79000000000"


@dataclass
class Settings:
    """Per-session settings: reset by ATZ and by a power cycle."""

    echo: bool = True
    cmee: int = 0
    cscs: str = "IRA"
    clip: bool = False
    crc: bool = False
    clcc_push: bool = False
    ccwa: bool = False
    vtd: int = 1
    creg_n: int = 0
    cereg_n: int = 0
    cops_format: int = 0
    cnmi: list[int] = field(default_factory=lambda: [2, 1, 0, 2, 0])
    csms: int = 0
    cmgf: int = 0
    cusd_n: int = 0
    # Quectel +QINDCFG switches, ^DSCI, +QTONEDET; SIMCom +DDET and +AUTOCSQ; huawei ^CURC.
    qindcfg: dict[str, int] = field(default_factory=dict)
    dsci: bool = False
    qtonedet: bool = False
    ddet: bool = False
    autocsq: bool = False
    curc: bool = True
    ussdmode: int = 1

    @classmethod
    def defaults(cls, profile: Profile) -> Settings:
        """A fresh session's settings for profile."""
        return cls(cmee=profile.cmee_default)


class LogEntry(NamedTuple):
    """One thing on the AT port: when, which way ("rx", "tx", "urc") and the bytes."""

    t: float
    kind: str
    data: bytes


class Modem:
    """The modem's state and its thread; FakeModem is the public face."""

    def __init__(self, profile: Profile, ident: Identity, *, pin: str | None,
                 sms_capacity: int, time_scale: float, seed: int, links_dir: Path,
                 reboot_s: float) -> None:
        self.profile = profile
        self.ident = ident
        self.rng = random.Random(seed)
        self.timers = Scheduler(time_scale)
        self.cfg = Settings.defaults(profile)
        self.faults = Faults()
        self.reboot_s = reboot_s
        self.response_delay = RESPONSE_DELAY
        self.command_delays: dict[str, float] = {}
        self.out = Output(random.Random(seed + 1))
        self.reader = framing.LineReader()
        self.audio = AudioChannel(seed + 2)
        self.links = ByImeiLinks(links_dir, ident.imei, profile.at_interface,
                                 profile.audio_interface)
        self.network = Network(self, pin)
        self.calls = Calls(self)
        self.audiopath = AudioPath(self)
        self.sms = Sms(self, sms_capacity)
        self.ussd = Ussd(self)
        self.at: Pty | None = None
        self.audio_port: Pty | None = None
        self.reboots = 0
        self._used_paths: set[str] = set()
        self._prompt: Prompt | None = None
        self._deferred: list[bytes] | None = None
        self._blocked = False
        self._started_at = time.monotonic()
        self._log: list[LogEntry] = []
        self._log_cond = threading.Condition()
        self._plug_cond = threading.Condition()
        self._inbox: deque[Callable[[], None]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._commands = self._build_commands()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Plug in, start the audio thread and the modem thread."""
        if self._thread is not None:
            return
        self._plug()
        self.network.power_on(immediate=True)
        self.audio.start()
        self._thread = threading.Thread(target=self._run, name=f"modemsim-{self.ident.imei}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the threads, close the ports and remove the links."""
        if self._stopping:
            return  # closing the pipes twice could close fds that are someone else's by now
        if self._thread is not None:
            self._stopping = True
            self._wake()
            self._thread.join(timeout=5)
            self._thread = None
        self._stopping = True
        self._unplug()
        self.timers.cancel_all()
        self.audio.stop()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run fn in the modem thread and return its result (directly if not running)."""
        thread = self._thread
        if thread is None or threading.current_thread() is thread or not thread.is_alive():
            return fn()
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller's thread
                fut.set_exception(exc)

        self._inbox.append(run)
        self._wake()
        return fut.result(timeout=timeout)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # -- ports -----------------------------------------------------------------------

    @property
    def plugged(self) -> bool:
        """True while the ports exist."""
        return self.at is not None

    def _plug(self) -> None:
        at, audio = open_ptys(2, self._used_paths)
        self._used_paths.update((at.path, audio.path))
        self.at, self.audio_port = at, audio
        self.audio.attach(audio.master)
        self.links.update(at.path, audio.path)
        with self._plug_cond:
            self._plug_cond.notify_all()

    def _unplug(self) -> None:
        # Forget the ports before closing them: whoever sees the EOF must find us unplugged.
        ptys = (self.at, self.audio_port)
        self.at = self.audio_port = None
        self.links.remove()
        self.audio.attach(None)
        self.audio.set_flowing(False)
        for pty in ptys:
            if pty is not None:
                pty.close()
        self.out.clear()
        self.reader.clear()
        self._blocked = False
        with self._plug_cond:
            self._plug_cond.notify_all()

    def wait_plugged(self, plugged: bool, timeout: float) -> bool:
        """Wait until the ports exist (or are gone); False on timeout."""
        with self._plug_cond:
            return self._plug_cond.wait_for(lambda: self.plugged == plugged, timeout)

    def unplug(self, *, drain: bool = False) -> None:
        """USB gone: both masters closed, links removed, calls dropped."""
        # drain: a reboot writes its queued OK before it drops off the bus; a yanked cable
        # does not.
        if not self.plugged:
            return
        if drain and self.at is not None:
            self.out.make_due()
            self._flush()
        self._unplug()
        self.calls.power_off()
        self.network.power_off()

    def replug(self) -> None:
        """USB back on new pts paths: a fresh boot, links updated, boot URCs."""
        if self.plugged:
            return
        self._power_cycle_state()
        self._plug()
        self.network.power_on(immediate=False)
        self.timers.call_later(BOOT_URC_DELAY, self._boot_urcs)

    def reboot(self) -> None:
        """AT+CFUN=1,1: drop off the bus, come back after reboot_s on new paths."""
        self.reboots += 1
        self.timers.call_later(UNPLUG_AFTER_CFUN, lambda: self.unplug(drain=True))
        self.timers.call_later(UNPLUG_AFTER_CFUN + self.reboot_s, self.replug)

    def _power_cycle_state(self) -> None:
        self.cfg = Settings.defaults(self.profile)
        self.faults.clear()
        self._prompt = None
        self.calls.power_off()
        self.audiopath.reset()
        self.sms.reset()
        self.ussd.reset()

    def _boot_urcs(self) -> None:
        cpin = self.network.cpin_text()
        simst = 1 if self.network.sim_state != "NOT INSERTED" else 255
        for line in self.profile.boot_urcs:
            self.urc(line.format(cpin=cpin, simst=simst))

    # -- log -------------------------------------------------------------------------

    def log_entry(self, kind: str, data: bytes) -> None:
        """Record traffic and wake anyone waiting for a command."""
        with self._log_cond:
            self._log.append(LogEntry(time.monotonic(), kind, data))
            self._log_cond.notify_all()

    def log_snapshot(self) -> list[LogEntry]:
        """A copy of the log."""
        with self._log_cond:
            return list(self._log)

    def wait_for_command(self, regex: str, timeout: float, since: float | None) -> str:
        """The first received line matching regex (at or after since); TimeoutError if none."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        start = 0
        with self._log_cond:
            while True:
                for i in range(start, len(self._log)):
                    entry = self._log[i]
                    if entry.kind != "rx" or (since is not None and entry.t < since):
                        continue
                    text = entry.data.decode("latin-1")
                    if pattern.search(text):
                        return text
                start = len(self._log)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no command matching {regex!r} within {timeout} s")
                self._log_cond.wait(left)

    # -- output ----------------------------------------------------------------------

    def urc(self, *lines: str) -> None:
        """Send unsolicited lines (each framed on its own), after any reply being made."""
        if not self.plugged or self.faults.frozen:
            return
        for line in lines:
            data = framing.info(line)
            if self._deferred is not None:
                self._deferred.append(data)
            else:
                self.out.push("urc", data)

    def raw(self, data: bytes) -> None:
        """Bytes straight onto the AT port (inject)."""
        if self.plugged:
            self.out.push("urc", data)

    def _flush(self) -> None:
        if self.at is None:
            return
        self._blocked = self.out.flush(self.at.master, self.log_entry)

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            timeout = 0.5
            now = time.monotonic()
            for due in (self.timers.next_due(), None if self._blocked else self.out.next_due()):
                if due is not None:
                    timeout = min(timeout, max(0.0, due - now))
            at = self.at
            rlist = [self._wake_r] + ([at.master] if at else [])
            wlist = [at.master] if at and self._blocked else []
            try:
                readable, writable, _ = select.select(rlist, wlist, [], timeout)
            except (OSError, ValueError):
                readable, writable = [], []
            if self._wake_r in readable:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            while self._inbox:
                self._inbox.popleft()()
            if at is not None and at is self.at and at.master in readable:
                self._read(at)
            if writable:
                self._blocked = False
            self.timers.run_due()
            self._flush()
            self.audio.set_flowing(self.plugged and self.calls.any_active()
                                   and self.audiopath.armed)

    def _read(self, at: Pty) -> None:
        try:
            data = os.read(at.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        self.reader.feed(data)
        while self.at is at:
            if self.reader.pdu_mode:
                body = self.reader.next_body()
                if body is None:
                    return
                self._handle_body(*body)
            else:
                line = self.reader.next_line()
                if line is None:
                    return
                self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        self.log_entry("rx", line)
        if self.faults.frozen:
            return
        now = time.monotonic()
        if self.cfg.echo:
            self.out.push("tx", line + b"\r", now)
        text = line.decode("latin-1")
        if text[:2].upper() != "AT":
            return  # line noise: real modems stay silent
        self._deferred = []
        try:
            lines, final, delay = self._execute(text)
        finally:
            deferred, self._deferred = self._deferred, None
        self._reply(lines, final, deferred, now + self.timers.scaled(delay))

    def _reply(self, lines: list[str], final: str | None, deferred: list[bytes],
               due: float) -> None:
        body = b"".join(framing.info(line) for line in lines)
        if final is None:
            body += b"\r\n> "
        elif self.faults.urc_inside_response and lines:
            signal = self.network.signal_urc(forced=True)
            inside = deferred + ([framing.info(signal)] if signal else [])
            body += b"".join(inside) + framing.final(final, self.faults.double_cr)
            deferred = []
        else:
            body += framing.final(final, self.faults.double_cr)
        self.out.push("tx", body, due)
        for data in deferred:
            self.out.push("urc", data, due)
        if final is not None:
            self.faults.answered()

    def _execute(self, text: str) -> tuple[list[str], str | None, float]:
        """Run a command line: (information lines, final result or None, response delay)."""
        delay = self.response_delay
        lines: list[str] = []
        try:
            commands = framing.parse_line(text)
        except PlainError:
            return [], "ERROR", delay
        for cmd in commands:
            delay = max(delay, self.command_delays.get(cmd.name, delay))
            try:
                result = self._dispatch(cmd)
            except AtFailure as failure:
                final = framing.error_text(failure, self.cfg.cmee, self.profile.unknown_command)
                return lines, final, delay
            except Exception:
                # A simulator bug must not kill the modem thread (every test would hang).
                log.exception("modemsim: %s%s%s failed", cmd.name, cmd.op, cmd.raw)
                return lines, "ERROR", delay
            if isinstance(result, Reply):
                lines.extend(result.lines)
                if result.prompt is not None:
                    self._prompt = result.prompt
                    self.reader.pdu_mode = True
                    return lines, None, delay
                if result.final != "OK" and result.final is not None:
                    return lines, result.final, delay
            elif result:
                lines.extend(result)
        return lines, "OK", delay

    def _dispatch(self, cmd: Command) -> Reply | list[str] | None:
        handler = None if cmd.name in self.faults.unsupported else self._commands.get(cmd.name)
        if handler is None and re.fullmatch(r"S\d+", cmd.name):
            return ["000"] if cmd.op == "?" else None
        if handler is None:
            raise Unsupported(cmd.name)
        return handler(cmd)

    def _handle_body(self, body: bytes, cancelled: bool) -> None:
        self.log_entry("rx", body + (b"\x1b" if cancelled else b"\x1a"))
        prompt, self._prompt = self._prompt, None
        self.reader.pdu_mode = False
        if self.faults.frozen or prompt is None:
            return
        now = time.monotonic()
        if self.cfg.echo:
            self.out.push("tx", body, now)
        self._deferred = []
        lines: list[str] = []
        final = "OK"
        try:
            if not cancelled:
                lines = self.sms.body(prompt, body.decode("latin-1").strip())
        except AtFailure as failure:
            final = framing.error_text(failure, self.cfg.cmee, self.profile.unknown_command)
        finally:
            deferred, self._deferred = self._deferred, None
        self._reply(lines, final, deferred, now + self.timers.scaled(self.response_delay))

    # -- time ------------------------------------------------------------------------

    def network_time(self) -> datetime:
        """The network's clock (service-centre timestamps, MISSED_CALL times)."""
        return NETWORK_EPOCH + timedelta(seconds=int(time.monotonic() - self._started_at))

    # -- commands --------------------------------------------------------------------

    def _build_commands(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "E": self._echo, "Z": self._reset, "&F": self._reset, "&W": _ok, "Q": _ok,
            "V": self._verbose, "I": self._ati,
            "+CMEE": self._cmee, "+CGMI": self._cgmi, "+GMI": self._cgmi,
            "+CGMM": self._cgmm, "+GMM": self._cgmm, "+CGMR": self._cgmr, "+GMR": self._cgmr,
            "+CGSN": self._cgsn, "+GSN": self._cgsn, "+CFUN": self._cfun,
            "+CSCS": self._cscs,
        }
        family = self.profile.family
        if family == HUAWEI:
            for name in ("^U2DIAG", "^SYSCFG", "^CARDLOCK", "^PORTSEL"):
                table[name] = _ok
        elif family == QUECTEL:
            table["+QCFG"] = self._qcfg
            table["+QURCCFG"] = _ok
        elif family == SIMCOM:
            for name in ("+CNSMOD", "+EXUNSOL", "+CLTS", "+CMICGAIN", "+COUTGAIN"):
                table[name] = _ok
        for part in (self.network, self.calls, self.audiopath, self.sms, self.ussd):
            table.update(part.commands())
        return table

    def _echo(self, cmd: Command) -> None:
        self.cfg.echo = cmd.raw not in ("", "0")

    def _verbose(self, cmd: Command) -> None:
        if cmd.raw == "0":
            raise PlainError("numeric result codes are not simulated")

    def _reset(self, cmd: Command) -> None:
        self.cfg = Settings.defaults(self.profile)

    def _ati(self, cmd: Command) -> list[str]:
        return self.profile.ati(self.ident.imei)

    def _cmee(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CMEE: {self.cfg.cmee}"]
        if cmd.op == "=?":
            return ["+CMEE: (0-2)"]
        value = cmd.int_param(0, 0)
        if value not in (0, 1, 2):
            raise PlainError("CMEE out of range")
        self.cfg.cmee = value
        return None

    def _cgmi(self, cmd: Command) -> list[str]:
        return [self.profile.manufacturer]

    def _cgmm(self, cmd: Command) -> list[str]:
        return [self.profile.model]

    def _cgmr(self, cmd: Command) -> list[str]:
        if self.profile.family == SIMCOM:
            return [f"+CGMR: {self.profile.revision}"]
        return [self.profile.revision]

    def _cgsn(self, cmd: Command) -> list[str]:
        return [self.ident.imei]

    def _cscs(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f'+CSCS: "{self.cfg.cscs}"']
        if cmd.op == "=?":
            return ['+CSCS: ("IRA","GSM","UCS2")']
        value = cmd.param(0).upper()
        if value not in ("IRA", "GSM", "UCS2"):
            raise framing.CmeError(4)
        self.cfg.cscs = value
        return None

    def _cfun(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CFUN: {self.network.cfun}"]
        if cmd.op == "=?":
            return ["+CFUN: (0,1,4),(0-1)"]
        fun, rst = cmd.int_param(0), cmd.int_param(1, 0)
        if fun not in (0, 1, 4) or rst not in (0, 1):
            raise framing.CmeError(4)
        if rst == 1:
            self.reboot()
            return None
        self.network.set_cfun(fun)
        return None

    def _qcfg(self, cmd: Command) -> list[str] | None:
        params = cmd.params
        if not params:
            raise PlainError("QCFG needs a setting")
        if params[0].lower() == "usbcfg" and len(params) == 1:
            return ['+QCFG: "USBCFG",0x2C7C,0x0125,1,1,1,1,1,0,0']
        return None


def _ok(cmd: Command) -> None:
    return None
