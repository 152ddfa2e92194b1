"""Faults the simulator can put on its AT port, from the issue threads in gsm-modems.md."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Faults:
    """Switches for misbehaviour; the modem consults them on every read and write."""

    # Reads and discards, never answers, sends nothing: a hung modem the watchdog must catch.
    frozen: bool = False
    # Freeze right after answering this many more command lines.
    freeze_after: int | None = None
    # Write everything in pieces of 1-4 bytes, a few ms apart.
    split_writes: bool = False
    # Final results as \r\r\nOK (bg111#272).
    double_cr: bool = False
    # Put URCs (the signal URC at least) between a reply's lines and its final result,
    # as the E3372 does with ^RSSI inside the +CSQ reply (wdoekes#143).
    urc_inside_response: bool = False
    # Commands this firmware lacks ("+CEER"): answered as unknown commands are.
    unsupported: set[str] = field(default_factory=set)

    def answered(self) -> None:
        """Count one answered command line toward freeze_after."""
        if self.freeze_after is None:
            return
        self.freeze_after -= 1
        if self.freeze_after <= 0:
            self.freeze_after = None
            self.frozen = True

    def clear(self) -> None:
        """A power cycle ends a freeze (the other switches are the test's and stay)."""
        self.frozen = False
        self.freeze_after = None
