"""Smoke check of a pjsua2 build on the machine that runs it: one endpoint, one call.

    python pjsua2_smoke.py [TIMEOUT_SECONDS]

image/pjsua2-arm64.sh runs it under qemu-user in an arm64 root file system after the cross
build, so a wheel that does not load or cannot set up a call on arm64 fails the build. It
creates and initialises the library with the null audio device, a UDP transport on loopback
and two local accounts (a and b, no registrar), calls b from a, answers, waits until both
sides are CONFIRMED with audio active, hangs up, waits for DISCONNECTED and destroys the
library. Events are polled from this thread (threadCnt 0), so the order is deterministic;
every wait is bounded. Prints one line per step; exits non-zero on the first failure.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable

import pjsua2 as pj


class _Call(pj.Call):  # type: ignore[misc]
    """A call that records its latest state and whether its audio became active."""

    def __init__(self, acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.state = pj.PJSIP_INV_STATE_NULL
        self.audio = False

    def onCallState(self, prm: object) -> None:
        """Keeps the invite session's state."""
        self.state = self.getInfo().state

    def onCallMediaState(self, prm: object) -> None:
        """Notes an active audio stream (the conference bridge runs on the null device)."""
        info = self.getInfo()  # kept: its media vector dies with it
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio = True


class _Account(pj.Account):  # type: ignore[misc]
    """A local account that answers every incoming call with 200."""

    def __init__(self) -> None:
        super().__init__()
        self.incoming: list[_Call] = []

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        """Answers at once."""
        call = _Call(self, prm.callId)
        self.incoming.append(call)
        op = pj.CallOpParam(True)
        op.statusCode = 200
        call.answer(op)


def _wait(ep: pj.Endpoint, what: str, done: Callable[[], bool], deadline: float) -> None:
    """Polls pjsua2's events until done() or the deadline; fails the check on the deadline."""
    while not done():
        if time.monotonic() > deadline:
                raise SystemExit(f"pjsua2 smoke: timed out waiting for {what}")
        ep.libHandleEvents(20)
    print(f"pjsua2 smoke: {what}")


def main() -> int:
    """Runs the check; 0 when the call was set up and torn down."""
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    deadline = time.monotonic() + timeout
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    tcfg.port = 0
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    port = ep.transportGetInfo(tid).localName.rsplit(":", 1)[1]
    ep.libStart()
    print(f"pjsua2 smoke: {ep.libVersion().full} on {platform.machine()}, UDP 127.0.0.1:{port}")

    accounts = {}
    for user in ("a", "b"):
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@127.0.0.1:{port}"
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.ipv6Use = pj.PJSUA_IPV6_DISABLED
        acc = _Account()
        acc.create(acfg)
        accounts[user] = acc
    # One list owns the calls, so they can all be dropped before the library goes.
    calls = [_Call(accounts["a"])]
    calls[0].makeCall(f"sip:b@127.0.0.1:{port}", pj.CallOpParam(True))
    incoming = accounts["b"].incoming
    _wait(ep, "b got the call", lambda: bool(incoming), deadline)
    calls.append(incoming.pop())
    _wait(ep, "both sides CONFIRMED with audio",
          lambda: all(c.state == pj.PJSIP_INV_STATE_CONFIRMED and c.audio for c in calls),
          deadline)
    calls[0].hangup(pj.CallOpParam(True))
    _wait(ep, "both sides DISCONNECTED",
          lambda: all(c.state == pj.PJSIP_INV_STATE_DISCONNECTED for c in calls), deadline)
    calls.clear()
    for acc in accounts.values():
        acc.shutdown()
    ep.libDestroy()
    print("pjsua2 smoke: library destroyed; OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
