"""SUBSCRIBE/NOTIFY at the edge: busy lamps and message-waiting lamps (RFC 6665).

pjsua2 cannot be a notifier for these, so the edge is (DESIGN.md section 3):

* `Event: dialog` (RFC 4235, application/dialog-info+xml) to an extension's number: a
  desk phone's busy lamp field key. Any authenticated device may watch any extension
  in the directory, as any device may call it.
* `Event: message-summary` (RFC 3842) to a device's own address: its voicemail lamp.

Initial SUBSCRIBEs are digest-authenticated by the edge like INVITEs; refreshes and
unsubscribes arrive in the dialog our 200 created, named by Call-ID and both tags
(our tag is random, so only the subscriber can name it). Every change of state, a
refresh and the end of a subscription send a NOTIFY with the full state over the
subscriber's flow (the transport, address and port its SUBSCRIBE came from, like the
keepalives), with CSeq increasing and, over UDP, retransmitted per RFC 3261 Timer E
until a final response. A subscription keeps at most one NOTIFY in flight: what
changes meanwhile is sent once the subscriber has answered, as one NOTIFY with the
latest state, so bursts coalesce. A NOTIFY answered with an error (481, 408...) or
not at all ends the subscription; so does its expiry (a last NOTIFY, terminated).

`SubscriptionTable` makes every decision on an injected monotonic clock without I/O;
`Subscriptions` sends, arms the timer on the edge's event loop and owns the state
sources (`LineStates` for busy lamps, a mailbox function for message waiting).
Subscriptions live in memory: bounded per source address and in total.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..presence import LineStates, Mailbox, no_messages
from ..sip import Header, Request, Response, SipParseError, SipUri, make_response, parse_uri
from ..sip.events import (
    DIALOG_INFO,
    MESSAGE_SUMMARY,
    DialogEntry,
    dialog_info,
    message_summary,
    parse_event,
    subscription_state,
)
from ..sip.headers import Via
from .registrar import Device, Devices
from .transport import Source

log = logging.getLogger(__name__)

# Our NOTIFY branches start with this, so their answers are told apart from anything
# the proxy forwards (those carry a second Via) and from keepalive answers.
BRANCH_PREFIX = "z9hG4bKsn-"
PACKAGES = {"dialog": DIALOG_INFO, "message-summary": MESSAGE_SUMMARY}
ALLOW_EVENTS = "dialog, message-summary"
# Header bytes an initial SUBSCRIBE may carry: a desk phone's is under 1.5 KB with its
# credentials, and a subscription keeps parts of it for its lifetime.
MAX_SUBSCRIBE_HEAD = 4096
# Never wake the loop more often than this (a bad clock must not make it spin).
MIN_SLEEP_S = 0.01

DialogKey = tuple[str, str, str]  # (Call-ID, the subscriber's tag, our tag)


@dataclass(frozen=True)
class SubscriptionConfig:
    """Expiry bounds, memory bounds and NOTIFY timers."""

    default_expires_s: int = 3600
    min_expires_s: int = 60
    max_expires_s: int = 3600
    max_total: int = 2000
    max_per_source: int = 100  # a desk phone with an expansion module has ~60 BLF keys
    t1_s: float = 0.5  # RFC 3261 T1: the first UDP retransmission
    t2_s: float = 4.0  # RFC 3261 T2: the longest gap between retransmissions
    timeout_s: float = 32.0  # RFC 3261 Timer F: a NOTIFY unanswered this long has failed


@dataclass
class _Notify:
    """The NOTIFY in flight for one subscription."""

    branch: str
    request: Request
    version: int
    deadline: float
    resend_at: float | None
    gap: float
    final: bool  # Subscription-State: terminated; the subscription ends with its answer


@dataclass
class Subscription:
    """One subscription: a dialog between a subscriber and the edge as notifier."""

    key: DialogKey
    event: str  # "dialog" or "message-summary"
    event_id: str | None  # the Event header's id parameter, echoed in every NOTIFY
    resource: str  # the extension watched, or whose mailbox it is
    device: str  # the subscribing device's SIP username
    flow: Source  # where its SUBSCRIBE came from: NOTIFYs go there
    target: str  # the subscriber's Contact URI (the NOTIFY's Request-URI)
    remote: str  # From of the SUBSCRIBE: To of our NOTIFYs
    local: str  # To of the SUBSCRIBE with our tag: From of our NOTIFYs
    entity: str  # the resource's URI as the subscriber named it (the body's entity)
    via_host: str  # our address as the subscriber sees it
    route_set: tuple[str, ...]  # Record-Route of the SUBSCRIBE (a proxy in front of us)
    expires_at: float
    remote_cseq: int
    granted: int  # the Expires of the last SUBSCRIBE accepted (its 200 is rebuilt from it)
    local_cseq: int = 0
    version: int = 0  # of the next dialog-info document (RFC 4235 §4.1.1)
    ending: str | None = None  # the reason of the terminated NOTIFY, once decided
    notify: _Notify | None = None
    acked_version: int = -1  # the last version the subscriber answered 2xx to
    last_status: int = 0
    timer: int = 0  # generation of its one live heap entry

    def remaining(self, now: float) -> int:
        """Seconds left before the subscription expires."""
        return max(0, int(self.expires_at - now))


def new_branch() -> str:
    """A fresh, unguessable NOTIFY branch (RFC 3261 magic cookie first)."""
    return BRANCH_PREFIX + secrets.token_hex(8)


def new_tag() -> str:
    """Our dialog tag: random, so only the subscriber can address its subscription."""
    return secrets.token_hex(8)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _too_large(req: Request) -> bool:
    """What a subscription keeps comes from its SUBSCRIBE's headers: bound them."""
    return sum(len(h.name) + len(h.value) for h in req.headers) > MAX_SUBSCRIBE_HEAD


