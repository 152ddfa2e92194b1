"""A network namespace of the test's own, so nftables tests never touch the host's firewall.

The namespace has only its loopback interface, carrying 127.0.0.1 plus documentation
addresses (192.0.2.0/24, 2001:db8::/32) that play the box and its peers: nothing in it
can reach any other network, and deleting it removes every table created inside.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from appliance.edge.firewall import find_nft

PROBE = Path(__file__).with_name("netprobe.py")
BOX4, BANNED4, OTHER4 = "192.0.2.1", "192.0.2.2", "192.0.2.3"
BOX6, BANNED6, OTHER6 = "2001:db8::1", "2001:db8::2", "2001:db8::3"


def unavailable() -> str | None:
    """Why namespace + nftables tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and nftables)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip netns)"
    if find_nft() is None:
        return "needs nft (the nftables package; `make deps` installs it)"
    return None


class NetNs:
    """`ip netns add` on enter, `ip netns delete` on exit."""

    def __init__(self) -> None:
        self.name = f"pbxtest-{os.getpid()}-{secrets.token_hex(3)}"
        self.nft = find_nft() or "nft"

    def __enter__(self) -> NetNs:
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
        try:
            self.ip("link", "set", "lo", "up")
            for addr in (BOX4, BANNED4, OTHER4):
                self.ip("addr", "add", f"{addr}/32", "dev", "lo")
            for addr in (BOX6, BANNED6, OTHER6):
                self.ip("addr", "add", f"{addr}/128", "dev", "lo", "nodad")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False, timeout=10)

    def ip(self, *args: str) -> None:
        """`ip -n NS ...`."""
        subprocess.run(["ip", "-n", self.name, *args], check=True, timeout=10,
                       capture_output=True)

    def prefix(self) -> list[str]:
        """A command prefix that runs the rest inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def nft_command(self) -> list[str]:
        """nft inside the namespace."""
        return [*self.prefix(), self.nft]

    def run_nft(self, *args: str) -> str:
        """nft inside the namespace, for checking what the firewall left there."""
        done = subprocess.run([*self.nft_command(), *args], capture_output=True, text=True,
                              timeout=10, check=True)
        return done.stdout

    def probe(self, plan: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
        """Run tests/support/netprobe.py inside the namespace with a JSON plan."""
        done = subprocess.run([*self.prefix(), sys.executable, str(PROBE)],
                              input=json.dumps(plan), capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result
