"""SIPp as a real peer: digest REGISTER (MD5) and an authenticated call with RTP."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from appliance.settings import Settings
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, pbx
from tests.support.tones import mulaw_tone

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "peers" / "asterisk" / "scenarios"
if not SCENARIOS.is_dir():  # the work tree may live elsewhere; the scenarios are beside it
    SCENARIOS = Path("/work/shared/peers/asterisk/scenarios")

pytestmark = pytest.mark.timeout(120)

PASSWORD = "Zq8-sipp-pass"


def sipp(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run SIPp to completion; exit code 0 means every call succeeded."""
    return subprocess.run(["sipp", *args, "-nostdin", "-trace_err", "-timeout", "30s"],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_sipp_registers_and_calls_through_the_box(settings: Settings, unix_dir: Path,
                                                  tmp_path: Path) -> None:
    assert shutil.which("sipp"), "sip-tester is installed by `make deps`"
    assert SCENARIOS.is_dir(), f"SIPp scenarios not found at {SCENARIOS}"
    uas_port, uas_media = free_port(), free_port_block(4)
    office = f"""\
version: 1
employees:
  - extension: "1000"
    name: SIPp caller
    devices: [{{username: "1000", password: "{PASSWORD}", auth: md5}}]
  - extension: "2000"
    name: SIPp answering
    devices: [{{username: "2000", static_contact: "sip:uas@127.0.0.1:{uas_port}"}}]
"""
    assert pbx(settings, "config", "import", "-", stdin=office).returncode == 0
    (tmp_path / "users.csv").write_text(
        f"SEQUENTIAL\n1000;1000;{PASSWORD};[authentication username=1000 password={PASSWORD}]\n")
    (tmp_path / "tone.pcmu").write_bytes(mulaw_tone(1000, 1.0))
    target = f"127.0.0.1:{settings.sip_port}"
    common = ["-inf", "users.csv", "-key", "domain", "127.0.0.1", "-i", "127.0.0.1",
              "-m", "1", "-r", "1"]
    engine = EngineProcess(settings, unix_dir / "notify", log_path=tmp_path / "engine.log")
    uas = None
    try:
        engine.wait_ready()
        reg = sipp(target, "-sf", str(SCENARIOS / "register.xml"), *common,
                   "-key", "expires", "300", "-p", str(free_port()), cwd=tmp_path)
        assert reg.returncode == 0, reg.stdout[-2000:] + reg.stderr

        uas = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-p", str(uas_port), "-i", "127.0.0.1",
             "-rtp_echo", "-mp", str(uas_media), "-mi", "127.0.0.1", "-m", "1", "-nostdin",
             "-timeout", "40s"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        call = sipp(target, "-sf", str(SCENARIOS / "uac_auth.xml"), *common,
                    "-s", "2000", "-d", "1500", "-p", str(free_port()),
                    "-mp", str(free_port_block(4)), "-mi", "127.0.0.1", cwd=tmp_path)
        assert call.returncode == 0, call.stdout[-3000:] + call.stderr
        assert uas.wait(timeout=30) == 0
    finally:
        if uas is not None and uas.poll() is None:
            uas.kill()
        engine.close()
    rows = sqlite3.connect(settings.db_path).execute(
        "SELECT dialled, disposition FROM call_records").fetchall()
    assert rows == [("2000", "answered")]
