"""Registrar and digest authentication of the edge (RFC 3261 §10.3, RFC 8760).

`Devices` is a snapshot of the SIP credentials (HA1 digests only) loaded
from the database and swapped on reload. `Authenticator` challenges and
checks requests; an unknown user and a wrong password get the same answer,
so nobody can learn which extensions exist. `Registrar.register` turns an
authenticated REGISTER into bindings in the location table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ..db import Database
from ..sip import (
    AuthOutcome,
    Header,
    NonceManager,
    Request,
    Response,
    SipParseError,
    SipUri,
    challenges,
    make_response,
    parse_uri,
    select_credentials,
    verify,
)
from .location import Binding, LocationTable
from .transport import Source

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 3600
MAX_CONTACTS = 10


@dataclass(frozen=True)
class Device:
    """What the edge knows of one device."""

    device_id: int
    username: str
    extension: str
    realm: str | None
    ha1_md5: str | None
    ha1_sha256: str | None
    auth: str = "sha256"  # "sha256": SHA-256 then MD5 offered; "md5": MD5 only
    line: str | None = None  # an FXO gateway registering like a phone: its line key


@dataclass(frozen=True)
class Devices:
    """Devices by SIP username, and the realm the box authenticates in."""

    realm: str
    by_username: dict[str, Device]

    def ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        """The stored HA1 for username in realm (None if unknown: verify hides the difference)."""
        device = self.by_username.get(username)
        if device is None or device.realm != realm:
            return None
        return device.ha1_sha256 if algorithm.upper().startswith("SHA-256") else device.ha1_md5


def load_devices(db: Database) -> Devices:
    """Read enabled devices with credentials, and the box's SIP realm."""
    conn = db.read()
    row = conn.execute("SELECT value FROM box_settings WHERE key = 'sip_realm'").fetchone()
    realm = json.loads(row[0]) if row else "office-pbx"
    rows = conn.execute(
        "SELECT d.id, d.username, e.extension, d.realm, d.ha1_md5, d.ha1_sha256, d.auth"
        " FROM devices d JOIN employees e ON e.id = d.employee_id"
        " WHERE d.enabled = 1 AND e.enabled = 1").fetchall()
    return Devices(realm, {r[1]: Device(*r) for r in rows})


@dataclass(frozen=True)
class AuthVerdict:
    """Who sent a request, or the response that refuses it."""

    device: Device | None
    reply: Response | None
    failed: bool  # a wrong password or unknown user (counted by the security policy)
    algorithm: str = ""  # the digest algorithm the peer answered with


class Authenticator:
    """Digest challenges and checks for REGISTER (401) and other requests (407)."""

    def __init__(self, nonces: NonceManager, devices: Callable[[], Devices]) -> None:
        self.nonces = nonces
        self.devices = devices

    def check(self, req: Request, source: Source) -> AuthVerdict:
        """Authenticate req; 401 for REGISTER, 407 for everything else."""
        devices = self.devices()
        proxy = req.method != "REGISTER"
        header = "Proxy-Authorization" if proxy else "Authorization"
        creds = select_credentials(req.credentials(header), devices.realm)
        if creds is None:
            return AuthVerdict(None, self._challenge(req, source, proxy, stale=False), False)
        result = verify(creds, req.method, devices.ha1, self.nonces, realm=devices.realm,
                        client_ip=source.host,
                        request_uri=None if _same_target(creds.get("uri"), req.uri)
                        else str(req.uri))
        if result.outcome is AuthOutcome.OK and result.username is not None:
            return AuthVerdict(devices.by_username[result.username], None, False,
                               result.algorithm or "")
        if result.outcome is AuthOutcome.MALFORMED:
            return AuthVerdict(None, make_response(req, 400, "Bad Authorization"), False)
        failed = result.outcome is AuthOutcome.BAD
        return AuthVerdict(None, self._challenge(req, source, proxy, stale=result.stale),
                           failed)

    def _challenge(self, req: Request, source: Source, proxy: bool, *, stale: bool) -> Response:
        devices = self.devices()
        nonce = self.nonces.issue(source.host)
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        # The device named in From decides what is offered (its phone may read only the
        # first challenge, or fail on SHA-256). Unknown names get the default, like any
        # known sha256 device.
        user = req.from_.uri.user if isinstance(req.from_.uri, SipUri) else None
        device = devices.by_username.get(user or "")
        md5_only = device is not None and device.auth == "md5"
        headers = [Header(name, value)
                   for value in challenges(devices.realm, nonce, stale=stale, md5_only=md5_only)]
        return make_response(req, 407 if proxy else 401, headers=headers)


