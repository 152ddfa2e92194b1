"""SIP transports of the edge: UDP and TCP listeners on asyncio.

Bytes in, parsed messages out to one handler; the handler sends through
`Transports.send`, which picks the socket: UDP from the listening socket
(so NATed phones see replies from the port they sent to), TCP over the
connection a peer opened (found by its address) or a new one. Garbage never
reaches the handler: unparseable datagrams get the stateless 400 the parser
allows, or are dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..sip import (
    Close,
    Frame,
    Ping,
    Request,
    Response,
    SipFramer,
    SipParseError,
    error_response,
    is_unsafe_destination,
    parse_message,
)

log = logging.getLogger(__name__)

MAX_DATAGRAM = 16 * 1024
# Datagrams read per wake-up of the loop (then timers, TCP and the control API get a turn).
UDP_BATCH = 64
# Datagrams waiting for room in the UDP send buffer (that never fills on a LAN).
MAX_QUEUED = 1024
# Destinations whose safety verdict is remembered (the check parses the address).
MAX_VERDICTS = 4096
# Receive buffer asked for the UDP socket. The kernel's default holds about 160 small
# datagrams, 40 ms at 4000/s (2000 REGISTERs/s with their challenges): any longer pause of
# the event loop (a GC pass, another process on the CPU) drops requests, and phones
# retransmit into an even busier edge. Asked 512 KiB, the kernel gives 1 MiB, ~800
# datagrams: 200 ms, still under T1 (500 ms), so what waits is answered before the phone
# retransmits. The kernel caps it at net.core.rmem_max (Debian: 208 KiB, so 416 KiB).
UDP_RCVBUF = 512 * 1024
TCP_IDLE_S = 600.0
# A message that stops arriving halfway (a Content-Length that lies) is given Timer F's
# 32 s, then the connection is closed (RFC 4475 clerr/ncl/mcl01 on streams).
TCP_PARTIAL_S = 32.0


@dataclass(frozen=True)
class Source:
    """Where a message came from (or goes to)."""

    transport: str  # "UDP" or "TCP"
    host: str
    port: int

    def key(self) -> tuple[str, str, int]:
        """Hashable identity of a flow."""
        return (self.transport, self.host, self.port)


Handler = Callable[[Request | Response, Source], None]


class _UdpSocket:
    """Sends on the listening UDP socket; a short queue waits if its buffer is ever full."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self.queue: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self.closed = False

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send now, or queue behind what waits (dropped beyond the queue: UDP peers resend)."""
        if self.closed:
            return
        if not self.queue:
            try:
                self.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self.loop.add_writer(self.sock.fileno(), self._flush)
            except OSError as exc:
                # Unreachable network, a firewall's refusal: the datagram is lost, as on a wire.
                log.debug("UDP send to %s failed: %s", addr, exc)
                return
        if len(self.queue) < MAX_QUEUED:
            self.queue.append((data, addr))

    def _flush(self) -> None:
        while self.queue:
            data, addr = self.queue[0]
            try:
                self.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("UDP send to %s failed: %s", addr, exc)
            self.queue.popleft()
        self.loop.remove_writer(self.sock.fileno())

    def is_closing(self) -> bool:
        """True once closed."""
        return self.closed

    def close(self) -> None:
        """Stop reading and writing; close the socket."""
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
            self.sock.close()


class _Udp:
    """The UDP listener: each wake-up of the loop reads what has arrived, up to a batch.

    asyncio's datagram transport reads one datagram per turn of the event loop, and a turn
    costs more than the datagram (on loopback: 28 us per request and answer against 8 us
    when drained in batches), so the edge owns its socket and reads it from a reader
    callback.
    """

    def __init__(self, owner: Transports, transport: _UdpSocket) -> None:
        self.owner = owner
        self.transport: _UdpSocket | None = transport
        self._recvfrom = transport.sock.recvfrom

    def ready(self) -> None:
        """The socket is readable: hand on up to a batch of datagrams."""
        for _ in range(UDP_BATCH):
            try:
                data, addr = self._recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """One datagram from addr."""
        self.owner.received(data, Source("UDP", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        """An error the socket reported (ICMP unreachable from a phone gone away)."""
        log.debug("UDP error: %s", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, owner: Transports) -> None:
        self.owner = owner
        self.framer = SipFramer()
        self.transport: asyncio.Transport | None = None
        self.source: Source | None = None
        self._idle: asyncio.TimerHandle | None = None

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        delay = TCP_PARTIAL_S if self.framer.pending else TCP_IDLE_S
        self._idle = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        if self.transport is not None:
            log.info("closing idle TCP %s", self.source)
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("peername")[:2]
        self.source = Source("TCP", host, port)
        self.owner.tcp_connections[self.source.key()] = self
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        assert self.source is not None and self.transport is not None
        for event in self.framer.feed(data):
            if isinstance(event, Frame):
                self.owner.received(event.data, self.source)
            elif isinstance(event, Ping):
                self.send(b"\r\n")  # RFC 5626 keep-alive pong
            elif isinstance(event, Close):
                # Framing is lost: answer if the head allows it, then close (RFC 3261 §18.3).
                log.info("closing TCP %s: %s", self.source, event.reason)
                try:
                    parse_message(event.head)
                except SipParseError as exc:
                    reply = error_response(exc)
                    if reply is not None:
                        self.send(reply.to_bytes())
                self.transport.close()
                return
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.source is not None:
            self.owner.tcp_connections.pop(self.source.key(), None)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def _bind_udp(infos: list[tuple[Any, ...]]) -> socket.socket:
    """A non-blocking UDP socket bound to the first address that can be bound."""
    error: OSError = OSError("no address to bind")
    for family, _, _, _, address in infos:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        except OSError as exc:
            log.info("cannot enlarge the UDP receive buffer: %s", exc)
        return sock
    raise error


class Transports:
    """The edge's listening sockets and outgoing connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.udp: _Udp | None = None
        self.tcp_server: asyncio.Server | None = None
        self.tcp_connections: dict[tuple[str, str, int], _Tcp] = {}
        self.local: Source | None = None
        self.parse_errors = 0
        self._unsafe: dict[str, bool] = {}

    async def start(self, host: str, port: int) -> None:
        """Listen on UDP and TCP host:port."""
        loop = asyncio.get_running_loop()
        sock = _bind_udp(await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM,
                                                flags=socket.AI_PASSIVE))
        self.udp = _Udp(self, _UdpSocket(sock, loop))
        loop.add_reader(sock.fileno(), self.udp.ready)
        self.tcp_server = await loop.create_server(lambda: _Tcp(self), host, port,
                                                   reuse_address=True)
        self.local = Source("UDP", host, port)

    async def stop(self) -> None:
        """Close every socket."""
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.close()
        for conn in list(self.tcp_connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self.tcp_server is not None:
            self.tcp_server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.tcp_server.wait_closed(), 2)

    def received(self, data: bytes, source: Source) -> None:
        """Parse one message and hand it on; answer or drop what cannot be parsed."""
        if not data.strip(b"\r\n"):
            return  # CRLF keepalive (RFC 5626)
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.parse_errors += 1
            reply = error_response(exc)
            log.debug("unparseable message from %s: %s", source, exc)
            if reply is not None:
                self.send(reply, source)
            return
        try:
            self.handler(msg, source)
        except Exception:
            log.exception("handling a message from %s failed", source)

    def send(self, msg: Request | Response, dest: Source) -> None:
        """Send a message to dest over its transport (never to broadcast or multicast)."""
        unsafe = self._unsafe.get(dest.host)
        if unsafe is None:
            if len(self._unsafe) >= MAX_VERDICTS:
                self._unsafe.clear()
            unsafe = self._unsafe[dest.host] = is_unsafe_destination(dest.host)
        if unsafe:
            log.info("not sending to unsafe destination %s", dest.host)
            return
        data = msg.to_bytes()
        if dest.transport == "TCP":
            conn = self.tcp_connections.get(dest.key())
            if conn is not None:
                conn.send(data)
                return
            asyncio.get_running_loop().create_task(self._connect_and_send(data, dest))
            return
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.sendto(data, (dest.host, dest.port))

    async def _connect_and_send(self, data: bytes, dest: Source) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _Tcp(self), dest.host, dest.port), 5)
        except (OSError, TimeoutError) as exc:
            log.info("cannot connect to %s: %s", dest, exc)
            return
        proto.send(data)
