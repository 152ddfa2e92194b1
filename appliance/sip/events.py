"""SIP event notification bodies and headers (RFC 6665): pure, no I/O.

* `parse_event` reads an Event header (`dialog;id=7` -> `EventHeader("dialog", "7")`).
* `dialog_info` builds an application/dialog-info+xml document (RFC 4235), the busy lamp
  field's state of one extension.
* `message_summary` builds an application/simple-message-summary body (RFC 3842), the
  message-waiting lamp.
* `subscription_state` formats Subscription-State (active;expires=N, terminated;reason=R).

Every text that reaches XML is escaped, so a caller-controlled URI cannot break the
document a desk phone parses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .errors import SipParseError
from .headers import _parse_params, _Scanner

DIALOG_INFO = "application/dialog-info+xml"
MESSAGE_SUMMARY = "application/simple-message-summary"
DIALOG_STATES = frozenset({"trying", "proceeding", "early", "confirmed", "terminated"})
DIRECTIONS = frozenset({"initiator", "recipient"})


@dataclass(frozen=True)
class EventHeader:
    """An Event header: the package (lowercased) and its `id` parameter, if any."""

    package: str
    id: str | None = None


def parse_event(value: str) -> EventHeader:
    """Parse one Event header value; raises `SipParseError` if it is not `token *(;param)`."""
    sc = _Scanner(value)
    sc.skip_ws()
    package = sc.token("Event")
    params = _parse_params(sc, "Event")
    event_id = next((v for name, v in params if name.lower() == "id"), None)
    return EventHeader(package.lower(), event_id)


@dataclass(frozen=True)
class DialogEntry:
    """One <dialog> element: an id unique within the document, its state and direction."""

    id: str
    state: str  # one of DIALOG_STATES
    direction: str | None = None  # "initiator" (placed the call) or "recipient" (rung)

    def __post_init__(self) -> None:
        if self.state not in DIALOG_STATES:
            raise ValueError(f"invalid dialog state {self.state!r}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(f"invalid dialog direction {self.direction!r}")


def dialog_info(entity: str, version: int, dialogs: Iterable[DialogEntry], *,
                full: bool = True) -> bytes:
    """A dialog-info+xml document (RFC 4235 §4.1) for `entity` (the watched extension's URI)."""
    if version < 0:
        raise ValueError("version must not be negative")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"'
        f' version="{version}" state="{"full" if full else "partial"}"'
        f" entity={quoteattr(entity)}>",
    ]
    for dialog in dialogs:
        direction = f" direction={quoteattr(dialog.direction)}" if dialog.direction else ""
        lines.append(f"  <dialog id={quoteattr(dialog.id)}{direction}>")
        lines.append(f"    <state>{escape(dialog.state)}</state>")
        lines.append("  </dialog>")
    lines.append("</dialog-info>")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def message_summary(new: int, old: int, *, account: str | None = None,
                    urgent_new: int = 0, urgent_old: int = 0) -> bytes:
    """A simple-message-summary body (RFC 3842 §5.2) for voice messages."""
    if min(new, old, urgent_new, urgent_old) < 0:
        raise ValueError("message counts must not be negative")
    lines = [f"Messages-Waiting: {'yes' if new > 0 else 'no'}"]
    if account is not None:
        if "\r" in account or "\n" in account:
            raise ValueError("CR/LF in Message-Account")
        lines.append(f"Message-Account: {account}")
    counts = f"Voice-Message: {new}/{old}"
    if urgent_new or urgent_old:
        counts += f" ({urgent_new}/{urgent_old})"
    lines.append(counts)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def subscription_state(state: str, *, expires: int | None = None,
                       reason: str | None = None) -> str:
    """A Subscription-State value: `active;expires=N` or `terminated;reason=R` (RFC 6665)."""
    if state not in ("active", "pending", "terminated"):
        raise ValueError(f"invalid subscription state {state!r}")
    out = state
    if reason is not None:
        out += f";reason={reason}"
    if expires is not None:
        out += f";expires={max(0, expires)}"
    return out


def require_event(values: tuple[str, ...]) -> EventHeader:
    """The one Event header of a SUBSCRIBE; `SipParseError` if absent, repeated or malformed."""
    if len(values) != 1:
        raise SipParseError("Missing Event" if not values else "Multiple Event headers")
    return parse_event(values[0])
