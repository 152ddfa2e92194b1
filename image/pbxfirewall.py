#!/opt/pbx/venv/bin/python3
"""The box's LAN-only firewall: an nftables table rendered from the box's settings.

SIP, the web UI, SSH and the RTP range are open to private (RFC 1918, unique-local) and
link-local source addresses only; everything else arriving is dropped. The table is our
own (`inet pbx_lan`), so the engine's ban table (`inet pbx`, edge/firewall.py) is left
alone: a drop there is final whatever this table accepts.

    pbxfirewall.py render      print the ruleset
    pbxfirewall.py apply       load it (nft -f -); the systemd unit pbx-firewall runs this
    pbxfirewall.py remove      delete the table
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

TABLE = "pbx_lan"
LAN4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
LAN6 = ("fc00::/7", "fe80::/10")
SSH_PORT = 22
HTTP_PORT = 80


@dataclass(frozen=True)
class Ports:
    """What the box listens on (from its settings)."""

    sip: int = 5060
    web: int = 443
    rtp_min: int = 10000
    rtp_max: int = 20000

    def __post_init__(self) -> None:
        for value in (self.sip, self.web, self.rtp_min, self.rtp_max):
            if not 0 < value < 65536:
                raise ValueError(f"not a port: {value}")
        if self.rtp_min > self.rtp_max:
            raise ValueError("rtp_min above rtp_max")


def render(ports: Ports) -> str:
    """The nft script that replaces our table in one transaction."""
    tcp = ", ".join(str(p) for p in sorted({SSH_PORT, HTTP_PORT, ports.web, ports.sip}))
    rtp = (f"{ports.rtp_min}-{ports.rtp_max}" if ports.rtp_min < ports.rtp_max
           else str(ports.rtp_min))
    # nft refuses overlapping elements in one set: the SIP port may lie in the RTP range.
    udp = rtp if ports.rtp_min <= ports.sip <= ports.rtp_max else f"{ports.sip}, {rtp}"
    lines = [
        f"add table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        f"  set lan4 {{ type ipv4_addr; flags interval; elements = {{ {', '.join(LAN4)} }}; }}",
        f"  set lan6 {{ type ipv6_addr; flags interval; elements = {{ {', '.join(LAN6)} }}; }}",
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
        "    ct state established,related accept",
        "    ct state invalid drop",
        '    iif "lo" accept',
        # Path MTU, neighbour discovery and ping keep the network working.
        "    meta l4proto { 1, 58 } accept",  # ICMP, ICMPv6 (numbers: no /etc/protocols needed)
        # DHCP answers come from the server's address to our broadcast-bound client.
        "    udp sport 67 udp dport 68 accept",
        "    ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept",
        f"    ip saddr @lan4 tcp dport {{ {tcp} }} accept",
        f"    ip6 saddr @lan6 tcp dport {{ {tcp} }} accept",
        f"    ip saddr @lan4 udp dport {{ {udp} }} accept",
        f"    ip6 saddr @lan6 udp dport {{ {udp} }} accept",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def ports_from_settings() -> Ports:
    """The box's ports from /etc/pbx/pbx.toml and PBX_* (defaults if they cannot be read)."""
    try:
        from appliance.settings import load

        s = load()
        return Ports(sip=s.sip_port, web=s.web_port, rtp_min=s.rtp_port_min, rtp_max=s.rtp_port_max)
    except Exception as exc:  # a broken settings file must not leave the box without a firewall
        print(f"pbx-firewall: settings unreadable ({exc}); using the defaults", file=sys.stderr)
        return Ports()


def main(argv: list[str]) -> int:
    """Render, apply or remove the table."""
    cmd = argv[1] if len(argv) > 1 else "render"
    if cmd == "render":
        sys.stdout.write(render(ports_from_settings()))
        return 0
    if cmd == "apply":
        script = render(ports_from_settings())
    elif cmd == "remove":
        script = f"add table inet {TABLE}\ndelete table inet {TABLE}\n"
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return subprocess.run(["nft", "-f", "-"], input=script, text=True, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
