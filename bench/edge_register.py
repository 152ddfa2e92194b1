"""Benchmark: REGISTER with digest auth through the edge, in one process and over loopback.

One registration is what SIPp counts: REGISTER -> 401, REGISTER with MD5 credentials (as the
SIPp harness sends them) -> 200, for N users provisioned as bench/sip_vs_asterisk.py does.

* hot: SIPp-shaped datagrams go into the edge's UDP listener (`Edge.transports.udp.
  datagram_received`) with its socket swapped for one that keeps what is sent: parse,
  front-door policy, challenge, digest check, registrar, location table, response
  serialisation and logging at INFO to a file, as in the box. The location table's batched
  writes run as in the box (a task on the loop, writes on the database thread). The client's
  share (building requests, answering challenges) is done between the timed phases; the
  figure is CPU time of the process.
* sockets: the edge on a loopback UDP port and a client in another process that keeps
  `--window` registrations in flight; the figure is the edge process's CPU per registration
  (socket reads and writes and the event loop included).

Every table compares this tree with a baseline tree (`--baseline REF`, a git ref extracted
with `git archive`) measured in the same run, alternating, best of `--repeat`:

    .venv/bin/python bench/edge_register.py [--users 1000] [--rounds 5] [--baseline REF]
    .venv/bin/python bench/edge_register.py --profile    # cProfile of this tree's hot path
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import json
import logging
import os
import pstats
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The edge before the REGISTER speed-up: the default baseline.
DEFAULT_BASELINE = "56731e5"
REALM = "office-pbx"
SECRET = b"edge-register-bench-secret-32-by"
PHONE = ("127.0.0.1", 5061)  # SIPp's address: every REGISTER comes from one socket
DIGEST_URI = "sip:127.0.0.1:5060"  # SIPp names the address it sends to in the digest uri
NONCE = re.compile(rb'nonce="([^"]+)"')


def machine() -> str:
    """CPU model, core count, architecture and Python of this machine."""
    import platform

    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("model name", "Model")):
            model = line.split(":", 1)[1].strip()
            break
    return (f"{platform.node()}: {model}, {os.cpu_count()} cores, {platform.machine()}, "
            f"Python {platform.python_version()}")


def password(user: str) -> str:
    """The bench password of a user."""
    return f"pw-{user}-secret"


def md5(text: str) -> str:
    """Hex MD5 of text."""
    return hashlib.md5(text.encode()).hexdigest()


def register(user: str, call: str, cseq: int, auth: str = "", port: int = PHONE[1]) -> bytes:
    """A REGISTER as SIPp's register.xml sends it."""
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag={os.getpid()}R{call}",
        f"To: <sip:{user}@127.0.0.1>",
        f"Call-ID: {call}-{os.getpid()}@127.0.0.1",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@127.0.0.1:{port}>",
    ]
    if auth:
        lines.append(auth)
    lines += ["Expires: 3600", "User-Agent: sipp-bench", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def authorization(user: str, nonce: str) -> str:
    """The Authorization header SIPp answers an MD5 challenge with."""
    ha1 = md5(f"{user}:{REALM}:{password(user)}")
    ha2 = md5(f"REGISTER:{DIGEST_URI}")
    cnonce, nc = "6b8b4567", "00000001"
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Authorization: Digest username="{user}",realm="{REALM}",cnonce="{cnonce}",'
            f'nc={nc},qop=auth,uri="{DIGEST_URI}",nonce="{nonce}",response="{response}",'
            "algorithm=MD5")


