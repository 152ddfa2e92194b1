"""OPTIONS keepalives against a real phone: a frozen phone is not rung, a thawed one is again."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from appliance.control import call as control
from appliance.settings import Settings
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess, pbx
from tests.test_edge_calls import OFFICE, desk_phone, registered

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with keepalives every second (30 s on a real box)."""
    return replace(settings, sip_keepalive_s=1)


def wait_registration(settings: Settings, user: str, state: str,
                      timeout: float = 20) -> dict[str, Any]:
    """Poll GET /registrations until user's binding is in state; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        regs = control(settings.control_socket, "GET", "/registrations")
        mine = [r for r in regs if r["user"] == user]
        if len(mine) == 1 and mine[0]["state"] == state:
            return mine[0]
        assert time.monotonic() < deadline, f"{user} never became {state}: {regs}"
        time.sleep(0.05)


def test_a_phone_that_stops_answering_is_not_rung(
        start_box: Callable[..., EngineProcess], settings: Settings) -> None:
    box = start_box(OFFICE)
    phone = desk_phone(settings, "101", "Kx7-desk-alpha")
    caller = PhoneProcess(free_port(), free_port_block(20))
    stopped = False
    try:
        phone.wait(registered(phone))
        binding = wait_registration(settings, "101", "reachable")
        # Probed over the REGISTER's own flow: the phone's UDP port, seen from the box.
        assert binding["transport"] == "UDP"
        assert binding["source"] == f"127.0.0.1:{phone.port}"
        assert binding["rtt_ms"] is not None and 0 <= binding["rtt_ms"] < 1000
        assert binding["expires"] > 200
        sip = control(settings.control_socket, "GET", "/status")["sip"]
        assert (sip["registrations"], sip["reachable"], sip["unreachable"]) == (1, 1, 0)
        assert sip["keepalives_sent"] >= 1 and sip["keepalive_answers"] >= 1

        # The phone freezes (its socket stays open, nothing answers): unreachable.
        os.kill(phone.proc.pid, signal.SIGSTOP)
        stopped = True
        wait_registration(settings, "101", "unreachable")
        sip = control(settings.control_socket, "GET", "/status")["sip"]
        assert (sip["registrations"], sip["reachable"], sip["unreachable"]) == (1, 0, 1)
        status = pbx(settings, "status")
        assert "0 reachable, 1 unreachable" in status.stdout, status.stdout

        # A call to it gets the offline answer at once instead of ringing for a minute.
        started = time.monotonic()
        cid = caller.call(f"sip:101@127.0.0.1:{settings.engine_sip_port}")
        ended = caller.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED")
        assert ended["code"] == 480, ended
        assert time.monotonic() - started < 10

        # It thaws: the next probe is answered, and it rings again.
        os.kill(phone.proc.pid, signal.SIGCONT)
        stopped = False
        wait_registration(settings, "101", "reachable")
        cid = caller.call(f"sip:101@127.0.0.1:{settings.engine_sip_port}")
        phone.wait(lambda e: e.get("event") == "incoming")
        caller.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        caller.send(cmd="hangup", id=cid)
        caller.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED")
    finally:
        if stopped:
            os.kill(phone.proc.pid, signal.SIGCONT)
        caller.close()
        phone.close()
    log = box.log_path.read_text()
    assert "edge: 101 at sip:101@" in log and "is unreachable (was reachable)" in log
    assert "is reachable (was unreachable)" in log
