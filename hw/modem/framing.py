"""Cutting the AT byte stream into lines and the SMS prompt. Pure and incremental, no I/O.

Modems end lines with `\\r\\n`, but also `\\r\\r\\n` (bg111#272), bare `\\r` (the echo of a
command) or bare `\\n`; so any run of CR and LF ends a line and empty lines are dropped.
The `> ` prompt of AT+CMGS has no line ending at all and is reported on its own.
Bytes are never decoded strictly: a line keeps its raw bytes and a lossy text.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_LINE = 4096
_ENDINGS = b"\r\n"
# Stripped from both ends of a line: spaces, and the NULs some modems send while booting.
_STRIP = b" \t\x00"


@dataclass(frozen=True)
class Line:
    """One line from the modem: its text (undecodable bytes replaced) and raw bytes."""

    text: str
    raw: bytes
    truncated: bool = False


@dataclass(frozen=True)
class Prompt:
    """The `> ` prompt: the modem waits for a PDU ended by Ctrl-Z (or Esc to cancel)."""


PROMPT = Prompt()


class LineFramer:
    """Feed it bytes as they come; it hands back complete lines and prompts, in order.

    A line longer than max_line is cut there (marked truncated) and the rest of it, up to the
    next line ending, is dropped, so a modem babbling without line endings costs bounded memory.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max(16, max_line)
        self._buf = bytearray()
        self._discarding = False

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished line held back until its ending comes."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[Line | Prompt]:
        """Take the next chunk of the stream; returns what it completes."""
        out: list[Line | Prompt] = []
        for byte in data:
            if byte in _ENDINGS:
                if self._discarding:
                    self._discarding = False
                elif self._buf:
                    self._emit(out, truncated=False)
                continue
            if self._discarding:
                continue
            self._buf.append(byte)
            if len(self._buf) == 2 and self._buf == b"> ":
                # Only at the start of a line: no result code or URC starts with "> ".
                self._buf.clear()
                out.append(PROMPT)
            elif len(self._buf) >= self.max_line:
                self._emit(out, truncated=True)
                self._discarding = True
        return out

    def flush(self) -> list[Line | Prompt]:
        """Hand out a last unterminated line (when the port closes)."""
        out: list[Line | Prompt] = []
        if self._buf and not self._discarding:
            self._emit(out, truncated=False)
        self._buf.clear()
        self._discarding = False
        return out

    def _emit(self, out: list[Line | Prompt], *, truncated: bool) -> None:
        raw = bytes(self._buf).strip(_STRIP)
        self._buf.clear()
        if raw:
            out.append(Line(raw.decode("utf-8", errors="replace"), raw, truncated))