class Sink:
    """Stands in for the UDP socket: keeps every datagram sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        """Keep a datagram."""
        self.sent.append(data)

    def is_closing(self) -> bool:
        """Never closing."""
        return False

    def close(self) -> None:
        """Nothing to close."""


def provision(db: Any, users: list[str]) -> None:
    """One employee with one MD5 device per user (as bench/sip_vs_asterisk.py imports)."""
    def write(conn: Any) -> None:
        for n, user in enumerate(users, start=1):
            conn.execute("INSERT INTO employees (id, extension, name) VALUES (?, ?, ?)",
                         [n, user, f"Bench {user}"])
            conn.execute("INSERT INTO devices (id, employee_id, username, realm, ha1_md5,"
                         " ha1_sha256, auth) VALUES (?, ?, ?, ?, ?, ?, 'md5')",
                         [n, n, user, REALM, md5(f"{user}:{REALM}:{password(user)}"),
                          hashlib.sha256(f"{user}:{REALM}:{password(user)}".encode())
                          .hexdigest()])
    db.write(write)


async def measure(users: int, rounds: int, profile: cProfile.Profile | None) -> dict[str, Any]:
    """Register every user `rounds` times through the edge; timings of the edge's share."""
    from appliance.db import Database
    from appliance.edge import Edge, EdgeConfig
    from appliance.edge.security import GuardConfig

    names = [str(1000 + i) for i in range(users)]
    with tempfile.TemporaryDirectory(prefix="pbx-edge-bench-") as tmp:
        db = Database.open(Path(tmp) / "pbx.db")
        provision(db, names)
        # The harness's settings: no rate limit, no bans (every REGISTER is from one address).
        guard = GuardConfig(rate_limit=10**9, auth_failures=10**9)
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=0, engine_port=9, guard=guard), db,
                    secret=SECRET)
        await edge.start()
        udp = edge.transports.udp
        assert udp is not None
        real, sink = udp.transport, Sink()
        udp.transport = sink  # type: ignore[assignment]
        challenge_s = auth_s = 0.0
        failures = 0
        try:
            for r in range(rounds):
                first = [register(u, f"c{r}-{u}", 1) for u in names]
                sink.sent.clear()
                challenge_s += await feed(udp, first, profile)
                nonces = [NONCE.search(d) for d in sink.sent]
                failures += sum(1 for d in sink.sent if not d.startswith(b"SIP/2.0 401 "))
                failures += users - len(sink.sent)
                second = [register(u, f"c{r}-{u}", 2,
                                   authorization(u, m.group(1).decode() if m else ""))
                          for u, m in zip(names, nonces, strict=False)]
                sink.sent.clear()
                auth_s += await feed(udp, second, profile)
                failures += sum(1 for d in sink.sent if not d.startswith(b"SIP/2.0 200 "))
                failures += users - len(sink.sent)
        finally:
            udp.transport = real
            await edge.stop()
            db.close()
    total = users * rounds
    return {"registrations": total, "failures": failures,
            "reg_per_s": total / (challenge_s + auth_s),
            "challenge_us": 1e6 * challenge_s / total, "auth_us": 1e6 * auth_s / total}


async def measure_sockets(users: int, rounds: int, window: int) -> dict[str, Any]:
    """Register every user `rounds` times over loopback, the client in another process."""
    from appliance.db import Database
    from appliance.edge import Edge, EdgeConfig
    from appliance.edge.security import GuardConfig

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="pbx-edge-bench-") as tmp:
        db = Database.open(Path(tmp) / "pbx.db")
        provision(db, [str(1000 + i) for i in range(users)])
        guard = GuardConfig(rate_limit=10**9, auth_failures=10**9)
        edge = Edge(EdgeConfig(bind="127.0.0.1", port=port, engine_port=9, guard=guard), db,
                    secret=SECRET)
        await edge.start()
        try:
            cpu = time.process_time()
            client = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "--client", str(port),
                "--users", str(users), "--rounds", str(rounds), "--window", str(window),
                stdout=asyncio.subprocess.PIPE)
            out, _ = await client.communicate()
            cpu = time.process_time() - cpu
        finally:
            await edge.stop()
            db.close()
    result: dict[str, Any] = json.loads(out)
    result["edge_cpu_us"] = 1e6 * cpu / max(result["ok"], 1)
    return result


