"""Shared fixtures: free ports, settings on a temporary data dir, phones."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from appliance import settings as settings_mod
from appliance.settings import Settings

if TYPE_CHECKING:
    from hw.modemsim import FakeModem
    from tests.support.harness import EngineProcess
    from tests.support.scenarios import Phones

# Ports are handed out sequentially from a range picked by pid, so blocks
# never overlap within a run and parallel runs on one machine rarely collide;
# every port is also checked free before it is handed out.
_NEXT = [20000 + (os.getpid() % 100) * 200]


def port_is_free(port: int) -> bool:
    """True if both UDP and TCP can bind 127.0.0.1:port."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_block(size: int = 1) -> int:
    """The first port of `size` consecutive free ports (UDP and TCP)."""
    for _ in range(200):
        start = _NEXT[0]
        if start + size > 60000:
            start = 20000
        _NEXT[0] = start + size
        if all(port_is_free(p) for p in range(start, start + size)):
            return start
    raise RuntimeError("no free port block on 127.0.0.1")


def free_port() -> int:
    """One port free for both UDP and TCP on loopback."""
    return free_port_block(1)


@pytest.fixture
def settings(tmp_path: Path, unix_dir: Path) -> Settings:
    """Settings on a temporary data dir with free loopback ports."""
    rtp = free_port_block(400)
    return settings_mod.load(
        environ={},
        data_dir=tmp_path / "data",
        run_dir=unix_dir,
        sip_bind="127.0.0.1",
        web_bind="127.0.0.1",
        engine_sip_port=free_port(),
        sip_port=free_port(),
        rtp_port_min=rtp,
        rtp_port_max=rtp + 400,
        # Boxes under test never touch the machine's firewall; tests/test_firewall.py
        # exercises nftables inside a network namespace of its own.
        firewall="off",
        # Nor its modems: a box looks where the `modem` fixture links a simulated one.
        modem_dir=tmp_path / "by-path",
    )


@pytest.fixture
def unix_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (paths are limited to 107 bytes)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pbx-") as tmp:
        yield Path(tmp)


@pytest.fixture
def start_box(settings: Settings, unix_dir: Path, tmp_path: Path
              ) -> Iterator[Callable[..., EngineProcess]]:
    """Start `pbx run` as systemd would, after importing a configuration (if given).

    Call it as `start_box(config_yaml)`; each call starts one engine (a restart is a
    second call). Every engine is stopped at teardown.
    """
    from tests.support.harness import EngineProcess, pbx

    started: list[EngineProcess] = []

    def start(config: str | None = None) -> EngineProcess:
        if config is not None:
            result = pbx(settings, "config", "import", "-", stdin=config)
            assert result.returncode == 0, result.stderr
        n = len(started)
        engine = EngineProcess(settings, unix_dir / f"notify{n}",
                               log_path=tmp_path / f"engine{n}.log")
        started.append(engine)
        engine.wait_ready()
        return engine

    yield start
    for engine in started:
        engine.close()


@pytest.fixture
def modem(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FakeModem]:
    """A simulated modem (SIM_IMEI) on ptys, linked where the box looks for modems.

    A Quectel unless the test names another profile (parametrize with indirect=True).
    """
    from hw.modemsim import FakeModem
    from tests.support.scenarios import SIM_IMEI

    profile = getattr(request, "param", "quectel-ec25")
    sim = FakeModem(profile, imei=SIM_IMEI, links_dir=tmp_path / "by-path")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def phones(settings: Settings, tmp_path: Path) -> Iterator[Phones]:
    """Registered pjsua2 desk phones by extension (`phones.add(ext)`), closed at the end."""
    from tests.support.scenarios import Phones

    registry = Phones(settings, tmp_path)
    try:
        yield registry
    finally:
        registry.close()
