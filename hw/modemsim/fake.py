"""FakeModem: the simulator's public face (modem-simulator.md section 5.1)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from . import profiles
from .audio import AudioChannel
from .calls import Call, Script
from .core import Identity, LogEntry, Modem
from .pdu import Submit
from .sms import reassemble
from .ussd import UssdReply


class FakeModem:
    """A simulated GSM/LTE modem on two raw ptys (AT and PCM audio), run by its own thread."""

    # The network side (calls, SMS, USSD, signal, SIM) and every fault are driven from
    # here; the code under test only sees the pts paths or the by-IMEI links.

    def __init__(self, profile: str = "quectel-ec25", imei: str = "860000000000001",
                 imsi: str = "250990000000001", iccid: str = "8970199000000000001",
                 own_number: str | None = "+79000000001", operator: str = "SimNet",
                 pin: str | None = None, sms_capacity: int = 20, time_scale: float = 1.0,
                 seed: int = 0, *, links_dir: str | Path | None = None,
                 reboot_s: float = 2.0) -> None:
        self.profile = profiles.get(profile)
        self._tmp: str | None = None
        if links_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="modemsim-")
            links_dir = Path(self._tmp) / "by-imei"
        ident = Identity(imei=imei, imsi=imsi, iccid=iccid, own_number=own_number,
                         operator=operator)
        self._m = Modem(self.profile, ident, pin=pin, sms_capacity=sms_capacity,
                        time_scale=time_scale, seed=seed, links_dir=Path(links_dir),
                        reboot_s=reboot_s)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeModem:
        """Open the ports and start the modem's threads."""
        self._m.start()
        return self

    def stop(self) -> None:
        """Stop the threads, close the ports, remove the links."""
        self._m.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> FakeModem:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- where it is -----------------------------------------------------------------

    @property
    def at_path(self) -> str | None:
        """The AT port's current /dev/pts/N (None while unplugged)."""
        return self._m.at.path if self._m.at else None

    @property
    def audio_path(self) -> str | None:
        """The audio port's current /dev/pts/N (None while unplugged)."""
        return self._m.audio_port.path if self._m.audio_port else None

    @property
    def links_dir(self) -> Path:
        """The by-imei directory holding `<IMEI>-if02` (AT) and `<IMEI>-if01` (audio)."""
        return self._m.links.directory

    @property
    def at_link(self) -> Path:
        """The by-IMEI link to the AT port."""
        return self._m.links.path("at")

    @property
    def audio_link(self) -> Path:
        """The by-IMEI link to the audio port."""
        return self._m.links.path("audio")

    @property
    def imei(self) -> str:
        """The modem's IMEI."""
        return self._m.ident.imei

    @property
    def time_scale(self) -> float:
        """Factor applied to every timer (not to the 20 ms audio clock)."""
        return self._m.timers.time_scale

    @property
    def audio(self) -> AudioChannel:
        """The PCM channel: play(), tone(), captured(), stats and the impairment knobs."""
        return self._m.audio

    @property
    def reboots(self) -> int:
        """How many times AT+CFUN=1,1 rebooted the modem."""
        return self._m.reboots

    # -- network and SIM ---------------------------------------------------------------

    def set_signal(self, rssi: int) -> None:
        """Signal level 0-31 (99 unknown), pushed at once in the profile's URC."""
        self._m.call(lambda: self._m.network.set_signal(rssi))

    def drop_network(self) -> None:
        """Lose the network: +CREG: 2, CSQ 99, calls end, ATD and CMGS fail."""
        self._m.call(self._m.network.drop)

    def restore_network(self) -> None:
        """The network is back: +CREG: 1 and held SMS delivered."""
        self._m.call(self._m.network.restore)

    def set_sim(self, state: str) -> None:
        """SIM state: "READY", "SIM PIN", "SIM PUK" or "NOT INSERTED"."""
        self._m.call(lambda: self._m.network.set_sim(state))

    @property
    def registered(self) -> bool:
        """True while the modem is registered."""
        return self._m.call(self._m.network.registered)

    # -- calls -----------------------------------------------------------------------

    def ring(self, number: str = "+79001234567", ton: int = 145, clir: bool = False,
             clip_delay: float = 0.1) -> int:
        """An incoming call; returns its index."""
        return self._m.call(lambda: self._m.calls.ring(number, ton, clir, clip_delay))

    def remote_answer(self, idx: int) -> None:
        """The called party answers our outgoing call idx."""
        self._m.call(lambda: self._m.calls.remote_answer(idx))

    def remote_hangup(self, idx: int, cause: int = 16) -> None:
        """The far end of call idx hangs up."""
        self._m.call(lambda: self._m.calls.remote_hangup(idx, cause))

    def remote_dtmf(self, idx: int, digits: str) -> None:
        """The far end presses digits: in-band tone pairs plus the detector's URC."""
        self._m.call(lambda: self._m.calls.remote_dtmf(idx, digits))

    def script_number(self, number: str, *, answer_after: float | None = 1.0,
                      busy: bool = False, no_answer: bool = False,
                      hangup_after: float | None = None,
                      fail_cause: int | None = None) -> None:
        """What happens when the modem dials number (the default answers after 1 s)."""
        script = Script(answer_after=answer_after, busy=busy, no_answer=no_answer,
                        hangup_after=hangup_after, fail_cause=fail_cause)
        self._m.call(lambda: self._m.calls.scripts.__setitem__(number, script))

    def calls(self) -> list[Call]:
        """The true call list (what AT+CLCC answers)."""
        return self._m.call(self._m.calls.snapshot)

    @property
    def dtmf_sent(self) -> list[tuple[int, str]]:
        """(call index, digit) for every DTMF digit the host sent."""
        return self._m.call(lambda: list(self._m.calls.dtmf_sent))

    # -- SMS and USSD ------------------------------------------------------------------

    def deliver_sms(self, oa: str, text: str, *, parts_order: list[int] | None = None,
                    drop_part: int | None = None, direct: bool = False, alnum: bool = False,
                    part_gap: float = 0.05) -> list[str]:
        """An SMS from oa; returns its SMS-DELIVER PDUs in part order."""
        return self._m.call(lambda: self._m.sms.deliver(
            oa, text, parts_order=parts_order, drop_part=drop_part, direct=direct,
            alnum=alnum, part_gap=part_gap))

    def set_ussd(self, code: str, text: str | None, *, dcs: int = 72, m: int = 0,
                 delay: float = 0.3, timeout: bool = False) -> None:
        """The network's answer to code (text None: +CUSD: 4; timeout: +CUSD: 5)."""
        reply = UssdReply(text=text, dcs=dcs, m=m, delay=delay, timeout=timeout)
        self._m.call(lambda: self._m.ussd.set_reply(code, reply))

    @property
    def sent_sms(self) -> list[Submit]:
        """Every SMS-SUBMIT the host sent, decoded (one per part)."""
        return self._m.call(lambda: list(self._m.sms.sent))

    def sent_messages(self) -> list[tuple[str, str]]:
        """(number, text) of the complete messages the host sent, parts joined."""
        return reassemble(self.sent_sms)

    @property
    def ussd_requests(self) -> list[str]:
        """The USSD strings the host sent, decoded."""
        return self._m.call(lambda: list(self._m.ussd.requests))

    def stored_sms(self, store: str = "SM") -> dict[int, tuple[int, str]]:
        """The messages in a store: index -> (stat, PDU hex)."""
        return self._m.call(lambda: {i: (s.stat, s.pdu)
                                     for i, s in self._m.sms.stores[store].slots.items()})

    # -- faults ----------------------------------------------------------------------

    def freeze(self) -> None:
        """Read and discard, never answer, send nothing."""
        self._m.call(lambda: setattr(self._m.faults, "frozen", True))

    def unfreeze(self) -> None:
        """Answer again."""
        self._m.call(lambda: setattr(self._m.faults, "frozen", False))

    def freeze_after(self, n_cmds: int) -> None:
        """Freeze right after answering n_cmds more command lines."""
        self._m.call(lambda: setattr(self._m.faults, "freeze_after", n_cmds))

    @property
    def frozen(self) -> bool:
        """True while frozen."""
        return self._m.faults.frozen

    def inject(self, data: bytes) -> None:
        """Write raw bytes on the AT port (line noise, non-UTF-8 bytes)."""
        self._m.call(lambda: self._m.raw(data))

    def split_writes(self, on: bool = True) -> None:
        """Write everything in pieces of 1-4 bytes."""
        def apply() -> None:
            self._m.faults.split_writes = on
            self._m.out.split_writes = on

        self._m.call(apply)

    def double_cr(self, on: bool = True) -> None:
        """Final results as \\r\\r\\nOK."""
        self._m.call(lambda: setattr(self._m.faults, "double_cr", on))

    def urc_inside_response(self, on: bool = True) -> None:
        """Put URCs between a reply's lines and its final result."""
        self._m.call(lambda: setattr(self._m.faults, "urc_inside_response", on))

    def unsupported(self, command: str, on: bool = True) -> None:
        """Answer command ("+CEER") as one this firmware does not know."""
        def apply() -> None:
            if on:
                self._m.faults.unsupported.add(command.upper())
            else:
                self._m.faults.unsupported.discard(command.upper())

        self._m.call(apply)

    def ceer_numeric(self, on: bool = True) -> None:
        """Quectel: AT+CEER answers "<category>",<cause>,"<text>" rather than the text."""
        self._m.call(lambda: setattr(self._m.calls, "ceer_numeric", on))

    def set_response_delay(self, seconds: float, command: str | None = None) -> None:
        """Delay before replies (modem seconds), for all commands or one ("+CSQ", "D")."""
        def apply() -> None:
            if command is None:
                self._m.response_delay = seconds
            else:
                self._m.command_delays[command.upper()] = seconds

        self._m.call(apply)

    def unplug(self) -> None:
        """USB unplug: both masters closed, links removed, calls gone."""
        self._m.call(self._m.unplug)

    def replug(self) -> None:
        """USB replug: new pts paths, links updated, a fresh boot with its URCs."""
        self._m.call(self._m.replug)

    def reboot(self) -> None:
        """What AT+CFUN=1,1 does: unplug, then replug after reboot_s."""
        self._m.call(self._m.reboot)

    # -- observation -------------------------------------------------------------------

    @property
    def log(self) -> list[LogEntry]:
        """[(t, "rx"|"tx"|"urc", bytes)] of the AT port, oldest first."""
        return self._m.log_snapshot()

    def wait_for_command(self, regex: str, timeout: float = 5.0,
                         since: float | None = None) -> str:
        """The first received command line (at or after `since`) matching regex, or TimeoutError."""
        return self._m.wait_for_command(regex, timeout, since)

    def wait_plugged(self, plugged: bool = True, timeout: float = 5.0) -> bool:
        """Wait until the ports are there (or gone); False on timeout."""
        return self._m.wait_plugged(plugged, timeout)

    @staticmethod
    def now() -> float:
        """The log's clock (for since=)."""
        return time.monotonic()

    # -- coroutine wrappers ------------------------------------------------------------

    async def a_start(self) -> FakeModem:
        """start() off the event loop."""
        return await asyncio.to_thread(self.start)

    async def a_stop(self) -> None:
        """stop() off the event loop."""
        await asyncio.to_thread(self.stop)

    async def a_wait_for_command(self, regex: str, timeout: float = 5.0,
                                 since: float | None = None) -> str:
        """wait_for_command() off the event loop."""
        return await asyncio.to_thread(self.wait_for_command, regex, timeout, since)

    async def a_ring(self, number: str = "+79001234567", ton: int = 145, clir: bool = False,
                     clip_delay: float = 0.1) -> int:
        """ring() off the event loop."""
        return await asyncio.to_thread(self.ring, number, ton, clir, clip_delay)

    async def a_remote_answer(self, idx: int) -> None:
        """remote_answer() off the event loop."""
        await asyncio.to_thread(self.remote_answer, idx)

    async def a_remote_hangup(self, idx: int, cause: int = 16) -> None:
        """remote_hangup() off the event loop."""
        await asyncio.to_thread(self.remote_hangup, idx, cause)

    async def a_remote_dtmf(self, idx: int, digits: str) -> None:
        """remote_dtmf() off the event loop."""
        await asyncio.to_thread(self.remote_dtmf, idx, digits)

    async def a_deliver_sms(self, oa: str, text: str, *, parts_order: list[int] | None = None,
                            drop_part: int | None = None, direct: bool = False,
                            alnum: bool = False, part_gap: float = 0.05) -> list[str]:
        """deliver_sms() off the event loop."""
        return await asyncio.to_thread(lambda: self.deliver_sms(
            oa, text, parts_order=parts_order, drop_part=drop_part, direct=direct,
            alnum=alnum, part_gap=part_gap))

    async def a_set_ussd(self, code: str, text: str | None, *, dcs: int = 72, m: int = 0,
                         delay: float = 0.3, timeout: bool = False) -> None:
        """set_ussd() off the event loop."""
        await asyncio.to_thread(lambda: self.set_ussd(code, text, dcs=dcs, m=m, delay=delay,
                                                      timeout=timeout))

    async def a_set_signal(self, rssi: int) -> None:
        """set_signal() off the event loop."""
        await asyncio.to_thread(self.set_signal, rssi)

    async def a_drop_network(self) -> None:
        """drop_network() off the event loop."""
        await asyncio.to_thread(self.drop_network)

    async def a_restore_network(self) -> None:
        """restore_network() off the event loop."""
        await asyncio.to_thread(self.restore_network)

    async def a_set_sim(self, state: str) -> None:
        """set_sim() off the event loop."""
        await asyncio.to_thread(self.set_sim, state)

    async def a_freeze(self) -> None:
        """freeze() off the event loop."""
        await asyncio.to_thread(self.freeze)

    async def a_unfreeze(self) -> None:
        """unfreeze() off the event loop."""
        await asyncio.to_thread(self.unfreeze)

    async def a_inject(self, data: bytes) -> None:
        """inject() off the event loop."""
        await asyncio.to_thread(self.inject, data)

    async def a_unplug(self) -> None:
        """unplug() off the event loop."""
        await asyncio.to_thread(self.unplug)

    async def a_replug(self) -> None:
        """replug() off the event loop."""
        await asyncio.to_thread(self.replug)

    async def a_wait_plugged(self, plugged: bool = True, timeout: float = 5.0) -> bool:
        """wait_plugged() off the event loop."""
        return await asyncio.to_thread(self.wait_plugged, plugged, timeout)

    async def a_wait_flowing(self, flowing: bool = True, timeout: float = 5.0) -> bool:
        """audio.wait_flowing() off the event loop."""
        return await asyncio.to_thread(self.audio.wait_flowing, flowing, timeout)
