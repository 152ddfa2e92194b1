"""The systemd units: hardened, and wired the way the engine expects."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "image" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_engine_unit_is_a_notify_service_with_a_watchdog() -> None:
    service = unit("pbx-engine.service")["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["ExecStart"].endswith("pbx run")
    assert "kill -HUP" in service["ExecReload"]
    assert service["User"] == "pbx"
    assert "PBX_RUN_DIR=/run/pbx" in service["Environment"]


@pytest.mark.parametrize("name", ["pbx-engine.service", "pbx-web.service"])
def test_units_are_hardened(name: str) -> None:
    """systemd's own exposure score stays in its 'OK' band (below 3)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNITS / name)],
        capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) < 3.0
