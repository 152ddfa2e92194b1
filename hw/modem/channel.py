"""The AT command engine: one command in flight, time limits, URCs routed while it waits.

`AtChannel` runs over any asyncio byte stream pair (`port.open_channel` opens a serial port or
pty with pyserial-asyncio-fast). A reader task feeds `LineFramer` and `LineRouter`; lines
answering the command in flight are collected, URCs go to subscribers at once, so a RING or a
+CMTI arriving in the middle of an AT+CMGS never waits for it (and never disturbs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .calls import Urc
from .commands import (
    AtTimeout,
    PortClosed,
    Response,
    expected_prefixes,
    is_call_command,
)
from .framing import DEFAULT_MAX_LINE, Line, LineFramer, Prompt
from .results import FinalResult
from .urcs import LineRouter, ResponseLine, UnknownLine

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
ESC = b"\x1b"
DEFAULT_TIMEOUT = 5.0
SMS_TIMEOUT = 40.0
PROMPT_TIMEOUT = 5.0
TRACE_LINES = 200

UrcHandler = Callable[[Urc], None]


class ByteReader(Protocol):
    """The reading half of a byte stream (asyncio.StreamReader fits)."""

    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes; b'' at end of stream."""
        ...


class ByteWriter(Protocol):
    """The writing half of a byte stream (asyncio.StreamWriter fits)."""

    def write(self, data: bytes) -> None:
        """Queue bytes for sending."""
        ...

    async def drain(self) -> None:
        """Wait until the queue is flushed enough."""
        ...

    def close(self) -> None:
        """Close the stream."""
        ...


class ModemLink(Protocol):
    """What the line manager needs from an AT port; AtChannel is it, tests may fake it."""

    name: str

    @property
    def closed(self) -> bool:
        """True once the port is gone."""
        ...

    async def command(self, command: str, timeout: float | None = None) -> Response:
        """One command, its final result (AtTimeout, PortClosed)."""
        ...

    async def send_pdu(
        self, command: str, pdu: str, *, prompt_timeout: float = ..., timeout: float = ...
    ) -> Response:
        """The AT+CMGS prompt flow."""
        ...

    def subscribe(self, handler: UrcHandler) -> Callable[[], None]:
        """URCs to handler until the returned function is called."""
        ...

    def watch(self, match: Callable[[Urc], bool]) -> UrcWatch:
        """A queue of matching URCs."""
        ...

    async def wait_closed(self) -> None:
        """Until the port goes away."""
        ...

    async def close(self) -> None:
        """Close the port."""
        ...


@dataclass
class ChannelStats:
    """Counters for health checks and `pbx lines`."""

    commands: int = 0
    timeouts: int = 0
    errors: int = 0
    urcs: int = 0
    stray_finals: int = 0
    handler_errors: int = 0


@dataclass
class _Pending:
    command: str
    expected: frozenset[str]
    call: bool
    done: asyncio.Future[FinalResult]
    prompt: asyncio.Future[None] | None = None
    pdu: str = ""
    lines: list[str] = field(default_factory=list)
    echo_seen: bool = False


def _normal(text: str) -> str:
    return "".join(text.split()).upper()


