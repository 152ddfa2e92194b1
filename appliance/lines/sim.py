"""A SIM card in a modem as a line: start-up, health, recovery, calls, USSD (SMS: simsms).

The modem's life is `hw.modem.state` (a pure machine fed with what we observe); the line's
state is derived from it. One session runs per attached port: initialise per profile, unlock
the SIM (one PIN try, ever), then watch: URCs as they come, an AT ping when the port has
been quiet, health polling, +CLCC while a call exists. Two unanswered pings mean a hung
modem: AT+CFUN=1,1, else a USB power cycle, and discovery finds it again by IMEI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hw.modem import state as ms
from hw.modem.calls import CallInfo, Dtmf
from hw.modem.commands import AtError, AtTimeout, PortClosed, Response
from hw.modem.messages import UssdReply
from hw.modem.network import (
    Boot,
    OperatorInfo,
    OwnNumber,
    Registration,
    SignalQuality,
    SimStatus,
)
from hw.modem.profiles import Family

from . import simussd
from .base import (
    Capabilities,
    DtmfReceived,
    EndedCall,
    EventHub,
    IncomingCall,
    Line,
    LineAlert,
    LineCall,
    LineCallState,
    LineState,
    LineStateChanged,
    Outcome,
    backoff_delay,
)
from .context import LineContext
from .discovery import LineWish, ModemPort
from .simcall import (
    Caller,
    Gone,
    Seen,
    SimCall,
    merge,
    observe,
    release_cause,
    wants_release_cause,
)
from .simsms import SmsWorker
from .simussd import UssdResult

log = logging.getLogger(__name__)

_LINE_STATES = {
    ms.ModemState.ABSENT: LineState.DOWN, ms.ModemState.INITIALISING: LineState.STARTING,
    ms.ModemState.SIM_LOCKED: LineState.STARTING, ms.ModemState.REGISTERING: LineState.DOWN,
    ms.ModemState.READY: LineState.READY, ms.ModemState.IN_CALL: LineState.IN_CALL,
    ms.ModemState.RESETTING: LineState.RESETTING, ms.ModemState.FAILED: LineState.FAILED,
}
_DIGITS = re.compile(r"\d{6,22}")


def line_state(modem: ms.ModemState, enabled: bool) -> LineState:
    """The line's state for the modem's. Pure."""
    return _LINE_STATES[modem] if enabled else LineState.DISABLED


def _other_call(call: SimCall, obs: Seen | Gone) -> bool:
    """True when a report is about a different call than the line's one. Pure."""
    if obs.index is not None and call.index is not None:
        return obs.index != call.index
    if isinstance(obs, Gone) and obs.missed:
        return call.outgoing or call.state is not LineCallState.RINGING
    if isinstance(obs, Seen) and obs.index is not None and obs.incoming is not None:
        return obs.incoming == call.outgoing
    return False


def parse_iccid(lines: tuple[str, ...], swapped: bool) -> str | None:
    """The ICCID from +QCCID/+ICCID/^ICCID, or +CRSM's nibble-swapped EF_ICCID. Pure."""
    for line in lines:
        body = line.split(":", 1)[-1]
        if swapped:
            fields = body.split(",")
            raw = fields[-1].strip().strip('"') if len(fields) >= 3 else ""
            if len(raw) < 2 or len(raw) % 2:
                continue
            digits = "".join(raw[i + 1] + raw[i] for i in range(0, len(raw), 2))
            digits = digits.rstrip("Ff")
            if digits.isdigit() and 18 <= len(digits) <= 22:
                return digits
            continue
        match = _DIGITS.search(body.replace('"', ""))
        if match and 18 <= len(match.group(0)) <= 22:
            return match.group(0)
    return None


@dataclass(frozen=True)
class SimSettings:
    """A configured SIM line, as the driver uses it (the PIN included)."""

    key: str
    name: str = ""
    enabled: bool = True
    imei: str | None = None
    iccid: str | None = None
    pin: str | None = None
    usb_path: str | None = None
    simulated: bool = False
    sms: bool = True
    ussd_balance: str | None = None
    operator: str | None = None

    def wish(self) -> LineWish:
        """What discovery matches modems against."""
        return LineWish(self.key, self.imei, self.usb_path, self.simulated)


