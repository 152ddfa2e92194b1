"""The SIP edge: the only thing on the network for SIP (DESIGN.md section 3).

It registers phones (digest auth), keeps the location table, and proxies
statelessly between the outside and the call engine on loopback, record-
routing every dialog through itself with a flow token. Requests from the
outside are authenticated before anything reaches the engine. SIP trunks and
FXO gateways are handled here too (`trunks.py`, whose docstring holds the
X-PBX-* header contract between the edge and the engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..db import Database
from ..sip import (
    Header,
    NonceManager,
    Request,
    Response,
    SipParseError,
    SipUri,
    make_response,
    parse_uri,
    torture_response,
)
from ..sip.digest_client import pick_challenge
from ..sip.headers import Via
from .firewall import Firewall, NullFirewall
from .keepalive import Keepalive, KeepaliveConfig
from .location import Binding, LocationTable
from .proxy import (
    FlowTokens,
    branch_for,
    decrement_max_forwards,
    own_route,
    received_via,
    record_route,
    response_destination,
)
from .registrar import Authenticator, AuthVerdict, Devices, Registrar, load_devices
from .security import Ban, Guard, GuardConfig
from .subscriptions import SubscriptionConfig, Subscriptions
from .transport import Source, Transports
from .trunkcalls import (
    CallState,
    TimerLimits,
    TrunkCall,
    ack_for,
    cancel_for,
    clean_caller_id,
    gateway_uri,
    outbound_invite,
    show_caller,
    strip_private,
    target_user,
    to_engine,
    to_trunk,
    with_credentials,
)
from .trunkconf import TrunkLine, TrunkSet, load_trunks, with_gateways
from .trunkreg import RegTimers
from .trunks import Trunks

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
# How long an authenticated request's retransmissions are recognised (Timer B/F).
RETRANSMIT_WINDOW_S = 32.0
MAX_REMEMBERED = 4096
# Headers only the edge may set on requests towards the engine (every X-PBX-* header
# from outside is stripped; these are the ones the engine acts on).
TRUSTED_HEADERS = ("X-PBX-Device", "X-PBX-Hairpin", "X-PBX-Line", "X-PBX-Number")


@dataclass(frozen=True)
class EdgeConfig:
    """Where the edge listens and where the engine is."""

    bind: str
    port: int
    engine_port: int
    nonce_ttl_s: float = 300.0
    guard: GuardConfig = field(default_factory=GuardConfig)
    keepalive_s: float = 30.0  # OPTIONS to every binding this often; 0: never
    subscriptions: SubscriptionConfig = field(default_factory=SubscriptionConfig)
    trunk_timers: RegTimers = field(default_factory=RegTimers)
    trunk_limits: TimerLimits = field(default_factory=TimerLimits)


def _is_local_ip(host: str) -> bool:
    """True if host is an IP address of this machine (binding to it succeeds)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return False
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