def parse_expires(req: Request) -> int | None:
    """The Expires header in seconds (None if absent); `SipParseError` if malformed."""
    values = req.header_values("Expires")
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("Multiple Expires headers")
    value = values[0]
    if not value or len(value) > 10 or not value.isascii() or not value.isdigit():
        raise SipParseError("Bad Expires")
    return int(value)


class SubscriptionTable:
    """Every subscription and every decision about them: pure, on an injected clock."""

    def __init__(self, config: SubscriptionConfig, clock: Callable[[], float],
                 body: Callable[[Subscription], tuple[str, bytes]], port: int,
                 branches: Callable[[], str] = new_branch,
                 tags: Callable[[], str] = new_tag) -> None:
        self.config = config
        self.clock = clock
        self.body = body  # (content type, body) of the subscription's current state
        self.port = port
        self.branches = branches
        self.tags = tags
        self._subs: dict[DialogKey, Subscription] = {}
        self._initial: dict[tuple[str, str], DialogKey] = {}  # (Call-ID, from-tag)
        self._by_resource: dict[tuple[str, str], dict[DialogKey, None]] = {}
        self._per_source: Counter[str] = Counter()
        self._inflight: dict[str, DialogKey] = {}
        self._dirty: dict[DialogKey, None] = {}  # ordered: NOTIFYs go out oldest change first
        self._heap: list[tuple[float, int, DialogKey, int]] = []
        self._seq = itertools.count()
        self.ended: list[tuple[Subscription, str]] = []  # (subscription, why) for the log

    # --- requests ----------------------------------------------------------------------
    def owns(self, req: Request) -> bool:
        """Whether the notifier answers this request (not the proxy)."""
        tag = req.to.tag
        if tag is None:
            return req.method == "SUBSCRIBE"
        return (req.call_id, req.from_.tag or "", tag) in self._subs

    def precheck(self, req: Request) -> Response | None:
        """What an initial SUBSCRIBE gets before authentication: 489 for an unknown event."""
        if req.to.tag is not None:
            return None
        values = req.header_values("Event")
        try:
            event = parse_event(values[0]) if len(values) == 1 else None
        except SipParseError:
            event = None
        if event is None or event.package not in PACKAGES:
            return make_response(req, 489, headers=[Header("Allow-Events", ALLOW_EVENTS)])
        return None

    def retransmission(self, req: Request, source: Source) -> Response | None:
        """Our answer again, if req is a retransmitted initial SUBSCRIBE we accepted."""
        if req.to.tag is not None:
            return None
        key = self._initial.get((req.call_id, req.from_.tag or ""))
        sub = self._subs.get(key) if key is not None else None
        # Only to the flow it came from: the 200 names our tag, which nobody else may learn
        # without authenticating.
        if sub is not None and sub.remote_cseq == req.cseq.number and sub.flow == source:
            return self._ok(req, sub)
        return None

    def subscribe(self, req: Request, source: Source, device: Device, known: set[str],
                  via_host: str) -> Response:
        """An authenticated initial SUBSCRIBE: create the subscription or refuse it."""
        again = self.retransmission(req, source)
        if again is not None:
            return again
        refusal = self.precheck(req)
        if refusal is not None:
            return refusal
        event = parse_event(req.header_values("Event")[0])
        uri = req.uri if isinstance(req.uri, SipUri) else None
        to_uri = req.to.uri if isinstance(req.to.uri, SipUri) else None
        named = (uri.user if uri is not None and uri.user else None) or (
            to_uri.user if to_uri is not None else None)
        if named is None:
            return make_response(req, 404)
        if event.package == "message-summary":
            # A device's own mailbox only: its SIP address or its extension's number.
            if named not in (device.username, device.extension):
                return make_response(req, 403)
            resource = device.extension
        else:
            if named not in known:
                return make_response(req, 404)
            resource = named
        media = PACKAGES[event.package]
        if req.header_values("Accept") and not {media, "*/*", "application/*"} & set(req.accept):
            return make_response(req, 406, headers=[Header("Accept", media)])
        expires = self._expires(req)
        if isinstance(expires, Response):
            return expires
        contacts = req.contacts
        if len(contacts) != 1 or not isinstance(contacts[0].uri, SipUri):
            return make_response(req, 400, "Bad Contact")
        if _too_large(req):
            return make_response(req, 413, "Subscription Request Too Large")
        if len(self._subs) >= self.config.max_total or \
                self._per_source[source.host] >= self.config.max_per_source:
            return make_response(req, 503, "Too Many Subscriptions",
                                 headers=[Header("Retry-After", "300")])
        now = self.clock()
        tag = self.tags()
        key = (req.call_id, req.from_.tag or "", tag)
        entity = str(to_uri or uri or req.to.uri)
        sub = Subscription(
            key=key, event=event.package, event_id=event.id, resource=resource,
            device=device.username, flow=source, target=str(contacts[0].uri),
            remote=str(req.from_), local=str(req.to.with_param("tag", tag)), entity=entity,
            via_host=via_host, route_set=req.header_values("Record-Route"),
            expires_at=now + expires, remote_cseq=req.cseq.number, granted=expires)
        self._subs[key] = sub
        self._initial[(req.call_id, req.from_.tag or "")] = key
        self._by_resource.setdefault((sub.event, resource), {})[key] = None
        self._per_source[source.host] += 1
        if expires == 0:
            sub.ending = "timeout"  # a fetch: the state once, then nothing
        self._dirty[key] = None
        self._arm(sub)
        return self._ok(req, sub)

    def in_dialog(self, req: Request, source: Source) -> Response | None:
        """A request inside a subscription: refresh, unsubscribe, or not allowed (405)."""
        sub = self._subs.get((req.call_id, req.from_.tag or "", req.to.tag or ""))
        if req.method == "ACK":
            return None
        if sub is None:
            return make_response(req, 481)
        if req.method != "SUBSCRIBE":
            return make_response(req, 405, headers=[Header("Allow", "SUBSCRIBE")])
        if req.cseq.number < sub.remote_cseq:
            return make_response(req, 500, "Out of Order")
        if req.cseq.number == sub.remote_cseq:
            return self._ok(req, sub)  # a retransmission (of an unsubscribe, too)
        if sub.ending is not None:
            return make_response(req, 481)
        values = req.header_values("Event")
        event = parse_event(values[0]) if len(values) == 1 else None
        if event is None or (event.package, event.id) != (sub.event, sub.event_id):
            return make_response(req, 489, headers=[Header("Allow-Events", ALLOW_EVENTS)])
        expires = self._expires(req)
        if isinstance(expires, Response):
            return expires
        if _too_large(req):
            return make_response(req, 413, "Subscription Request Too Large")
        sub.remote_cseq = req.cseq.number
        if source != sub.flow:
            # The phone's NAT mapping moved: NOTIFYs follow the flow it uses now.
            self._per_source[sub.flow.host] -= 1
            self._per_source[source.host] += 1
            sub.flow = source
        contacts = req.contacts
        if len(contacts) == 1 and isinstance(contacts[0].uri, SipUri):
            sub.target = str(contacts[0].uri)
        sub.expires_at = self.clock() + expires
        sub.granted = expires
        if expires == 0:
            sub.ending = "timeout"
        # RFC 6665 §4.2.1.2: a refresh is answered with a NOTIFY of the current state.
        self._dirty[sub.key] = None
        self._arm(sub)
        return self._ok(req, sub)

    def _ok(self, req: Request, sub: Subscription) -> Response:
        """The 200 for an accepted SUBSCRIBE (rebuilt the same for its retransmissions)."""
        return make_response(req, 200, to_tag=sub.key[2], headers=[
            Header("Expires", str(sub.granted)),
            Header("Contact", self._contact(sub.resource, sub.via_host, sub.flow.transport))])

    def _expires(self, req: Request) -> int | Response:
        try:
            asked = parse_expires(req)
        except SipParseError as exc:
            return make_response(req, 400, exc.reason)
        if asked is None:
            return self.config.default_expires_s
        if 0 < asked < self.config.min_expires_s:
            return make_response(req, 423, headers=[
                Header("Min-Expires", str(self.config.min_expires_s))])
        return min(asked, self.config.max_expires_s)

    def _contact(self, resource: str, via_host: str, transport: str) -> str:
        params = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:{resource}@{_host(via_host)}:{self.port}{params}>"

    # --- state changes -----------------------------------------------------------------
    def mark(self, event: str, resource: str) -> bool:
        """The resource's state changed: its subscribers are due a NOTIFY; True if any."""
        keys = self._by_resource.get((event, resource))
        if not keys:
            return False
        for key in keys:
            self._dirty[key] = None
        return True

    def terminate(self, key: DialogKey, reason: str) -> None:
        """End a subscription with a last NOTIFY (terminated;reason=...)."""
        sub = self._subs.get(key)
        if sub is not None and sub.ending is None:
            sub.ending = reason
            self._dirty[key] = None

    def flush(self) -> list[tuple[Request, Source]]:
        """The NOTIFYs due now: one per subscription whose state changed and has none in flight."""
        out: list[tuple[Request, Source]] = []
        now = self.clock()
        for key in list(self._dirty):
            sub = self._subs.get(key)
            if sub is None:
                del self._dirty[key]
                continue
            if sub.notify is not None:
                continue  # sent once the subscriber has answered the one in flight
            del self._dirty[key]
            out.append((self._start(sub, now), sub.flow))
        return out

    def shutdown(self, reason: str = "deactivated") -> list[tuple[Request, Source]]:
        """A last NOTIFY to every subscriber (in flight or not), and forget them all."""
        now = self.clock()
        out = []
        for sub in list(self._subs.values()):
            if sub.notify is None or not sub.notify.final:
                sub.ending = sub.ending or reason
                out.append((self._start(sub, now), sub.flow))
            self._remove(sub, "the box stops")
        return out

    # --- answers and time --------------------------------------------------------------
    def response(self, resp: Response) -> bool:
        """Take an answer to one of our NOTIFYs; False if it is not one."""
        via = resp.top_via
        branch = via.branch if via is not None else None
        if not branch or not branch.startswith(BRANCH_PREFIX):
            return False
        key = self._inflight.get(branch)
        sub = self._subs.get(key) if key is not None else None
        if sub is None or sub.notify is None or sub.notify.branch != branch:
            return True  # late: the NOTIFY had timed out, or the subscription is gone
        notify = sub.notify
        if resp.status < 200:
            # Proceeding: the subscriber has it; retransmit at T2 until the final answer.
            if notify.resend_at is not None:
                notify.gap = self.config.t2_s
            return True
        del self._inflight[branch]
        sub.notify = None
        sub.last_status = resp.status
        if resp.status >= 300:
            self._remove(sub, f"NOTIFY answered {resp.status}")
        elif notify.final:
            sub.acked_version = notify.version
            self._remove(sub, f"terminated ({sub.ending})")
        else:
            sub.acked_version = notify.version
            self._arm(sub)
        return True

    def run(self) -> list[tuple[Request, Source]]:
        """Retransmissions due now; expiries and timeouts are applied (flush sends the rest)."""
        now = self.clock()
        out: list[tuple[Request, Source]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, key, timer = heapq.heappop(self._heap)
            sub = self._subs.get(key)
            if sub is None or sub.timer != timer:
                continue
            notify = sub.notify
            if notify is not None and now >= notify.deadline:
                self._remove(sub, f"NOTIFY unanswered for {self.config.timeout_s:g} s")
                continue
            if notify is not None and notify.resend_at is not None and now >= notify.resend_at:
                out.append((notify.request, sub.flow))
                notify.gap = min(notify.gap * 2, self.config.t2_s)
                after = now + notify.gap
                notify.resend_at = after if after < notify.deadline else None
            if sub.ending is None and now >= sub.expires_at:
                sub.ending = "timeout"
                self._dirty[key] = None
            self._arm(sub)
        return out

    def next_wakeup(self) -> float | None:
        """When `run` next has something to do (None: nothing scheduled)."""
        while self._heap:
            _, _, key, timer = self._heap[0]
            sub = self._subs.get(key)
            if sub is not None and sub.timer == timer:
                return self._heap[0][0]
            heapq.heappop(self._heap)
        return None

    # --- reading -----------------------------------------------------------------------
    def all(self) -> list[Subscription]:
        """Every live subscription."""
        return list(self._subs.values())

    def get(self, key: DialogKey) -> Subscription | None:
        """One subscription by its dialog key."""
        return self._subs.get(key)

    def __len__(self) -> int:
        return len(self._subs)

    # --- internals ---------------------------------------------------------------------
    def _start(self, sub: Subscription, now: float) -> Request:
        sub.local_cseq += 1
        branch = self.branches()
        final = sub.ending is not None
        state = (subscription_state("terminated", reason=sub.ending) if final
                 else subscription_state("active", expires=sub.remaining(now)))
        content_type, body = self.body(sub)
        via = Via(host=_host(sub.via_host), transport=sub.flow.transport, port=self.port,
                  params=(("branch", branch), ("rport", None)))
        event = sub.event + (f";id={sub.event_id}" if sub.event_id is not None else "")
        headers = [
            Header("Via", str(via)),
            Header("Max-Forwards", "70"),
            *(Header("Route", route) for route in sub.route_set),
            Header("From", sub.local),
            Header("To", sub.remote),
            Header("Call-ID", sub.key[0]),
            Header("CSeq", f"{sub.local_cseq} NOTIFY"),
            Header("Contact", self._contact(sub.resource, sub.via_host, sub.flow.transport)),
            Header("Event", event),
            Header("Subscription-State", state),
            Header("Content-Type", content_type),
        ]
        request = Request(method="NOTIFY", uri=parse_uri(sub.target), headers=tuple(headers),
                          body=body)
        # Only UDP loses messages; a stream carries the one copy or fails.
        udp = sub.flow.transport == "UDP"
        first = now + self.config.t1_s
        sub.notify = _Notify(branch, request, sub.version, now + self.config.timeout_s,
                             first if udp else None, self.config.t1_s, final)
        sub.version += 1
        self._inflight[branch] = sub.key
        self._arm(sub)
        return request

    def _remove(self, sub: Subscription, why: str) -> None:
        if self._subs.pop(sub.key, None) is None:
            return
        if self._initial.get(sub.key[:2]) == sub.key:
            del self._initial[sub.key[:2]]
        watchers = self._by_resource.get((sub.event, sub.resource))
        if watchers is not None:
            watchers.pop(sub.key, None)
            if not watchers:
                del self._by_resource[(sub.event, sub.resource)]
        self._per_source[sub.flow.host] -= 1
        if self._per_source[sub.flow.host] <= 0:
            del self._per_source[sub.flow.host]
        if sub.notify is not None:
            self._inflight.pop(sub.notify.branch, None)
        self._dirty.pop(sub.key, None)
        self.ended.append((sub, why))

    def _arm(self, sub: Subscription) -> None:
        when = sub.expires_at if sub.ending is None else float("inf")
        if sub.notify is not None:
            when = min(when, sub.notify.deadline)
            if sub.notify.resend_at is not None:
                when = min(when, sub.notify.resend_at)
        sub.timer += 1
        if when != float("inf"):
            heapq.heappush(self._heap, (when, next(self._seq), sub.key, sub.timer))


def _dialog_id(call_id: str) -> str:
    """A short dialog id for the document, the same for every NOTIFY about one call."""
    return "d" + call_id.replace("-", "")[:16]


class Subscriptions:
    """The edge as notifier: sends the table's NOTIFYs and owns the state sources."""

    def __init__(self, config: SubscriptionConfig, devices: Callable[[], Devices],
                 send: Callable[[Request, Source], None], port: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.devices = devices
        self.send = send
        self.clock = clock
        self.table = SubscriptionTable(config, clock, self._body, port)
        # Busy lamps: the switchboard reports calls here (Box passes it as its presence).
        self.lines = LineStates(self._owner_of, lambda ext: self.changed("dialog", ext))
        # Message waiting: replaced by voicemail, which then calls mailbox_changed.
        self.mailbox: Mailbox = no_messages
        self.stats = {"notifies_sent": 0, "notify_retransmissions": 0}
        self._known_from: Devices | None = None
        self._known: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._flush_soon: asyncio.Handle | None = None

    # --- the edge's hooks --------------------------------------------------------------
    def owns(self, req: Request) -> bool:
        """Whether this request is for the notifier (SUBSCRIBE, or in one of our dialogs)."""
        return self.table.owns(req)

    def needs_auth(self, req: Request, source: Source) -> bool:
        """Whether the edge must authenticate req first (an initial SUBSCRIBE we serve)."""
        return req.to.tag is None and self.table.precheck(req) is None \
            and self.table.retransmission(req, source) is None

    def request(self, req: Request, source: Source, device: Device | None,
                via_host: str) -> Response | None:
        """Answer a request owns() accepted; device is who authenticated, if anyone."""
        if req.to.tag is not None:
            return self.table.in_dialog(req, source)
        early = self.table.precheck(req) or self.table.retransmission(req, source)
        if early is not None or device is None:
            return early
        reply = self.table.subscribe(req, source, device, self._known_extensions(), via_host)
        if reply.status == 200:
            sub = self.table.get((req.call_id, req.from_.tag or "", reply.to.tag or ""))
            if sub is not None:
                log.info("edge: %s subscribed to %s of %s from %s %s:%d for %s s",
                         sub.device, sub.event, sub.resource, source.transport, source.host,
                         source.port, reply.header("Expires"))
        return reply

    def response(self, resp: Response) -> bool:
        """Take an answer to one of our NOTIFYs (then send what waited for it)."""
        if not self.table.response(resp):
            return False
        self.flush()
        return True

    def flush(self) -> None:
        """Send the NOTIFYs that are due and arm the timer."""
        self._flush_soon = None
        for req, dest in self.table.flush():
            self.send(req, dest)
            self.stats["notifies_sent"] += 1
        self._log_ended()
        self._rearm()

    def tick(self) -> None:
        """Timer: retransmit, expire, time out."""
        self._timer = None
        self._timer_at = float("inf")
        for req, dest in self.table.run():
            self.send(req, dest)
            self.stats["notify_retransmissions"] += 1
        self.flush()

    # --- state sources -----------------------------------------------------------------
    def changed(self, event: str, resource: str) -> None:
        """A resource's state changed: NOTIFY its subscribers (once per burst)."""
        if not self.table.mark(event, resource):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (unit tests driving the edge by hand)
            self.flush()
            return
        if self._flush_soon is None:
            # Everything the switchboard reports in this loop iteration goes in one NOTIFY.
            self._flush_soon = loop.call_soon(self.flush)

    def mailbox_changed(self, extension: str) -> None:
        """The extension's voice messages changed (for voicemail): update its lamps."""
        self.changed("message-summary", extension)

    def reload(self) -> None:
        """End subscriptions of devices and extensions that are gone from the configuration."""
        devices = self.devices()
        known = self._known_extensions()
        for sub in self.table.all():
            if sub.device not in devices.by_username:
                self.table.terminate(sub.key, "rejected")
            elif sub.resource not in known:
                self.table.terminate(sub.key, "noresource")
        self.flush()

    def stop(self) -> None:
        """Tell every subscriber it ended (they subscribe again when the box is back)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        for req, dest in self.table.shutdown():
            self.send(req, dest)
        self.table.ended.clear()

    # --- reading -----------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, object]]:
        """Every subscription, for the control API."""
        now = self.clock()
        out: list[dict[str, object]] = []
        for sub in sorted(self.table.all(), key=lambda s: (s.resource, s.device, s.key)):
            source = sub.flow
            out.append({
                "event": sub.event, "resource": sub.resource, "device": sub.device,
                "transport": source.transport,
                "source": f"{_host(source.host)}:{source.port}",
                "expires": sub.remaining(now), "state": "terminating" if sub.ending else "active",
                "notified": sub.acked_version, "last_status": sub.last_status})
        return out

    def counts(self) -> dict[str, int]:
        """How many subscriptions of each event package there are."""
        counted = Counter(sub.event for sub in self.table.all())
        return {"subscriptions": len(self.table),
                **{f"subscriptions_{event.replace('-', '_')}": counted.get(event, 0)
                   for event in PACKAGES}}

    # --- internals ---------------------------------------------------------------------
    def _body(self, sub: Subscription) -> tuple[str, bytes]:
        if sub.event == "dialog":
            entries = [DialogEntry(_dialog_id(d.call_id), d.state.value, d.direction)
                       for d in self.lines.dialogs(sub.resource)]
            # Idle: one terminated dialog rather than none, as the phones expect that
            # servers commonly send (an empty document reads as "unknown" on some).
            if not entries:
                entries = [DialogEntry(sub.resource, "terminated")]
            return DIALOG_INFO, dialog_info(sub.entity, sub.version, entries)
        summary = self.mailbox(sub.resource)
        return MESSAGE_SUMMARY, message_summary(summary.new, summary.old, account=sub.entity)

    def _owner_of(self, device: str) -> str | None:
        found = self.devices().by_username.get(device)
        return found.extension if found is not None else None

    def _known_extensions(self) -> set[str]:
        devices = self.devices()
        if devices is not self._known_from:
            # Rebuilt only when a reload swapped the snapshot.
            self._known_from = devices
            self._known = {d.extension for d in devices.by_username.values()}
        return self._known

    def _log_ended(self) -> None:
        for sub, why in self.table.ended:
            log.info("edge: subscription of %s to %s of %s ended: %s", sub.device, sub.event,
                     sub.resource, why)
        self.table.ended.clear()

    def _rearm(self) -> None:
        wake = self.table.next_wakeup()
        if wake is None or wake >= self._timer_at:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: the caller drives tick() itself
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = wake
        self._timer = loop.call_later(max(MIN_SLEEP_S, wake - self.clock()), self.tick)