def _same_target(digest_uri: str | None, request_uri: object) -> bool:
    """Whether the digest-uri names the Request-URI's user and host.

    Some clients (SIPp among them) put the address they send to, port included, in the
    digest-uri rather than the Request-URI. The response still covers the uri they name
    and the nonce-count still stops replays, so user and host must match; port and
    parameters may differ, and a digest-uri without a user part names the host only.
    """
    if digest_uri is None or not isinstance(request_uri, SipUri):
        return False
    try:
        named = parse_uri(digest_uri)
    except SipParseError:
        return False
    return (isinstance(named, SipUri) and named.user in (None, request_uri.user)
            and named.host.lower() == request_uri.host.lower())


BindingChange = Callable[[str, Binding], None]


class Registrar:
    """Applies REGISTER requests to the location table (RFC 3261 §10.3).

    `on_change(what, binding)` hears of each binding that is "new", "moved" (same contact,
    another source address or transport) or "removed"; a refresh from where the device
    already was is not a change (phones refresh every few minutes).
    """

    def __init__(self, location: LocationTable, clock: Callable[[], float],
                 on_change: BindingChange | None = None) -> None:
        self.location = location
        self.clock = clock
        self.on_change = on_change

    def _changed(self, what: str, binding: Binding) -> None:
        if self.on_change is not None:
            self.on_change(what, binding)

    def register(self, req: Request, source: Source, device: Device) -> Response:
        """Add, refresh or remove the device's bindings; reply with the current set."""
        to_uri = req.to.uri
        if not isinstance(to_uri, SipUri) or to_uri.user != device.username:
            # Credentials for one device may not register another's address.
            return make_response(req, 403, "Forbidden")
        now = self.clock()
        header_expires = req.expires
        current = {b.contact: b for b in self.location.bindings(device.username)}
        if req.contact_is_star:
            if header_expires != 0 or len(req.header_values("Contact")) != 1:
                return make_response(req, 400, "Invalid Contact *")
            for binding in current.values():
                self.location.remove(binding)
                self._changed("removed", binding)
            return make_response(req, 200)
        try:
            contacts = req.contacts
        except SipParseError:
            return make_response(req, 400, "Bad Contact")
        if len(contacts) > MAX_CONTACTS:
            return make_response(req, 403, "Too Many Contacts")
        for contact in contacts:
            expires = contact.expires if contact.expires is not None else header_expires
            expires = DEFAULT_EXPIRES if expires is None else expires
            uri = str(contact.uri)
            old = current.get(uri)
            if old is not None and old.call_id == req.call_id and old.cseq >= req.cseq.number:
                continue  # an out-of-order retransmission (RFC 3261 §10.3 step 7)
            if expires == 0:
                if old is not None:
                    self.location.remove(old)
                    self._changed("removed", old)
                continue
            if expires < MIN_EXPIRES:
                return make_response(req, 423, "Interval Too Brief",
                                     headers=[Header("Min-Expires", str(MIN_EXPIRES))])
            binding = Binding(device.device_id, device.username, uri, source, req.call_id,
                              req.cseq.number, now + min(expires, MAX_EXPIRES),
                              req.user_agent or "")
            self.location.put(binding)
            if old is None:
                self._changed("new", binding)
            elif old.source != binding.source:
                self._changed("moved", binding)
        bound = [Header("Contact", f"<{b.contact}>;expires={b.remaining(now)}")
                 for b in self.location.bindings(device.username)]
        return make_response(req, 200, headers=bound)
