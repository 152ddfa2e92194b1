"""HTML forms to configuration data and back: the pages post fields named like error paths.

A field's name is the path `ConfigError` reports for it (`name`, `devices[0].username`), so an
error lands next to its own field. `members[]` collects a list of plain values. An empty
field is left out, so the model's default applies; a checkbox posts a hidden "false" before
its "true" and the last value wins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

from werkzeug.datastructures import MultiDict

from appliance.config.errors import ConfigError

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d{1,3})\]|\.")
MAX_FIELDS = 2000  # a hostile form with a million fields is refused, not parsed


class FormError(ValueError):
    """The form itself is malformed (not a user mistake in a value)."""


def _path(name: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    while pos < len(name):
        m = _PART.match(name, pos)
        if m is None or m.end() == pos:
            raise FormError(f"bad field name {name!r}")
        if m.group(1):
            parts.append(m.group(1))
        elif m.group(2):
            parts.append(int(m.group(2)))
        pos = m.end()
    if not parts or not isinstance(parts[0], str):
        raise FormError(f"bad field name {name!r}")
    return parts


def _put(root: dict[str, Any], parts: list[str | int], value: Any) -> None:
    node: Any = root
    for part, nxt in itertools.pairwise(parts):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(part, int):
            if not isinstance(node, list):
                raise FormError("a list index under a non-list field")
            while len(node) <= part:
                node.append(None)
            if node[part] is None:
                node[part] = empty
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise FormError("a field under a list")
            node = node.setdefault(part, empty)
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list):
            raise FormError("a list index under a non-list field")
        while len(node) <= last:
            node.append(None)
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise FormError("a field under a list")


def _compact(value: Any) -> Any:
    """Drop list holes (rows the admin removed) and empty rows."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_compact(v) for v in value if v is not None]
        return [v for v in items if v != {}]
    return value


def parse_form(form: MultiDict[str, str], *,
               skip: Iterable[str] = ("csrf_token",)) -> dict[str, Any]:
    """Turn posted fields into nested data for a configuration model."""
    skipped = set(skip)
    if len(form) > MAX_FIELDS:
        raise FormError("too many fields")
    data: dict[str, Any] = {}
    for name in form:
        if name in skipped or name.startswith("_"):
            continue
        if name.endswith("[]"):
            values = [v.strip() for v in form.getlist(name) if v.strip()]
            _put(data, _path(name[:-2]), values)
            continue
        raw = form.getlist(name)[-1].strip()
        if raw == "":
            continue
        _put(data, _path(name), raw)
    result: dict[str, Any] = _compact(data)
    return result


def field_errors(exc: ConfigError) -> dict[str, str]:
    """Problems by field path; the empty path collects what belongs to no single field."""
    errors: dict[str, str] = {}
    for problem in exc.problems:
        path = problem.path
        errors[path] = f"{errors[path]}; {problem.message}" if path in errors else problem.message
    return errors
