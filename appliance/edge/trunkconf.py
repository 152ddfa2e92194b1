"""SIP trunks and FXO gateways as the edge sees them: a snapshot read from the database.

`TrunkSet` holds every enabled `sip_trunk` and `fxo_gateway` line with its secret and
DIDs (the `numbers` that name the line, as E.164 with the box's country), swapped whole
on reload like the devices snapshot. The pure decisions that only need the snapshot live
here too: which DID a request is for (`match_did`), the pseudo-devices through which an
FXO gateway registers to the box like a phone. The switchboard routes a DID's call
through the number's call flow by the `X-PBX-Number` header the edge adds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import phonenumbers

from ..db import Database
from ..sip import Request, SipParseError, SipUri, ha1, unescape
from .registrar import Device, Devices

# Separators people and providers put inside numbers.
_VISUAL = str.maketrans("", "", " -().\t")
DEFAULT_EXPIRES = 600


def to_e164(user: str, country: str) -> str | None:
    """A dialled user part as E.164 ('+74951234567') with the box's country, or None."""
    text = unescape(user).translate(_VISUAL)
    if not text or len(text) > 24 or not any(c.isdigit() for c in text):
        return None
    if not (text.lstrip("+").isascii() and text.lstrip("+").isdigit()):
        return None
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class TrunkLine:
    """One SIP trunk or FXO gateway line."""

    key: str
    kind: str  # "sip_trunk" or "fxo_gateway"
    host: str | None
    port: int | None
    transport: str  # "UDP", "TCP" (or "TLS", which the edge cannot speak yet)
    username: str | None
    auth_username: str | None
    secret: str | None
    register: bool  # the box registers to host
    from_domain: str | None = None
    outbound_proxy: str | None = None  # host or host:port
    channels: int = 1
    dids: tuple[str, ...] = ()
    line_id: int = 0
    expires: int = DEFAULT_EXPIRES
    inbound_hosts: tuple[str, ...] = ()  # more addresses the provider sends calls from
    contact_user: str | None = None
    # Challenges offered to a gateway that registers to the box: analog gateways' firmware
    # is old and often reads only the first challenge, so MD5 alone unless told otherwise.
    auth: str = "md5"

    @property
    def gateway_registers(self) -> bool:
        """An FXO gateway that registers to the box (with its username and secret)."""
        return (self.kind == "fxo_gateway" and not self.register
                and bool(self.username) and bool(self.secret))

    @property
    def domain(self) -> str:
        """The From domain of calls out through the line."""
        return self.from_domain or self.host or "localhost"

    def next_hop(self) -> tuple[str, int, str] | None:
        """Where requests to the line go first: (host, port, transport), or None."""
        if self.outbound_proxy:
            host, port = split_host_port(self.outbound_proxy)
            return host, port or 5060, self.transport
        if self.host is None:
            return None
        return self.host, self.port or 5060, self.transport

    def uri(self, user: str | None) -> str:
        """A SIP URI for user at the line's host (the registrar, or a call's target)."""
        port = f":{self.port}" if self.port else ""
        tcp = ";transport=tcp" if self.transport == "TCP" else ""
        at = f"{user}@" if user else ""
        return f"sip:{at}{self.host}{port}{tcp}"

    def route(self) -> str | None:
        """The outbound proxy as a Route value (loose routing), if there is one."""
        if not self.outbound_proxy:
            return None
        tcp = ";transport=tcp" if self.transport == "TCP" else ""
        return f"<sip:{self.outbound_proxy}{tcp};lr>"

    @property
    def auth_user(self) -> str:
        """The name we authenticate with."""
        return self.auth_username or self.username or ""


def split_host_port(text: str) -> tuple[str, int | None]:
    """'host', 'host:5070', '[::1]:5070' -> (host, port or None)."""
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1:]
        return text[1:end], int(rest[1:]) if rest.startswith(":") else None
    host, sep, port = text.partition(":")
    return host, int(port) if sep and port.isdigit() else None


