"""Simulated modems for `pbx dev` and `simulate = true`: one FakeModem per simulated SIM line.

The simulator's by-IMEI links play /dev/serial/by-path, and its reboot plays the USB power
cycle, so the box runs exactly the code it runs on real modems.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from hw.modemsim import FakeModem

from .discovery import ModemPort
from .sim import SimSettings

PROFILES = ("quectel-ec25", "simcom-7600", "huawei-e1550")


class SimulatedModems:
    """The simulated lines' modems, started and stopped with the line manager."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.modems: dict[str, FakeModem] = {}

    async def start(self, lines: Sequence[SimSettings]) -> None:
        """A modem for every enabled simulated line (profiles taken in turn)."""
        for n, line in enumerate(x for x in lines if x.simulated and x.enabled):
            imei = line.imei or f"8699{n:011d}"
            modem = FakeModem(PROFILES[n % len(PROFILES)], imei=imei,
                              pin=line.pin, links_dir=self.directory,
                              own_number=f"+7900000{n:04d}", seed=n)
            await modem.a_start()
            self.modems[imei] = modem

    async def reset(self, port: ModemPort) -> bool:
        """The USB power cycle of a simulated modem: its reboot."""
        modem = self.modems.get(port.imei)
        if modem is None:
            return False
        await asyncio.to_thread(modem.reboot)
        return True

    async def stop(self) -> None:
        """Stop every simulated modem."""
        for modem in self.modems.values():
            with contextlib.suppress(Exception):
                await modem.a_stop()
        self.modems.clear()
