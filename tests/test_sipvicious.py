"""SIPVicious, the scanner that hits every PBX on the internet, against the box."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.control import call as control
from appliance.settings import Settings
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess
from tests.test_edge_calls import OFFICE, registered

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    return start_box(OFFICE)


def run(*args: str, cwd: Path) -> str:
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                            timeout=120, check=False)
    return result.stdout + result.stderr


def test_svwar_learns_no_extension_and_svcrack_is_banned(box: EngineProcess,
                                                        settings: Settings,
                                                        tmp_path: Path) -> None:
    # SIPVicious ignores its bind option and sends from 127.0.0.1:5060, so the office's
    # phone lives on another loopback address: another host, as far as the edge knows.
    port = str(settings.sip_port)
    crack = run("svcrack", "-u", "101", "-r", "1000-1100", "-p", port, "-t", "0.05",
                "127.0.0.1", cwd=tmp_path)
    assert "Kx7-desk-alpha" not in crack
    assert {b["host"] for b in control(settings.control_socket, "GET", "/bans")} == {
        "127.0.0.1"}
    war = run("svwar", "-e", "100-110", "-p", port, "-t", "0.05", "127.0.0.1", cwd=tmp_path)
    # 101 and 102 exist; svwar must not list them (or anything else).
    assert not re.search(r"\|\s*1[0-9][0-9]\s*\|", war), war
    assert "found nothing" in war
    phone = PhoneProcess(free_port(), free_port_block(20), "--ip", "127.0.0.9", "--user", "101",
                         "--password", "Kx7-desk-alpha",
                         "--registrar", f"127.0.0.1:{settings.sip_port}")
    try:
        phone.wait(registered(phone))
    finally:
        phone.close()


def probe(port: int, source: str, user: str, n: int) -> str:
    """A REGISTER for user from a polite (non-scanner) agent: the answer, ids blanked."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(2)
        local = f"{source}:{sock.getsockname()[1]}"
        sock.sendto((f"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {local};branch=z9hG4bK-p{n};rport\r\n"
                     f"Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=p{n}\r\n"
                     f"To: <sip:{user}@127.0.0.1>\r\nCall-ID: probe-{n}\r\nCSeq: 1 REGISTER\r\n"
                     f"Contact: <sip:{user}@{source}>\r\nUser-Agent: Yealink SIP-T31P\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
        reply = sock.recv(4096).decode()
    reply = re.sub(r'nonce="[^"]*"', 'nonce="N"', reply)
    reply = re.sub(r"tag=[\w-]+", "tag=T", reply)
    reply = re.sub(r"p\d+|probe-\d+|rport=\d+", "X", reply)
    reply = re.sub(r":\d+;branch", ":P;branch", reply)
    return re.sub(rf"\b{user}\b", "USER", reply)


def test_known_and_unknown_users_get_the_same_answer(box: EngineProcess,
                                                     settings: Settings) -> None:
    known = probe(settings.sip_port, "127.0.0.7", "101", 1)
    unknown = probe(settings.sip_port, "127.0.0.8", "555", 2)
    assert " 401 " in known
    assert known.replace("127.0.0.7", "IP") == unknown.replace("127.0.0.8", "IP")
