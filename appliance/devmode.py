"""`pbx dev`: the whole box on a laptop, on localhost, with demo data.

Starts the engine and the web UI as two processes (as systemd would on the
box), with the data directory under ./.dev-data unless PBX_DATA_DIR says
otherwise, every listener bound to 127.0.0.1, and the demo office from
appliance/config/demo.yaml loaded into a new database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import settings as settings_mod


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "appliance.cli", *args], env=env)


def run(args: argparse.Namespace) -> int:
    """Prepare the dev data dir, then supervise engine + web until Ctrl-C."""
    from .config.yamlio import import_yaml
    from .db import Database

    data_dir = Path(args.data_dir or os.environ.get("PBX_DATA_DIR") or ".dev-data").resolve()
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    env = {
        **os.environ,
        "PBX_DATA_DIR": str(data_dir),
        "PBX_SIP_BIND": "127.0.0.1",
        "PBX_WEB_BIND": "127.0.0.1",
        "PBX_WEB_PORT": str(args.port),
        "PBX_WEB_TLS": os.environ.get("PBX_WEB_TLS", "off"),  # localhost: plain HTTP
        "PBX_SIMULATE": "1",
        # A laptop's firewall is not the demo's to change, unless asked for explicitly.
        "PBX_FIREWALL": os.environ.get("PBX_FIREWALL", "off"),
    }
    s = settings_mod.load(Path(args.config) if args.config else None, environ=env)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    new = not s.db_path.exists()
    db = Database.open(s.db_path)
    try:
        if new:
            demo = Path(__file__).parent / "config" / "demo.yaml"
            report = import_yaml(db, demo.read_text(encoding="utf-8"))
            print(f"pbx dev: demo office loaded into {s.db_path}: {report}", file=sys.stderr)
    finally:
        db.close()

    print(f"pbx dev: data in {data_dir}", file=sys.stderr)
    print(f"pbx dev: web UI on http://127.0.0.1:{args.port}/  (Ctrl-C stops everything)",
          file=sys.stderr)
    print("pbx dev: every SIM line marked `simulated` runs on a simulated modem "
          "(see `pbx lines`)", file=sys.stderr)
    procs = {"engine": _spawn(["run"], env), "web": _spawn(["web"], env)}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"pbx dev: the {name} exited with {proc.returncode}", file=sys.stderr)
                code = proc.returncode or 1
                stopping = True
        time.sleep(0.2)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code
