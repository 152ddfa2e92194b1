"""SMS on a SIM line: read, store, then delete; reassemble; send; match status reports.

One task per line does every SMS step in order, so reading the status-report store (which
needs AT+CPMS="SR") never interleaves with reading a message. Each step is one short AT
command: a call on the same channel waits at most one command for it. A received PDU is in
the database (sms_parts) before AT+CMGD deletes it; a multipart message is joined from the
parts, and one still incomplete after the time limit is stored as partial (marked, with the
missing part numbers and a gap mark in the text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hw.modem.commands import AtError
from hw.modem.messages import MessagePushed, MessageStored, StorageFull, StoredMessage
from hw.sms import Message, PduError, Reassembler, SmsDeliver, SmsStatusReport, decode_pdu
from hw.sms.multipart import encode_submit

from . import store
from .base import SmsReceived, SmsStatusChanged

if TYPE_CHECKING:
    from .sim import SimLine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Read:
    storage: str
    index: int
    report: bool


@dataclass(frozen=True)
class _Pushed:
    pdu: str
    report: bool


@dataclass(frozen=True)
class _Sweep:
    pass


@dataclass(frozen=True)
class _Send:
    sms_id: int
    to: str
    text: str
    done: asyncio.Future[str]


_Job = _Read | _Pushed | _Sweep | _Send


class SmsWorker:
    """The SMS side of one SIM line."""

    def __init__(self, line: SimLine) -> None:
        self.line = line
        self.reassembler = Reassembler(line.ctx.timers.sms_part_limit_s)
        self._groups: dict[tuple[str, int, int], list[int]] = {}
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._restored = False
        self._reference = random.randrange(256)
        self.stats = {"received": 0, "sent": 0, "reports": 0, "errors": 0}

    # -- from the line -----------------------------------------------------------------

    def start(self) -> None:
        """Start the worker task (once per line)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"sms-{self.line.key}")

    async def stop(self) -> None:
        """Stop the worker; queued sends fail."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if isinstance(job, _Send) and not job.done.done():
                job.done.set_exception(RuntimeError("the line stopped"))

    def on_urc(self, urc: object) -> None:
        """+CMTI/+CDSI, +CMT/+CDS and storage-full reports (from the reader: no blocking)."""
        if isinstance(urc, MessageStored):
            self._queue.put_nowait(_Read(urc.storage or ("SR" if urc.report else "SM"),
                                         urc.index, urc.report))
        elif isinstance(urc, MessagePushed) and urc.pdu:
            self._queue.put_nowait(_Pushed(urc.pdu, urc.report))
        elif isinstance(urc, StorageFull):
            self._queue.put_nowait(_Sweep())

    def sweep(self) -> None:
        """Read whatever sits on the SIM (start-up, periodic, storage full)."""
        self._queue.put_nowait(_Sweep())

    async def send(self, sms_id: int, to: str, text: str) -> str:
        """Send a stored outgoing message; returns its new status ('sent' or 'failed')."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Send(sms_id, to, text, done))
        return await done

    # -- the worker --------------------------------------------------------------------

    async def _run(self) -> None:
        await self._restore()
        clock = self.line.ctx.clock
        while True:
            deadline = self.reassembler.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - clock.monotonic())
            try:
                job = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                for msg in self.reassembler.expire(clock.monotonic()):
                    await self._store_message(msg)
                continue
            try:
                await self._do(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an SMS problem never takes the line down
                self.stats["errors"] += 1
                log.warning("%s: SMS step %r failed: %s", self.line.key, job, exc)
                if isinstance(job, _Send) and not job.done.done():
                    job.done.set_exception(exc)

    async def _do(self, job: _Job) -> None:
        if isinstance(job, _Send):
            job.done.set_result(await self._send(job))
        elif isinstance(job, _Read):
            await self._read(job)
        elif isinstance(job, _Pushed):
            await self._take(job.pdu)
            with contextlib.suppress(AtError):
                await self.line.command("AT+CNMA", 3)
        else:
            await self._sweep()

    async def _restore(self) -> None:
        db = self.line.ctx.db
        if db is None or self._restored:
            return
        self._restored = True
        key = self.line.key
        parts = await db.awrite(lambda c: store.waiting_parts(c, key))
        for part_id, pdu in parts:
            with contextlib.suppress(PduError):
                decoded = decode_pdu(pdu)
                if isinstance(decoded, SmsDeliver):
                    await self._join(decoded, part_id)

    async def _read(self, job: _Read) -> None:
        storage = job.storage.upper() or "SM"
        if storage != "SM":
            (await self.line.command(f'AT+CPMS="{storage}"', 5)).expect_ok()
        try:
            resp = await self.line.command(f"AT+CMGR={job.index}", 5)
            messages = resp.stored_messages() if resp.ok else []
            if messages and messages[0].pdu:
                await self._take(messages[0].pdu)
            if resp.ok:
                await self.line.command(f"AT+CMGD={job.index}", 5)
        finally:
            if storage != "SM":
                await self.line.command('AT+CPMS="SM"', 5)

    async def _sweep(self) -> None:
        for storage in ("SM", "SR"):
            if storage != "SM":
                resp = await self.line.command(f'AT+CPMS="{storage}"', 5)
                if not resp.ok:
                    continue
            try:
                listed = await self.line.command("AT+CMGL=4", 5)
                items: list[StoredMessage] = listed.stored_messages() if listed.ok else []
                for item in items:
                    if item.pdu:
                        await self._take(item.pdu)
                    if item.index is not None:
                        await self.line.command(f"AT+CMGD={item.index}", 5)
            finally:
                if storage != "SM":
                    await self.line.command('AT+CPMS="SM"', 5)

    async def _take(self, pdu: str) -> None:
        """One PDU from the modem: a report is matched, a message part stored and joined."""
        try:
            decoded = decode_pdu(pdu)
        except PduError as exc:
            # Kept as it came, so nothing is lost; the text says what happened.
            log.warning("%s: undecodable SMS PDU kept: %s", self.line.key, exc)
            part_id = await self._add_part(pdu)
            await self._store(Message("unknown", f"[undecodable message: {pdu}]", None),
                              (part_id,) if part_id else ())
            return
        if isinstance(decoded, SmsStatusReport):
            await self._report(decoded)
            return
        if isinstance(decoded, SmsDeliver):
            part_id = await self._add_part(pdu)
            await self._join(decoded, part_id)

    async def _add_part(self, pdu: str) -> int:
        db, key = self.line.ctx.db, self.line.key
        if db is None:
            return 0
        return await db.awrite(lambda c: store.add_part(c, key, pdu))

    async def _join(self, part: SmsDeliver, part_id: int) -> None:
        concat = part.concat
        if concat is not None and concat.total > 1:
            self._groups.setdefault((str(part.sender), concat.reference, concat.total),
                                    []).append(part_id)
        else:
            self._groups.setdefault((str(part.sender), -1, 1), []).append(part_id)
        now = self.line.ctx.clock.monotonic()
        for msg in self.reassembler.add(part, now, owner=self.line.key):
            await self._store_message(msg)

    async def _store_message(self, msg: Message) -> None:
        ref = -1 if msg.parts_total == 1 and msg.reference is None else msg.reference
        ids = self._groups.pop((msg.sender, ref if ref is not None else -1, msg.parts_total),
                               [])
        await self._store(msg, tuple(i for i in ids if i))

    async def _store(self, msg: Message, part_ids: tuple[int, ...]) -> None:
        key = self.line.key
        row = store.Received(key, msg.sender, msg.text, msg.parts_total, msg.missing, part_ids)
        db = self.line.ctx.db
        sms_id = await db.awrite(lambda c: store.add_received(c, row)) if db else 0
        self.stats["received"] += 1
        log.info("%s: SMS from %s stored (id %d%s)", key, msg.sender, sms_id,
                 ", partial" if msg.missing else "")
        self.line.events.emit(SmsReceived(key, sms_id, msg.sender, msg.text,
                                          bool(msg.missing)))

    async def _report(self, report: SmsStatusReport) -> None:
        self.stats["reports"] += 1
        db, key = self.line.ctx.db, self.line.key
        if db is None:
            return
        matched = await db.awrite(lambda c: store.match_report(
            c, key, report.message_ref, report.delivered, report.final))
        if matched is None:
            log.info("%s: status report for unknown reference %d", key, report.message_ref)
            return
        self.line.events.emit(SmsStatusChanged(key, matched[0], matched[1]))

    async def _send(self, job: _Send) -> str:
        db, key = self.line.ctx.db, self.line.key
        self._reference = (self._reference + 1) % 256
        try:
            parts = encode_submit(job.to, job.text, reference=self._reference,
                                  request_report=True)
        except (PduError, ValueError) as exc:
            error = f"cannot encode the message: {exc}"
            if db is not None:
                await db.awrite(lambda c: store.mark_failed(c, job.sms_id, error))
            self.line.events.emit(SmsStatusChanged(key, job.sms_id, "failed"))
            return "failed"
        refs: list[int] = []
        error = ""
        for part in parts:
            try:
                resp = await self.line.send_pdu(f"AT+CMGS={part.tpdu_length}", part.hex)
            except AtError as exc:
                error = str(exc)
                break
            if not resp.ok:
                error = f"the modem refused part {len(refs) + 1}: {resp.final.reason}"
                break
            sent = resp.value()
            refs.append(int(sent) if sent.isdigit() else -1)
        status = "failed" if error else "sent"
        if db is not None:
            if error:
                await db.awrite(lambda c: store.mark_failed(c, job.sms_id, error, refs))
            else:
                await db.awrite(lambda c: store.mark_sent(c, job.sms_id, refs, len(parts)))
        self.stats["sent" if not error else "errors"] += 1
        self.line.events.emit(SmsStatusChanged(key, job.sms_id, status))
        return status
