"""Routing's live view of the office, and how callers' numbers are read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..routing.snapshot import MemberState

if TYPE_CHECKING:
    from . import Switchboard


class LiveMembers(Mapping[str, MemberState]):
    """Routing's live view of employees, computed when routing asks (not for all 1000)."""

    def __init__(self, board: Switchboard) -> None:
        self._board = board
        self._busy: set[str] | None = None

    def __getitem__(self, extension: str) -> MemberState:
        board = self._board
        if self._busy is None:
            self._busy = board.busy_extensions()
        contacts = board.directory.contacts(extension)
        return MemberState(activity="busy" if extension in self._busy else "idle",
                           registered=bool(contacts))

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, extension: str, default: Any = None) -> Any:
        """Every extension has a live state (unknown ones: idle, not registered)."""
        return self[extension]


def user_of(uri: str) -> str:
    """The user part of a SIP URI or name-addr (the caller's number), else the text."""
    text = uri.strip()
    if "<" in text:
        text = text[text.index("<") + 1:text.rfind(">") if ">" in text else None]
    for scheme in ("sip:", "sips:", "tel:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    return text.split("@", 1)[0].split(";", 1)[0]


def dialable(dialled: str) -> bool:
    """Whether a dialled string is a phone number (digits, an optional +), not a name."""
    digits = dialled[1:] if dialled.startswith("+") else dialled
    return digits.isdigit() and 2 <= len(digits) <= 20
