"""Engine start-up settings and its error type (no pjsua2 import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    """What the owner thread needs to start pjsua2."""

    sip_port: int
    rtp_port_min: int = 10000
    rtp_port_max: int = 20000
    max_calls: int = 256
    clock_rate: int = 8000
    # The engine's SIP only ever listens on loopback: the SIP edge faces the LAN.
    bind: str = "127.0.0.1"
    # Its RTP faces phones and providers directly: bound here (None: `bind`), and this
    # address written into SDP (None: pjsua's choice, the bound address or the default
    # route's interface when bound to 0.0.0.0).
    media_bind: str | None = None
    media_address: str | None = None
    log_level: int = 1
    # Every outbound leg goes through the SIP edge (it knows where phones are).
    outbound_proxy: str | None = None


class EngineError(RuntimeError):
    """A command failed in the engine (the message says why)."""
