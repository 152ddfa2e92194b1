"""SIM lines in the running box (`pbx run` with simulate = true): READY, `pbx lines`,
`pbx status`, SMS through the CLI, a reload that disables a line, a clean stop."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from appliance.settings import Settings
from tests.support.harness import EngineProcess, pbx

pytestmark = pytest.mark.timeout(180)

OFFICE = """\
version: 1
employees:
  - extension: "101"
    name: Иван Петров
    devices: [{username: "101", password: "Kx7-desk-alpha"}]
lines:
  - key: mts
    kind: sim
    simulated: true
  - key: beeline
    kind: sim
    simulated: true
    imei: "869900000000042"
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with simulated modems."""
    return replace(settings, simulate=True)


def _lines(settings: Settings) -> list[dict[str, Any]]:
    result = pbx(settings, "lines", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _until(settings: Settings, predicate: Callable[[list[dict[str, Any]]], bool],
           timeout: float = 30.0) -> list[dict[str, Any]]:
    # The engine is another process: asking it again is the only way to wait on it.
    deadline = time.monotonic() + timeout
    while True:
        lines = _lines(settings)
        if predicate(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.3)


def test_simulated_lines_in_the_running_box(start_box: Callable[..., EngineProcess],
                                            settings: Settings) -> None:
    start_box(OFFICE)
    lines = _until(settings, lambda ls: all(line["state"] == "ready" for line in ls))
    assert [(line["key"], line["state"]) for line in lines] == [("beeline", "ready"),
                                                                 ("mts", "ready")]
    beeline = lines[0]
    assert beeline["imei"] == "869900000000042" and beeline["operator"] == "SimNet"
    assert beeline["imsi"] and beeline["iccid"] and beeline["own_number"]

    text = pbx(settings, "lines")
    assert text.returncode == 0 and "mts" in text.stdout and "ready" in text.stdout
    status = json.loads(pbx(settings, "status", "--json").stdout)
    assert status["lines"] == {"ready": 2}

    sent = pbx(settings, "sms", "send", "--line", "mts", "+79001234567", "Привет")
    assert sent.returncode == 0 and "sent" in sent.stdout, sent.stderr
    listed = json.loads(pbx(settings, "sms", "list", "--json").stdout)
    assert listed[0]["text"] == "Привет" and listed[0]["status"] in ("sent", "delivered")

    # A line switched off in the configuration, then a reload: no restart, no crash.
    disabled = OFFICE.replace("    kind: sim\n    simulated: true\n  - key: beeline",
                              "    kind: sim\n    simulated: true\n    enabled: false\n"
                              "  - key: beeline")
    assert pbx(settings, "config", "import", "-", "--reload", stdin=disabled).returncode == 0
    lines = _until(settings, lambda ls: ls[1]["state"] == "disabled")
    assert lines[1]["key"] == "mts" and lines[1]["state"] == "disabled"
    assert lines[0]["state"] == "ready"
