"""Bans in the kernel: the nft scripts (pure), batching and fallback, and real nftables.

The tests that run nft do it inside a network namespace of their own
(tests/support/netns.py): the machine's firewall is never touched, and every
address they use lives on that namespace's loopback interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control import call as control
from appliance.db import Database
from appliance.edge.firewall import (
    FirewallError,
    NftablesFirewall,
    NftRules,
    NullFirewall,
    kernel_address,
    open_firewall,
)
from appliance.edge.transport import Source
from appliance.settings import Settings
from tests.support import netns
from tests.support.harness import EngineProcess
from tests.support.netns import (
    BANNED4,
    BANNED6,
    BOX4,
    BOX6,
    OTHER4,
    OTHER6,
    NetNs,
)

WHY_NOT = netns.unavailable()
needs_netns = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
RULES = NftRules((5060,))


# --- the scripts (pure) -------------------------------------------------------------------

def test_setup_makes_a_fresh_table_that_drops_only_sip_ports() -> None:
    script = NftRules((5060, 5061)).setup()
    # Whatever a crashed run left is replaced in the same transaction.
    assert script.startswith("add table inet pbx\ndelete table inet pbx\ntable inet pbx {\n")
    assert "set banned4 { type ipv4_addr; size 65536; flags timeout; }" in script
    assert "set banned6 { type ipv6_addr; size 65536; flags timeout; }" in script
    assert "type filter hook input priority -10; policy accept;" in script
    assert "ip saddr @banned4 meta l4proto { tcp, udp } th dport { 5060, 5061 } counter drop" \
        in script
    assert "ip6 saddr @banned6 meta l4proto { tcp, udp } th dport { 5060, 5061 } counter drop" \
        in script
    assert "22" not in script and "8080" not in script  # SSH and the web UI stay reachable
    assert NftRules((5060,), table="box2").teardown() == (
        "add table inet box2\ndelete table inet box2\n")


def test_a_ban_replaces_the_element_with_its_own_timeout() -> None:
    addr = kernel_address("203.0.113.9")
    assert addr is not None
    assert RULES.ban(addr, 899.2) == (
        "add element inet pbx banned4 { 203.0.113.9 }\n"
        "delete element inet pbx banned4 { 203.0.113.9 }\n"
        "add element inet pbx banned4 { 203.0.113.9 timeout 900s }\n")
    assert "timeout 1s" in RULES.ban(addr, 0.2)  # never 0: that would be no timeout at all
    v6 = kernel_address("2001:db8::7")
    assert v6 is not None
    assert RULES.unban(v6) == ("add element inet pbx banned6 { 2001:db8::7 }\n"
                               "delete element inet pbx banned6 { 2001:db8::7 }\n")


@pytest.mark.parametrize(("host", "kernel"), [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8::7", "2001:db8::7"),
    ("[2001:db8::7]", "2001:db8::7"),
    ("fe80::1%eth0", "fe80::1"),
    ("::ffff:203.0.113.9", "203.0.113.9"),  # a dual-stack socket's IPv4 peer
    ("127.0.0.1", None),  # the engine talks to the edge from loopback
    ("127.0.0.2", None),
    ("::1", None),
    ("0.0.0.0", None),
    ("224.0.0.1", None),
    ("phone.example", None),
    ("203.0.113.9; flush ruleset", None),
])
def test_which_addresses_go_to_the_kernel(host: str, kernel: str | None) -> None:
    addr = kernel_address(host)
    assert (None if addr is None else str(addr)) == kernel


def test_rules_refuse_what_nft_would_misread() -> None:
    with pytest.raises(ValueError, match="table name"):
        NftRules((5060,), table="pbx; flush ruleset")
    with pytest.raises(ValueError, match="ports"):
        NftRules(())
    with pytest.raises(ValueError, match="ports"):
        NftRules((70000,))


# --- batching, failures and fallback (a fake nft) -----------------------------------------

class FakeNft:
    """Stands in for NftablesFirewall.nft: records scripts, fails on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.refuse: Callable[[tuple[str, ...], str | None], bool] = lambda _a, _s: False

    async def __call__(self, *args: str, script: str | None = None) -> str:
        self.calls.append((args, script))
        await self.gate.wait()
        if self.refuse(args, script):
            raise FirewallError("Error: Could not process rule: No such file or directory")
        return ""


def fake_firewall() -> tuple[NftablesFirewall, FakeNft]:
    """A started NftablesFirewall whose nft is a FakeNft."""
    fw = NftablesFirewall(RULES)
    fake = FakeNft()
    fw.nft = fake  # type: ignore[method-assign]
    fw.started = True
    return fw, fake


