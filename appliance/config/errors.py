"""ConfigError: every problem found in a configuration, each with where it is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

#: Line kinds appear in pydantic error locations as the union tag; users never write them.
_UNION_TAGS = frozenset({"sim", "sip_trunk", "fxo_gateway"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: a path like `departments[0].members[2]`."""

    path: str
    message: str

    def __str__(self) -> str:
        """`path: message`, or just the message for the document as a whole."""
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """A configuration was rejected; `problems` says what and where, in document order."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        """Build from a list of problems or from one message about the whole document."""
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems: list[Problem] = list(problems) or [Problem("", "invalid configuration")]
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        """One problem per line."""
        return "\n".join(str(p) for p in self.problems)


def format_path(loc: Iterable[int | str]) -> str:
    """Render a location tuple as `employees[0].devices[1].username`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    parts = list(loc)
    cleaned: list[int | str] = []
    for i, part in enumerate(parts):
        # lines[0].sim.imei -> lines[0].imei (the tag is the `kind` the user wrote)
        tag = isinstance(part, str) and part in _UNION_TAGS
        if tag and i > 0 and isinstance(parts[i - 1], int):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _short(value: Any) -> str | None:
    if isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60:
        return repr(value)
    return None


def _message(error: Any) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid value"))
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see docs/config.md)"
    if kind in ("value_error", "assertion_error"):
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        return msg
    if kind == "union_tag_not_found":
        return "`kind` is required: one of 'sim', 'sip_trunk', 'fxo_gateway'"
    if kind == "union_tag_invalid":
        return "unknown kind; use one of 'sim', 'sip_trunk', 'fxo_gateway'"
    if msg.startswith("Input should be"):
        msg = "should be" + msg[len("Input should be"):]
    shown = _short(error.get("input"))
    if shown is not None and kind not in ("missing",):
        msg += f" (got {shown})"
    return msg


def problems_from_validation(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn a pydantic ValidationError into human-readable problems."""
    problems = []
    for error in exc.errors(include_url=False):
        path = format_path(_clean_loc(tuple(error.get("loc", ()))))
        if prefix:
            path = f"{prefix}.{path}" if path and not path.startswith("[") else prefix + path
        problems.append(Problem(path, _message(error)))
    return problems
