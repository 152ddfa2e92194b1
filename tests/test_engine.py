"""The call engine on its own: start-up failures say what went wrong."""

from __future__ import annotations

import asyncio
import socket

import pytest

from appliance.engine import Engine, EngineConfig, EngineError
from tests.conftest import free_port_block

pytestmark = pytest.mark.timeout(60)


def test_a_busy_sip_port_fails_start_with_the_reason() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        rtp = free_port_block(10)
        engine = Engine(EngineConfig(sip_port=port, rtp_port_min=rtp, rtp_port_max=rtp + 10))
        with pytest.raises(EngineError, match="Address already in use"):
            asyncio.run(engine.start())
