"""Test-side handles for real processes: pjsua2 phones and the `pbx run` engine."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from appliance.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class PhoneProcess:
    """A pjsua2 phone in its own process (tests/support/phone.py)."""

    def __init__(self, port: int, rtp_port: int, *extra: str) -> None:
        self.port = port
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.seen: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.phone", "--port", str(port),
             "--rtp-port", str(rtp_port), *extra],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda e: e.get("event") == "ready", timeout=20)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                continue

    def send(self, **cmd: Any) -> None:
        """Send one JSON command."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        """The first event (seen before or arriving within timeout) matching pred."""
        for event in self.seen:
            if pred(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"phone {self.port}: no matching event in {timeout} s; "
                                   f"last: {self.seen[-4:]}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if pred(event):
                return event

    def count(self, pred: Callable[[dict[str, Any]], bool]) -> int:
        """How many events seen so far match pred (drains what has arrived)."""
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                break
        return sum(1 for e in self.seen if pred(e))

    def wait_count(self, pred: Callable[[dict[str, Any]], bool], n: int,
                   timeout: float = 30) -> None:
        """Wait until n events match pred."""
        deadline = time.monotonic() + timeout
        while self.count(pred) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"phone {self.port}: {self.count(pred)}/{n} events; "
                                   f"last: {self.seen[-3:]}")
            with contextlib.suppress(queue.Empty):
                self.seen.append(self.events.get(timeout=0.2))

    def call(self, uri: str, **opts: Any) -> int:
        """Place a call; returns the phone-local call id."""
        before = self.count(lambda e: e.get("reply") == "call")
        self.send(cmd="call", uri=uri, **opts)
        self.wait_count(lambda e: e.get("reply") == "call", before + 1, timeout=10)
        replies = [e for e in self.seen if e.get("reply") == "call"]
        return int(replies[before]["id"])

    def states(self) -> dict[str, str]:
        """Current state of every call the phone holds."""
        before = self.count(lambda e: e.get("reply") == "calls")
        self.send(cmd="calls")
        self.wait_count(lambda e: e.get("reply") == "calls", before + 1, timeout=10)
        return [e for e in self.seen if e.get("reply") == "calls"][before]["calls"]

    def stats(self) -> dict[str, Any]:
        """RTP counters and bridge wiring of every call the phone holds."""
        before = self.count(lambda e: e.get("reply") == "stats")
        self.send(cmd="stats")
        self.wait_count(lambda e: e.get("reply") == "stats", before + 1, timeout=10)
        return dict([e for e in self.seen if e.get("reply") == "stats"][before]["calls"])

    def close(self) -> None:
        """Quit cleanly (hangs up), or kill after a grace period."""
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(timeout=15)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def engine_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that gives `pbx` exactly the test's settings (every field as PBX_*)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PBX_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name == "source" or value is None:
            continue
        env["PBX_" + field.name.upper()] = str(int(value) if isinstance(value, bool) else value)
    env["PBX_RUN_DIR"] = str(settings.control_socket.parent)
    env.update(extra)
    return env


def pbx(settings: Settings, *args: str, stdin: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a `pbx` subcommand against the test's data dir."""
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args], cwd=ROOT, env=engine_env(settings),
        input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


class EngineProcess:
    """`pbx run` as a subprocess with a NOTIFY_SOCKET of the test's own.

    A thread reads the socket all the time, as systemd does, so the engine's
    watchdog pings never fill it.
    """

    def __init__(self, settings: Settings, notify_path: Path, watchdog_usec: int = 400_000,
                 log_path: Path | None = None, prefix: Sequence[str] = ()) -> None:
        self.settings = settings
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        self.notify.settimeout(0.2)
        self.messages: list[str] = []
        self._inbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._closed = threading.Event()
        threading.Thread(target=self._read_notify, daemon=True).start()
        self.log_path = log_path or settings.data_dir.parent / "engine.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            # prefix: e.g. `ip netns exec NS`, which execs, so signals still reach the engine.
            [*prefix, sys.executable, "-m", "appliance.cli", "run"], cwd=ROOT,
            env=engine_env(settings, NOTIFY_SOCKET=str(notify_path),
                           WATCHDOG_USEC=str(watchdog_usec),
                           PBX_LOG_LEVEL=os.environ.get("PBX_TEST_LOG_LEVEL", "INFO")),
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def _read_notify(self) -> None:
        while not self._closed.is_set():
            try:
                self._inbox.put(self.notify.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_notify(self, pred: Callable[[str], bool], timeout: float = 30) -> str:
        """The next sd_notify datagram matching pred."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.proc.poll() is not None and self._inbox.empty()):
                raise TimeoutError(
                    f"no matching notify message (exit {self.proc.poll()}); "
                    f"got {self.messages[-5:]}\n{self.log_path.read_text()[-3000:]}")
            try:
                msg = self._inbox.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            self.messages.append(msg)
            if pred(msg):
                return msg

    def drain(self) -> list[str]:
        """Every notify message received so far."""
        time.sleep(0.3)  # one read timeout: whatever was sent is in the inbox
        while not self._inbox.empty():
            self.messages.append(self._inbox.get())
        return self.messages

    def wait_ready(self, timeout: float = 60) -> str:
        """Block until READY=1."""
        return self.wait_notify(lambda m: "READY=1" in m.split("\n"), timeout)

    def terminate(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds to exit)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - start

    def close(self) -> None:
        """Make sure the process is gone and the sockets are closed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._closed.set()
        self.notify.close()
        self._log.close()
