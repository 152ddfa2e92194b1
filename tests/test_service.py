"""systemd notify protocol: READY, STATUS, WATCHDOG over a datagram socket."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from appliance.service import Notifier, send_notify


def _listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    return sock


def testsend_notify_reaches_the_socket(unix_dir: Path) -> None:
    path = unix_dir / "notify"
    with _listener(path) as sock:
        assert send_notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert sock.recv(4096) == b"READY=1"


def test_a_full_socket_never_blocks(unix_dir: Path) -> None:
    """A receiver that stops reading must not stall the sender (the event loop)."""
    path = unix_dir / "notify"
    with _listener(path):
        sent = [send_notify("WATCHDOG=1", {"NOTIFY_SOCKET": str(path)}) for _ in range(5000)]
    assert sent[0] is True
    assert sent[-1] is False  # dropped with a warning, not blocked


def test_no_socket_is_a_clean_no_op() -> None:
    assert send_notify("READY=1", {}) is False
    sent: list[str] = []
    notifier = Notifier(send=lambda s: sent.append(s) or True)
    notifier.enabled = False
    notifier.ready("up")
    assert sent == []


async def test_watchdog_pings_only_while_healthy(
    unix_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = unix_dir / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    healthy = True
    with _listener(path) as sock:
        sock.setblocking(False)
        notifier = Notifier(send=lambda s: send_notify(s, dict(os.environ)))
        assert notifier.watchdog_interval() == pytest.approx(0.05)
        notifier.start_watchdog(lambda: healthy)
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"WATCHDOG=1"
        healthy = False
        # Drain pings that were already queued, then expect silence.
        await asyncio.sleep(0.12)
        while True:
            try:
                sock.recv(100)
            except BlockingIOError:
                break
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.sock_recv(sock, 100), 0.3)
        notifier.stop_watchdog()


def test_watchdog_for_another_pid_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier(send=lambda s: True).watchdog_interval() is None