class UrcWatch:
    """A queue of the URCs matching a predicate, open from creation until closed.

    Open it before sending the command whose URC you wait for (AT+CUSD, ATD), so an answer
    that comes back quickly is not missed.
    """

    def __init__(self, channel: AtChannel, match: Callable[[Urc], bool]) -> None:
        self._queue: asyncio.Queue[Urc] = asyncio.Queue()
        self._match = match
        self._unsubscribe = channel.subscribe(self._offer)

    def _offer(self, urc: Urc) -> None:
        if self._match(urc):
            self._queue.put_nowait(urc)

    async def next(self, timeout: float | None = None) -> Urc:
        """The next matching URC; TimeoutError if none comes in time."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def close(self) -> None:
        """Stop collecting."""
        self._unsubscribe()

    def __enter__(self) -> UrcWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AtChannel:
    """One modem's AT port: send commands one at a time, receive URCs all the time."""

    def __init__(
        self,
        reader: ByteReader,
        writer: ByteWriter,
        *,
        name: str = "modem",
        max_line: int = DEFAULT_MAX_LINE,
        default_timeout: float = DEFAULT_TIMEOUT,
        resync_quiet: float = 0.3,
        resync_limit: float = 3.0,
    ) -> None:
        self.name = name
        self.default_timeout = default_timeout
        self.resync_quiet = resync_quiet
        self.resync_limit = resync_limit
        self.stats = ChannelStats()
        self.trace: deque[tuple[float, str, bytes]] = deque(maxlen=TRACE_LINES)
        self.last_rx = time.monotonic()
        self.close_reason: BaseException | None = None
        self._reader = reader
        self._writer = writer
        self._framer = LineFramer(max_line)
        self._router = LineRouter()
        self._handlers: list[UrcHandler] = []
        self._lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._resync = False
        self._resync_from = 0.0
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader task (call once, from the event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._read_loop(), name=f"at-reader-{self.name}")

    @property
    def closed(self) -> bool:
        """True once the port has gone away or close() was called."""
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        """Wait until the port goes away (unplug) or is closed."""
        await self._closed.wait()

    async def close(self) -> None:
        """Close the port and stop the reader; a command in flight fails with PortClosed."""
        self._mark_closed(None)
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # -- URCs ------------------------------------------------------------------------------

    def subscribe(self, handler: UrcHandler) -> Callable[[], None]:
        """Call handler for every URC (from the reader task; it must not block); returns undo."""
        self._handlers.append(handler)

        def unsubscribe() -> None:
            """Stop calling handler (twice is harmless)."""
            with contextlib.suppress(ValueError):
                self._handlers.remove(handler)

        return unsubscribe

    def watch(self, match: Callable[[Urc], bool]) -> UrcWatch:
        """A UrcWatch for URCs matching match (use as a context manager)."""
        return UrcWatch(self, match)

    # -- commands --------------------------------------------------------------------------

    async def command(self, command: str, timeout: float | None = None) -> Response:
        """Send one command line and wait for its final result.

        Raises AtTimeout when none comes in time, PortClosed when the port goes away. An error
        answer is returned, not raised: see Response.expect_ok.
        """
        async with self._lock:
            pending = await self._begin(command)
            try:
                await self._write(command.encode("ascii", errors="replace") + b"\r")
                final = await self._await_final(pending, timeout or self.default_timeout)
            finally:
                self._end(pending)
            return self._response(pending, final)

    async def send_pdu(
        self,
        command: str,
        pdu: str,
        *,
        prompt_timeout: float = PROMPT_TIMEOUT,
        timeout: float = SMS_TIMEOUT,
    ) -> Response:
        """AT+CMGS=<n> (or AT+CMGW): wait for '> ', send the PDU and Ctrl-Z, wait for the result.

        No prompt in time: Esc cancels and AtTimeout is raised. An error instead of the prompt
        (+CMS ERROR) comes back as the response. Cancelled while the modem waits for the PDU,
        Esc is sent so the modem leaves the prompt.
        """
        async with self._lock:
            pending = await self._begin(command)
            pending.prompt = asyncio.get_running_loop().create_future()
            pending.pdu = _normal(pdu)
            sent = False
            try:
                await self._write(command.encode("ascii", errors="replace") + b"\r")
                waiting: set[asyncio.Future[object]] = {pending.prompt, pending.done}  # type: ignore[arg-type]
                await asyncio.wait(waiting, timeout=prompt_timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
                if pending.done.done():
                    return self._response(pending, pending.done.result())
                if not pending.prompt.done():
                    self._check_open()
                    await self._write(ESC)
                    with contextlib.suppress(TimeoutError, AtTimeout):
                        await self._await_final(pending, 1.0, count=False)
                    self._need_resync()
                    self.stats.timeouts += 1
                    raise AtTimeout(command + " (no '> ' prompt)", prompt_timeout,
                                    tuple(pending.lines))
                await self._write(pdu.encode("ascii", errors="replace") + CTRL_Z)
                sent = True
                final = await self._await_final(pending, timeout)
            except asyncio.CancelledError:
                if not sent and not self.closed:
                    # Leave the modem's text-entry state, or it eats our next command.
                    with contextlib.suppress(Exception):
                        self._writer.write(ESC)
                raise
            finally:
                self._end(pending)
            return self._response(pending, final)

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise PortClosed(f"{self.name}: port closed") from self.close_reason

    async def _begin(self, command: str) -> _Pending:
        self._check_open()
        if self._resync:
            await self._settle()
        pending = _Pending(command.strip(), expected_prefixes(command), is_call_command(command),
                           asyncio.get_running_loop().create_future())
        # In flight from before the first byte is written: the answer may come at once.
        self._pending = pending
        self.stats.commands += 1
        return pending

    def _end(self, pending: _Pending) -> None:
        if self._pending is pending:
            self._pending = None
        if not pending.done.done():
            pending.done.cancel()

    async def _write(self, data: bytes) -> None:
        self._check_open()
        self.trace.append((time.monotonic(), "tx", data))
        log.debug("%s tx %r", self.name, data)
        self._writer.write(data)
        await self._writer.drain()

    def _need_resync(self) -> None:
        self._resync = True
        self._resync_from = time.monotonic()

    async def _settle(self) -> None:
        """After a timeout: let late answers to the old command arrive and be dropped.

        The next command waits until the port has been quiet for resync_quiet (counted from
        the timeout at the earliest), so a slow answer is not taken for the next one's
        (bg111#97). An answer later than that still can be: repeated timeouts mean a hung
        modem, which the line manager resets.
        """
        self._resync = False
        deadline = time.monotonic() + self.resync_limit
        while time.monotonic() < deadline:
            quiet_for = time.monotonic() - max(self.last_rx, self._resync_from)
            if quiet_for >= self.resync_quiet:
                break
            await asyncio.sleep(min(self.resync_quiet - quiet_for, deadline - time.monotonic()))
        self._check_open()

    async def _await_final(
        self, pending: _Pending, timeout: float, *, count: bool = True
    ) -> FinalResult:
        try:
            return await asyncio.wait_for(asyncio.shield(pending.done), timeout)
        except TimeoutError:
            if count:
                self._need_resync()
                self.stats.timeouts += 1
                log.warning("%s: no answer to %r within %g s", self.name, pending.command, timeout)
            raise AtTimeout(pending.command, timeout, tuple(pending.lines)) from None
        except asyncio.CancelledError:
            # The modem may still answer the abandoned command: don't let that answer the next.
            self._need_resync()
            raise

    def _response(self, pending: _Pending, final: FinalResult) -> Response:
        if not final.ok:
            self.stats.errors += 1
        return Response(pending.command, tuple(pending.lines), final)

    def _mark_closed(self, reason: BaseException | None) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        pending = self._pending
        if pending is not None and not pending.done.done():
            error = PortClosed(f"{self.name}: port closed during {pending.command!r}")
            error.__cause__ = reason
            pending.done.set_exception(error)
        if pending is not None and pending.prompt is not None and not pending.prompt.done():
            pending.prompt.cancel()

    async def _read_loop(self) -> None:
        reason: BaseException | None = None
        try:
            while True:
                data = await self._reader.read(4096)
                if not data:
                    break
                self.last_rx = time.monotonic()
                self.trace.append((self.last_rx, "rx", data))
                log.debug("%s rx %r", self.name, data)
                for item in self._framer.feed(data):
                    self._on_item(item)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # any read failure is a lost port, never a crash
            reason = err
            log.info("%s: port lost: %s", self.name, err)
        finally:
            for item in self._framer.flush():
                self._on_item(item)
            for urc in self._router.flush():
                self._dispatch(urc)
            self._mark_closed(reason)

    def _on_item(self, item: Line | Prompt) -> None:
        pending = self._pending
        if isinstance(item, Prompt):
            if pending is not None and pending.prompt is not None and not pending.prompt.done():
                pending.prompt.set_result(None)
            else:
                log.debug("%s: '> ' prompt with nothing to send", self.name)
            return
        text = item.text.replace("\x1a", "").strip()
        if not text:
            return
        norm = _normal(text)
        if pending is not None:
            if not pending.echo_seen and norm == _normal(pending.command):
                pending.echo_seen = True
                return
            if pending.pdu and norm == pending.pdu:
                return
        elif norm.startswith("AT"):
            # Echo of a command we gave up on (no modem line starts with AT).
            return
        expected = pending.expected if pending is not None else None
        call = pending.call if pending is not None else False
        for routed in self._router.route(text, expected, call=call):
            if isinstance(routed, FinalResult):
                if pending is not None and not pending.done.done():
                    pending.done.set_result(routed)
                else:
                    self.stats.stray_finals += 1
            elif isinstance(routed, ResponseLine):
                if pending is not None:
                    pending.lines.append(routed.text)
                else:
                    self._dispatch(UnknownLine(routed.text))
            else:
                self._dispatch(routed)

    def _dispatch(self, urc: Urc) -> None:
        self.stats.urcs += 1
        for handler in list(self._handlers):
            try:
                handler(urc)
            except Exception:  # a subscriber's bug must not stop the reader
                self.stats.handler_errors += 1
                log.exception("%s: URC handler failed on %r", self.name, urc)


if TYPE_CHECKING:

    def _conforms(channel: AtChannel) -> ModemLink:
        """mypy proves here that AtChannel is a ModemLink."""
        return channel
