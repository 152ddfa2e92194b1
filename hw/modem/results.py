"""Final result codes: the lines that end an AT command. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .fields import to_int


class FinalKind(enum.Enum):
    """What kind of final result ended a command."""

    OK = "OK"
    ERROR = "ERROR"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NOT_SUPPORTED = "COMMAND NOT SUPPORT"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"


# Call outcomes: final for ATD/ATA, but unsolicited (a remote hang-up) at any other time.
CALL_RESULTS = frozenset(
    {FinalKind.NO_CARRIER, FinalKind.BUSY, FinalKind.NO_ANSWER, FinalKind.NO_DIALTONE})

# Equipment errors (27.007 9.2) worth a name in logs and decisions.
CME_ERRORS = {
    3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy",
    15: "SIM wrong", 16: "incorrect password", 30: "no network service", 100: "unknown",
}
# Message service errors (27.005 3.2.5).
CMS_ERRORS = {
    300: "ME failure", 302: "operation not allowed", 304: "invalid PDU mode parameter",
    310: "SIM not inserted", 320: "memory failure", 321: "invalid memory index",
    322: "memory full", 330: "SMSC address unknown", 331: "no network service",
    332: "network timeout", 500: "unknown error",
}

_PLAIN = {
    "OK": FinalKind.OK,
    "ERROR": FinalKind.ERROR,
    "COMMAND NOT SUPPORT": FinalKind.NOT_SUPPORTED,
    # Huawei's other way of saying ERROR.
    "TOO MANY PARAMETERS": FinalKind.ERROR,
    "NO CARRIER": FinalKind.NO_CARRIER,
    "BUSY": FinalKind.BUSY,
    "NO ANSWER": FinalKind.NO_ANSWER,
    "NO DIALTONE": FinalKind.NO_DIALTONE,
    "NO DIAL TONE": FinalKind.NO_DIALTONE,
}


@dataclass(frozen=True)
class FinalResult:
    """A final result: its kind, the error number if any, and the line as it came."""

    kind: FinalKind
    code: int | None = None
    line: str = ""

    @property
    def ok(self) -> bool:
        """True for OK."""
        return self.kind is FinalKind.OK

    @property
    def is_call_result(self) -> bool:
        """True for NO CARRIER, BUSY, NO ANSWER and NO DIALTONE."""
        return self.kind in CALL_RESULTS

    @property
    def reason(self) -> str:
        """A readable description, for logs and error messages."""
        if self.kind is FinalKind.CME_ERROR and self.code is not None:
            return f"+CME ERROR {self.code} ({CME_ERRORS.get(self.code, 'unknown')})"
        if self.kind is FinalKind.CMS_ERROR and self.code is not None:
            return f"+CMS ERROR {self.code} ({CMS_ERRORS.get(self.code, 'unknown')})"
        return self.line or self.kind.value


def parse_final(text: str) -> FinalResult | None:
    """The final result a line is, or None if it is not one."""
    line = text.strip()
    kind = _PLAIN.get(line.upper())
    if kind is not None:
        return FinalResult(kind, None, line)
    upper = line.upper()
    for kind in (FinalKind.CME_ERROR, FinalKind.CMS_ERROR):
        if upper.startswith(kind.value) and upper[len(kind.value):].lstrip().startswith(":"):
            detail = line[len(kind.value):].lstrip()[1:].strip()
            return FinalResult(kind, to_int(detail), line)
    return None