class SimFailed(Exception):
    """Start-up cannot go on without a person (PIN refused, SIM blocked or missing)."""


Released = Callable[[ModemPort, float], None]


class SimLine:
    """One SIM line; the manager attaches modems to it and detaches vanished ones."""

    kind = "sim"

    def __init__(self, settings: SimSettings, ctx: LineContext,
                 released: Released | None = None) -> None:
        self.key = settings.key
        self.settings = settings
        self.ctx = ctx
        self.events = EventHub()
        self.modem_state = ms.ModemState.ABSENT
        self._state = line_state(self.modem_state, settings.enabled)
        self.detail = "no modem found yet"
        self.port: ModemPort | None = None
        self.call: SimCall | None = None
        self.info: dict[str, Any] = {}
        self.balance: dict[str, Any] | None = None
        self.resets = 0
        self.sms = SmsWorker(self)
        self._released = released
        self._session: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pin_rejected: str | None = None
        self._suspect = asyncio.Event()
        self._wake = asyncio.Event()
        self._registered: dict[str, bool] = {}
        self.ussd_lock = asyncio.Lock()
        self._last_heard = ctx.clock.monotonic()
        self._stopped = False
        self._reset_timer: asyncio.Task[None] | None = None
        self._balance_task: asyncio.Task[None] | None = None
        # Start times of commands waiting for or holding the port; unanswered commands in a
        # row (any command, not just pings: a frozen modem hangs a long +CMGL too).
        self._inflight: list[float] = []
        self._misses = 0

    # -- the Line interface --------------------------------------------------------------

    @property
    def state(self) -> LineState:
        """The line's state."""
        return self._state

    @property
    def capabilities(self) -> Capabilities:
        """Voice, SMS (if configured), USSD; one channel."""
        return Capabilities(voice=True, sms=self.settings.sms, ussd=True, channels=1)

    def subscribe(self, handler: Callable[[Any], None]) -> Callable[[], None]:
        """Line events to handler until the returned function is called."""
        return self.events.subscribe(handler)

    def health(self) -> dict[str, Any]:
        """State, signal, registration, operator, SIM, identity and balance, JSON-able."""
        port = self.port
        return {
            "key": self.key, "kind": self.kind, "name": self.settings.name,
            "state": self._state.value, "detail": self.detail,
            "modem_state": self.modem_state.value,
            "modem": None if port is None else {
                "profile": port.profile.name, "manufacturer": port.manufacturer,
                "model": port.model, "usb_path": port.usb_path, "at_path": port.at_path,
                "audio_path": port.audio_path},
            "imei": port.imei if port else self.info.get("imei"),
            "imsi": self.info.get("imsi"), "iccid": self.info.get("iccid"),
            "own_number": self.info.get("own_number"), "sim": self.info.get("sim"),
            "signal": self.info.get("signal"), "signal_dbm": self.info.get("signal_dbm"),
            "registration": self.info.get("registration"),
            "operator": self.info.get("operator"), "balance": self.balance,
            "resets": self.resets,
            "call": None if self.call is None else self.call.summary(),
            "sms": dict(self.sms.stats),
        }

    async def dial(self, number: str, *, withhold: bool = False) -> LineCall:
        """Place a voice call (`withhold`: CLIR for this call); busy (486) at once when the
        SIM already carries one."""
        if self.call is not None:
            return EndedCall(self.key, number, Outcome.BUSY,
                             "a SIM line carries one call at a time")
        port = self.port
        if port is None or self._state is not LineState.READY:
            outcome = Outcome.NO_NETWORK if self._state in (
                LineState.DOWN, LineState.RESETTING, LineState.STARTING) else Outcome.UNREACHABLE
            return EndedCall(self.key, number, outcome, f"line is {self._state.value}")
        try:
            commands = port.profile.dial_sequence(number, withhold=withhold)
        except ValueError as exc:
            return EndedCall(self.key, number, Outcome.FAILED, str(exc))
        call = self._new_call(outgoing=True, remote=number, state=LineCallState.DIALING)
        try:
            for command in commands:
                resp = await self.command(command, 10.0)
                if resp.ok:
                    continue
                if command.startswith("ATD"):
                    kind = resp.final.kind if resp.final.is_call_result else None
                    self._gone(call, Gone(call.index, kind, None), decisive=True)
                    return call
                log.warning("%s: %s failed (%s); the call goes on", self.key, command,
                            resp.final.reason)
        except AtError as exc:
            self._end_call(call, Outcome.FAILED, str(exc))
            return call
        call.reconcile = True
        return call

    # -- manager side --------------------------------------------------------------------

    def attach(self, port: ModemPort) -> None:
        """A modem for this line was found (boot, hot-plug, back after a reset)."""
        if self.port is not None and self.port is not port:
            self._drop_port("replaced by a newly found modem")
        self.port = port
        self.info["imei"] = port.imei
        if self._reset_timer is not None:
            self._reset_timer.cancel()
            self._reset_timer = None
        self._session = asyncio.get_running_loop().create_task(
            self._run_session(port), name=f"line-{self.key}")

    def detach(self, reason: str) -> None:
        """The modem's port vanished (unplugged or re-enumerating)."""
        if self.port is None:
            return
        self._drop_port(reason)
        self._feed(ms.PortLost(), reason)

    def update(self, settings: SimSettings) -> None:
        """New configuration; takes effect without touching a call in progress."""
        enabled_changed = settings.enabled != self.settings.enabled
        if settings.pin != self.settings.pin:
            self._pin_rejected = None  # a new PIN gets its one try
        self.settings = settings
        if settings.sms and self.port is not None and self._state in (LineState.READY,
                                                                       LineState.IN_CALL):
            self.sms.start()
            self.sms.sweep()
        if enabled_changed:
            self._set_state(line_state(self.modem_state, settings.enabled), "configuration")

    async def stop(self) -> None:
        """Stop the session and close the port (the call, if any, is released first)."""
        self._stopped = True
        if self.call is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call.hangup(), 2.0)
        self._drop_port("line stopped")
        await self.sms.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._reset_timer is not None:
            self._reset_timer.cancel()

    # -- AT helpers ----------------------------------------------------------------------

    async def command(self, command: str, timeout: float | None = None) -> Response:
        """One AT command on the line's port; a timeout makes the watchdog ping at once."""
        port = self.port
        if port is None:
            raise PortClosed(f"{self.key}: no modem")
        resp = await self._watched(port.channel.command(command, timeout))
        self._misses = 0
        return resp

    async def _watched(self, exchange: Awaitable[Response]) -> Response:
        """Run one AT exchange under the watchdog: a timeout makes it ping at once."""
        self._inflight.append(time.monotonic())
        try:
            resp = await exchange
        except AtTimeout:
            self._misses += 1
            self._suspect.set()
            self._wake.set()
            raise
        finally:
            self._inflight.pop(0)
        self._last_heard = self.ctx.clock.monotonic()
        return resp

    async def send_pdu(self, command: str, pdu: str) -> Response:
        """The AT+CMGS prompt flow on the line's port."""
        port = self.port
        if port is None:
            raise PortClosed(f"{self.key}: no modem")
        return await self._watched(port.channel.send_pdu(command, pdu))

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.key}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s: %s failed: %s", self.key, task.get_name(), task.exception())

    # -- state -----------------------------------------------------------------------------

    def _feed(self, event: ms.ModemEvent, detail: str = "") -> None:
        self.modem_state, change = ms.apply(self.modem_state, event)
        if change is not None:
            self._set_state(line_state(self.modem_state, self.settings.enabled), detail)

    def _set_state(self, new: LineState, detail: str) -> None:
        old = self._state
        if new is old:
            return
        self._state = new
        self.detail = detail or new.value
        log.info("line %s: %s -> %s (%s)", self.key, old.value, new.value, self.detail)
        self.events.emit(LineStateChanged(self.key, old, new, self.detail))

    def _alert(self, reason: str) -> None:
        log.error("line %s: %s", self.key, reason)
        self.events.emit(LineAlert(self.key, reason))

    # -- the session -----------------------------------------------------------------------

    def _drop_port(self, reason: str) -> None:
        port, self.port = self.port, None
        if self._session is not None and self._session is not asyncio.current_task():
            self._session.cancel()
        self._session = None
        if self.call is not None:
            self._end_call(self.call, Outcome.FAILED, reason)
        if port is not None:
            self._spawn(port.channel.close(), "close")

    async def _run_session(self, port: ModemPort) -> None:
        self._feed(ms.PortFound(), f"modem {port.imei} on {port.usb_path}")
        unsubscribe = port.channel.subscribe(self._on_urc)
        try:
            await self._initialise(port)
            self.resets = 0
            why = await self._watch(port)
        except SimFailed as exc:
            self._feed(ms.Failed(str(exc)), str(exc))
            self._alert(str(exc))
            await port.channel.wait_closed()
            why = "port closed"
        except PortClosed:
            why = "port closed"
        except AtError as exc:
            why = f"start-up failed: {exc}"
        except asyncio.CancelledError:
            unsubscribe()
            raise
        unsubscribe()
        if self.port is not port or self._stopped:
            return
        if port.channel.closed:
            self.detach(f"modem {port.imei} gone ({why})")
            return
        await self._recover(port, why)

    async def _initialise(self, port: ModemPort) -> None:
        profile = port.profile
        for first in ("ATE0", "AT+CMEE=1"):
            await self.command(first, 5.0)
        await self._unlock_sim()
        for step in profile.init_commands():
            resp = await self.command(step.command, step.timeout)
            if not resp.ok:
                if step.required:
                    raise AtError(f"{step.command} failed: {resp.final.reason}")
                log.info("%s: optional %s failed: %s", self.key, step.command,
                         resp.final.reason)
        await self._identify(port)
        await self._poll_health(port)
        if self.settings.sms:
            self.sms.start()
            self.sms.sweep()
        if self._balance_task is None:
            self._balance_task = asyncio.get_running_loop().create_task(
                self._balance_loop(), name=f"{self.key}-balance")
            self._tasks.add(self._balance_task)

    async def _identify(self, port: ModemPort) -> None:
        imsi = (await self.command("AT+CIMI", 5.0))
        match = _DIGITS.search(imsi.text()) if imsi.ok else None
        self.info["imsi"] = match.group(0) if match else None
        iccid = await self.command(port.profile.iccid_command, 5.0)
        if iccid.ok:
            self.info["iccid"] = parse_iccid(iccid.lines,
                                             port.profile.iccid_command.startswith("AT+CRSM"))
        cnum = await self.command("AT+CNUM", 5.0)
        own = cnum.first(OwnNumber) if cnum.ok else None
        self.info["own_number"] = own.number if own else None
        if self.settings.iccid and self.info.get("iccid") not in (None, self.settings.iccid):
            log.warning("%s: SIM %s is not the configured %s", self.key, self.info["iccid"],
                        self.settings.iccid)

    async def _sim_status(self) -> SimStatus | None:
        resp = await self.command("AT+CPIN?", 5.0)
        if not resp.ok:
            if resp.final.code == 10:
                return SimStatus("NOT INSERTED")
            return None
        return resp.first(SimStatus)

    async def _unlock_sim(self) -> None:
        status = await self._sim_status()
        if status is None:
            raise AtError("no answer to AT+CPIN? we understand")
        self.info["sim"] = status.code
        if status.ready:
            self._feed(ms.SimChanged(ms.Sim.READY))
            return
        if status.absent:
            self._feed(ms.SimChanged(ms.Sim.ABSENT))
            raise SimFailed("no SIM card in the modem")
        if status.needs_puk:
            self._feed(ms.SimChanged(ms.Sim.PUK))
            raise SimFailed("the SIM is blocked and needs its PUK: unblock it in a phone")
        if not status.needs_pin:
            raise SimFailed(f"the SIM is in state {status.code!r}")
        self._feed(ms.SimChanged(ms.Sim.PIN), "the SIM asks for its PIN")
        pin = self.settings.pin
        if not pin:
            raise SimFailed("the SIM asks for a PIN and none is configured")
        if pin == self._pin_rejected:
            raise SimFailed("the configured PIN was refused before; not trying it again")
        resp = await self.command(f'AT+CPIN="{pin}"', 10.0)
        if not resp.ok:
            # One try only: three wrong PINs block the SIM, and a blocked SIM needs a person.
            self._pin_rejected = pin
            raise SimFailed("the SIM refused the configured PIN (not retried, so it is not "
                            "blocked): correct the PIN in the configuration")
        clock = self.ctx.clock
        deadline = clock.monotonic() + self.ctx.timers.pin_settle_s
        while clock.monotonic() < deadline:
            status = await self._sim_status()
            if status is not None and status.ready:
                self.info["sim"] = status.code
                self._feed(ms.SimChanged(ms.Sim.READY))
                return
            await asyncio.sleep(0.3)
        raise SimFailed("the SIM took the PIN but never became ready")

    async def _poll_health(self, port: ModemPort) -> None:
        csq = (await self.command("AT+CSQ", 5.0)).first(SignalQuality)
        if csq is not None:
            self._on_signal(csq)
        queries = ["AT+CREG?"]
        if port.profile.family is not Family.HUAWEI:
            queries.append("AT+CEREG?")
        regs: list[Registration] = []
        for query in queries:
            resp = await self.command(query, 5.0)
            reg = resp.first(Registration) if resp.ok else None
            if reg is not None:
                regs.append(reg)
        cops = await self.command("AT+COPS?", 5.0)
        op = cops.first(OperatorInfo) if cops.ok else None
        if op is not None:
            self.info["operator"] = op.name
        # Last, so the line is READY only with everything above known.
        for reg in regs:
            self._on_registration(reg)

    async def _watch(self, port: ModemPort) -> str:
        """Until the modem hangs (returns why) or the port closes (PortClosed)."""
        timers, clock = self.ctx.timers, self.ctx.clock
        channel = port.channel
        last_poll = last_calls = clock.monotonic()
        self._misses = 0
        # A modem silent this long while a command waits is hung, however long that
        # command's own time limit (an SMS may wait 40 s for the network).
        silence_limit = timers.ping_idle_s + 2 * timers.ping_timeout_s
        while True:
            if channel.closed:
                raise PortClosed("port closed")
            if self._misses >= 2:
                return "two commands in a row went unanswered"
            now = clock.monotonic()
            busy = bool(self._inflight)
            if busy:
                heard = max(self._inflight[0], getattr(channel, "last_rx", 0.0))
                if time.monotonic() - heard >= silence_limit:
                    return f"silent for {silence_limit:g} s during a command"
            try:
                if not busy and (self._suspect.is_set()
                                 or now - self._last_heard >= timers.ping_idle_s):
                    self._suspect.clear()
                    await self.command("AT", timers.ping_timeout_s)
                if self.call is not None and now - last_calls >= timers.call_poll_s:
                    last_calls = now
                    await self._poll_calls()
                if now - last_poll >= timers.poll_s:
                    last_poll = now
                    await self._poll_health(port)
                    if self.settings.sms:
                        self.sms.sweep()
            except AtTimeout as exc:
                log.warning("%s: modem did not answer (%d): %s", self.key, self._misses, exc)
                continue
            self._wake.clear()
            step = min(timers.ping_idle_s, timers.call_poll_s if self.call else timers.poll_s,
                       1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), step)

    async def _recover(self, port: ModemPort, why: str) -> None:
        """The modem hangs: reset it and let discovery find it again (by IMEI)."""
        self.resets += 1
        self._feed(ms.Hung(why), f"modem hangs ({why}): resetting")
        if self.call is not None:
            self._end_call(self.call, Outcome.FAILED, "modem hangs")
        if self.resets > self.ctx.timers.max_resets:
            self._drop_port("gave up")
            self._feed(ms.Failed("resets gave up"), "the modem hangs after every reset")
            self._alert(f"the modem hung {self.resets - 1} times in a row; gave up")
            return
        done = False
        with contextlib.suppress(AtError):
            done = (await port.channel.command("AT+CFUN=1,1", 2.0)).ok
        if not done:
            done = await self.ctx.usb_reset(port)
        self._drop_port("resetting")
        delay = 0.0 if done else backoff_delay(self.resets - 1, self.ctx.timers.backoff_base_s,
                                               self.ctx.timers.backoff_cap_s)
        if self._released is not None:
            self._released(port, delay)
        self._reset_timer = asyncio.get_running_loop().create_task(self._reset_deadline())

    async def _reset_deadline(self) -> None:
        await self.ctx.clock.sleep(self.ctx.timers.reset_wait_s)
        if self.port is None and self.modem_state is ms.ModemState.RESETTING:
            self._feed(ms.Failed("not back"), "the modem did not come back after a reset")
            self._alert("the modem did not come back after a reset")

    # -- URCs --------------------------------------------------------------------------------

    def _on_urc(self, urc: object) -> None:
        self._last_heard = self.ctx.clock.monotonic()
        if isinstance(urc, Registration):
            self._on_registration(urc)
        elif isinstance(urc, SignalQuality):
            self._on_signal(urc)
        elif isinstance(urc, SimStatus):
            self.info["sim"] = urc.code
        elif isinstance(urc, Boot):
            log.info("%s: the modem says it booted (%s)", self.key, urc.source)
        elif isinstance(urc, Dtmf):
            call = self.call
            if call is not None and call.state is LineCallState.ACTIVE:
                # Through the call's events, which the line's subscribers also get.
                call.events.emit(DtmfReceived(self.key, call.call_id, urc.digit))
        elif isinstance(urc, UssdReply):
            pass  # taken by the watch in ussd()
        else:
            self.sms.on_urc(urc)
            obs = observe(urc)  # type: ignore[arg-type]
            if obs is not None:
                self._on_call(obs)

    def _on_registration(self, reg: Registration) -> None:
        self._registered[reg.domain] = reg.registered
        registered = any(self._registered.values())
        self.info["registration"] = ("roaming" if reg.roaming else "home") if registered \
            else {0: "not searching", 2: "searching", 3: "denied"}.get(reg.status, "unknown")
        self._feed(ms.RegistrationChanged(registered),
                   "registered" if registered else "no network")

    def _on_signal(self, sq: SignalQuality) -> None:
        self.info["signal"] = sq.rssi
        self.info["signal_dbm"] = sq.dbm

    # -- calls -------------------------------------------------------------------------------

    def _new_call(self, *, outgoing: bool, remote: str | None,
                  state: LineCallState) -> SimCall:
        port = self.port
        call = SimCall(self.key, outgoing=outgoing, remote=remote, state=state,
                       audio_device=port.audio_path if port else None,
                       answer=self._answer, hangup=self._hangup, dtmf=self._dtmf)
        call.caller_known = outgoing or remote is not None
        call.events.subscribe(self.events.emit)
        self.call = call
        self._feed(ms.CallStarted())
        self._wake.set()
        return call

    def _on_call(self, obs: Seen | Caller | Gone) -> None:
        call = self.call
        if call is not None and isinstance(obs, Seen | Gone) and _other_call(call, obs):
            return  # a waiting second call: a SIM line carries one, the network keeps trying
        if isinstance(obs, Seen):
            if call is None:
                if obs.state is not LineCallState.RINGING or obs.incoming is False:
                    return  # a report about a call we don't hold: +CLCC polling decides
                call = self._new_call(outgoing=False, remote=obs.number,
                                      state=LineCallState.RINGING)
                call.reconcile = True
                self._spawn(self._announce(call), "announce")
            if call.apply_seen(obs) and call.state is LineCallState.ACTIVE:
                self._spawn(self._connected(call), "connected")
            return
        if call is None:
            return
        if isinstance(obs, Caller):
            if not call.outgoing and not call.caller_known:
                call.remote = obs.number
                call.caller_known = True
                self._wake.set()
            return
        self._gone(call, obs, decisive=obs.decisive)

    def _gone(self, call: SimCall, gone: Gone, *, decisive: bool) -> None:
        if call.ended:
            return
        call.pending_end = gone if call.pending_end is None else merge(call.pending_end, gone)
        if decisive or call.pending_end.decisive:
            self._finish(call)
        elif not call.end_scheduled:
            call.end_scheduled = True
            self._spawn(self._finish_later(call), "end")

    async def _finish_later(self, call: SimCall) -> None:
        """A report said "gone" without why: wait for BUSY & co, ask +CLCC to be sure (a bare
        NO CARRIER may belong to a waiting call the network dropped), then AT+CEER for why."""
        await asyncio.sleep(self.ctx.timers.end_grace_s)
        call.end_scheduled = False
        if call.ended:
            return
        if call.index is not None and call.reconcile:
            try:
                resp = await self.command("AT+CLCC", 3.0)
            except AtError:
                resp = None
            if resp is not None and resp.ok and any(
                    i.index == call.index and not i.ended for i in resp.all(CallInfo)):
                call.pending_end = None  # still there
                return
        gone = call.pending_end or Gone()
        if wants_release_cause(gone, was_active=call.was_active, outgoing=call.outgoing,
                               local=call.local_end):
            cause = await release_cause(self.command)
            if cause is not None and not call.ended:
                call.pending_end = merge(call.pending_end or gone, Gone(cause=cause))
        self._finish(call)

    def _finish(self, call: SimCall) -> None:
        if call.ended:
            return
        call.finish(call.pending_end or Gone())
        self._after_end(call)

    def _end_call(self, call: SimCall, outcome: Outcome, detail: str) -> None:
        if call.set_state(LineCallState.ENDED, outcome, detail):
            self._after_end(call)

    def _after_end(self, call: SimCall) -> None:
        if self.call is call:
            self.call = None
        self._feed(ms.CallEnded())
        port = self.port
        if port is not None and port.profile.on_ended:
            self._spawn(self._run_all(port.profile.on_ended), "on-ended")

    async def _run_all(self, commands: tuple[str, ...]) -> None:
        for command in commands:
            with contextlib.suppress(AtError):
                await self.command(command, 5.0)

    async def _announce(self, call: SimCall) -> None:
        """IncomingCall once the caller's number is known (+CLIP, or +CLCC after a wait)."""
        clock = self.ctx.clock
        deadline = clock.monotonic() + self.ctx.timers.clip_wait_s
        while not call.caller_known and not call.ended and clock.monotonic() < deadline:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
        if not call.caller_known and not call.ended:
            with contextlib.suppress(AtError):
                await self._poll_calls()
        if not call.ended:
            self.events.emit(IncomingCall(self.key, call, call.remote))

    async def _poll_calls(self) -> None:
        call = self.call
        if call is None:
            return
        resp = await self.command("AT+CLCC", 3.0)
        if not resp.ok or self.call is not call or not call.reconcile:
            return
        infos = [i for i in resp.all(CallInfo) if i.mode == 0]
        mine = [i for i in infos if call.index is None or i.index == call.index]
        if not mine:
            self._gone(call, Gone(call.index), decisive=False)
            return
        info = mine[0]
        if not call.outgoing and not call.caller_known:
            call.remote = info.number or None
            call.caller_known = True
        obs = observe(info)
        if obs is not None:
            self._on_call(obs)

    async def _connected(self, call: SimCall) -> None:
        port = self.port
        if port is None or call.armed:
            return
        call.armed = True
        await self._run_all(port.profile.on_connected)

    async def _answer(self, call: SimCall) -> None:
        port = self.port
        if port is None:
            raise RuntimeError("no modem")
        for command in port.profile.answer_sequence():
            resp = await self.command(command, 10.0)
            if not resp.ok and command == "ATA":
                self._gone(call, Gone(call.index, resp.final.kind
                                      if resp.final.is_call_result else None), decisive=True)
                raise RuntimeError(f"ATA failed: {resp.final.reason}")
        if call.apply_seen(Seen(LineCallState.ACTIVE)):
            await self._connected(call)

    async def _hangup(self, call: SimCall) -> None:
        port = self.port
        if port is not None:
            with contextlib.suppress(AtError):
                await self.command(port.profile.hangup_command(call.index), 5.0)
        self._gone(call, Gone(call.index), decisive=True)

    async def _dtmf(self, call: SimCall, digit: str) -> None:
        port = self.port
        if port is None:
            raise RuntimeError("no modem")
        resp = await self.command(port.profile.dtmf_command(digit, call.index or 1), 5.0)
        if not resp.ok:
            raise RuntimeError(f"DTMF {digit!r} refused: {resp.final.reason}")

    # -- USSD and balance (simussd) -------------------------------------------------------

    async def ussd(self, code: str, *, record: bool = True) -> UssdResult:
        """Send a USSD request and wait for the network's answer (stored in ussd_history)."""
        return await simussd.ussd(self, code, record=record)

    async def check_balance(self) -> UssdResult | None:
        """The configured balance code, parsed; a low-balance event under the threshold."""
        return await simussd.check_balance(self)

    async def _balance_loop(self) -> None:
        await simussd.balance_loop(self)


if TYPE_CHECKING:

    def _conforms(line: SimLine) -> Line:
        """mypy proves here that SimLine is a Line."""
        return line
