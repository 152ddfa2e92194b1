"""Commands and their answers: what a command expects back, responses, and AT errors. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from .calls import Urc
from .messages import StoredMessage, with_pdu
from .results import FinalResult
from .urcs import parse_line

T = TypeVar("T", bound=Urc)


class AtError(Exception):
    """Base of the AT layer's errors."""


class AtTimeout(AtError):
    """No final result within the command's time limit."""

    def __init__(self, command: str, timeout: float, lines: tuple[str, ...] = ()) -> None:
        super().__init__(f"timed out after {timeout:g} s waiting for the answer to {command!r}")
        self.command = command
        self.timeout = timeout
        self.lines = lines


class AtCommandError(AtError):
    """The modem answered with an error (ERROR, +CME ERROR, +CMS ERROR, NO CARRIER, ...)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"{response.command!r} failed: {response.final.reason}")
        self.response = response


class PortClosed(AtError):
    """The port went away (unplugged, closed) before or while a command ran."""


def _pieces(command: str) -> list[str]:
    body = command.strip()
    if body[:2].upper() == "AT":
        body = body[2:]
    return [piece.strip() for piece in body.split(";")]


def expected_prefixes(command: str) -> frozenset[str]:
    """The answer prefixes of a command: {'+CSQ'} for AT+CSQ, {'^CVOICE'} for AT^CVOICE?."""
    out: set[str] = set()
    for piece in _pieces(command):
        if piece[:1] in ("+", "^"):
            name = piece
            for stop in "=?":
                name = name.split(stop, 1)[0]
            out.add(name.strip().upper())
    return frozenset(out)


def is_call_command(command: str) -> bool:
    """True for ATD and ATA, whose final result may be NO CARRIER, BUSY, NO ANSWER, NO DIALTONE."""
    return any(piece[:1].upper() == "D" or piece.upper() == "A" for piece in _pieces(command))


@dataclass(frozen=True)
class Response:
    """The answer to one command: its informational lines and its final result."""

    command: str
    lines: tuple[str, ...]
    final: FinalResult

    @property
    def ok(self) -> bool:
        """True when the final result is OK."""
        return self.final.ok

    def expect_ok(self) -> Response:
        """This response, or AtCommandError when it is not OK."""
        if not self.final.ok:
            raise AtCommandError(self)
        return self

    def parsed(self) -> list[Urc]:
        """Every line parsed (UnknownLine for plain text such as an IMEI)."""
        return [parse_line(line) for line in self.lines]

    def first(self, kind: type[T]) -> T | None:
        """The first line that parses as kind, or None."""
        for item in self.parsed():
            if isinstance(item, kind):
                return item
        return None

    def all(self, kind: type[T]) -> list[T]:
        """Every line that parses as kind."""
        return [item for item in self.parsed() if isinstance(item, kind)]

    def text(self) -> str:
        """The informational lines without a prefix, joined (AT+CGSN, AT+CGMM, ATI...)."""
        return "\n".join(line for line in self.lines if not line.startswith(("+", "^")))

    def value(self) -> str:
        """The first line's value with any '+XXX: ' prefix removed ('' when there is none)."""
        if not self.lines:
            return ""
        line = self.lines[0]
        if line[:1] in ("+", "^") and ":" in line:
            return line.split(":", 1)[1].strip()
        return line.strip()

    def stored_messages(self) -> list[StoredMessage]:
        """+CMGR/+CMGL headers paired with the PDU line after each."""
        out: list[StoredMessage] = []
        header: StoredMessage | None = None
        for line in self.lines:
            item = parse_line(line)
            if isinstance(item, StoredMessage):
                if header is not None:
                    out.append(header)
                header = item
            elif header is not None:
                completed = with_pdu(header, line)
                assert isinstance(completed, StoredMessage)
                out.append(completed)
                header = None
        if header is not None:
            out.append(header)
        return out