@pytest.mark.timeout(10)
async def test_a_burst_of_bans_is_one_nft_run_in_order() -> None:
    fw, fake = fake_firewall()
    fake.gate.clear()  # the first ban holds nft while the others queue up
    first = asyncio.create_task(fw.ban("198.51.100.1", 60))
    while not fake.calls:
        await asyncio.sleep(0)
    rest = [asyncio.create_task(fw.ban(f"198.51.100.{i}", 60)) for i in (2, 3, 4)]
    unban = asyncio.create_task(fw.unban("198.51.100.2"))
    while len(fw._pending) < 4:
        await asyncio.sleep(0)
    fake.gate.set()
    assert await asyncio.gather(first, *rest, unban) == [True] * 5
    assert len(fake.calls) == 2
    batch = fake.calls[1][1] or ""
    order = [batch.index(f"198.51.100.{i} timeout") for i in (2, 3, 4)]
    assert order == sorted(order)
    assert batch.rindex("delete element inet pbx banned4 { 198.51.100.2 }") > order[-1]


@pytest.mark.timeout(10)
async def test_one_refused_change_does_not_sink_the_others(caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    fw, fake = fake_firewall()
    fake.refuse = lambda args, script: "198.51.100.66" in (script or "")
    fake.gate.clear()
    held = asyncio.create_task(fw.ban("198.51.100.1", 60))
    while not fake.calls:
        await asyncio.sleep(0)
    bad = asyncio.create_task(fw.ban("198.51.100.66", 60))
    good = asyncio.create_task(fw.ban("198.51.100.7", 60))
    while len(fw._pending) < 2:
        await asyncio.sleep(0)
    fake.gate.set()
    with caplog.at_level(logging.WARNING):
        assert await asyncio.gather(held, bad, good) == [True, False, True]
    assert fw.errors == 1
    assert "198.51.100.66" in caplog.text and "No such file" in caplog.text
    # The failed batch, a look for the table (there), then the two changes one by one.
    assert [args[0] for args, _ in fake.calls[1:]] == ["-f", "list", "-f", "-f"]


@pytest.mark.timeout(10)
async def test_a_table_removed_from_outside_is_put_back() -> None:
    fw, fake = fake_firewall()
    gone = [True]

    def refuse(args: tuple[str, ...], script: str | None) -> bool:
        if script is not None and script.startswith("add table"):
            gone[0] = False  # the setup script recreates it
            return False
        return gone[0]

    fake.refuse = refuse
    assert await fw.ban("198.51.100.9", 60)
    scripts = [script or " ".join(args) for args, script in fake.calls]
    assert scripts[1] == "list table inet pbx"
    assert scripts[2] == RULES.setup()
    assert "198.51.100.9 timeout 60s" in scripts[3]


@pytest.mark.timeout(10)
async def test_nothing_reaches_nft_when_stopped_or_for_loopback() -> None:
    fw, fake = fake_firewall()
    assert not await fw.ban("127.0.0.1", 60)
    assert not await fw.ban("198.51.100.9", 0)  # a ban that is already over
    fw.started = False
    assert not await fw.ban("198.51.100.9", 60)
    assert fake.calls == []


@pytest.mark.timeout(10)
async def test_the_setting_picks_the_firewall(caplog: pytest.LogCaptureFixture) -> None:
    off = await open_firewall("off", (5060,))
    assert isinstance(off, NullFirewall) and off.name == "in-process"
    with caplog.at_level(logging.INFO):
        auto = await open_firewall("auto", (5060,), command=["/nonexistent/nft"])
    assert isinstance(auto, NullFirewall)
    assert "not found" in auto.reason and "in-process" in caplog.text
    with pytest.raises(FirewallError, match="firewall = nftables"):
        await open_firewall("nftables", (5060,), command=["/nonexistent/nft"])
    with pytest.raises(ValueError, match="auto, nftables, off"):
        await open_firewall("iptables", (5060,))


class RecordingFirewall(NullFirewall):
    """Kernel-minded, so the edge hands it every ban."""

    kernel = True

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[tuple[str, str, float]] = []

    async def ban(self, host: str, seconds: float) -> bool:
        """Record it."""
        self.changes.append(("ban", host, seconds))
        return True

    async def unban(self, host: str) -> bool:
        """Record it."""
        self.changes.append(("unban", host, 0))
        return True


@pytest.mark.timeout(10)
async def test_the_edge_hands_its_bans_to_the_firewall(tmp_path: Path) -> None:
    from appliance.edge import Edge, EdgeConfig

    firewall = RecordingFirewall()
    with Database.open(tmp_path / "pbx.db") as db:
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=5060, engine_port=5080), db,
                    firewall=firewall)
        scanner = Source("UDP", "198.51.100.20", 5062)
        edge.transports.received(
            b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 198.51.100.20:5062;branch=z9hG4bK-s1\r\nMax-Forwards: 70\r\n"
            b"From: <sip:100@x>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: s1\r\n"
            b"CSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
            scanner)
        assert edge.guard.banned("198.51.100.20")
        await asyncio.wait(edge._firewall_tasks, timeout=5)
        (kind, host, seconds), = firewall.changes
        assert (kind, host) == ("ban", "198.51.100.20")
        assert 899 < seconds <= 900
        assert edge.unban("198.51.100.20")
        await asyncio.wait(edge._firewall_tasks, timeout=5)
        assert firewall.changes[-1] == ("unban", "198.51.100.20", 0)
        assert not edge.guard.banned("198.51.100.20")


