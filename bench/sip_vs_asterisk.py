"""Benchmark: our box against Asterisk 22 with the same SIPp runs, side by side.

Uses the shared peer harness (../shared/peers/asterisk: run.sh, bench.py, the SIPp
scenarios and the user CSV generator). Our box gets the same 1000 users (MD5 digest, as
SIPp speaks only MD5) and an extension that rings the harness's SIPp UAS; then the harness
measures it, then Asterisk, in the same run. Prints one table naming the machine.

    .venv/bin/python bench/sip_vs_asterisk.py [--quick] [--tests register,cps,pdd,idle]

Needs root (Asterisk runs in a throw-away Debian root built by the harness).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import settings as settings_mod
from bench.engine_capacity import machine
from tests.support.harness import EngineProcess

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "asterisk"
if not PEER.is_dir():
    PEER = Path("/work/shared/peers/asterisk")
UAS_EXTENSION = "3000"
UAS_PORT = 5170  # the harness's SIPp UAS
ROWS = [
    ("register_rps", "REGISTER/s, digest, 0 failures", "higher"),
    ("cps", "calls/s set up, RTP, < 0.1 % failed", "higher"),
    ("concurrent", "concurrent bridged calls with RTP", "higher"),
    ("pdd_ms_median", "post-dial delay median (ms)", "lower"),
    ("pdd_ms_p90", "post-dial delay p90 (ms)", "lower"),
    ("rss_idle_mb", "RSS idle, 1000 registered (MB)", "lower"),
    ("rss_loaded_mb", "RSS loaded (MB)", "lower"),
]


def office_yaml(users_csv: Path) -> str:
    """The harness's users as our configuration, plus the extension of the SIPp UAS."""
    lines = ["version: 1", "employees:"]
    with users_csv.open() as f:
        for row in csv.reader(f, delimiter=";"):
            if len(row) < 3 or row[0] == "SEQUENTIAL":
                continue
            user, _auth_user, password = row[:3]
            lines += [f'  - extension: "{user}"', f"    name: Bench {user}",
                      f'    devices: [{{username: "{user}", password: "{password}", auth: md5}}]']
    lines += [f'  - extension: "{UAS_EXTENSION}"', "    name: SIPp UAS",
              f'    devices: [{{username: "uas", static_contact: "sip:uas@127.0.0.1:{UAS_PORT}"}}]']
    return "\n".join(lines) + "\n"


def avoid_sipp_hex_passwords(users_csv: Path) -> None:
    """Rewrite passwords starting with 0x: SIPp reads those as hex keys and answers every
    challenge for that user wrongly, a failure on either box that caps REGISTER/s at the
    first rate that reaches such a user (seen: both boxes at 75/s)."""
    lines = users_csv.read_text().splitlines()
    fixed = []
    for line in lines:
        parts = line.split(";")
        if len(parts) >= 4 and parts[2].startswith("0x"):
            new = "0y" + parts[2][2:]
            parts[2] = new
            parts[3] = parts[3].replace(f"password=0x{new[2:]}", f"password={new}")
        fixed.append(";".join(parts))
    users_csv.write_text("\n".join(fixed) + "\n")


def results(output: str) -> dict[str, str]:
    """key=value lines printed by the harness."""
    out = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def run_harness(args: list[str], timeout: float) -> dict[str, str]:
    """Run the harness's run.sh and collect its figures."""
    proc = subprocess.run(["bash", str(PEER / "run.sh"), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    sys.stderr.write(proc.stderr[-4000:])
    return results(proc.stdout)


def measure_ours(work: Path, users: Path, tests: str, quick: bool,
                 extra: list[str]) -> dict[str, str]:
    """Provision and start our box, run the harness against it, stop it."""
    s = settings_mod.load(environ={}, data_dir=work / "data", run_dir=work,
                          sip_bind="127.0.0.1", sip_port=5260, engine_sip_port=5280,
                          rtp_port_min=50000, rtp_port_max=59999, max_calls=1024,
                          sip_rate_limit=0, sip_ban_failures=1_000_000, firewall="off")
    env = {**os.environ, "PBX_DATA_DIR": str(s.data_dir)}
    subprocess.run([sys.executable, "-m", "appliance.cli", "config", "import", "-"],
                   input=office_yaml(users), text=True, env=env, check=True,
                   capture_output=True, cwd=Path(__file__).resolve().parents[1])
    engine = EngineProcess(s, work / "notify", log_path=work / "engine.log")
    try:
        engine.wait_ready()
        args = ["bench", "--no-asterisk", "--target", f"127.0.0.1:{s.sip_port}",
                "--users", str(users), "--exten", UAS_EXTENSION,
                "--uas-port", str(UAS_PORT), "--pbx-pid", str(engine.proc.pid),
                "--tests", tests] + (["--quick"] if quick else [])
        return run_harness(args + (["--", *extra] if extra else []), timeout=3600)
    finally:
        if engine.proc.poll() is None:
            engine.terminate()
        engine.close()


def main() -> None:
    """Measure both and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short windows (figures indicative)")
    p.add_argument("--tests", default="pdd,idle,concurrent,cps,register")
    p.add_argument("--skip-asterisk", action="store_true")
    p.add_argument("--keep", help="keep the box's data and logs in this directory")
    p.add_argument("harness_args", nargs="*", help="extra bench.py arguments (after --)")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: Asterisk runs in a chroot")
    for tool in ("sipp", "mmdebstrap"):
        if not shutil.which(tool):
            subprocess.run(["bash", str(Path(__file__).resolve().parents[1] / "tools" /
                                        "apt-ensure.sh"),
                            "sip-tester" if tool == "sipp" else tool], check=True)
    with tempfile.TemporaryDirectory(prefix="pbx-vs-ast-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        users = work / "users.csv"
        subprocess.run([sys.executable, str(PEER / "gen-users.py"), "--count", "1000",
                        "--first", "1000", "--csv", str(users)], check=True)
        avoid_sipp_hex_passwords(users)
        started = time.strftime("%Y-%m-%d %H:%M")
        ours = measure_ours(work, users, args.tests, args.quick, args.harness_args)
        theirs: dict[str, str] = {}
        if not args.skip_asterisk:
            theirs = run_harness(["all", "--users", str(users), "--tests", args.tests]
                                 + (["--quick"] if args.quick else [])
                                 + (["--", *args.harness_args] if args.harness_args else []),
                                 timeout=3600)
    print(f"machine: {machine()}")
    print(f"date:    {started}; SIPp scenarios from the shared Asterisk harness"
          + ("; QUICK mode: indicative only" if args.quick else ""))
    print()
    print("| figure | this box | Asterisk 22 (same run) | better is |")
    print("|---|---:|---:|---|")
    for key, label, better in ROWS:
        print(f"| {label} | {ours.get(key, 'NA')} | {theirs.get(key, 'NA')} | {better} |")
    for key in ("concurrent_stop_reason",):
        if key in ours or key in theirs:
            print(f"| {key} | {ours.get(key, '')} | {theirs.get(key, '')} | |")


if __name__ == "__main__":
    main()