def client(port: int, users: int, rounds: int, window: int) -> None:
    """Register users like SIPp, `window` registrations in flight; print counts as JSON."""
    names = [str(1000 + i) for i in range(users)]
    todo = [(r, u) for r in range(rounds) for u in names]
    todo.reverse()
    inflight: dict[str, str] = {}  # Call-ID -> user
    ok = failures = 0
    call_id = re.compile(rb"\r\nCall-ID: ([^\r]+)\r\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        me = sock.getsockname()[1]
        target = ("127.0.0.1", port)

        def start() -> None:
            r, user = todo.pop()
            call = f"c{r}-{user}"
            inflight[f"{call}-{os.getpid()}@127.0.0.1"] = user
            sock.sendto(register(user, call, 1, port=me), target)

        started = time.perf_counter()
        while todo and len(inflight) < window:
            start()
        while inflight:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                failures += len(inflight)
                break
            found = call_id.search(data)
            user = inflight.get(found.group(1).decode()) if found else None
            if user is None:
                continue
            cid = found.group(1).decode() if found else ""
            nonce = NONCE.search(data)
            if data.startswith(b"SIP/2.0 401 ") and nonce:
                sock.sendto(register(user, cid.split("-" + str(os.getpid()))[0], 2,
                                     authorization(user, nonce.group(1).decode()), port=me),
                            target)
                continue
            del inflight[cid]
            if data.startswith(b"SIP/2.0 200 "):
                ok += 1
            else:
                failures += 1
            if todo:
                start()
        wall = time.perf_counter() - started
    print(json.dumps({"ok": ok, "failures": failures + len(todo), "wall_s": wall,
                      "reg_per_s": ok / wall}))


async def feed(udp: Any, datagrams: list[bytes], profile: cProfile.Profile | None) -> float:
    """Hand datagrams to the protocol; CPU seconds spent, the loop's own turns included.

    CPU time of the whole process (the database thread's writes too) rather than wall time:
    other work on the machine then hardly moves the figure.
    """
    start = time.process_time()
    if profile is not None:
        profile.enable()
    for i, data in enumerate(datagrams):
        udp.datagram_received(data, PHONE)
        if i % 64 == 63:
            # Let the loop run what is due (the location table's flush), as between reads.
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    if profile is not None:
        profile.disable()
    return time.process_time() - start


def worker(tree: Path, args: argparse.Namespace) -> None:
    """Measure the tree whose `appliance` package is importable from `tree`; print JSON."""
    sys.path.insert(0, str(tree))
    import appliance

    with tempfile.NamedTemporaryFile("w+", prefix="pbx-edge-bench-", suffix=".log") as log:
        logging.basicConfig(level=logging.INFO, stream=log,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        profile = cProfile.Profile() if args.profile_top else None
        if args.mode == "sockets":
            result = asyncio.run(measure_sockets(args.users, args.rounds, args.window))
        else:
            result = asyncio.run(measure(args.users, args.rounds, profile))
        log.flush()
        log.seek(0)
        result["log_lines"] = sum(1 for _ in log)
    result["package"] = str(Path(appliance.__file__).parent)
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.profile_top)
        result["profile"] = out.getvalue()
    print(json.dumps(result))


def run_worker(tree: Path, args: argparse.Namespace, mode: str,
               profile_top: int = 0) -> dict[str, Any]:
    """One measurement in a fresh interpreter."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree),
           "--mode", mode, "--users", str(args.users), "--rounds", str(args.rounds),
           "--window", str(args.window), "--profile-top", str(profile_top),
           "--sort", args.sort]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tree)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def extract(ref: str, into: Path) -> Path:
    """The `appliance` package at a git ref, unpacked into a directory."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "appliance"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    """Measure this tree against the baseline and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5, help="registrations per user per run")
    p.add_argument("--repeat", type=int, default=5, help="runs per tree (best is shown)")
    p.add_argument("--baseline", default=DEFAULT_BASELINE,
                   help="git ref of the baseline ('none' to skip)")
    p.add_argument("--modes", default="hot,sockets",
                   help="hot: the hot path in process; sockets: over loopback, client apart")
    p.add_argument("--window", type=int, default=32,
                   help="sockets: registrations the client keeps in flight")
    p.add_argument("--profile", action="store_true", help="print a cProfile of this tree")
    p.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    p.add_argument("--mode", default="hot", help=argparse.SUPPRESS)
    p.add_argument("--profile-top", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client is not None:
        client(args.client, args.users, args.rounds, args.window)
        return
    if args.worker is not None:
        worker(args.worker, args)
        return
    if args.profile:
        result = run_worker(ROOT, args, "hot", profile_top=30)
        print(result.pop("profile"))
        print(json.dumps(result))
        return
    modes = [m for m in args.modes.split(",") if m]
    best: dict[tuple[str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="pbx-edge-base-") as tmp:
        trees = {"this tree": ROOT}
        if args.baseline != "none":
            trees[f"baseline {args.baseline}"] = extract(args.baseline, Path(tmp))
        for _ in range(args.repeat):
            for mode in modes:
                for label, tree in trees.items():  # alternating: load changes hit both alike
                    result = run_worker(tree, args, mode)
                    key = (mode, label)
                    if key not in best or result["reg_per_s"] > best[key]["reg_per_s"]:
                        best[key] = result
    print(f"machine: {machine()}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M')}; {args.users} users x {args.rounds} "
          f"rounds, best of {args.repeat} alternating runs")
    if "hot" in modes:
        print()
        print("Hot path in process (datagrams handed to the UDP listener, CPU time of the "
              "process):")
        print()
        print("| tree | registrations/s | REGISTER->401 (us) | REGISTER+auth->200 (us) "
              "| failures | log lines |")
        print("|---|---:|---:|---:|---:|---:|")
        for (mode, label), r in best.items():
            if mode == "hot":
                print(f"| {label} | {r['reg_per_s']:.0f} | {r['challenge_us']:.0f} | "
                      f"{r['auth_us']:.0f} | {r['failures']} | {r['log_lines']} |")
    if "sockets" in modes:
        print()
        print(f"Over loopback UDP, the client in another process, {args.window} "
              "registrations in flight (the client shares the machine):")
        print()
        print("| tree | registrations/s (wall) | edge CPU per registration (us) "
              "| registrations per edge CPU-second | failures |")
        print("|---|---:|---:|---:|---:|")
        for (mode, label), r in best.items():
            if mode == "sockets":
                print(f"| {label} | {r['reg_per_s']:.0f} | {r['edge_cpu_us']:.0f} | "
                      f"{1e6 / r['edge_cpu_us']:.0f} | {r['failures']} |")


if __name__ == "__main__":
    main()