# --- real nftables, in a namespace of our own ---------------------------------------------

async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    """Poll check until it holds; fail after timeout."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def ns() -> Iterator[NetNs]:
    with NetNs() as space:
        yield space


def reach(sends: list[tuple[str, str, int, str, bool]]) -> dict[str, Any]:
    """A netprobe plan: (source, destination, port, proto, expected to arrive) in order."""
    return {"mode": "reach",
            "listen": [[BOX4, 5060], [BOX4, 8080], [BOX6, 5060]],
            "sends": [{"src": s, "dst": d, "port": p, "proto": proto, "expect": e}
                      for s, d, p, proto, e in sends]}


@needs_netns
@pytest.mark.timeout(60)
async def test_the_kernel_drops_a_banned_address_and_only_its_sip(ns: NetNs) -> None:
    fw = await open_firewall("nftables", (5060,), command=ns.nft_command())
    assert isinstance(fw, NftablesFirewall)
    table = json.loads(ns.run_nft("-j", "list", "table", "inet", "pbx"))["nftables"]
    sets = {i["set"]["name"]: i["set"] for i in table if "set" in i}
    assert sets["banned4"]["flags"] == ["timeout"] and sets["banned6"]["flags"] == ["timeout"]
    chain, = (i["chain"] for i in table if "chain" in i)
    assert (chain["hook"], chain["prio"], chain["policy"]) == ("input", -10, "accept")

    assert await fw.ban(BANNED4, 600) and await fw.ban(BANNED6, 600)
    assert not await fw.ban("127.0.0.1", 600)  # loopback stays in-process
    elements = {e["host"]: e for e in await fw.elements()}
    assert set(elements) == {BANNED4, BANNED6}
    for e in elements.values():
        assert e["timeout"] == 600 and 0 < e["expires"] <= 600

    sends = [
        (BANNED4, BOX4, 5060, "udp", False),
        (BANNED4, BOX4, 5060, "tcp", False),
        (BANNED6, BOX6, 5060, "udp", False),
        (BANNED4, BOX4, 8080, "udp", True),  # not a SIP port: the web UI stays reachable
        (BANNED4, BOX4, 8080, "tcp", True),
        (OTHER4, BOX4, 5060, "udp", True),
        (OTHER4, BOX4, 5060, "tcp", True),
        (OTHER6, BOX6, 5060, "udp", True),
    ]
    got = ns.probe(reach(sends))["arrived"]
    assert got == [i for i, s in enumerate(sends) if s[4]], got
    assert await fw.dropped() >= 3  # dropped by our rules, not lost some other way

    assert await fw.unban(BANNED4)
    assert await fw.unban(BANNED4)  # already gone: still fine
    assert {e["host"] for e in await fw.elements()} == {BANNED6}
    assert ns.probe(reach([(BANNED4, BOX4, 5060, "udp", True)]))["arrived"] == [0]

    await fw.stop()
    assert "pbx" not in ns.run_nft("list", "tables")
    assert not await fw.ban(BANNED4, 600)
    await fw.stop()  # twice is harmless


@needs_netns
@pytest.mark.timeout(60)
async def test_the_kernel_lifts_a_ban_even_if_the_box_never_does(ns: NetNs) -> None:
    fw = await open_firewall("nftables", (5060,), command=ns.nft_command())
    assert isinstance(fw, NftablesFirewall)
    assert await fw.ban(BANNED4, 1)
    assert [e["host"] for e in await fw.elements()] == [BANNED4]

    async def expired() -> bool:
        return await fw.elements() == []

    await until(expired)  # nobody unbanned it: the element's timeout did
    # A second start (a restarted engine) replaces the table rather than failing on it.
    again = await open_firewall("nftables", (5060,), command=ns.nft_command())
    assert isinstance(again, NftablesFirewall)
    await again.stop()
    assert "pbx" not in ns.run_nft("list", "tables")


@needs_netns
@pytest.mark.timeout(60)
async def test_auto_falls_back_when_nft_is_not_permitted(ns: NetNs,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    unprivileged = [*ns.prefix(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", ns.nft]
    with caplog.at_level(logging.WARNING):
        fw = await open_firewall("auto", (5060,), command=unprivileged)
    assert isinstance(fw, NullFirewall)
    assert "Operation not permitted" in fw.reason
    assert len([r for r in caplog.records if "in-process" in r.getMessage()]) == 1
    with pytest.raises(FirewallError, match="Operation not permitted"):
        await open_firewall("nftables", (5060,), command=unprivileged)
    assert "pbx" not in ns.run_nft("list", "tables")


def options(src: str, src_port: int, port: int, agent: str, n: int) -> str:
    """An OPTIONS to the box from src, with the given User-Agent."""
    return (f"OPTIONS sip:{BOX4}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src}:{src_port};branch=z9hG4bK-fw{n};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@{src}>;tag=p{n}\r\nTo: <sip:{BOX4}>\r\n"
            f"Call-ID: fw-{n}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {agent}\r\n"
            "Content-Length: 0\r\n\r\n")


@needs_netns
@pytest.mark.timeout(90)
def test_a_running_box_bans_a_scanner_in_the_kernel(ns: NetNs, settings: Settings,
                                                     unix_dir: Path, tmp_path: Path) -> None:
    s = dataclasses.replace(settings, sip_bind="0.0.0.0", firewall="nftables")
    engine = EngineProcess(s, unix_dir / "notify", log_path=tmp_path / "engine.log",
                           prefix=ns.prefix())
    try:
        engine.wait_ready()
        sip = control(s.control_socket, "GET", "/status")["sip"]
        assert (sip["firewall"], sip["firewall_errors"]) == ("nftables", 0)

        def ask(src: str, src_port: int, agent: str, n: int, wait: float) -> str | None:
            reply: str | None = ns.probe({
                "mode": "sip", "src": src, "src_port": src_port, "dst": BOX4,
                "port": s.sip_port, "message": options(src, src_port, s.sip_port, agent, n),
                "wait": wait})["reply"]
            return reply

        assert ask(OTHER4, 5071, "Yealink SIP-T46U", 1, 10) == "SIP/2.0 200 OK"
        assert ask(BANNED4, 5072, "friendly-scanner", 2, 0) is None

        def nft_json(*args: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = json.loads(ns.run_nft("-j", *args))["nftables"]
            return items

        def banned() -> list[dict[str, Any]]:
            return [e["elem"] for i in nft_json("list", "set", "inet", "pbx", "banned4")
                    for e in i.get("set", {}).get("elem", [])]

        def dropped() -> int:
            return sum(x["counter"]["packets"] for i in nft_json("list", "chain", "inet", "pbx",
                                                                  "input")
                       for x in i.get("rule", {}).get("expr", []) if "counter" in x)

        deadline = time.monotonic() + 10
        while not banned():
            assert time.monotonic() < deadline, "the ban never reached the kernel"
            time.sleep(0.05)
        elem, = banned()
        assert elem["val"] == BANNED4 and 899 <= elem["timeout"] <= s.sip_ban_seconds
        assert [b["host"] for b in control(s.control_socket, "GET", "/bans")] == [BANNED4]

        before = dropped()
        ask(BANNED4, 5073, "Yealink SIP-T46U", 3, 0)  # a polite request: the kernel drops it
        deadline = time.monotonic() + 10
        while dropped() == before:
            assert time.monotonic() < deadline, "the kernel did not drop the banned request"
            time.sleep(0.05)
        assert ask(OTHER4, 5074, "Yealink SIP-T46U", 4, 10) == "SIP/2.0 200 OK"

        code, _seconds = engine.terminate()
        assert code == 0
        assert "pbx" not in ns.run_nft("list", "tables")  # a clean stop removes the table
    finally:
        engine.close()
