"""The RFC 4475/5118 torture corpus thrown at the running edge over UDP and TCP.

Each message must be answered as the verdict table says (or dropped), the box must
keep serving real phones, and its memory must stay flat over repeated rounds.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.control import call as control
from appliance.settings import Settings
from tests.support.harness import EngineProcess
from tests.test_edge_calls import OFFICE, desk_phone, registered
from tests.test_sip_torture import RFC4475, RFC5118, TORTURE

pytestmark = pytest.mark.timeout(240)

# What the edge answers beyond the stateless verdicts, for messages that parse:
# REGISTER is challenged (401), other requests from the outside need credentials (407),
# a request to the box itself is answered directly, responses and ACKs get nothing, and an
# in-dialog request for a dialog nobody has reaches the engine, which answers 481.
AFTER_VERDICT = {401, 407, 200, 405, 489, 403, 423, 481}
# On a stream these are messages still arriving: Content-Length promises more than was
# sent (clerr, ncl, mcl01), or the file ends before the blank line that ends a header
# (baddn). Nothing can be answered until the rest or the idle timeout comes.
STREAM_WAITS = {"clerr", "ncl", "mcl01", "baddn"}


def corpus() -> list[tuple[str, bytes, int | None, bool]]:
    """(name, bytes, expected stateless code or None, parses?) for every file."""
    items = []
    for name, verdict in RFC4475.items():
        items.append((name, (TORTURE / "rfc4475" / f"{name}.dat").read_bytes(), verdict.code,
                      verdict.parses))
    for name, verdict in RFC5118.items():
        items.append((name, (TORTURE / "rfc5118" / "wire" / f"{name}.dat").read_bytes(),
                      verdict.code, verdict.parses))
    return items


def status_code(reply: bytes) -> int | None:
    match = re.match(rb"SIP/2\.0 (\d{3}) ", reply)
    return int(match.group(1)) if match else None


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def source_ip(n: int) -> str:
    """A different loopback address per message: the edge's rate limit is per source."""
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


def send_udp(port: int, data: bytes, n: int = 0, wait: float = 0.25) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # Port 5060: a Via without rport is answered at received:5060 (RFC 3261 §18.2.2).
        sock.bind((source_ip(n), 5060))
        sock.sendto(data, ("127.0.0.1", port))
        if not wait:
            return None
        sock.settimeout(wait)
        try:
            return sock.recv(65536)
        except TimeoutError:
            return None


def send_tcp(port: int, data: bytes, n: int = 0, wait: float = 0.25) -> bytes | None:
    with socket.create_connection(("127.0.0.1", port), timeout=2,
                                  source_address=(source_ip(n), 0)) as sock:
        sock.sendall(data)
        if not wait:
            return None
        sock.settimeout(wait)
        try:
            return sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return None


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    return start_box(OFFICE)


@pytest.mark.parametrize("send", [send_udp, send_tcp], ids=["udp", "tcp"])
def test_the_corpus_is_answered_as_the_table_says(box: EngineProcess, settings: Settings,
                                                  send) -> None:  # type: ignore[no-untyped-def]
    wrong = []
    for n, (name, data, expected, parses) in enumerate(corpus()):
        reply = send(settings.sip_port, data, n)
        code = status_code(reply) if reply else None
        if send is send_tcp and name in STREAM_WAITS:
            ok = code in (None, 400)
        elif expected is not None:
            ok = code == expected
        elif parses:
            ok = code is None or code in AFTER_VERDICT
        else:
            ok = code is None  # unanswerable junk is dropped
        if not ok:
            wrong.append((name, expected, code))
    assert wrong == [], wrong
    assert box.proc.poll() is None
    assert control(settings.control_socket, "GET", "/status")["engine"]["healthy"]


def test_memory_stays_flat_and_phones_keep_working(box: EngineProcess,
                                                   settings: Settings) -> None:
    items = corpus()
    def round_(offset: int) -> None:
        for n, (_name, data, _code, _parses) in enumerate(items):
            send_udp(settings.sip_port, data, offset + n, wait=0)
            send_tcp(settings.sip_port, data, offset + n, wait=0)

    for r in range(3):  # warm-up: caches, nonce tables, rate-limit entries
        round_(r * len(items))
    # Every request is answered before the next round is measured.
    assert control(settings.control_socket, "GET", "/status")["engine"]["healthy"]
    before = rss_kb(box.proc.pid)
    for r in range(3, 13):
        round_(r * len(items))
    assert control(settings.control_socket, "GET", "/status")["engine"]["healthy"]
    grown = rss_kb(box.proc.pid) - before
    assert grown < 4096, f"RSS grew by {grown} KiB over 10 rounds of the corpus"
    phone = desk_phone(settings, "101", "Kx7-desk-alpha")
    try:
        phone.wait(registered(phone))
    finally:
        phone.close()
