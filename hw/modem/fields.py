"""Splitting AT result lines into their comma-separated fields. Pure, never raises."""

from __future__ import annotations


def split_prefix(text: str) -> tuple[str, str]:
    """('+CSQ', '20,99') for '+CSQ: 20,99'; ('', text) when the line has no +/^ prefix."""
    head, sep, rest = text.partition(":")
    if sep and head[:1] in ("+", "^") and " " not in head.strip():
        return head.strip(), rest.strip()
    return "", text.strip()


def split_args(text: str) -> list[str]:
    """Fields split on commas outside double quotes; quotes kept (see unquote), spaces trimmed."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "," and not quoted:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    fields.append("".join(current).strip())
    return fields


def is_quoted(field: str) -> bool:
    """True for a field written as a quoted string."""
    return len(field) >= 2 and field[0] == '"' and field[-1] == '"'


def unquote(field: str) -> str:
    """The field without its surrounding double quotes (an unbalanced quote is dropped too)."""
    field = field.strip()
    if is_quoted(field):
        return field[1:-1]
    return field.strip('"')


def to_int(field: str | None, default: int | None = None) -> int | None:
    """The field as an integer (quotes allowed), or default when it is empty or not a number."""
    if field is None:
        return default
    value = unquote(field).strip()
    try:
        return int(value)
    except ValueError:
        return default


def arg(fields: list[str], index: int) -> str | None:
    """The field at index unquoted, or None when absent or empty."""
    if index >= len(fields):
        return None
    value = unquote(fields[index])
    return value if value != "" else None
