"""What busy lamps and message-waiting lamps show: the state sources of the edge's notifier.

The switchboard tells a `Presence` when a call starts ringing an extension, is answered
and ends; `LineStates` turns that into each extension's dialogs (RFC 4235 terms: an
extension being rung has an *early* dialog as recipient, one in a call a *confirmed*
dialog, an idle one none) and reports every extension whose dialogs changed. The
calling desk phone's extension is shown too (as initiator), so a lamp lights for
outgoing calls as well.

Message waiting comes from a `Mailbox` function: `no_messages` until voicemail exists;
the voicemail issue replaces it and tells the notifier when a mailbox changes.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# Calls are forgotten oldest first past this many: a switchboard that never reports an
# end (a bug) must not make the table grow without bound.
MAX_CALLS = 4096


class DialogState(enum.Enum):
    """A dialog's state as the dialog event package names it."""

    EARLY = "early"  # ringing
    CONFIRMED = "confirmed"  # in a call


@dataclass(frozen=True)
class LineDialog:
    """One call of one extension, as its busy lamp shows it."""

    call_id: str
    state: DialogState
    direction: str  # "recipient" (rung) or "initiator" (placed the call)


class Presence(Protocol):
    """What the switchboard reports about its calls (for busy lamps)."""

    def ringing(self, call_id: str, extension: str, caller_device: str = "") -> None:
        """A call rings the contacts of an extension; caller_device placed it, if a device."""
        ...

    def answered(self, call_id: str, extension: str) -> None:
        """The extension answered the call (the one dialled, or one that picked it up)."""
        ...

    def ended(self, call_id: str) -> None:
        """The call is over for everyone in it."""
        ...


class NullPresence:
    """A presence that shows nothing (a switchboard without an edge: tests, tools)."""

    def ringing(self, call_id: str, extension: str, caller_device: str = "") -> None:
        """Ignore."""

    def answered(self, call_id: str, extension: str) -> None:
        """Ignore."""

    def ended(self, call_id: str) -> None:
        """Ignore."""


class LineStates:
    """Each extension's dialogs, from the switchboard's call events (pure, no I/O)."""

    def __init__(self, owner_of: Callable[[str], str | None],
                 on_change: Callable[[str], None]) -> None:
        self.owner_of = owner_of  # device (SIP username) -> its extension
        self.on_change = on_change  # called with each extension whose dialogs changed
        self._calls: OrderedDict[str, dict[str, LineDialog]] = OrderedDict()

    def ringing(self, call_id: str, extension: str, caller_device: str = "") -> None:
        """The extension is rung; the caller's extension (if a desk phone) is calling."""
        parties = self._calls.setdefault(call_id, {})
        self._calls.move_to_end(call_id)
        changed = [self._put(parties, extension,
                             LineDialog(call_id, DialogState.EARLY, "recipient"))]
        caller = self.owner_of(caller_device) if caller_device else None
        if caller and caller != extension:
            changed.append(self._put(parties, caller,
                                     LineDialog(call_id, DialogState.EARLY, "initiator")))
        while len(self._calls) > MAX_CALLS:
            _, dropped = self._calls.popitem(last=False)
            changed.extend(dropped)
        self._report(changed)

    def answered(self, call_id: str, extension: str) -> None:
        """Whoever answered is in the call (with the caller); anyone else rung is not."""
        parties = self._calls.get(call_id)
        if parties is None:
            return  # ended already (the answer raced the hangup), or never rang
        changed: list[str] = []
        for ext, dialog in list(parties.items()):
            if dialog.direction == "recipient" and ext != extension:
                # A pickup: the extension that was dialled stops ringing.
                del parties[ext]
                changed.append(ext)
            elif dialog.direction == "initiator":
                changed.append(self._put(parties, ext, LineDialog(
                    call_id, DialogState.CONFIRMED, "initiator")))
        changed.append(self._put(parties, extension,
                                 LineDialog(call_id, DialogState.CONFIRMED, "recipient")))
        self._report(changed)

    def ended(self, call_id: str) -> None:
        """Every extension in the call is free of it."""
        parties = self._calls.pop(call_id, None)
        if parties:
            self._report(list(parties))

    def dialogs(self, extension: str) -> list[LineDialog]:
        """The extension's current dialogs: ringing ones first (a lamp shows those first)."""
        found = [parties[extension] for parties in self._calls.values()
                 if extension in parties]
        return sorted(found, key=lambda d: d.state is not DialogState.EARLY)

    def __len__(self) -> int:
        return len(self._calls)

    @staticmethod
    def _put(parties: dict[str, LineDialog], extension: str, dialog: LineDialog) -> str:
        parties[extension] = dialog
        return extension

    def _report(self, extensions: list[str]) -> None:
        for extension in dict.fromkeys(extensions):
            self.on_change(extension)


@dataclass(frozen=True)
class MessageSummary:
    """A mailbox's voice messages, as a message-waiting lamp shows them."""

    new: int = 0
    old: int = 0


# An extension's mailbox, read for every message-summary NOTIFY on the event loop: it
# must answer from memory (voicemail keeps the counts), never from the disk.
Mailbox = Callable[[str], MessageSummary]


def no_messages(extension: str) -> MessageSummary:
    """The mailbox of every extension until voicemail exists: empty."""
    return MessageSummary()
