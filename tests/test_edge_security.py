"""The front-door policy: bans after failed logins, rate limits, scanners."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from appliance.control import call as control
from appliance.edge.security import Guard, GuardConfig
from appliance.settings import Settings
from tests.support.harness import EngineProcess, PhoneProcess, pbx
from tests.support.tones import dominant, middle, read_wav
from tests.test_edge_calls import OFFICE, desk_phone, registered


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_ban_then_the_ban_expires() -> None:
    clock = Clock()
    guard = Guard(GuardConfig(auth_failures=5, failure_window_s=60, ban_s=900), clock)
    for _ in range(4):
        assert not guard.auth_failed("203.0.113.9")
    assert guard.admit("203.0.113.9", "Yealink")
    assert guard.auth_failed("203.0.113.9")
    assert not guard.admit("203.0.113.9", "Yealink")
    assert guard.admit("192.168.1.50", "Yealink")  # others are unaffected
    assert [b.host for b in guard.bans()] == ["203.0.113.9"]
    clock.now += 901
    assert guard.admit("203.0.113.9", "Yealink")
    assert guard.bans() == []


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    guard = Guard(GuardConfig(auth_failures=3, failure_window_s=10), clock)
    for _ in range(10):
        assert not guard.auth_failed("198.51.100.1")
        clock.now += 6


def test_rate_limit_throttles_without_banning() -> None:
    clock = Clock()
    guard = Guard(GuardConfig(rate_limit=16, rate_window_s=2), clock)
    assert all(guard.admit("198.51.100.2", None) for _ in range(16))
    assert not guard.admit("198.51.100.2", None)
    clock.now += 2
    assert guard.admit("198.51.100.2", None)
    assert guard.bans() == []


@pytest.mark.parametrize("agent", ["friendly-scanner", "sipvicious/0.3.4", "VaxSIPUserAgent/3.1",
                                   "sipcli/v1.8"])
def test_scanners_are_banned_on_sight(agent: str) -> None:
    guard = Guard(GuardConfig(), Clock())
    assert not guard.admit("192.0.2.1", agent)
    assert guard.banned("192.0.2.1")


def test_memory_is_bounded() -> None:
    guard = Guard(GuardConfig(), Clock())
    for i in range(20_000):
        guard.admit(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", None)
    assert len(guard._rates) <= 10_000


def _register_attempt(sock: socket.socket, port: int, n: int) -> bytes | None:
    msg = (f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.2:{sock.getsockname()[1]};branch=z9hG4bK-g{n};rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:101@127.0.0.1>;tag=g\r\nTo: <sip:101@127.0.0.1>\r\n"
           f"Call-ID: guess-{n}\r\nCSeq: {n} REGISTER\r\nContact: <sip:101@127.0.0.2>\r\n"
           'Authorization: Digest username="101", realm="office-pbx", nonce="x", '
           f'uri="sip:127.0.0.1:{port}", response="00000000000000000000000000000000", '
           'algorithm=MD5, qop=auth, nc=00000001, cnonce="c"\r\n'
           "Content-Length: 0\r\n\r\n").encode()
    sock.sendto(msg, ("127.0.0.1", port))
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def test_a_password_guesser_is_banned_while_phones_keep_working(
        settings: Settings, unix_dir: Path, tmp_path: Path) -> None:
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    engine = EngineProcess(settings, unix_dir / "notify", log_path=tmp_path / "engine.log")
    phone = None
    try:
        engine.wait_ready()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.2", 0))  # another host, as far as the edge can tell
            attacker.settimeout(1.0)
            answers = [_register_attempt(attacker, settings.sip_port, n) for n in range(1, 12)]
        # Stale or wrong, every guess is answered like a fresh challenge until the ban...
        assert all(a is not None and b" 401 " in a for a in answers[:7]), answers
        # ... and after it the box is silent to that address.
        assert answers[-1] is None
        bans = control(settings.control_socket, "GET", "/bans")
        assert [b["host"] for b in bans] == ["127.0.0.2"]
        listed = pbx(settings, "bans")
        assert listed.returncode == 0 and "127.0.0.2" in listed.stdout
        phone = desk_phone(settings, "101", "Kx7-desk-alpha")
        phone.wait(registered(phone))
        # The admin lifts the ban: the address is answered again.
        lifted = pbx(settings, "bans", "--unban", "127.0.0.2")
        assert lifted.returncode == 0 and "ban lifted" in lifted.stdout, lifted
        assert control(settings.control_socket, "GET", "/bans") == []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.2", 0))
            attacker.settimeout(1.0)
            answer = _register_attempt(attacker, settings.sip_port, 20)
        assert answer is not None and b" 401 " in answer
        assert pbx(settings, "bans", "--unban", "127.0.0.2").returncode == 1
    finally:
        if phone is not None:
            phone.close()
        engine.close()


def test_a_flood_is_throttled_while_phones_register_and_call(
        settings: Settings, unix_dir: Path, tmp_path: Path) -> None:
    """One address sends 2000 requests a second; desk phones elsewhere keep working."""
    assert pbx(settings, "config", "import", "-", stdin=OFFICE).returncode == 0
    engine = EngineProcess(settings, unix_dir / "notify", log_path=tmp_path / "engine.log")
    phones: list[PhoneProcess] = []
    stop = threading.Event()
    counts = {"sent": 0, "answered": 0}

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.3", 0))
            sock.setblocking(False)
            port = sock.getsockname()[1]
            n = 0
            while not stop.is_set():
                for _ in range(20):
                    n += 1
                    msg = (f"OPTIONS sip:101@127.0.0.1:{settings.sip_port} SIP/2.0\r\n"
                           f"Via: SIP/2.0/UDP 127.0.0.3:{port};branch=z9hG4bKfl{n}\r\n"
                           f"From: <sip:x@127.0.0.3>;tag=f{n}\r\nTo: <sip:101@127.0.0.1>\r\n"
                           f"Call-ID: flood-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                           "Content-Length: 0\r\n\r\n")
                    with contextlib.suppress(BlockingIOError):
                        sock.sendto(msg.encode(), ("127.0.0.1", settings.sip_port))
                        counts["sent"] += 1
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(4096):
                        counts["answered"] += 1
                stop.wait(0.01)  # 20 requests per 10 ms: about 2000 a second

    try:
        engine.wait_ready()
        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        started = time.monotonic()
        alice = desk_phone(settings, "101", "Kx7-desk-alpha", "--record-dir", str(tmp_path))
        phones.append(alice)
        bob = desk_phone(settings, "102", "Kx7-desk-bravo", "--tone", "1400")
        phones.append(bob)
        alice.wait(registered(alice))
        bob.wait(registered(bob))
        cid = alice.call(f"sip:102@127.0.0.1:{settings.sip_port}", tone=700, record=True)
        alice.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        time.sleep(1.5)  # audio through the bridge while the flood goes on
        alice.send(cmd="hangup", id=cid)
        bob.wait(lambda e: e.get("state") == "DISCONNECTED")
        stop.set()
        flooder.join(timeout=5)
        elapsed = time.monotonic() - started
        status = control(settings.control_socket, "GET", "/status")
    finally:
        stop.set()
        for p in phones:
            p.close()
        engine.close()
    assert counts["sent"] > 1000 * elapsed * 0.5, counts  # it really was a flood
    # At most rate_limit answers per 2 s window (plus the window in progress).
    allowed = settings.sip_rate_limit * (elapsed / 2 + 2)
    assert counts["answered"] <= allowed, (counts, allowed)
    assert status["sip"]["registrations"] == 2
    [wav] = list(tmp_path.glob(f"{alice.port}-*.wav"))
    samples, rate = read_wav(wav)
    assert dominant(middle(samples, rate, 0.8), rate, [700.0, 1400.0])[0] == 1400.0
