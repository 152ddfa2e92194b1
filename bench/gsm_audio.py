"""Benchmark: audio latency the box adds on a GSM line, and engine CPU per active GSM line.

Simulated modems (hw.modemsim) run in a child process, in answered calls with the PCM path
armed, so their threads do not count as the engine's. The engine runs in this process with
one SerialAudio pump and one port leg per line, exactly as in production.

Latency (simulator echo): the modem loops its uplink back into its downlink after
`--echo-ms`. A bench port leg ("tap") bridged to the line's port sends a tone burst into the
bridge and timestamps its echo on the bridge's own sample clock (ticks and sample offsets,
not wall time). The simulator's own delay is measured in the same run by an ideal host on the
same pty (one uplink frame answered per downlink frame, no buffers); the box adds the
difference. Target: <= 40 ms.

CPU: this process's CPU time (engine owner thread, bridge clock, RTP, pumps, callbacks)
with 1 and 4 GSM lines each bridged to a SIP leg to a pjsua2 phone in another process,
against the same engine idle and with the same number of plain SIP-to-SIP calls.
Target: <= 3 % of one core per active GSM line.

    .venv/bin/python bench/gsm_audio.py [--hold 10] [--bursts 20] [--echo-ms 40]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine_capacity import cpu_seconds, machine
from hw.audio import FrameRing, SerialAudio
from tests.conftest import free_port, free_port_block
from tests.support.gsmcall import running_engine
from tests.support.harness import PhoneProcess

FRAME = 320
SAMPLES = FRAME // 2
ONSET = 3000  # |sample| above this starts the echo (the burst is at about 16000)
BURST = array.array("h", (int(16000 * ((n // 4) % 2 * 2 - 1)) for n in range(SAMPLES * 3)))


# --- the simulator side (a child process) --------------------------------------------------

def serve_sims(count: int, echo_ms: float | None) -> None:
    """Child: `count` quectel modems in answered, armed calls; prints their audio paths."""
    from hw.modemsim import FakeModem
    from tests.support.atclient import AtClient

    sims, clients = [], []
    try:
        for i in range(count):
            sim = FakeModem("quectel-ec25", imei=f"86000000000{i:04d}", time_scale=0.05,
                            seed=i).start()
            assert sim.at_path is not None
            at = AtClient(sim.at_path)
            sims.append(sim)
            clients.append(at)
            at.command("ATE0")
            sim.ring()
            at.wait_line("RING")
            at.command("ATA")
            at.command("AT+QPCMV=1,0")
            if not sim.audio.wait_flowing(timeout=5):
                raise SystemExit("no PCM from the simulator")
            if echo_ms is not None:
                sim.audio.echo_ms = echo_ms
                sim.audio.echo_gain = 1.0
            else:
                sim.audio.tone(600, dbfs=-12)
            print(json.dumps({"audio": sim.audio_path}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        print(json.dumps({"late_ticks": [s.audio.stats.late_ticks for s in sims]}), flush=True)
    finally:
        for at in clients:
            at.close()
        for sim in sims:
            sim.stop()


class Sims:
    """The child process holding the simulated modems."""

    def __init__(self, count: int, echo_ms: float | None = None) -> None:
        args = [sys.executable, __file__, "--serve-sims", str(count)]
        if echo_ms is not None:
            args += ["--echo-ms", str(echo_ms)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        self.paths = [json.loads(self.proc.stdout.readline())["audio"] for _ in range(count)]

    def close(self) -> list[int]:
        """Stop the child; the simulators' late ticks (a busy machine shows there)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        late = json.loads(self.proc.stdout.readline() or '{"late_ticks": []}')["late_ticks"]
        self.proc.wait(timeout=10)
        return list(late)


# --- latency -------------------------------------------------------------------------------

def onset(frame: bytes | bytearray) -> int | None:
    """Index of the first sample of the echo in a frame, if it starts here."""
    samples = memoryview(bytes(frame)).cast("h")
    for i, s in enumerate(samples):
        if abs(s) > ONSET:
            return i
    return None


def direct_rtts(path: str, bursts: int) -> list[float]:
    """The simulator's own delay: an ideal host answering each downlink frame at once."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    # What queued before we listened is stale; answering it would fill the modem's buffer.
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 65536):
            pass
    out: list[float] = []
    acc = bytearray()
    n = 0
    sent_at: int | None = None
    queue: list[bytes] = []
    next_burst = 25
    try:
        while len(out) < bursts:
            readable, _, _ = select.select([fd], [], [], 1.0)
            if not readable:
                raise SystemExit("the simulator stopped sending")
            acc.extend(os.read(fd, 4096))
            while len(acc) >= FRAME:
                frame = bytes(acc[:FRAME])
                del acc[:FRAME]
                n += 1
                if sent_at is not None and (at := onset(frame)) is not None:
                    out.append(((n - sent_at) * SAMPLES + at) / 8)
                    sent_at, next_burst = None, n + 25
                if sent_at is None and n >= next_burst and not queue:
                    queue = [BURST[i:i + SAMPLES].tobytes() for i in range(0, len(BURST),
                                                                          SAMPLES)]
                    sent_at = n
                os.write(fd, queue.pop(0) if queue else bytes(FRAME))
    finally:
        os.close(fd)
    return out


class TapOut(FrameRing):
    """The tap's downlink: the bridge pops one frame per tick; counts the ticks."""

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self.ticks = 0
        self.marker: bytes | None = None
        self.sent_tick: int | None = None

    def take(self) -> bytes | bytearray | None:
        self.ticks += 1
        frame = super().take()
        if frame is not None and frame is self.marker:
            self.sent_tick = self.ticks
        return frame


