"""systemd integration: readiness, watchdog, status text and journald logging.

The notify protocol is a datagram on the socket named by $NOTIFY_SOCKET; we
speak it directly and without blocking.  systemd-python, where installed,
provides the journald handler.  Without $NOTIFY_SOCKET (a laptop, a test)
every notify call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def send_notify(state: str, environ: dict[str, str]) -> bool:
    """Send one sd_notify datagram; never blocks.

    The protocol is one datagram on $NOTIFY_SOCKET, so we speak it directly
    rather than through libsystemd, whose blocking send would stall the event
    loop (and the watchdog) whenever the receiver is slow to read.
    """
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), socket.MSG_DONTWAIT, address)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", environ.get("NOTIFY_SOCKET"), exc)
            return False
    return True


class Notifier:
    """Talks to the service manager; every method is safe without one."""

    def __init__(self, send: Callable[[str], bool] | None = None) -> None:
        self._send = send or (lambda state: send_notify(state, dict(os.environ)))
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._watchdog_task: asyncio.Task[None] | None = None

    def notify(self, state: str) -> None:
        """Send a raw state string (READY=1, STATUS=...)."""
        if self.enabled:
            self._send(state)

    def ready(self, status: str) -> None:
        """Tell systemd the box is up (SIP and lines are listening)."""
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, text: str) -> None:
        """Update the one-line status shown by `systemctl status`."""
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        """Tell systemd shutdown has begun."""
        self.notify("STOPPING=1\nSTATUS=stopping")

    def reloading(self) -> None:
        """Tell systemd a configuration reload is in progress."""
        self.notify("RELOADING=1\nSTATUS=reloading configuration")

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half the systemd timeout), or None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return max(int(usec) / 2_000_000, 0.05)
        except ValueError:
            return None

    def start_watchdog(self, loop_is_healthy: Callable[[], bool]) -> None:
        """Ping WATCHDOG=1 from the event loop while it is healthy.

        The pings come from a task on the main loop on purpose: if the loop
        is stuck, the pings stop and systemd restarts the engine.
        """
        interval = self.watchdog_interval()
        if interval is None or not self.enabled:
            return

        async def ping() -> None:
            while True:
                if loop_is_healthy():
                    self.notify("WATCHDOG=1")
                else:
                    log.error("engine unhealthy: withholding the watchdog ping")
                await asyncio.sleep(interval)

        self._watchdog_task = asyncio.get_running_loop().create_task(ping(), name="watchdog")

    def stop_watchdog(self) -> None:
        """Stop pinging (at shutdown)."""
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
            self._watchdog_task = None


def _journal_handler(identifier: str) -> logging.Handler | None:
    """journald's handler from systemd-python, if installed."""
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER=identifier)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def setup_logging(level: str = "INFO", *, identifier: str = "pbx") -> None:
    """Log to journald under systemd, to stderr otherwise."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _journal_handler(identifier) if (
        os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID")) else None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root.addHandler(handler)


def describe() -> dict[str, Any]:
    """What systemd integration is available (for `pbx doctor`)."""
    try:
        import systemd.journal  # noqa: F401

        journal = "systemd-python"
    except ImportError:
        journal = "stderr only (systemd-python missing)"
    return {"notify": "built-in, non-blocking", "journal": journal,
            "under_systemd": bool(os.environ.get("INVOCATION_ID"))}
