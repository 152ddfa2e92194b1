"""Run one simulated modem until Ctrl-C: `python -m hw.modemsim --profile quectel-ec25`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .fake import FakeModem
from .profiles import PROFILES


def main(argv: list[str] | None = None) -> int:
    """Start a simulator, print where its ports are, and keep it up until told to stop."""
    parser = argparse.ArgumentParser(prog="python -m hw.modemsim", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quectel-ec25")
    parser.add_argument("--imei", default="860000000000001")
    parser.add_argument("--pin", default=None, help="the SIM asks for this PIN at start")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--links-dir", default=None, help="where the by-imei links go")
    args = parser.parse_args(argv)
    sim = FakeModem(args.profile, imei=args.imei, pin=args.pin, time_scale=args.time_scale,
                    seed=args.seed, links_dir=args.links_dir).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"{args.profile} IMEI {args.imei}", flush=True)
    print(f"at    {sim.at_path}  {sim.at_link}", flush=True)
    print(f"audio {sim.audio_path}  {sim.audio_link}", flush=True)
    try:
        stop.wait()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