class TapIn(FrameRing):
    """The tap's uplink: what the line sends into the bridge; finds the echo's start."""

    def __init__(self, out: TapOut) -> None:
        super().__init__(capacity=16)
        self.out = out
        self.rtts: list[float] = []
        self.got = threading.Event()

    def push(self, frame: bytes | bytearray) -> None:
        sent = self.out.sent_tick
        if sent is not None and (at := onset(frame)) is not None:
            self.rtts.append(((self.out.ticks - sent) * SAMPLES + at) / 8)
            self.out.sent_tick = None
            self.got.set()
        # Not kept: nobody pops the tap's uplink.


class TapAudio:
    """A port leg's audio driven by the bench instead of a modem."""

    rate = 8000

    def __init__(self) -> None:
        self.downlink = TapOut()
        self.uplink = TapIn(self.downlink)

    def add_digit_listener(self, _listener: Any) -> Any:
        return lambda: None

    def burst(self) -> None:
        """Queue a burst; the bridge sends it on its next ticks."""
        frames = [BURST[i:i + SAMPLES].tobytes() for i in range(0, len(BURST), SAMPLES)]
        self.uplink.got.clear()
        self.downlink.marker = frames[0]
        for frame in frames:
            self.downlink.push(frame)


async def latency(bursts: int, echo_ms: float) -> dict[str, Any]:
    """Round trips through the box and directly, in ms of audio."""
    sims = Sims(1, echo_ms)
    try:
        path = sims.paths[0]
        direct = await asyncio.to_thread(direct_rtts, path, bursts)
        async with running_engine() as engine:
            pump = SerialAudio(path, name="lat", thread_init=lambda: engine.register_thread("a"))
            pump.start()
            tap = TapAudio()
            try:
                await engine.open_port("G", pump)
                await engine.open_port("T", tap)
                await engine.bridge("T", "G")
                await asyncio.sleep(1.5)  # drift control settles the rings
                for _ in range(bursts):
                    tap.burst()
                    if not await asyncio.to_thread(tap.uplink.got.wait, 3):
                        raise SystemExit("no echo came back through the box")
                    await asyncio.sleep(0.3)
                stats = pump.stats()
            finally:
                await engine.close_port("T")
                await engine.close_port("G")
                pump.stop()
    finally:
        late = sims.close()
    box = tap.uplink.rtts
    return {"direct": direct, "box": box, "stats": stats, "late": sum(late)}


# --- CPU -----------------------------------------------------------------------------------

def thread_cpu(tid: int) -> float:
    """CPU seconds of one thread of this process."""
    return cpu_seconds_path(f"/proc/self/task/{tid}/stat")


def cpu_seconds_path(path: str) -> float:
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(hold: float, pump_tids: list[int]) -> tuple[float, float]:
    """% of one core used by this process, and by the pump threads, over hold seconds."""
    await asyncio.sleep(1.5)
    pid = os.getpid()
    c0, t0 = cpu_seconds(pid), time.monotonic()
    p0 = sum(thread_cpu(t) for t in pump_tids)
    await asyncio.sleep(hold)
    wall = time.monotonic() - t0
    pumps = sum(thread_cpu(t) for t in pump_tids) - p0
    return 100 * (cpu_seconds(pid) - c0) / wall, 100 * pumps / wall