class Edge:
    """Registrar + proxy in front of the engine."""

    def __init__(self, config: EdgeConfig, db: Database,
                 clock: Callable[[], float] = time.time, secret: bytes | None = None,
                 firewall: Firewall | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        # The kernel's copy of the bans where nftables is usable; the guard enforces them
        # in-process either way (and alone where it is not).
        self.firewall: Firewall = firewall or NullFirewall()
        self._firewall_tasks: set[asyncio.Task[bool]] = set()
        self.db = db
        self.clock = clock
        key = secret or secrets.token_bytes(32)
        self.location = LocationTable(clock)
        self.trunkset: TrunkSet = load_trunks(db)
        self.devices: Devices = with_gateways(load_devices(db), self.trunkset)
        self.nonces = NonceManager(key, ttl_s=config.nonce_ttl_s, clock=clock)
        self.auth = Authenticator(self.nonces, lambda: self.devices)
        self.registrar = Registrar(self.location, clock, on_change=self._binding_changed)
        self.tokens = FlowTokens(key)
        self.transports = Transports(self.handle)
        self.engine = Source("UDP", "127.0.0.1", config.engine_port)
        # Keepalive timers run on a monotonic clock: the wall clock of a box without an
        # RTC jumps when NTP first sets it, which would time out every probe at once.
        self.keepalive = Keepalive(
            KeepaliveConfig(interval_s=config.keepalive_s), self.location,
            lambda req, dest: self.transports.send(req, dest), self.local_host_toward,
            config.port, clock=monotonic)
        # Busy lamps and voicemail lamps: the edge is the notifier (edge/subscriptions.py).
        self.subscriptions = Subscriptions(
            config.subscriptions, lambda: self.devices,
            lambda req, dest: self.transports.send(req, dest), config.port, clock=monotonic)
        # SIP trunks and FXO gateways: registrations, channels (edge/trunks.py).
        self.trunks = Trunks(
            self.trunkset, lambda msg, dest: self.transports.send(msg, dest),
            self.local_host_toward, config.port, self.location.bindings, clock=monotonic,
            timers=config.trunk_timers, limits=config.trunk_limits)
        self._flusher: asyncio.Task[None] | None = None
        self._local_ip_cache: dict[str, str] = {}
        self.guard = Guard(config.guard, clock, on_ban=self._banned)
        # Authenticated requests by transaction: a UDP retransmission carries the same
        # nonce-count, which the digest check rightly calls a replay; it must be recognised
        # as the same request, not challenged again (that would fork a second call).
        self._authenticated: OrderedDict[tuple[str, str, int, str], tuple[float, AuthVerdict]]
        self._authenticated = OrderedDict()
        self.stats = {"auth_failures": 0, "forwarded": 0, "dropped": 0, "hairpinned": 0}

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Load saved registrations and listen."""
        loaded = self.location.load(self.db.read())
        log.info("edge: %d registration(s) restored", loaded)
        await self.transports.start(self.config.bind, self.config.port)
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(),
                                                               name="edge-flush")
        self.keepalive.start()
        await self.trunks.start()

    async def stop(self) -> None:
        """Stop listening; write the last registration changes."""
        await self.trunks.stop()
        await self.keepalive.stop()
        self.subscriptions.stop()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        await self.transports.stop()
        if self._firewall_tasks:
            # Bans on their way to the kernel: give them a moment, they are logged anyway.
            _done, late = await asyncio.wait(self._firewall_tasks, timeout=1.0)
            for task in late:
                task.cancel()

    def reload(self, devices: Devices | None = None, trunks: TrunkSet | None = None) -> None:
        """Pick up changed devices and passwords (and trunks, for `reload_trunks`).

        Registrations stay, except those of devices that were removed or disabled or
        whose credentials changed: a phone holding an old password (or a removed
        device) must not keep receiving calls until its registration expires.
        """
        # The caller may read the devices off the event loop and hand them in.
        if trunks is not None:
            self.trunkset = trunks
        old = self.devices
        new = with_gateways(devices if devices is not None else load_devices(self.db),
                            self.trunkset)
        self.devices = new
        for username, before in old.by_username.items():
            after = new.by_username.get(username)
            if after is None or (after.device_id, after.realm, after.ha1_md5, after.ha1_sha256) \
                    != (before.device_id, before.realm, before.ha1_md5, before.ha1_sha256):
                for binding in self.location.bindings(username):
                    self.location.remove(binding)
                    log.info("edge: dropped the registration of %s (%s)", username,
                             "device removed" if after is None else "credentials changed")
        self.subscriptions.reload()

    async def reload_trunks(self, trunks: TrunkSet) -> None:
        """Re-register changed trunks, un-register removed ones; calls are not touched."""
        self.trunkset = trunks
        await self.trunks.reload(trunks)

    async def flush(self) -> None:
        """Write pending registration changes in one transaction."""
        if not self.location.pending():
            return
        upserts, removed = self.location.take_changes()
        await self.db.awrite(lambda conn: LocationTable.write(conn, upserts, removed))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception:
                log.exception("edge: saving registrations failed")

    @staticmethod
    def _binding_changed(what: str, binding: Binding) -> None:
        # Only changes reach the log: at a thousand phones, a line per refresh would bury
        # them (and cost the edge more than the REGISTER itself).
        src = binding.source
        if what == "removed":
            log.info("edge: %s unregistered %s", binding.username, binding.contact)
        else:
            log.info("edge: %s %s %s from %s %s:%d (%s)", binding.username,
                     "registered" if what == "new" else "moved", binding.contact,
                     src.transport, src.host, src.port, binding.user_agent or "no user agent")


    def _banned(self, ban: Ban) -> None:
        seconds = ban.until - self.clock()
        log.warning("edge: banned %s for %.0f s: %s", ban.host, seconds, ban.reason)
        self._to_firewall(self.firewall.ban(ban.host, seconds))

    def unban(self, host: str) -> bool:
        """Lift a ban in the edge and the kernel; True if the edge had one."""
        lifted = self.guard.unban(host)
        # The kernel is told even without an in-process ban: its element may outlive one.
        self._to_firewall(self.firewall.unban(host))
        return lifted

    def _to_firewall(self, change: Coroutine[Any, Any, bool]) -> None:
        """Run a firewall change in the background: the guard's callback is synchronous."""
        if not self.firewall.kernel:
            change.close()
            return
        try:
            task = asyncio.get_running_loop().create_task(change, name="edge-firewall")
        except RuntimeError:  # no event loop (unit tests driving the edge by hand)
            change.close()
            return
        self._firewall_tasks.add(task)
        task.add_done_callback(self._firewall_done)

    def _firewall_done(self, task: asyncio.Task[bool]) -> None:
        self._firewall_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Never fatal: the guard still enforces the ban in-process.
            log.error("edge: firewall change failed", exc_info=task.exception())

    def contacts_for(self, username: str) -> list[str]:
        """Contact URIs of a device's live, reachable registrations (for the engine to dial)."""
        return [b.contact for b in self.location.bindings(username) if b.reachable]

    # --- addresses ---------------------------------------------------------------------
    def local_host_toward(self, peer: str) -> str:
        """The box's own address as seen by peer (for Via and Record-Route)."""
        if self.config.bind not in ("0.0.0.0", "::"):
            return self.config.bind
        cached = self._local_ip_cache.get(peer)
        if cached:
            return cached
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((peer, 9))  # no packet is sent: this only picks a route
                host = str(probe.getsockname()[0])
        except OSError:
            host = "127.0.0.1"
        self._local_ip_cache[peer] = host
        return host

    def is_box_uri(self, text: str) -> bool:
        """Whether a URI (a transfer's Refer-To) names the box itself: its address or realm.

        Thread-safe (the engine asks from its own thread): it only reads.
        """
        try:
            uri = parse_uri(text.strip().strip("<>"))
        except SipParseError:
            return False
        if not isinstance(uri, SipUri) or not uri.user:
            return False
        host = uri.host.strip("[]")
        if (uri.port or 5060) != self.config.port:
            return False
        return host.lower() in ("localhost", self.devices.realm.lower()) or _is_local_ip(host)

    def _is_us(self, host: str, port: int | None) -> bool:
        return (port or 5060) == self.config.port and (
            host in ("127.0.0.1", "localhost", self.config.bind)
            or host in self._local_ip_cache.values())

    # --- messages ----------------------------------------------------------------------
    def handle(self, msg: Request | Response, source: Source) -> None:
        """Entry point for every parsed message."""
        try:
            if isinstance(msg, Response):
                self._response(msg, source)
            elif source == self.engine:
                self._from_engine(msg)
            else:
                self._from_outside(msg, source)
        except SipParseError as exc:
            # A header we only read now (Contact, Authorization...) is malformed.
            if isinstance(msg, Request) and msg.method != "ACK":
                self._reply(make_response(msg, 400, exc.reason[:64]), msg, source)

    def _reply(self, resp: Response, req: Request, source: Source) -> None:
        """Answer a request on the transport it came on (RFC 3261 §18.2.2)."""
        via = req.top_via
        if via is None or source.transport == "TCP":
            dest = source
        else:
            routed = response_destination(received_via(via, source))
            dest = Source("UDP", routed.host, routed.port)
        self.transports.send(resp, dest)

    def _from_outside(self, req: Request, source: Source) -> None:
        if not self.guard.admit(source.host, req.user_agent,
                                rate_limited=not self.trunks.is_line_address(source.host)):
            return  # banned, throttled or a scanner: no answer at all
        via = req.top_via
        if via is None:
            return
        req = req.with_top_via(received_via(via, source))
        verdict_code = torture_response(req)
        if verdict_code is not None:
            # Rejected before any processing: version, scheme, Max-Forwards, Require...
            self._reply(make_response(req, verdict_code), req, source)
            return
        if req.method == "REGISTER":
            # Answered here and never forwarded: Max-Forwards is only checked (483 as for
            # any request), and no header needs stripping.
            if req.max_forwards == 0:
                self._reply(make_response(req, 483), req, source)
            else:
                self._register(req, source)
            return
        forwarded = decrement_max_forwards(req)
        if forwarded is None:
            self._reply(make_response(req, 483), req, source)
            return
        req = strip_private(forwarded)

        if self.subscriptions.owns(req):
            self._subscription(req, source)
            return

        in_dialog = req.to.tag is not None or req.method in ("ACK", "CANCEL")
        routes = req.routes
        if routes and own_route(routes[0], self._our_hosts(), self.config.port):
            req = req.with_header("Route", [str(r) for r in routes[1:]]) if routes[1:] \
                else req.without_header("Route")
        elif not in_dialog and isinstance(req.uri, SipUri) and (
                req.uri.user is None or (req.method == "OPTIONS"
                                         and self.trunks.is_line_address(source.host))):
            # Addressed to the box itself: keepalive OPTIONS and the like (a provider's
            # OPTIONS name its account: the box answers them too).
            code = 200 if req.method == "OPTIONS" else 405
            if req.method != "ACK":
                self._reply(make_response(req, code), req, source)
            return
        if in_dialog and req.method == "BYE":
            self.trunks.call_changed(self.trunks.calls.end(req.call_id, "BYE from outside"))

        if not in_dialog:
            if req.method != "INVITE":
                self._reply(make_response(req, 405, headers=[
                    Header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE")]),
                    req, source)
                return
            inbound = self.trunks.inbound(req, source)
            if inbound is not None:
                # A trunk's call to one of its DIDs, from its own address: no digest.
                trunk_call = self._trunk_inbound(req, source, inbound.line, inbound.number)
                if trunk_call is None:
                    return
                req = trunk_call
            else:
                verdict = self._authenticate(req, source)
                if verdict.device is None:
                    self._refuse(verdict, req, source)
                    return
                req = req.without_header("Proxy-Authorization")
                gateway = self.trunkset.lines.get(verdict.device.line or "")
                if gateway is not None:
                    # An FXO gateway registered like a phone: a call in on its line.
                    gateway_call = self._trunk_inbound(
                        req, source, gateway, self.trunkset.gateway_number(gateway, req))
                    if gateway_call is None:
                        return
                    req = gateway_call
                else:
                    req = req.append_header("X-PBX-Device", verdict.device.username)
            host = self.local_host_toward(source.host)
            req = req.prepend_header(
                "Record-Route",
                record_route(host, self.config.port, self.tokens.encode(source),
                             source.transport))
        self._forward(req, self.engine, incoming_branch=via.branch or "")

    def _subscription(self, req: Request, source: Source) -> None:
        """A SUBSCRIBE, or a request in one of our subscriptions: the edge is the notifier."""
        device = None
        if self.subscriptions.needs_auth(req, source):
            verdict = self._authenticate(req, source)
            if verdict.device is None:
                self._refuse(verdict, req, source)
                return
            device = verdict.device
        reply = self.subscriptions.request(req, source, device,
                                           self.local_host_toward(source.host))
        if reply is not None:
            self._reply(reply, req, source)
        self.subscriptions.flush()  # the NOTIFY after the 200, never before it

    def _register(self, req: Request, source: Source) -> None:
        verdict = self._authenticate(req, source)
        if verdict.device is None:
            self._refuse(verdict, req, source)
            return
        reply = self.registrar.register(req, source, verdict.device)
        if reply.status == 200 and log.isEnabledFor(logging.DEBUG):
            log.debug("edge: %s refreshed from %s %s:%d (%s)", verdict.device.username,
                      source.transport, source.host, source.port, verdict.algorithm)
        self._reply(reply, req, source)

    def _authenticate(self, req: Request, source: Source) -> AuthVerdict:
        """Digest check, remembering successes per transaction for retransmissions."""
        via = req.top_via
        key = (via.branch or "" if via else "", req.call_id, req.cseq.number, req.method)
        now = self.clock()
        known = self._authenticated.get(key)
        if known is not None and known[0] > now:
            return known[1]
        verdict = self.auth.check(req, source)
        if verdict.device is not None:
            self._authenticated[key] = (now + RETRANSMIT_WINDOW_S, verdict)
            while len(self._authenticated) > MAX_REMEMBERED:
                self._authenticated.popitem(last=False)
        return verdict

    def _refuse(self, verdict: AuthVerdict, req: Request, source: Source) -> None:
        """Challenge, or count a failure and maybe ban (then answer nothing)."""
        if verdict.failed:
            self.stats["auth_failures"] += 1
            if self.guard.auth_failed(source.host):
                return
        assert verdict.reply is not None
        self._reply(verdict.reply, req, source)

    def _from_engine(self, req: Request) -> None:
        via = req.top_via
        if via is None:
            return
        forwarded = decrement_max_forwards(req)
        if forwarded is None:
            return
        req = forwarded
        dest: Source | None = None
        routes = req.routes
        if routes and own_route(routes[0], self._our_hosts(), self.config.port):
            token_user = routes[0].uri.user if isinstance(routes[0].uri, SipUri) else None
            dest = self.tokens.decode(token_user or "")
            req = req.with_header("Route", [str(r) for r in routes[1:]]) if routes[1:] \
                else req.without_header("Route")
        if req.method == "INVITE" and req.to.tag is None and req.header("X-PBX-Line"):
            self._trunk_outbound(req, via.branch or "")
            return
        call = self.trunks.calls.lookup(req.call_id)
        if call is not None:
            req = strip_private(req)
            if req.method == "BYE":
                self.trunks.call_changed(self.trunks.calls.end(req.call_id, "BYE from the box"))
            if call.outbound and self._trunk_in_dialog(req, call, via.branch or ""):
                return
            if call.outbound:
                req = to_trunk(req, call)
        if dest is None and req.method == "INVITE" and req.to.tag is None \
                and isinstance(req.uri, SipUri) and self._is_us(req.uri.host, req.uri.port):
            # The engine calls the box itself (a transfer's new leg): back in as a new
            # inbound call, so it is routed like any other. Unauthenticated, but only the
            # engine on loopback can send it, and the header says where it came from.
            self.stats["hairpinned"] += 1
            self._forward(req.append_header("X-PBX-Hairpin", "transfer"), self.engine,
                          incoming_branch=via.branch or "")
            return
        if dest is None:
            dest = self._resolve(req)
        if dest is None:
            log.info("edge: no route for %s %s", req.method, req.uri)
            self.stats["dropped"] += 1
            return
        if req.method == "INVITE" and req.to.tag is None:
            host = self.local_host_toward(dest.host)
            req = show_caller(req, host).prepend_header(
                "Record-Route",
                record_route(host, self.config.port, self.tokens.encode(dest), dest.transport))
        self._forward(req, dest, incoming_branch=via.branch or "")

    def _resolve(self, req: Request) -> Source | None:
        """Where an engine request without a flow token goes: a binding, else the URI."""
        uri = req.uri
        if not isinstance(uri, SipUri):
            return None
        binding = self.location.find_contact(uri.host.strip("[]"), uri.port, uri.user)
        if binding is not None:
            return binding.source
        transport = (uri.param("transport") or "udp").upper()
        return Source("TCP" if transport == "TCP" else "UDP", uri.host.strip("[]"),
                      uri.port or 5060)

    def _forward(self, req: Request, dest: Source, *, incoming_branch: str) -> Request:
        host = "127.0.0.1" if dest == self.engine else self.local_host_toward(dest.host)
        ours = Via(host=host, transport=dest.transport, port=self.config.port,
                   params=(("branch", branch_for(incoming_branch, self.tokens.secret)),
                           ("rport", None)))
        sent = req.prepend_header("Via", str(ours))
        self.transports.send(sent, dest)
        self.stats["forwarded"] += 1
        return sent

    def _response(self, resp: Response, source: Source) -> None:
        vias = resp.vias
        if len(vias) == 1 and (self.keepalive.response(resp)
                               or self.subscriptions.response(resp)
                               or self.trunks.response(resp)):
            return  # an answer to the edge's own keepalive OPTIONS, NOTIFY or REGISTER
        if len(vias) < 2 or not self._is_us(vias[0].host, vias[0].port):
            self.stats["dropped"] += 1
            return
        resp = resp.without_top_via()
        nxt = vias[1]
        if nxt.host == "127.0.0.1" and (nxt.port or 5060) == self.config.engine_port:
            dest = self.engine
            if (resp.cseq.method == "INVITE" and 101 <= resp.status < 300
                    and resp.to.tag and not resp.record_routes):
                # The far end dropped our Record-Route (some UAs and test UAS scenarios
                # do). The engine would then send BYE and re-INVITE straight to it, from
                # loopback, and the answers would come back here with the engine's Via:
                # the call's slot stayed taken until the BYE timed out (32 s). Giving the
                # engine the route the far end should have echoed keeps us in the dialog.
                resp = resp.prepend_header("Record-Route", record_route(
                    self.local_host_toward(source.host), self.config.port,
                    self.tokens.encode(source), source.transport))
        else:
            dest = response_destination(nxt)
        call = self.trunks.calls.lookup(resp.call_id)
        if call is not None:
            if call.outbound and dest == self.engine:
                if self._trunk_answer(resp, call):
                    return
                resp = to_engine(resp, call)
            elif not call.outbound and source == self.engine and resp.cseq.method == "INVITE":
                self.trunks.call_changed(self.trunks.calls.progress(resp.call_id, resp.status))
        self.transports.send(resp, dest)

    # --- trunks and gateways (edge/trunks.py has the header contract) -----------------
    def _trunk_inbound(self, req: Request, source: Source, line: TrunkLine,
                       number: str | None) -> Request | None:
        """A call in from a line: a channel taken and the trusted headers set (None: refused)."""
        new = self.trunks.calls.get(req.call_id) is None  # else a retransmission
        if self.trunks.calls.admit(req.call_id, line.key, line.channels,
                                   outbound=False) is None:
            self.trunks.stats["trunk_refused"] += 1
            log.info("edge: call in on %s refused: all %d channel(s) busy", line.key,
                     line.channels)
            self._reply(make_response(req, 503, "All Channels Busy"), req, source)
            return None
        if new:
            self.trunks.stats["trunk_calls_in"] += 1
        req = req.append_header("X-PBX-Line", line.key)
        if number is not None:
            req = req.append_header("X-PBX-Number", number)
        return req

    def _to_engine_reply(self, req: Request, code: int, reason: str) -> None:
        self.transports.send(make_response(req, code, reason), self.engine)

    def _trunk_outbound(self, req: Request, branch: str) -> None:
        """An INVITE from the engine with X-PBX-Line: out through that line."""
        key = (req.header("X-PBX-Line") or "").strip()
        line = self.trunkset.lines.get(key)
        if line is None:
            log.info("edge: the engine asked for line %r, which is not a trunk", key[:64])
            self._to_engine_reply(req, 404, "Unknown Line")
            return
        known = self.trunks.calls.get(req.call_id)
        if known is not None and known.sent is not None and known.dest is not None:
            self.transports.send(known.sent, known.dest)  # the engine's retransmission
            return
        user = target_user(req)
        problem = self.trunks.usable(line)
        if user is None or problem is not None:
            self.trunks.stats["trunk_refused"] += 1
            why = problem or "no number to dial"
            log.info("edge: call out through %s refused: %s", key, why)
            self._to_engine_reply(req, 503 if user else 484, "Line Unavailable")
            return
        if line.gateway_registers and not line.host:
            bound = [b for b in self.location.bindings(line.username or "") if b.reachable]
            uri = gateway_uri(bound[0].contact, user) if bound else None
            if not bound or uri is None:
                self._to_engine_reply(req, 503, "Line Unavailable")
                return
            dest, request_uri = bound[0].source, uri
        else:
            hop = self.trunks.hop(line)
            if hop is None:
                self._to_engine_reply(req, 503, "Line Unavailable")
                return
            dest, request_uri = hop, line.uri(user)
        call = self.trunks.calls.admit(req.call_id, key, line.channels, outbound=True)
        if call is None:
            self.trunks.stats["trunk_refused"] += 1
            log.info("edge: call out through %s refused: all %d channel(s) busy", key,
                     line.channels)
            self._to_engine_reply(req, 503, "All Channels Busy")
            return
        self.trunks.stats["trunk_calls_out"] += 1
        caller = clean_caller_id(req.header("X-PBX-Caller-Id")) or line.username or "anonymous"
        call.engine_branch = branch
        call.engine_from = req.header("From") or ""
        call.engine_to = req.header("To") or ""
        call.trunk_from = f"sip:{caller}@{line.domain}"
        call.trunk_to = request_uri.split(";", 1)[0]
        call.dest = dest
        out = outbound_invite(req, request_uri=request_uri, to_uri=call.trunk_to,
                              from_uri=call.trunk_from, route=line.route())
        out = out.prepend_header("Record-Route", record_route(
            self.local_host_toward(dest.host), self.config.port, self.tokens.encode(dest),
            dest.transport))
        call.sent = self._forward(out, dest, incoming_branch=branch)

    def _trunk_in_dialog(self, req: Request, call: TrunkCall, branch: str) -> bool:
        """The engine's CANCEL or non-2xx ACK of a call out: rebuilt from the INVITE sent."""
        sent, dest = call.sent, call.dest
        if sent is None or dest is None or branch != call.engine_branch:
            return False
        if req.method == "CANCEL":
            self.transports.send(cancel_for(sent), dest)
            return True
        if req.method == "ACK":
            if not call.absorb_ack:
                to_tag = req.to.tag
                to_value = f"<{call.trunk_to}>;tag={to_tag}" if to_tag else f"<{call.trunk_to}>"
                self.transports.send(ack_for(sent, to_value), dest)
            return True
        return False

    def _trunk_answer(self, resp: Response, call: TrunkCall) -> bool:
        """A response from a line to the engine's INVITE; True if the edge took it."""
        if resp.cseq.method != "INVITE":
            return False
        initial = call.sent is not None and resp.cseq.number == call.sent.cseq.number \
            and call.state is not CallState.CONFIRMED
        if resp.status in (401, 407) and initial and call.dest is not None:
            self._trunk_challenged(resp, call)
            return True
        self.trunks.call_changed(self.trunks.calls.progress(call.call_id, resp.status))
        return False

    def _trunk_challenged(self, resp: Response, call: TrunkCall) -> None:
        """The provider asks the INVITE for credentials: ACK, then send it again with them."""
        sent, dest = call.sent, call.dest
        assert sent is not None and dest is not None
        self.transports.send(ack_for(sent, resp.header("To") or ""), dest)
        line = self.trunkset.lines.get(call.line)
        challenge = pick_challenge(resp.header_values("WWW-Authenticate"),
                                   resp.header_values("Proxy-Authenticate"))
        repeated = challenge is not None and challenge.nonce in call.auth_nonces \
            and not challenge.stale
        if line is None or challenge is None or repeated or len(call.auth_nonces) >= 2:
            log.warning("edge: %s refused our credentials for a call out (%d)", call.line,
                        resp.status)
            call.absorb_ack = True
            failed = Response(status=503, reason="Line Refused Our Credentials",
                              headers=tuple(h for h in resp.headers if h.name not in (
                                  "WWW-Authenticate", "Proxy-Authenticate")))
            self.trunks.call_changed(self.trunks.calls.end(call.call_id,
                                                           f"{resp.status} to our credentials"))
            self.transports.send(to_engine(failed, call), self.engine)
            return
        call.auth_nonces.append(challenge.nonce)
        branch = branch_for(f"{call.engine_branch}/auth{len(call.auth_nonces)}",
                            self.tokens.secret)
        call.sent = with_credentials(sent, challenge, branch=branch, username=line.auth_user,
                                     password=line.secret or "",
                                     cnonce=secrets.token_hex(8))
        call.cseq_offset += 1
        self.trunks.stats["trunk_auth_answered"] += 1
        self.transports.send(call.sent, dest)

    def _our_hosts(self) -> set[str]:
        return {"127.0.0.1", "localhost", self.config.bind, *self._local_ip_cache.values()}
