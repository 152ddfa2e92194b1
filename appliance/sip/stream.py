"""Framing SIP over a byte stream (TCP/TLS, RFC 3261 §18.3): a pure incremental framer.

Feed it whatever `recv` returned; it yields complete messages cut by Content-Length, CRLF
keep-alive pings (RFC 5626 §3.5.1: answer with one CRLF), and `Close` when framing is lost
(an unreadable, negative or repeated Content-Length, or a message over the size limit): then
the connection must be closed, after an optional 400 built from `Close.head`. Lines that
cannot start a message are skipped (resynchronisation) up to a budget, then `Close`.
A message whose body has not fully arrived simply waits: the caller's idle timeout decides,
and `pending` says whether a partial message is buffered.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SipParseError
from .headers import TOKEN_CHARS
from .message import MAX_MESSAGE_SIZE, _content_length, _fields, _head_lines


@dataclass(frozen=True)
class Frame:
    """One complete message: pass `data` to `parse_message`."""

    data: bytes


@dataclass(frozen=True)
class Ping:
    """A CRLFCRLF keep-alive: answer with a single CRLF."""


@dataclass(frozen=True)
class Close:
    """Framing is lost: close the connection, after answering `status` if `head` allows it.

    `parse_message(head)` raises a `SipParseError` whose `can_respond` and
    `response_headers` say whether and how to answer (use `status` as the code).
    """

    reason: str
    status: int
    head: bytes


Event = Frame | Ping | Close


def _plausible_start(line: bytes) -> bool:
    """True if the line may be a start line: a status line, or a token then "SIP/" later.

    Deliberately loose: a malformed request line (extra spaces, bad URI) is still framed so
    that `parse_message` can answer it with a 400; only header-looking or binary lines are
    skipped while resynchronising.
    """
    if line[:4].upper() == b"SIP/":
        return True
    word = line.split(b" ", 1)[0]
    return bool(word) and TOKEN_CHARS.issuperset(word.decode("latin-1")) and b"SIP/" in line.upper()


class SipFramer:
    """Cut a byte stream into SIP messages; holds only the bytes not yet framed."""

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE, max_garbage: int | None = None) -> None:
        self.max_size = max_size
        self.max_garbage = max_size if max_garbage is None else max_garbage
        self._buf = bytearray()
        self._scan = 0  # where the search for the end of the head resumes
        self._garbage = 0
        self._need = 0  # length of the message being received, once its head is complete
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once a `Close` was emitted; later input is ignored."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes held, waiting for the rest of a message."""
        return len(self._buf)

    @property
    def pending(self) -> bool:
        """True if part of a message is buffered (arm an idle timeout)."""
        return bool(self._buf.strip(b"\r\n"))

    def _close(self, reason: str, head: bytes, status: int = 400) -> Close:
        self._closed = True
        self._need = 0
        self._buf.clear()
        return Close(reason, status, head)

    def _keepalives(self, events: list[Event]) -> bool:
        """Consume CRLFs between messages; False if more bytes are needed to decide."""
        buf = self._buf
        while buf[:1] in (b"\r", b"\n"):
            self._scan = 0
            if buf.startswith(b"\r\n\r\n"):
                events.append(Ping())
                del buf[:4]
            elif buf.startswith(b"\n"):
                del buf[:1]
            elif len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                return False  # maybe the start of a ping split across reads
            elif buf.startswith(b"\r\n"):
                del buf[:2]  # a lone CRLF: a pong, or the empty lines RFC 3261 §7.5 allows
            else:
                del buf[:1]
        return True

    def _head_end(self) -> int:
        """Offset just past the empty line ending the head, or -1."""
        buf = self._buf
        ends = [i + len(pat) for pat in (b"\n\n", b"\n\r\n")
                if (i := buf.find(pat, self._scan)) >= 0]
        if not ends:
            self._scan = max(0, len(buf) - 2)
            return -1
        return min(ends)

    def feed(self, data: bytes) -> list[Event]:
        """Add received bytes; return the events they complete, in order."""
        if self._closed:
            return []
        self._buf += data
        events: list[Event] = []
        while self._buf and not self._closed:
            if self._need == 0:
                need = self._frame_length(events)
                if need <= 0:
                    break
                self._need = need
            if len(self._buf) < self._need:
                break
            events.append(Frame(bytes(self._buf[:self._need])))
            del self._buf[:self._need]
            self._need = 0
            self._scan = 0
            self._garbage = 0
        return events

    def _frame_length(self, events: list[Event]) -> int:
        """Length of the message at the front of the buffer; 0 to wait, -1 after a Close."""
        while True:
            if not self._keepalives(events) or not self._buf:
                return 0
            line_end = self._buf.find(b"\n")
            if line_end < 0 or _plausible_start(bytes(self._buf[:line_end])):
                break
            # Resynchronise: drop a line that cannot start a message, within a budget.
            self._garbage += line_end + 1
            first = bytes(self._buf[:line_end + 1])
            del self._buf[:line_end + 1]
            self._scan = 0
            if self._garbage > self.max_garbage:
                events.append(self._close("Garbage on stream", first))
                return -1
        end = self._head_end()
        if end < 0:
            # Only a complete first line is judged above: a long Request-URI may arrive in
            # pieces; the size limit bounds the wait.
            if len(self._buf) > self.max_size:
                events.append(self._close("Message Too Large", bytes(self._buf), 513))
                return -1
            return 0
        head = bytes(self._buf[:end])
        try:
            lines, _ = _head_lines(head)
            lengths = [v for n, v in _fields(lines[1:], strict=False) if n == "Content-Length"]
            if len(lengths) > 1:
                raise SipParseError("Multiple Content-Length headers")
            length = _content_length(lengths[0]) if lengths else 0
        except SipParseError as err:
            events.append(self._close(err.reason, head))
            return -1
        if end + length > self.max_size:
            events.append(self._close("Message Too Large", head, 513))
            return -1
        return end + length
