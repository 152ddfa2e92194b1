"""A scripted fake modem on a pty pair, for testing the AT layer without the simulator.

The code under test opens `peer.path` (the pty slave) like a real tty; the peer keeps the
master, reads commands (ended by CR) and answers by a script: a function from the command to
a list of steps, each bytes to write or a float to sleep. `> ` flows collect the PDU up to
Ctrl-Z (or Esc) and call `on_pdu`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable, Iterable

Step = bytes | float
Script = Callable[[str], Iterable[Step] | None]


def ok(*lines: str) -> list[Step]:
    """The usual verbose answer: each line framed by CR LF, then OK."""
    return [b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + b"\r\nOK\r\n"]


class AtPeer:
    """The modem side of a pty pair, driven by a script."""

    def __init__(self, script: Script | None = None, *, echo: bool = False) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        self.script: Script = script or (lambda cmd: ok())
        self.echo = echo
        self.commands: list[str] = []
        self.pdus: list[str] = []
        self.cancelled = 0
        self.on_pdu: Callable[[str], Iterable[Step]] = lambda pdu: ok("+CMGS: 7")
        self._buf = bytearray()
        self._in_pdu = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[list[Step]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Begin answering."""
        os.set_blocking(self.master, False)
        loop = asyncio.get_running_loop()
        loop.add_reader(self.master, self._readable)
        self._writer = loop.create_task(self._write_loop())

    def send(self, *steps: Step) -> None:
        """Queue unsolicited output (bytes) and pauses (floats), in order with the answers."""
        self._queue.put_nowait(list(steps))

    def send_now(self, data: bytes) -> None:
        """Write at once, ahead of anything queued."""
        os.write(self.master, data)

    async def idle(self) -> None:
        """Wait until everything queued has been written."""
        while not self._queue.empty():
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)

    def unplug(self) -> None:
        """Close both ends, as a USB modem vanishing does."""
        self.close()

    def close(self) -> None:
        """Stop answering and close the pty."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_event_loop()
        loop.remove_reader(self.master)
        if self._writer is not None:
            self._writer.cancel()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        for byte in data:
            if self._in_pdu:
                if byte == 0x1A:
                    self._in_pdu = False
                    pdu = self._buf.decode(errors="replace")
                    self._buf.clear()
                    self.pdus.append(pdu)
                    self._queue.put_nowait(list(self.on_pdu(pdu)))
                elif byte == 0x1B:
                    self._in_pdu = False
                    self._buf.clear()
                    self.cancelled += 1
                    self._queue.put_nowait(ok())
                else:
                    self._buf.append(byte)
                continue
            if byte == 0x0D:
                cmd = self._buf.decode(errors="replace").strip()
                self._buf.clear()
                if cmd:
                    self._command(cmd)
            elif byte != 0x0A:
                self._buf.append(byte)

    def _command(self, cmd: str) -> None:
        self.commands.append(cmd)
        steps: list[Step] = [cmd.encode() + b"\r"] if self.echo else []
        if cmd.upper().startswith(("AT+CMGS=", "AT+CMGW=")):
            self._in_pdu = True
            answer = self.script(cmd)
            steps += list(answer) if answer is not None else [b"\r\n> "]
        else:
            answer = self.script(cmd)
            if answer is not None:
                steps += list(answer)
        if steps:
            self._queue.put_nowait(steps)

    async def _write_loop(self) -> None:
        while True:
            steps = await self._queue.get()
            for step in steps:
                if isinstance(step, float):
                    await asyncio.sleep(step)
                else:
                    try:
                        os.write(self.master, step)
                    except OSError:
                        return