async def cpu(lines: list[int], hold: float) -> list[dict[str, Any]]:
    """Idle, N SIP-to-SIP calls and N GSM-to-SIP calls for each N in lines."""
    results = []
    sims = Sims(max(lines))
    phone = await asyncio.to_thread(PhoneProcess, free_port(), free_port_block(40),
                                    "--tone", "1000")
    try:
        async with running_engine() as engine:
            idle, _ = await measure(hold, [])
            results.append({"what": "engine idle", "n": 0, "cpu": idle, "pumps": 0.0})
            for n in lines:
                legs = []
                for _ in range(n):
                    a = await engine.dial(f"sip:phone@127.0.0.1:{phone.port}")
                    b = await engine.dial(f"sip:phone@127.0.0.1:{phone.port}")
                    legs += [a, b]
                await wait_confirmed(engine, legs)
                for a, b in zip(legs[::2], legs[1::2], strict=True):
                    await engine.bridge(a, b)
                total, _ = await measure(hold, [])
                results.append({"what": "SIP-to-SIP calls", "n": n, "cpu": total, "pumps": 0.0})
                for leg in legs:
                    await engine.hangup(leg)
                await wait_gone(engine)

                pumps, tids, legs = [], [], []
                for i in range(n):
                    tid_box: list[int] = []

                    def init(box: list[int] = tid_box) -> None:
                        engine.register_thread("audio")
                        box.append(threading.get_native_id())

                    pump = SerialAudio(sims.paths[i], name=f"g{i}", thread_init=init).start()
                    pumps.append((pump, tid_box))
                    await engine.open_port(f"G{i}", pump)
                    legs.append(await engine.dial(f"sip:phone@127.0.0.1:{phone.port}"))
                await wait_confirmed(engine, legs)
                for i, leg in enumerate(legs):
                    await engine.bridge(leg, f"G{i}")
                tids = [box[0] for _pump, box in pumps if box]
                total, pump_cpu = await measure(hold, tids)
                media = [m for m in await engine.media() if m.kind == "port"]
                errors = sum(m.port.get("callback_errors", 0) for m in media)
                underruns = sum(m.port.get("downlink_underruns", 0) for m in media)
                results.append({"what": "GSM-to-SIP calls", "n": n, "cpu": total,
                                "pumps": pump_cpu, "errors": errors, "underruns": underruns})
                for i, leg in enumerate(legs):
                    await engine.hangup(leg)
                    await engine.close_port(f"G{i}")
                for pump, _box in pumps:
                    pump.stop()
                await wait_gone(engine)
    finally:
        await asyncio.to_thread(phone.close)
        late = sum(sims.close())
    results[0]["late"] = late
    return results


async def wait_confirmed(engine: Any, legs: list[str], timeout: float = 20) -> None:
    """Poll the engine until every leg is up with media (bench only; tests await events)."""
    async with asyncio.timeout(timeout):
        while True:
            up = {leg.leg_id for leg in await engine.legs() if leg.media_active}
            if set(legs) <= up:
                return
            await asyncio.sleep(0.1)


async def wait_gone(engine: Any, timeout: float = 20) -> None:
    """Poll until the engine holds no legs."""
    async with asyncio.timeout(timeout):
        while await engine.legs():
            await asyncio.sleep(0.1)


# --- report --------------------------------------------------------------------------------

def spread(values: list[float]) -> str:
    return (f"{statistics.median(values):.1f} (min {min(values):.1f}, "
            f"max {max(values):.1f})")


async def main_async(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M')}; bridge clock 8 kHz; "
          f"simulator echo {args.echo_ms:.0f} ms; CPU is % of one core over {args.hold:.0f} s")
    print()
    lat = await latency(args.bursts, args.echo_ms)
    added = [b - statistics.median(lat["direct"]) for b in lat["box"]]
    s = lat["stats"]
    print("## Latency on a GSM line (round trip through the box and the simulator's echo)")
    print()
    print("| path | round trip, ms of audio: median (min, max) |")
    print("|---|---|")
    print(f"| simulator alone (ideal host on its pty; echo {args.echo_ms:.0f} ms + its one-frame"
          f" uplink buffer) | {spread(lat['direct'])} |")
    print(f"| through the box (bridge -> port -> uplink ring -> pump -> modem -> echo -> pump ->"
          f" downlink ring -> port -> bridge) | {spread(lat['box'])} |")
    print(f"| **added by the box** (target <= 40 ms) | **{spread(added)}** |")
    print()
    print(f"pump's own view: shortest downlink wait {s.down_wait_ms} ms, uplink {s.up_wait_ms} ms"
          f"; downlink trimmed {s.downlink.trimmed}, repeated {s.downlink.repeated}, "
          f"underruns {s.downlink.underruns}; uplink concealed {s.concealed}; "
          f"simulator late ticks {lat['late']} (non-zero: the machine was busy)")
    print()
    rows = await cpu([1, 4], args.hold)
    idle = rows[0]["cpu"]
    sip = {r["n"]: r["cpu"] for r in rows if r["what"] == "SIP-to-SIP calls"}
    print("## Engine CPU")
    print()
    print("| engine load | engine CPU % | per call/line over idle % | pump threads % "
          "| vs same number of SIP calls % |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        n = r["n"]
        per = (r["cpu"] - idle) / n if n else 0.0
        vs = f"{r['cpu'] - sip[n]:+.2f}" if r["what"].startswith("GSM") else ""
        label = f"{n} {r['what']}" if n else r["what"]
        print(f"| {label} | {r['cpu']:.2f} | {per:.2f} | {r['pumps']:.2f} | {vs} |")
    print()
    gsm = [r for r in rows if r["what"].startswith("GSM")]
    print(f"port callback errors: {sum(r.get('errors', 0) for r in gsm)}; downlink underruns: "
          f"{sum(r.get('underruns', 0) for r in gsm)}; simulator late ticks: {rows[0]['late']}."
          " Target: <= 3 % of one core per active GSM line.")


def main() -> None:
    """Run the latency and CPU measurements and print tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument("--bursts", type=int, default=20)
    p.add_argument("--echo-ms", type=float, default=40.0)
    p.add_argument("--serve-sims", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_sims:
        serve_sims(args.serve_sims, args.echo_ms if "--echo-ms" in sys.argv else None)
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
