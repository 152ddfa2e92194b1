"""SIP trunks and FXO gateways in the edge: registration, calls in, calls out.

The edge is the box's only SIP socket, so trunks live here, beside the phones.
`Trunks` runs the I/O on the edge's event loop; the decisions are pure and tested on
their own: `trunkreg.py` (registering to a provider), `trunkcalls.py` (channels and the
SIP rewrites of calls through a line), `trunkconf.py` (the configuration snapshot, DIDs).

**Registration.** Each `sip_trunk` with `registration: true` (and each `fxo_gateway`
with `registration: true`) gets a `Registration` that REGISTERs to its host, or through
its `outbound_proxy`, over its `transport` (udp or tcp; tls is refused as unsupported).
Host names are resolved (A/AAAA) at start, on reload and every `RESOLVE_S`. A reload
re-registers changed lines, un-registers removed ones (REGISTER with Expires: 0) and never
touches calls in progress. `GET /trunks` shows each line's state.

**Header contract with the engine** (on loopback only; the edge strips every `X-PBX-*`
header arriving from outside, and every one the engine sends before a request leaves):

* Calls in: an INVITE from a line carries `X-PBX-Line: <line key>` and, when it is for a
  DID configured in `numbers` for that line, `X-PBX-Number: <DID in E.164>`. A trunk call
  is accepted without digest only when it comes from the line's address (its host, its
  outbound proxy, or an address in `options.inbound_hosts`) and its Request-URI (else
  its To) is one of the line's DIDs, normalised to E.164 with the box's country; anything
  else goes through the ordinary digest challenge, as from any stranger (toll-fraud
  guard). An FXO gateway that registers to the box authenticates its INVITEs like a phone
  (`X-PBX-Line` always; `X-PBX-Number` its DID when named, or its only one).
* Calls out: an INVITE from the engine with `X-PBX-Line: <line key>` goes to that line,
  to `sip:<Request-URI user>@<host>`. `X-PBX-Caller-Id: <number>` (optional) becomes the
  From user, else the line's username; the From domain is `from_domain`, else the host.
  Answered at once, never sent: 404 for an unknown line, 503 when the line is
  unregistered or failed, has no free channel (`channels`), or refused our credentials
  (so the caller fails over to the next line). The provider's 401/407 is answered by
  the edge with the line's credentials.
* The switchboard routes a DID's call through the number's call flow (`X-PBX-Number`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..sip import Request, Response
from .location import Binding
from .transport import Source
from .trunkcalls import CallChange, CallTable, TimerLimits
from .trunkconf import TrunkLine, TrunkSet, split_host_port
from .trunkreg import RegAccount, RegChange, Registration, RegState, RegTimers, Send

log = logging.getLogger(__name__)

RESOLVE_S = 300.0
START_WAIT_S = 3.0
MIN_SLEEP_S = 0.01
IDLE_S = 5.0


@dataclass(frozen=True)
class InboundCall:
    """An INVITE from a line, accepted: which line, and which DID (if named)."""

    line: TrunkLine
    number: str | None


@dataclass
class _Addresses:
    """What a line's names resolved to."""

    hop: Source | None = None  # where requests to the line go first
    sources: frozenset[str] = frozenset()  # addresses its calls may come from
    problem: str = ""  # why there is no hop


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


