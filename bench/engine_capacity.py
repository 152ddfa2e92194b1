"""Benchmark: engine CPU and memory per bridged call, 8 kHz bridge vs 16 kHz baseline.

Starts `pbx run` with a test extension, drives N bridged calls from a pjsua2 caller
process to a pjsua2 callee process (each call carries a tone both ways), holds them,
and samples the engine's CPU time and RSS from /proc. The 16 kHz bridge clock (pjsua's
default) is measured in the same run as the baseline our 8 kHz choice is compared with.

    .venv/bin/python bench/engine_capacity.py [--calls 25,50,100] [--hold 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import settings as settings_mod
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess
from tests.test_lifecycle import add_extension

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> str:
    """A one-line description of this machine."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("model name", "Model")):
            model = line.split(":", 1)[1].strip()
            break
    return f"{platform.node()}: {model}, {os.cpu_count()} cores, {platform.machine()}, " \
           f"Python {platform.python_version()}"


def run(calls: int, clock: int, hold: float) -> dict[str, float]:
    """One measurement: N bridged calls at one bridge clock rate."""
    with tempfile.TemporaryDirectory(prefix="pbx-bench-") as tmp:
        rtp = free_port_block(2 * calls * 2 + 100)
        s = settings_mod.load(environ={}, data_dir=Path(tmp) / "data", run_dir=Path(tmp),
                              engine_sip_port=free_port(), rtp_port_min=rtp,
                              rtp_port_max=rtp + 4 * calls + 100, bridge_clock_rate=clock,
                              max_calls=max(256, 2 * calls + 10), firewall="off")
        callee_port = free_port()
        add_extension(s, "200", f"sip:200@127.0.0.1:{callee_port}")
        engine = EngineProcess(s, Path(tmp) / "notify", log_path=Path(tmp) / "engine.log")
        callee = caller = None
        try:
            engine.wait_ready()
            pid = engine.proc.pid
            callee = PhoneProcess(callee_port, free_port_block(4 * calls + 10), "--tone", "2900")
            caller = PhoneProcess(free_port(), free_port_block(4 * calls + 10))
            idle_rss = rss_mb(pid)
            start = time.monotonic()
            for i in range(calls):
                caller.call(f"sip:200@127.0.0.1:{s.engine_sip_port}", tone=300 + 10 * i)
            caller.wait_count(lambda e: e.get("state") == "CONFIRMED", calls, timeout=120)
            setup = time.monotonic() - start
            time.sleep(1.0)  # let media settle before sampling
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(hold)
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            loaded_rss = rss_mb(pid)
            dropped = caller.count(lambda e: e.get("state") == "DISCONNECTED")
            caller.send(cmd="hangup_all")
            caller.wait_count(lambda e: e.get("state") == "DISCONNECTED", calls, timeout=60)
        finally:
            for phone in (caller, callee):
                if phone is not None:
                    phone.close()
            if engine.proc.poll() is None:
                engine.terminate()
            engine.close()
    return {"calls": calls, "clock": clock, "setup_s": setup, "cpu_pct": 100 * cpu,
            "per_call": 100 * cpu / calls, "rss_idle": idle_rss, "rss_loaded": loaded_rss,
            "dropped": dropped}


def main() -> None:
    """Measure each level at 8 kHz and 16 kHz and print a table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", default="25,50,100")
    p.add_argument("--hold", type=float, default=8.0)
    args = p.parse_args()
    print(f"machine: {machine()}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M')}; hold {args.hold:.0f} s per level; "
          "engine CPU is % of one core")
    print()
    print("| bridged calls | bridge clock | set-up (s) | engine CPU % | CPU %/call "
          "| RSS idle (MB) | RSS loaded (MB) | dropped |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for calls in (int(c) for c in args.calls.split(",")):
        for clock in (8000, 16000):
            r = run(calls, clock, args.hold)
            label = f"{clock // 1000} kHz" + (" (pjsua default)" if clock == 16000 else "")
            print(f"| {calls} | {label} | {r['setup_s']:.2f} | {r['cpu_pct']:.1f} "
                  f"| {r['per_call']:.3f} | {r['rss_idle']:.0f} | {r['rss_loaded']:.0f} "
                  f"| {r['dropped']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
