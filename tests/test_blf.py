"""Busy lamps and voicemail lamps with real peers: SIPp as a BLF key, a pjsua2 phone's MWI.

SIPp (its own process) subscribes to extension 102's dialog state with digest auth and
checks every NOTIFY body while two pjsua2 desk phones (their own processes) call: idle,
ringing (early), answered (confirmed), hung up (terminated), then it unsubscribes. A
pjsua2 phone with message waiting enabled subscribes to its own message-summary after
registering and must get the NOTIFY.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.control import call as control
from appliance.settings import Settings
from tests.conftest import free_port
from tests.support.harness import EngineProcess
from tests.test_edge_calls import desk_phone, registered

pytestmark = pytest.mark.timeout(120)

SCENARIO = Path(__file__).resolve().parent / "sipp" / "blf_subscriber.xml"
SIPP_PASSWORD = "Zq8-blf-sipp"
OFFICE = f"""\
version: 1
employees:
  - extension: "101"
    name: Иван Петров
    devices: [{{username: "101", password: "Kx7-desk-alpha"}}]
  - extension: "102"
    name: Мария Сидорова
    devices: [{{username: "102", password: "Kx7-desk-bravo"}}]
  - extension: "103"
    name: Reception (SIPp)
    devices: [{{username: "103", password: "{SIPP_PASSWORD}", auth: md5}}]
"""


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    return start_box(OFFICE)


def subscriptions(settings: Settings) -> list[dict[str, Any]]:
    return list(control(settings.control_socket, "GET", "/subscriptions"))


def wait_subscription(settings: Settings, pred: Callable[[dict[str, Any]], bool],
                      what: str, proc: subprocess.Popen[str] | None = None,
                      timeout: float = 20) -> dict[str, Any]:
    """The first subscription matching pred, polling the control API (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in subscriptions(settings) if pred(s)]
        if found:
            return found[0]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"SIPp exited ({proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no subscription {what}: {subscriptions(settings)}")
        time.sleep(0.05)


def test_sipp_busy_lamp_follows_a_call(box: EngineProcess, settings: Settings,
                                       tmp_path: Path) -> None:
    assert shutil.which("sipp"), "sip-tester is installed by `make deps`"
    auth = f"[authentication username=103 password={SIPP_PASSWORD}]"
    (tmp_path / "users.csv").write_text(f"SEQUENTIAL\n103;103;{SIPP_PASSWORD};{auth}\n")
    caller = desk_phone(settings, "101", "Kx7-desk-alpha")
    callee = desk_phone(settings, "102", "Kx7-desk-bravo", "--answer-code", "180")
    sipp = subprocess.Popen(
        ["sipp", f"127.0.0.1:{settings.sip_port}", "-sf", str(SCENARIO), "-inf", "users.csv",
         "-key", "domain", "127.0.0.1", "-s", "102", "-i", "127.0.0.1",
         "-p", str(free_port()), "-m", "1", "-nostdin", "-trace_err", "-trace_msg",
         "-timeout", "60s"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def version(n: int) -> Callable[[dict[str, Any]], bool]:
        # The version the subscriber has answered: SIPp has checked that NOTIFY's body.
        return lambda s: s["device"] == "103" and s["notified"] >= n

    try:
        caller.wait(registered(caller))
        callee.wait(registered(callee))
        sub = wait_subscription(settings, version(0), "idle NOTIFY answered", sipp)
        assert (sub["event"], sub["resource"], sub["transport"]) == ("dialog", "102", "UDP")
        assert 590 <= sub["expires"] <= 600

        cid = caller.call(f"sip:102@127.0.0.1:{settings.sip_port}")
        incoming = callee.wait(lambda e: e.get("event") == "incoming")
        wait_subscription(settings, version(1), "ringing NOTIFY answered", sipp)
        callee.send(cmd="answer", id=incoming["id"])
        caller.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        wait_subscription(settings, version(2), "confirmed NOTIFY answered", sipp)
        caller.send(cmd="hangup", id=cid)
        callee.wait(lambda e: e.get("state") == "DISCONNECTED")
        out, _ = sipp.communicate(timeout=30)
        # SIPp's own account of what went wrong: failed regexps, then the messages.
        messages = "\n".join(p.read_text(errors="replace")[-6000:]
                             for pattern in ("*_errors.log", "*_messages.log")
                             for p in tmp_path.glob(pattern))
        assert sipp.returncode == 0, out[-3000:] + messages
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()
        caller.close()
        callee.close()
    # Unsubscribed: the edge holds nothing for SIPp any more.
    assert [s for s in subscriptions(settings) if s["device"] == "103"] == []
    status = control(settings.control_socket, "GET", "/status")
    assert status["sip"]["subscriptions_dialog"] == 0
    assert status["sip"]["forwarded"] > 0  # the calls went through the proxy as before


def test_pjsua2_phone_gets_its_message_waiting_notify(box: EngineProcess,
                                                      settings: Settings) -> None:
    phone = desk_phone(settings, "101", "Kx7-desk-alpha", "--mwi")
    try:
        phone.wait(registered(phone))
        event = phone.wait(lambda e: e.get("event") == "mwi")
        assert event["state"] in ("ACCEPTED", "ACTIVE"), event
        assert "Messages-Waiting: no" in event["body"]
        assert "Voice-Message: 0/0" in event["body"]
        # The phone's 200 to the NOTIFY may still be on its way to the edge.
        sub = wait_subscription(
            settings, lambda s: s["event"] == "message-summary" and s["notified"] == 0,
            "for message waiting, its NOTIFY answered")
        assert (sub["resource"], sub["device"], sub["last_status"]) == ("101", "101", 200)
    finally:
        phone.close()
    # The phone unsubscribes as it shuts down: the edge ends the subscription (its last
    # NOTIFY may go unanswered by a phone that is already gone, then it times out).
    deadline = time.monotonic() + 10
    while any(s["state"] == "active" for s in subscriptions(settings)):
        assert time.monotonic() < deadline, subscriptions(settings)
        time.sleep(0.05)