async def resolve(host: str) -> list[str]:
    """The IP addresses of a host name (an IP address is its own answer)."""
    if _is_ip(host):
        return [host.strip("[]")]
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class Trunks:
    """Every trunk and gateway line of the box, on the edge's event loop."""

    trunkset: TrunkSet
    send: Callable[[Request | Response, Source], None]
    local_host_toward: Callable[[str], str]
    port: int
    gateway_bindings: Callable[[str], list[Binding]]
    clock: Callable[[], float] = time.monotonic
    timers: RegTimers = field(default_factory=RegTimers)
    limits: TimerLimits = field(default_factory=TimerLimits)
    resolver: Callable[[str], Any] = resolve

    def __post_init__(self) -> None:
        self.calls = CallTable(self.clock, self.limits)
        self.registrations: dict[str, Registration] = {}
        # Registrations of removed lines, kept until their un-REGISTER is answered.
        self._leaving: list[Registration] = []
        self._hops: dict[int, Source] = {}  # id(registration) -> where it sends
        self.addresses: dict[str, _Addresses] = {}
        self._by_source: dict[str, list[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._ready = asyncio.Event()  # the first resolution is done
        self._next_resolve = -math.inf
        self.stats = {"trunk_calls_in": 0, "trunk_calls_out": 0, "trunk_refused": 0,
                      "trunk_auth_answered": 0}

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Resolve every line's host and start the registrations.

        Waits at most `START_WAIT_S` for the first resolution (a host name whose DNS is
        down must not hold the box's start); the loop carries on with it.
        """
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="edge-trunks")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), START_WAIT_S)

    async def stop(self, timeout: float = 1.0) -> None:
        """Un-register from every provider (waiting briefly for the answers), then stop."""
        for reg in self.registrations.values():
            self._do(reg, reg.stop())
        self._leaving.extend(self.registrations.values())
        self.registrations.clear()
        deadline = self.clock() + timeout
        while any(r.in_flight for r in self._leaving) and self.clock() < deadline:
            await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def reload(self, trunkset: TrunkSet) -> None:
        """Take a new configuration: changed lines re-register, removed ones un-register."""
        self.trunkset = trunkset
        await self._resolve_all()
        self._apply_registrations()
        self._kick.set()

    def _apply_registrations(self) -> None:
        wanted: dict[str, RegAccount] = {}
        for line in self.trunkset.lines.values():
            account = self._account(line)
            if account is not None:
                wanted[line.key] = account
        for key, reg in list(self.registrations.items()):
            account = wanted.get(key)
            if account == reg.account and self._local(key) == reg.local:
                hop = self.addresses.get(key, _Addresses()).hop
                if hop is not None:
                    self._hops[id(reg)] = hop  # the name may resolve elsewhere now
                continue
            del self.registrations[key]
            self._leaving.append(reg)
            if account is None or (account.registrar, account.aor) \
                    != (reg.account.registrar, reg.account.aor):
                # Un-registered only where the new registration cannot clash with it: an
                # un-REGISTER for the same address-of-record could overtake the new
                # REGISTER and remove the binding it just made.
                self._do(reg, reg.stop())
            log.info("trunk %s: %s", key, "removed" if account is None
                     else "settings changed, registering again")
        for key, account in wanted.items():
            if key not in self.registrations:
                local = self._local(key)
                if local is None:
                    continue  # not resolved yet: the next round tries again
                reg = Registration(account, local, self.clock, self.timers)
                self.registrations[key] = reg
                hop = self.addresses.get(key, _Addresses()).hop
                assert hop is not None  # _local found one
                self._hops[id(reg)] = hop
                self._do(reg, reg.start())

    def _account(self, line: TrunkLine) -> RegAccount | None:
        if not line.register or not line.host or not line.username:
            return None
        if line.transport not in ("UDP", "TCP"):
            return None
        return RegAccount(
            key=line.key, registrar=line.uri(None),
            aor=f"sip:{line.username}@{line.from_domain or line.host}",
            contact_user=line.contact_user or line.username, username=line.auth_user,
            password=line.secret or "", transport=line.transport, expires=line.expires,
            route=line.route())

    def _local(self, key: str) -> tuple[str, int] | None:
        hop = self.addresses.get(key, _Addresses()).hop
        if hop is None:
            return None
        return self.local_host_toward(hop.host), self.port

    # --- resolution --------------------------------------------------------------------
    async def _resolve_all(self) -> None:
        found: dict[str, _Addresses] = {}
        for line in self.trunkset.lines.values():
            found[line.key] = await self._resolve_line(line)
        self.addresses = found
        by_source: dict[str, list[str]] = {}
        for key, addrs in found.items():
            for host in addrs.sources:
                by_source.setdefault(host, []).append(key)
        self._by_source = by_source
        self._next_resolve = self.clock() + RESOLVE_S

    async def _resolve_line(self, line: TrunkLine) -> _Addresses:
        out = _Addresses()
        if line.transport not in ("UDP", "TCP"):
            out.problem = f"transport {line.transport.lower()} is not supported yet"
        names = [h for h in (line.host,) if h]
        if line.outbound_proxy:
            names.append(split_host_port(line.outbound_proxy)[0])
        names.extend(line.inbound_hosts)
        sources: set[str] = set()
        for name in names:
            try:
                sources.update(await self.resolver(name))
            except OSError as exc:
                log.warning("trunk %s: cannot resolve %s: %s", line.key, name, exc)
                out.problem = out.problem or f"cannot resolve {name}"
        out.sources = frozenset(sources)
        hop = line.next_hop()
        if hop is not None and not out.problem:
            host, port, transport = hop
            try:
                ips = await self.resolver(host)
            except OSError:
                ips = []
            if ips:
                out.hop = Source(transport, ips[0], port)
            else:
                out.problem = f"cannot resolve {host}"
        return out

    # --- the loop ----------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                if self.clock() >= self._next_resolve:
                    await self._resolve_all()
                    self._apply_registrations()
                    self._ready.set()
                wake = self.tick()
            except Exception:
                log.exception("edge: trunk round failed")
                wake = self.clock() + IDLE_S
            self._kick.clear()
            delay = max(MIN_SLEEP_S, min(wake, self._next_resolve) - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), delay)

    def tick(self) -> float:
        """Do what is due; returns the clock time of the next thing to do."""
        for reg in [*self.registrations.values(), *self._leaving]:
            self._do(reg, reg.run())
        for reg in [r for r in self._leaving if not r.in_flight]:
            self._leaving.remove(reg)
            self._hops.pop(id(reg), None)
        for change in self.calls.expire():
            self._call_changed(change)
        times = [t for reg in [*self.registrations.values(), *self._leaving]
                 if (t := reg.next_wakeup()) is not None]
        deadline = self.calls.next_deadline()
        if deadline is not None:
            times.append(deadline)
        return min(times, default=self.clock() + IDLE_S)

    def _do(self, reg: Registration, actions: Iterable[Send | RegChange]) -> None:
        for action in actions:
            if isinstance(action, Send):
                hop = self._hops.get(id(reg))
                if hop is not None:
                    self.send(action.request, hop)
            else:
                level = logging.WARNING if action.after is RegState.FAILED else logging.INFO
                log.log(level, "trunk %s: %s (was %s): %s %s", action.key, action.after.value,
                        action.before.value, action.code or "", action.reason)
        self._kick.set()

    def response(self, resp: Response) -> bool:
        """Take an answer to one of our REGISTERs; False if it is not one."""
        via = resp.top_via
        branch = via.branch if via is not None else None
        if not branch:
            return False
        for reg in [*self.registrations.values(), *self._leaving]:
            if reg.owns(branch):
                self._do(reg, reg.response(resp))
                return True
        return branch.startswith("z9hG4bKtr-")  # a late answer to one of ours: drop it

    # --- calls -------------------------------------------------------------------------
    def is_line_address(self, host: str) -> bool:
        """Whether calls from this address may be a line's (never rate-limited)."""
        return host in self._by_source

    def inbound(self, req: Request, source: Source) -> InboundCall | None:
        """The line an unauthenticated INVITE comes from, if it names one of its DIDs."""
        for key in self._by_source.get(source.host, ()):
            line = self.trunkset.lines.get(key)
            if line is None:
                continue
            number = self.trunkset.match_did(line, req)
            if number is not None:
                return InboundCall(line, number)
        return None

    def usable(self, line: TrunkLine) -> str | None:
        """Why calls cannot go out through a line now (None: they can)."""
        reg = self.registrations.get(line.key)
        if line.register:
            if reg is None:
                return self.addresses.get(line.key, _Addresses()).problem or "not registered"
            if not reg.usable():
                return f"registration {reg.state.value}"
            return None
        if line.gateway_registers and line.username and not line.host:
            if not self.gateway_bindings(line.username):
                return "the gateway is not registered"
            return None
        addrs = self.addresses.get(line.key, _Addresses())
        return addrs.problem or (None if addrs.hop else "no address")

    def hop(self, line: TrunkLine) -> Source | None:
        """Where requests to the line go now."""
        return self.addresses.get(line.key, _Addresses()).hop

    def call_changed(self, change: CallChange | None) -> None:
        """Log a call's state change (and count it)."""
        if change is not None:
            self._call_changed(change)

    def _call_changed(self, change: CallChange) -> None:
        log.info("trunk %s: call %s %s (was %s): %s; %d channel(s) in use", change.line,
                 change.call_id[:24], change.after.value, change.before.value, change.why,
                 self.calls.count(change.line))

    # --- reading -----------------------------------------------------------------------
    def routing_status(self) -> dict[str, dict[str, Any]]:
        """Each line as outbound routing weighs it: up, free channels, registered.

        `registered` is None for lines that do not register (IP-authenticated, or a
        gateway that registers to the box: `up` says whether it is there).
        """
        out: dict[str, dict[str, Any]] = {}
        for line in self.trunkset.lines.values():
            reg = self.registrations.get(line.key)
            out[line.key] = {
                "up": self.usable(line) is None,
                "free_channels": max(0, line.channels - self.calls.count(line.key)),
                "registered": (reg is not None and reg.usable()) if line.register else None,
            }
        return out

    def snapshot(self) -> list[dict[str, Any]]:
        """Every line's registration and channels, for `GET /trunks`."""
        now = self.clock()
        out = []
        for line in self.trunkset.lines.values():
            reg = self.registrations.get(line.key)
            addrs = self.addresses.get(line.key, _Addresses())
            item: dict[str, Any] = {
                "line": line.key, "kind": line.kind, "host": line.host,
                "transport": line.transport.lower(), "channels": line.channels,
                "calls": self.calls.count(line.key), "dids": list(line.dids),
                "usable": self.usable(line) is None, "problem": self.usable(line),
            }
            if line.register:
                status = reg.status() if reg is not None else None
                item.update(
                    mode="register",
                    state=status.state.value if status else RegState.UNREGISTERED.value,
                    last_code=status.last_code if status else None,
                    last_reason=(status.last_reason if status else addrs.problem) or "",
                    expires=(round(status.expires_at - now)
                             if status and status.expires_at is not None else None),
                    next_retry=(round(max(0.0, status.next_attempt - now), 1)
                                if status and status.next_attempt is not None
                                and status.state is RegState.FAILED else None),
                    next_register=(round(max(0.0, status.next_attempt - now), 1)
                                   if status and status.next_attempt is not None else None),
                    failures=status.failures if status else 0,
                    registrations=status.successes if status else 0)
            elif line.gateway_registers:
                bound = self.gateway_bindings(line.username or "")
                item.update(mode="registers_to_box",
                            state=(RegState.REGISTERED if bound
                                   else RegState.UNREGISTERED).value,
                            contacts=[b.contact for b in bound])
            else:
                item.update(mode="ip", state="ip_authenticated")
            out.append(item)
        return out
