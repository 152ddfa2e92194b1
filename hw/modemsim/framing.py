"""AT framing: bytes to command lines and PDU bodies, lines to commands, replies to bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

CTRL_Z = 0x1A
ESC = 0x1B
MAX_LINE = 4096

# 27.007 section 9.2: texts for AT+CMEE=2.
CME_TEXT = {
    3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure",
    16: "incorrect password", 21: "invalid index", 25: "invalid characters in text string",
    30: "no network service", 100: "unknown",
}


class AtFailure(Exception):
    """A command that ends with something other than OK."""


class Unsupported(AtFailure):
    """A command this modem does not know."""


class PlainError(AtFailure):
    """Plain ERROR whatever AT+CMEE says (syntax errors, bad parameters)."""


class CmeError(AtFailure):
    """+CME ERROR: n (or ERROR when AT+CMEE=0)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class CmsError(AtFailure):
    """+CMS ERROR: n; SMS commands report it whatever AT+CMEE says."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class FinalResult(AtFailure):
    """Another final result code: NO CARRIER, BUSY, NO ANSWER."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Command:
    """One command out of a command line: name, operation and raw parameter text."""

    name: str  # "+CPIN", "^DDSETEX", "D", "E", "&F", "S0"
    op: str  # "" execute, "?" read, "=?" test, "=" set
    raw: str  # parameters after "=" (the dial string for D)

    @property
    def params(self) -> list[str]:
        """Comma-separated parameters with quotes removed ("" where one is empty)."""
        return split_params(self.raw)

    def param(self, i: int, default: str = "") -> str:
        """Parameter i, or default when absent or empty."""
        params = self.params
        return params[i] if i < len(params) and params[i] != "" else default

    def int_param(self, i: int, default: int | None = None) -> int:
        """Parameter i as an integer; PlainError when absent (without default) or not one."""
        value = self.param(i)
        if value == "":
            if default is None:
                raise PlainError(f"{self.name}: parameter {i} missing")
            return default
        try:
            return int(value, 0) if value.lower().startswith("0x") else int(value)
        except ValueError:
            raise PlainError(f"{self.name}: {value!r} is not a number") from None


@dataclass
class Prompt:
    """A command that continues with a PDU body after the "> " prompt (AT+CMGS, AT+CMGW)."""

    kind: str
    length: int
    stat: int = 2


@dataclass
class Reply:
    """Information lines and the final result (None while a prompt waits for a body)."""

    lines: list[str] = field(default_factory=list)
    final: str | None = "OK"
    prompt: Prompt | None = None


Handler = Callable[[Command], "Reply | list[str] | None"]


def split_params(raw: str) -> list[str]:
    """Split on commas outside double quotes, strip blanks and the quotes themselves."""
    if raw == "":
        return []
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in raw:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    out.append("".join(current).strip())
    return out


def _take_until_semicolon(body: str, start: int) -> tuple[str, int]:
    """Text from start to the next ';' outside quotes, and the index after that ';'."""
    quoted = False
    for i in range(start, len(body)):
        ch = body[i]
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            return body[start:i], i + 1
    return body[start:], len(body)


def _split_op(name: str, rest: str) -> Command:
    if rest.startswith("=?"):
        return Command(name, "=?", rest[2:])
    if rest.startswith("?"):
        return Command(name, "?", rest[1:])
    if rest.startswith("="):
        return Command(name, "=", rest[1:])
    return Command(name, "", rest)


def parse_line(line: str) -> list[Command]:
    """The commands of one line after its AT prefix; PlainError if it is not a command line."""
    # V.250 5.2: basic commands run together, extended ones are separated by ';'.
    if line[:2].upper() != "AT":
        raise PlainError("not an AT command line")
    body = line[2:]
    commands: list[Command] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch in " ;":
            i += 1
            continue
        if ch in "+^$%":
            j = i + 1
            while j < len(body) and (body[j].isalnum() or body[j] == "_"):
                j += 1
            name = body[i:j].upper()
            rest, i = _take_until_semicolon(body, j)
            commands.append(_split_op(name, rest))
        elif ch.upper() == "D":
            # The dial string runs to the ';' that makes it a voice call, or to the end.
            end = body.find(";", i + 1)
            if end < 0:
                commands.append(Command("D", "", body[i + 1:].strip()))
                i = len(body)
            else:
                commands.append(Command("D", "", body[i + 1:end + 1].strip()))
                i = end + 1
        elif ch == "&" or ch.upper() == "S" or ch.isalpha():
            j = i + 1
            if ch == "&":
                j += 1
            while j < len(body) and body[j].isdigit():
                j += 1
            name = body[i:j].upper()
            if name.startswith("S") and j < len(body) and body[j] in "=?":
                rest, i = _take_until_semicolon(body, j)
                commands.append(_split_op(name, rest))
                continue
            letter = name.rstrip("0123456789")
            commands.append(Command(letter, "", name[len(letter):]))
            i = j
        else:
            raise PlainError(f"unexpected {ch!r} in command line")
    return commands


class LineReader:
    """Bytes from the host, cut into command lines or a PDU body after a prompt."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.pdu_mode = False

    def feed(self, data: bytes) -> None:
        """Add bytes read from the port."""
        self._buf.extend(data)

    def clear(self) -> None:
        """Forget buffered input (a freeze or a reboot)."""
        self._buf.clear()
        self.pdu_mode = False

    def next_line(self) -> bytes | None:
        """The next complete command line (without CR, LF dropped), or None."""
        while True:
            cr = self._buf.find(b"\r")
            if cr < 0:
                if len(self._buf) > MAX_LINE:
                    self._buf.clear()  # a runaway line: a real modem drops it too
                return None
            line = bytes(self._buf[:cr]).replace(b"\n", b"")
            del self._buf[:cr + 1]
            if line:
                return line

    def next_body(self) -> tuple[bytes, bool] | None:
        """(body, cancelled) once Ctrl-Z or ESC ends the PDU after a prompt, else None."""
        for i, byte in enumerate(self._buf):
            if byte in (CTRL_Z, ESC):
                body = bytes(self._buf[:i]).replace(b"\r", b"").replace(b"\n", b"")
                del self._buf[:i + 1]
                return body, byte == ESC
        return None


def info(line: str) -> bytes:
    """One information line or URC as it goes on the wire."""
    return b"\r\n" + line.encode("latin-1", errors="replace") + b"\r\n"


def final(text: str, double_cr: bool = False) -> bytes:
    """A final result code; double_cr reproduces modems that send \\r\\r\\nOK (bg111#272)."""
    head = b"\r\r\n" if double_cr else b"\r\n"
    return head + text.encode("latin-1") + b"\r\n"


def error_text(failure: AtFailure, cmee: int, unknown_command: str | None) -> str:
    """The final result line for a failed command, in the modem's style."""
    if isinstance(failure, FinalResult):
        return failure.text
    if isinstance(failure, CmsError):
        return f"+CMS ERROR: {failure.code}"
    if isinstance(failure, Unsupported):
        if unknown_command:
            return unknown_command
        failure = CmeError(100)
    if isinstance(failure, CmeError):
        if cmee == 1:
            return f"+CME ERROR: {failure.code}"
        if cmee == 2:
            return f"+CME ERROR: {CME_TEXT.get(failure.code, 'unknown')}"
    return "ERROR"
