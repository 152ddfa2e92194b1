"""What the line manager passes down to every line: one context object, no globals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Clock, RealClock

if TYPE_CHECKING:
    from appliance.db import Database

    from .discovery import ModemPort

DEFAULT_MODEM_DIR = Path("/dev/serial/by-path")


@dataclass(frozen=True)
class LineTimers:
    """Every period and limit of the SIM line driver (tests shorten them)."""

    # An idle modem is pinged with AT; two unanswered pings in a row mean it hangs.
    # Worst case from freeze to verdict: ping_idle_s + 2 * ping_timeout_s + settling < 15 s.
    ping_idle_s: float = 5.0
    ping_timeout_s: float = 3.0
    poll_s: float = 30.0  # signal, registration, operator, SMS sweep
    call_poll_s: float = 1.0  # +CLCC while a call exists: URCs can be lost, the list can't
    clip_wait_s: float = 1.5  # how long an incoming call waits for +CLIP before +CLCC
    end_grace_s: float = 0.4  # a "gone" report without a cause waits this for BUSY & co.
    reset_wait_s: float = 60.0  # a reset modem must be back on USB within this
    max_resets: int = 5  # consecutive failed recoveries before FAILED
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 120.0
    pin_settle_s: float = 10.0  # after AT+CPIN=..., the SIM takes a while to be READY
    balance_interval_s: float = 6 * 3600.0
    balance_first_s: float = 60.0  # the first balance check after the line is ready
    ussd_timeout_s: float = 30.0
    sms_part_limit_s: float = 600.0  # a multipart message waits this long for its parts
    scan_s: float = 2.0  # discovery polls the modem directory this often


UsbReset = Callable[["ModemPort"], Awaitable[bool]]


async def no_usb_reset(port: ModemPort) -> bool:
    """The default when nothing better is known: no reset is possible from here."""
    return False


@dataclass
class LineContext:
    """Shared by the manager and its lines."""

    db: Database | None = None
    clock: Clock = field(default_factory=RealClock)
    timers: LineTimers = field(default_factory=LineTimers)
    modem_dirs: tuple[Path, ...] = (DEFAULT_MODEM_DIR,)
    # Where AT+CFUN=1,1 cannot help (a frozen modem): power-cycle the USB device.
    usb_reset: UsbReset = no_usb_reset
    low_balance_threshold: float | None = None