@dataclass(frozen=True)
class TrunkSet:
    """Every enabled trunk and gateway; immutable, swapped whole on reload."""

    country: str = "RU"
    lines: dict[str, TrunkLine] = field(default_factory=dict)

    def match_did(self, line: TrunkLine, req: Request) -> str | None:
        """The line's DID the request is for: its Request-URI user, else its To user."""
        try:
            candidates = [req.uri, req.to.uri]
        except SipParseError:
            candidates = [req.uri]
        for uri in candidates:
            if isinstance(uri, SipUri) and uri.user:
                number = to_e164(uri.user, self.country)
                if number is not None and number in line.dids:
                    return number
        return None

    def gateway_number(self, line: TrunkLine, req: Request) -> str | None:
        """The DID of a call from an authenticated gateway: the one named, else its only one."""
        named = self.match_did(line, req)
        if named is not None:
            return named
        return line.dids[0] if len(line.dids) == 1 else None

    def gateway_devices(self, realm: str) -> dict[str, Device]:
        """Pseudo-devices for FXO gateways that register to the box (negative ids)."""
        out: dict[str, Device] = {}
        for line in self.lines.values():
            if line.gateway_registers and line.username and line.secret:
                out[line.username] = Device(
                    -line.line_id, line.username, "", realm,
                    ha1(line.username, realm, line.secret, "MD5"),
                    ha1(line.username, realm, line.secret, "SHA-256"), line.auth,
                    line=line.key)
        return out

    def line_of_gateway(self, username: str) -> TrunkLine | None:
        """The gateway line whose registration name this is."""
        for line in self.lines.values():
            if line.gateway_registers and line.username == username:
                return line
        return None


def with_gateways(devices: Devices, trunks: TrunkSet) -> Devices:
    """The devices snapshot plus the gateways that register like phones (phones win)."""
    extra = {name: dev for name, dev in trunks.gateway_devices(devices.realm).items()
             if name not in devices.by_username}
    if not extra:
        return devices
    return Devices(devices.realm, {**devices.by_username, **extra})


def _option_list(options: dict[str, object], name: str) -> tuple[str, ...]:
    value = options.get(name)
    if not isinstance(value, str):
        return ()
    return tuple(item.strip() for item in value.split(",") if item.strip())


def load_trunks(db: Database) -> TrunkSet:
    """Read the enabled trunks and gateways, their secrets and DIDs."""
    conn = db.read()
    row = conn.execute("SELECT value FROM box_settings WHERE key = 'country'").fetchone()
    country = json.loads(row[0]) if row else "RU"
    dids: dict[int, list[str]] = {}
    for number, line_id in conn.execute(
            "SELECT number, line_id FROM numbers"
            " WHERE enabled = 1 AND line_id IS NOT NULL ORDER BY number").fetchall():
        e164 = to_e164(number, country) or number
        dids.setdefault(line_id, []).append(e164)
    lines: dict[str, TrunkLine] = {}
    for (line_id, key, kind, channels, host, port, transport, username, auth_username,
         secret, register, from_domain, proxy, options_text) in conn.execute(
            "SELECT id, key, kind, channels, sip_host, sip_port, sip_transport, sip_username,"
            " sip_auth_username, sip_secret, sip_register, sip_from_domain,"
            " sip_outbound_proxy, options FROM lines"
            " WHERE enabled = 1 AND kind IN ('sip_trunk', 'fxo_gateway') ORDER BY key"
    ).fetchall():
        options = json.loads(options_text or "{}")
        expires = options.get("register_expires")
        contact = options.get("contact_user")
        lines[key] = TrunkLine(
            key=key, kind=kind, host=host, port=port,
            transport=(transport or "udp").upper(), username=username,
            auth_username=auth_username, secret=secret, register=bool(register),
            from_domain=from_domain, outbound_proxy=proxy, channels=channels,
            dids=tuple(dids.get(line_id, ())), line_id=line_id,
            expires=expires if isinstance(expires, int) and 60 <= expires <= 86400
            else DEFAULT_EXPIRES,
            inbound_hosts=_option_list(options, "inbound_hosts"),
            contact_user=contact if isinstance(contact, str) and contact else None,
            auth="sha256" if options.get("auth") == "sha256" else "md5")
    return TrunkSet(country, lines)
