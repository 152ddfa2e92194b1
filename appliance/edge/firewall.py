"""Kernel enforcement of the edge's bans: an nftables set, or in-process only.

Where nftables is there and we may use it (the image), a banned address goes
into a set of our own table and the kernel drops its SIP traffic before it
costs the edge anything; each element carries the ban's timeout, so the
kernel lifts it even if the engine dies. Elsewhere (a laptop, a container,
no CAP_NET_ADMIN) `NullFirewall` stands in and the edge's `Guard` alone
enforces bans, as it always does anyway. Only the SIP ports are filtered,
so a ban never locks anyone out of SSH or the web UI.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MODES = ("auto", "nftables", "off")
NFT_TIMEOUT_S = 5.0
# Bounds the kernel memory a flood of bans (say, one per IPv6 address) can take; past it
# an add fails, is logged, and the in-process ban still holds.
SET_SIZE = 65536

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FirewallError(RuntimeError):
    """nft is missing, not permitted, or refused a command (nft's own message)."""


class Firewall(Protocol):
    """Where bans are enforced besides the edge itself."""

    name: str  # "nftables" or "in-process", as GET /status shows it
    reason: str  # why bans are in-process only ("" for nftables)
    kernel: bool
    errors: int

    async def start(self) -> None:
        """Get ready; FirewallError if this firewall cannot work here."""

    async def stop(self) -> None:
        """Remove everything this firewall put into the system."""

    async def ban(self, host: str, seconds: float) -> bool:
        """Drop host's SIP traffic for seconds; True if the kernel now does."""

    async def unban(self, host: str) -> bool:
        """Stop dropping host's SIP traffic; True if the kernel was told."""


class NullFirewall:
    """No kernel enforcement: the edge's in-process bans are all there is."""

    name = "in-process"
    kernel = False

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        self.errors = 0

    async def start(self) -> None:
        """Nothing to set up."""

    async def stop(self) -> None:
        """Nothing to remove."""

    async def ban(self, host: str, seconds: float) -> bool:
        """Nothing to do: the edge drops the host's requests itself."""
        return False

    async def unban(self, host: str) -> bool:
        """Nothing to do."""
        return False


def kernel_address(host: str) -> Address | None:
    """The address to put into the kernel set, or None where the ban stays in-process.

    Loopback stays in-process: the engine reaches the edge from 127.0.0.1, and a kernel
    ban of it (a test scanner on the box itself) would cut the engine off from its phones.
    """
    try:
        addr: Address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 peers so; their packets are IPv4 in the kernel.
        addr = addr.ipv4_mapped
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast:
        return None
    return addr


@dataclass(frozen=True)
class NftRules:
    """The nft scripts for our table (pure, so they are tested without nft)."""

    ports: tuple[int, ...]
    table: str = "pbx"
    set_size: int = SET_SIZE

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", self.table):
            raise ValueError(f"not an nft table name: {self.table!r}")
        if not self.ports or not all(0 < p < 65536 for p in self.ports):
            raise ValueError(f"SIP ports must be 1-65535: {self.ports!r}")

    def set_for(self, addr: Address) -> str:
        """The set an address belongs in."""
        return "banned4" if addr.version == 4 else "banned6"

    def setup(self) -> str:
        """Our table afresh, in one transaction (whatever an earlier run left is replaced).

        Bans are not persisted by the engine, so a table left by a crash would keep bans
        that GET /bans no longer shows; starting empty keeps kernel and edge in agreement.
        Priority -10 runs before the usual filter chains, so a distribution's own ruleset
        cannot accept the traffic first; the policy stays accept, so we only ever drop.
        """
        ports = ", ".join(str(p) for p in sorted(set(self.ports)))
        t = f"inet {self.table}"
        return (
            f"add table {t}\n"
            f"delete table {t}\n"
            f"table {t} {{\n"
            f"  set banned4 {{ type ipv4_addr; size {self.set_size}; flags timeout; }}\n"
            f"  set banned6 {{ type ipv6_addr; size {self.set_size}; flags timeout; }}\n"
            f"  chain input {{\n"
            f"    type filter hook input priority -10; policy accept;\n"
            f"    ip saddr @banned4 meta l4proto {{ tcp, udp }} th dport {{ {ports} }}"
            f" counter drop\n"
            f"    ip6 saddr @banned6 meta l4proto {{ tcp, udp }} th dport {{ {ports} }}"
            f" counter drop\n"
            f"  }}\n"
            f"}}\n"
        )

    def teardown(self) -> str:
        """Remove our table; adding it first makes this succeed when it is already gone."""
        return f"add table inet {self.table}\ndelete table inet {self.table}\n"

    def ban(self, addr: Address, seconds: float) -> str:
        """Add addr with a timeout, replacing an element that is already there.

        `add` leaves an existing element's timeout alone, so a second ban would not be
        extended: add, delete and add again (one transaction) always sets the new one.
        """
        elem = f"element inet {self.table} {self.set_for(addr)} {{ {addr} }}"
        timeout = max(1, math.ceil(seconds))
        timed = f"element inet {self.table} {self.set_for(addr)} {{ {addr} timeout {timeout}s }}"
        return f"add {elem}\ndelete {elem}\nadd {timed}\n"

    def unban(self, addr: Address) -> str:
        """Remove addr; adding it first makes the delete succeed when it has expired."""
        elem = f"element inet {self.table} {self.set_for(addr)} {{ {addr} }}"
        return f"add {elem}\ndelete {elem}\n"


def find_nft() -> str | None:
    """The nft binary; /usr/sbin is searched too (a user's PATH often lacks it)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return shutil.which("nft", path=path)


class NftablesFirewall:
    """Bans as elements of our own nftables sets, with the kernel expiring them."""

    name = "nftables"
    kernel = True
    reason = ""

    def __init__(self, rules: NftRules, command: Sequence[str] = ("nft",),
                 timeout_s: float = NFT_TIMEOUT_S) -> None:
        self.rules = rules
        # A prefix such as `ip netns exec NS nft` lets tests keep the host's firewall untouched.
        self.command = tuple(command)
        self.timeout_s = timeout_s
        self.started = False
        self.errors = 0
        self._lock = asyncio.Lock()
        self._pending: list[tuple[str, asyncio.Future[bool]]] = []

    async def start(self) -> None:
        """Create our table afresh; FirewallError if nft is missing or not permitted."""
        async with self._lock:
            await self.nft("-f", "-", script=self.rules.setup())
            self.started = True

    async def stop(self) -> None:
        """Remove our table and every ban in it; failures are logged."""
        async with self._lock:
            if not self.started:
                return
            self.started = False
            try:
                await self.nft("-f", "-", script=self.rules.teardown())
            except FirewallError as exc:
                self.errors += 1
                log.warning("firewall: could not remove table inet %s: %s", self.rules.table, exc)

    async def ban(self, host: str, seconds: float) -> bool:
        """Drop host's SIP traffic in the kernel for seconds; False if it stays in-process."""
        addr = kernel_address(host)
        if addr is None or seconds <= 0:
            return False
        return await self._submit(self.rules.ban(addr, seconds))

    async def unban(self, host: str) -> bool:
        """Remove host from the set; False if nft refused (logged)."""
        addr = kernel_address(host)
        if addr is None:
            return False
        return await self._submit(self.rules.unban(addr))

    async def elements(self) -> list[dict[str, Any]]:
        """The set elements: {"host", "timeout", "expires"} (seconds, as nft reports them)."""
        out: list[dict[str, Any]] = []
        for name in ("banned4", "banned6"):
            doc = json.loads(await self.nft("-j", "list", "set", "inet", self.rules.table, name))
            for item in doc.get("nftables", []):
                for elem in item.get("set", {}).get("elem", []):
                    e = elem.get("elem", elem) if isinstance(elem, dict) else {"val": elem}
                    out.append({"host": str(e.get("val")), "timeout": e.get("timeout"),
                                "expires": e.get("expires")})
        return out

    async def dropped(self) -> int:
        """Packets the kernel has dropped for our bans (the rules' counters)."""
        doc = json.loads(await self.nft("-j", "list", "chain", "inet", self.rules.table, "input"))
        total = 0
        for item in doc.get("nftables", []):
            for expr in item.get("rule", {}).get("expr", []):
                if isinstance(expr, dict) and "counter" in expr:
                    total += int(expr["counter"].get("packets", 0))
        return total

    async def nft(self, *args: str, script: str | None = None) -> str:
        """Run nft off the event loop; its output, or FirewallError with nft's message."""
        argv = [*self.command, *args]
        run = functools.partial(subprocess.run, argv, input=script, capture_output=True,
                                text=True, timeout=self.timeout_s, check=False)
        try:
            # An executor thread, not asyncio's subprocess support: on 3.11 that waits in a
            # thread of its own, which pjsua2 does not know and gc may run in (pjsua2-notes).
            done = await asyncio.get_running_loop().run_in_executor(None, run)
        except FileNotFoundError:
            raise FirewallError(f"{argv[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise FirewallError(f"nft did not answer within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise FirewallError(f"{argv[0]}: {exc}") from None
        if done.returncode != 0:
            raise FirewallError(_nft_message(done.stderr) or f"nft exited {done.returncode}")
        return done.stdout

    async def _submit(self, script: str) -> bool:
        """Queue one change; whoever holds the lock applies everything queued in one go.

        A burst of bans (a scanner farm) then costs one nft run rather than one each,
        and changes reach the kernel in the order they were made.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((script, future))
        async with self._lock:
            if not future.done():
                batch, self._pending = self._pending, []
                try:
                    await self._apply(batch)
                finally:
                    for _, f in batch:  # cancelled halfway: the rest count as not applied
                        if not f.done():
                            f.set_result(False)
        return future.result()

    async def _apply(self, batch: list[tuple[str, asyncio.Future[bool]]]) -> None:
        if not self.started:
            return
        try:
            await self.nft("-f", "-", script="".join(s for s, _ in batch))
        except FirewallError:
            pass  # retried below, one by one, so one bad change does not sink the rest
        else:
            for _, f in batch:
                f.set_result(True)
            return
        await self._restore_if_gone()
        for script, f in batch:
            try:
                await self.nft("-f", "-", script=script)
            except FirewallError as exc:
                self.errors += 1
                log.warning("firewall: nft refused %r: %s", script.splitlines()[-1], exc)
                f.set_result(False)
            else:
                f.set_result(True)

    async def _restore_if_gone(self) -> None:
        """Put our table back if someone removed it (`nft flush ruleset` in nftables.conf)."""
        try:
            await self.nft("list", "table", "inet", self.rules.table)
            return
        except FirewallError:
            pass
        log.warning("firewall: table inet %s was removed from outside; creating it again "
                    "(bans made before that are enforced in-process only)", self.rules.table)
        try:
            await self.nft("-f", "-", script=self.rules.setup())
        except FirewallError as exc:
            self.errors += 1
            log.warning("firewall: could not recreate table inet %s: %s", self.rules.table, exc)


def _nft_message(stderr: str) -> str:
    """The line of nft's complaint that says what went wrong."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "Error:" in line:  # "/dev/stdin:1:1-19: Error: ..." for a script
            return line[line.index("Error:"):]
    return lines[0] if lines else ""


async def open_firewall(mode: str, ports: Sequence[int], *,
                        command: Sequence[str] | None = None, table: str = "pbx") -> Firewall:
    """The started firewall the setting asks for; 'auto' falls back to in-process bans."""
    if mode not in MODES:
        raise ValueError(f"firewall must be one of {', '.join(MODES)}: {mode!r}")
    if mode == "off":
        log.info("firewall: off (firewall = off); bans are enforced in-process")
        return NullFirewall("off in the settings")
    if not any(0 < p < 65536 for p in ports):  # port 0 (any free one) cannot be filtered
        return NullFirewall("no fixed SIP port to filter")
    if command is None:
        nft = find_nft()
        if nft is None:
            if mode == "nftables":
                raise FirewallError("firewall = nftables, but nft is not installed")
            log.info("firewall: nft is not installed; bans are enforced in-process")
            return NullFirewall("nft is not installed")
        command = (nft,)
    fw = NftablesFirewall(NftRules(tuple(p for p in ports if 0 < p < 65536), table), command)
    try:
        await fw.start()
    except FirewallError as exc:
        if mode == "nftables":
            raise FirewallError(f"firewall = nftables, but nft failed: {exc}") from None
        # Said once, at start: the edge keeps enforcing every ban itself.
        log.warning("firewall: cannot use nftables (%s); bans are enforced in-process", exc)
        return NullFirewall(f"nftables not usable: {exc}")
    log.info("firewall: bans go into nftables table inet %s (SIP ports %s)", table,
             ", ".join(str(p) for p in fw.rules.ports))
    return fw
