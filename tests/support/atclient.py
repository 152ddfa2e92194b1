"""A tiny serial client for the modem simulator's ptys: plain os.read/os.write, no pyserial."""

from __future__ import annotations

import os
import re
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hw.modemsim import FakeModem

# Unsolicited lines that never answer a command: command() leaves them pending, as the
# product's URC table does (+CREG, +CSQ, +CLCC and NO CARRIER are ambiguous and not here).
URCS = re.compile(r'^(RING|\+CRING: |\+CLIP: "|\^RSSI|\^BOOT|\^CEND|\^CONN|\^ORIG|\^CONF|'
                  r'\+CMTI: |\+CDSI: |\+QIND: |\^DSCI: \d+,|VOICE CALL: |MISSED_CALL: |'
                  r'\^SMMEMFULL|\+CCWA: "|\+QTONEDET: |\+RXDTMF: |RDY$)')
FINALS = re.compile(r"^(OK|ERROR|\+CME ERROR: .*|\+CMS ERROR: .*|COMMAND NOT SUPPORT|"
                    r"NO CARRIER|BUSY|NO ANSWER|NO DIALTONE|> )$")


class AtClient:
    """Reads lines from an AT port and sends commands; lines are kept until someone takes them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._partial = bytearray()
        self.pending: list[str] = []
        self.raw = bytearray()  # everything ever read, for byte-level checks
        self.eof = False

    def close(self) -> None:
        """Close the port."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write(self, data: bytes) -> None:
        """Send bytes as they are."""
        os.write(self.fd, data)

    def pump(self, timeout: float) -> bool:
        """Read what arrives within timeout; False if nothing did."""
        readable, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not readable:
            return False
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return False
        except OSError:
            self.eof = True  # the master went away: an unplug
            return False
        if not data:
            self.eof = True
            return False
        self.raw.extend(data)
        self._partial.extend(data)
        self._split()
        return True

    def _split(self) -> None:
        while True:
            cut = min((i for i in (self._partial.find(b"\r"), self._partial.find(b"\n"))
                       if i >= 0), default=-1)
            if cut < 0:
                break
            line = bytes(self._partial[:cut]).decode("latin-1")
            del self._partial[:cut + 1]
            if line:
                self.pending.append(line)
        if self._partial == b"> ":
            self.pending.append("> ")
            self._partial.clear()

    def wait_line(self, pattern: str, timeout: float = 3.0) -> str:
        """Take the first pending or arriving line matching pattern (others stay pending)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.pending):
                if regex.search(line):
                    del self.pending[i]
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line matching {pattern!r}; pending {self.pending!r}")
            self.pump(left)

    def lines_for(self, seconds: float) -> list[str]:
        """Everything that arrives in the next seconds (pending lines included), taken."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(left)
        out, self.pending = self.pending, []
        return out

    def command(self, cmd: str, timeout: float = 3.0) -> list[str]:
        """Send cmd + CR, return the lines after it up to and including the final result.

        Lines that had already arrived (URCs) stay pending for wait_line.
        """
        while self.pump(0):
            pass
        start = len(self.pending)
        self.write(cmd.encode("latin-1") + b"\r")
        return self.until_final(timeout, start)

    def until_final(self, timeout: float = 3.0, start: int = 0) -> list[str]:
        """Take lines (from pending index start) up to and including the next final result
        code or the "> " prompt."""
        deadline = time.monotonic() + timeout
        taken: list[str] = []
        while True:
            while len(self.pending) > start:
                line = self.pending[start]
                if URCS.match(line):
                    start += 1
                    continue
                del self.pending[start]
                taken.append(line)
                if FINALS.match(line):
                    return taken
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no final result; got {taken!r}")
            self.pump(left)

    def drain(self, quiet: float = 0.05) -> list[str]:
        """Take what is pending plus what arrives until the line is quiet for `quiet` s."""
        while self.pump(quiet):
            pass
        out, self.pending = self.pending, []
        return out


def open_audio(path: str) -> int:
    """The audio port, opened non-blocking."""
    return os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def read_audio(fd: int, seconds: float) -> list[tuple[float, bytes]]:
    """(arrival time, bytes) of every read from the audio port during seconds."""
    out: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if data:
                out.append((time.monotonic(), data))
    return out


@contextmanager
def sim_session(profile: str, *, time_scale: float = 0.02, echo: bool = False,
                quiet: bool = True, **kwargs: Any) -> Iterator[tuple[FakeModem, AtClient]]:
    """A started simulator and a client on its AT port (echo off unless asked).

    quiet turns off huawei's periodic ^RSSI, which at a small time_scale would otherwise
    land among the replies a test compares.
    """
    sim = FakeModem(profile, time_scale=time_scale, **kwargs).start()
    assert sim.at_path is not None
    client = AtClient(sim.at_path)
    try:
        if not echo:
            assert client.command("ATE0")[-1] == "OK"
        if quiet and profile.startswith("huawei"):
            assert client.command("AT^CURC=0")[-1] == "OK"
        yield sim, client
    finally:
        client.close()
        sim.stop()
