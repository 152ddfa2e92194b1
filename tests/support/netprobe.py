"""Send test traffic inside a network namespace and report what arrived (stdlib only).

Run as `ip netns exec NS python netprobe.py` with a JSON plan on stdin:

- {"mode": "reach", "listen": [[host, port], ...], "sends": [{"src", "dst", "port",
  "proto": "udp"|"tcp", "expect": bool}, ...]}: listens on UDP and TCP, sends each probe
  in order, waits (bounded) until every expected one has arrived, and prints
  {"arrived": [indexes]}. Probes that should be dropped go first: loopback delivers in
  order, so once the later ones are in, the earlier ones had their chance.
- {"mode": "sip", "src", "src_port", "dst", "port", "message", "wait"}: sends one datagram
  and prints {"reply": first line of the answer, or null after `wait` seconds}.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
from typing import Any

DEADLINE_S = 5.0


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reach(plan: dict[str, Any]) -> dict[str, Any]:
    """Send every probe; report which arrived."""
    sel = selectors.DefaultSelector()
    keep: list[socket.socket] = []
    for host, port in plan["listen"]:
        udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        udp.bind((host, port))
        tcp = socket.socket(_family(host), socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((host, port))
        tcp.listen(16)
        for sock in (udp, tcp):
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
            keep.append(sock)
    by_peer: dict[tuple[str, int], int] = {}
    for i, probe in enumerate(plan["sends"]):
        proto = socket.SOCK_DGRAM if probe["proto"] == "udp" else socket.SOCK_STREAM
        client = socket.socket(_family(probe["dst"]), proto)
        client.bind((probe["src"], 0))
        keep.append(client)
        if probe["proto"] == "udp":
            client.sendto(f"probe-{i}".encode(), (probe["dst"], probe["port"]))
        else:
            client.setblocking(False)
            client.connect_ex((probe["dst"], probe["port"]))  # a dropped SYN never completes
            by_peer[client.getsockname()[:2]] = i
    expected = {i for i, p in enumerate(plan["sends"]) if p["expect"]}
    arrived: set[int] = set()
    deadline = time.monotonic() + DEADLINE_S
    while True:
        left = deadline - time.monotonic()
        done = expected <= arrived
        # Once everything expected is in, one last look (no wait) for anything else.
        for key, _ in sel.select(timeout=0 if done else max(left, 0)):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock.type == socket.SOCK_DGRAM:
                data = sock.recv(64).decode()
                arrived.add(int(data.removeprefix("probe-")))
            else:
                conn, peer = sock.accept()
                keep.append(conn)
                index = by_peer.get(peer[:2])
                if index is not None:
                    arrived.add(index)
        if done or left <= 0:
            break
    for sock in keep:
        sock.close()
    return {"arrived": sorted(arrived)}


def sip(plan: dict[str, Any]) -> dict[str, Any]:
    """Send one SIP datagram; the first line of the answer, if one is awaited."""
    with socket.socket(_family(plan["dst"]), socket.SOCK_DGRAM) as sock:
        sock.bind((plan["src"], plan["src_port"]))
        sock.sendto(plan["message"].encode(), (plan["dst"], plan["port"]))
        if not plan.get("wait"):
            return {"reply": None}
        sock.settimeout(plan["wait"])
        try:
            return {"reply": sock.recv(65536).decode(errors="replace").split("\r\n", 1)[0]}
        except TimeoutError:
            return {"reply": None}


if __name__ == "__main__":
    request = json.load(sys.stdin)
    print(json.dumps({"reach": reach, "sip": sip}[request["mode"]](request)))
