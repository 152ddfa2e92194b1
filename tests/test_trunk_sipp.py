"""SIP trunks and FXO gateways against real peers: SIPp plays the provider and the gateway.

Loopback addresses stand for machines: the box on 127.0.0.1, the provider on 127.0.0.2,
a stranger on 127.0.0.3, the FXO gateway on 127.0.0.4 (Linux routes all of 127/8 to lo).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.config.yamlio import import_yaml
from appliance.control import call as control
from appliance.db import Database
from appliance.edge import Edge, EdgeConfig
from appliance.settings import Settings
from appliance.sip import digest_response, ha1, parse_credentials
from tests.conftest import free_port, free_port_block
from tests.support.harness import EngineProcess, PhoneProcess, pbx

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent / "sipp"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "peers" / "asterisk" / "scenarios"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/peers/asterisk/scenarios")
PROVIDER_IP, STRANGER_IP, GATEWAY_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
DESK_PASSWORD = "Kx7-desk-alpha"


def office(port: int, *, registration: bool = False, channels: int = 2,
           trunk: bool = True) -> str:
    """An office with employee 101, one trunk at the provider's address, one FXO gateway."""
    lines = f"""\
  - key: prov
    kind: sip_trunk
    host: {PROVIDER_IP}
    port: {port}
    username: trunkuser
    secret: Tr-secret-42
    from_domain: provider.test
    registration: {"true" if registration else "false"}
    channels: {channels}
""" if trunk else ""
    return f"""\
version: 1
box: {{country: RU}}
employees:
  - extension: "101"
    name: Anna
    devices: [{{username: "101", password: "{DESK_PASSWORD}"}}]
lines:
{lines}  - key: fxo
    kind: fxo_gateway
    username: fxo1
    secret: Fxo-secret-77
    channels: 2
flows:
  - key: to-anna
    branches: [{{to: {{employee: "101"}}}}]
numbers:
{"  - {number: '+7 495 111-22-33', line: prov, flow: to-anna}" if trunk else ""}
  - {{number: "+7 495 444-55-66", line: fxo, flow: to-anna}}
"""


def sipp(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run SIPp to completion; exit code 0 means every call succeeded."""
    return subprocess.run(["sipp", *args, "-nostdin", "-trace_err", "-timeout", "40s"],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


def sipp_background(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(["sipp", *args, "-nostdin", "-trace_err", "-timeout", "60s"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finished(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return -1, out
    return proc.returncode, out


def errors(cwd: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in cwd.glob("*_errors.log"))


def wait_until(pred: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Poll the control API (its state changes have no push channel) until pred holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        time.sleep(0.1)


def trunk(settings: Settings, key: str) -> dict[str, Any] | None:
    found = [t for t in control(settings.control_socket, "GET", "/trunks") if t["line"] == key]
    return found[0] if found else None


@pytest.fixture
def sipp_dir(tmp_path: Path) -> Path:
    assert shutil.which("sipp"), "sip-tester is installed by `make deps`"
    path = tmp_path / "sipp"
    path.mkdir()
    return path


def desk_phone(settings: Settings) -> PhoneProcess:
    return PhoneProcess(free_port(), free_port_block(20), "--user", "101",
                        "--password", DESK_PASSWORD,
                        "--registrar", f"127.0.0.1:{settings.sip_port}")


def registered(e: dict[str, Any]) -> bool:
    return e.get("event") == "reg" and e.get("code") == 200 and bool(e.get("active"))


def test_the_box_registers_refreshes_and_unregisters_a_removed_trunk(
        start_box: Callable[..., EngineProcess], settings: Settings, sipp_dir: Path) -> None:
    port = free_port()
    registrar = sipp_background("-sf", str(HERE / "trunk_registrar.xml"), "-i", PROVIDER_IP,
                                "-p", str(port), "-m", "1", cwd=sipp_dir)
    try:
        start_box(office(port, registration=True))
        first = wait_until(lambda: (t := trunk(settings, "prov")) and t["state"] == "registered"
                           and t, what="the first registration")
        assert first["last_code"] == 200 and first["mode"] == "register"
        assert 0 < first["expires"] <= 6 and first["usable"]
        # The registrar granted 6 s: the refresh goes at half of it, with credentials.
        wait_until(lambda: (trunk(settings, "prov") or {}).get("registrations", 0) >= 2,
                   what="the refresh")
        shown = pbx(settings, "trunks")
        assert shown.returncode == 0 and "registered" in shown.stdout, shown.stdout
        # Removed from the configuration: un-registered, gone from the list.
        assert pbx(settings, "config", "import", "-",
                   stdin=office(port, trunk=False)).returncode == 0
        assert pbx(settings, "reload").returncode == 0
        code, out = finished(registrar)
        assert code == 0, out[-3000:] + errors(sipp_dir)
        assert trunk(settings, "prov") is None
    finally:
        if registrar.poll() is None:
            registrar.kill()


def test_a_provider_call_on_a_did_rings_the_mapped_extension(
        start_box: Callable[..., EngineProcess], settings: Settings, sipp_dir: Path) -> None:
    start_box(office(free_port()))
    phone = desk_phone(settings)
    try:
        phone.wait(registered)
        target = f"127.0.0.1:{settings.sip_port}"
        call = sipp(target, "-sf", str(HERE / "trunk_uac.xml"), "-i", PROVIDER_IP,
                    "-p", str(free_port()), "-s", "84951112233", "-d", "1000", "-m", "1",
                    "-mi", PROVIDER_IP, "-mp", str(free_port_block(4)), cwd=sipp_dir)
        assert call.returncode == 0, call.stdout[-3000:] + errors(sipp_dir)
        phone.wait(lambda e: e.get("event") == "incoming")
        phone.wait(lambda e: e.get("state") == "DISCONNECTED")
        # Somebody else calling the same DID is challenged; nothing rings.
        stranger = sipp(target, "-sf", str(HERE / "trunk_uac_refused.xml"), "-i", STRANGER_IP,
                        "-p", str(free_port()), "-s", "84951112233", "-m", "1", cwd=sipp_dir)
        assert stranger.returncode == 0, stranger.stdout[-3000:] + errors(sipp_dir)
        assert phone.count(lambda e: e.get("event") == "incoming") == 1
        status = control(settings.control_socket, "GET", "/status")
        assert status["sip"]["trunk_calls_in"] == 1
    finally:
        phone.close()
    rows = sqlite3.connect(settings.db_path).execute(
        "SELECT dialled, disposition, caller, direction FROM call_records").fetchall()
    # Routed through the DID's call flow, which rings 101.
    assert [(d, s, w) for d, s, _, w in rows] == [("+74951112233", "answered", "inbound")]
    assert "+79161234567" in rows[0][2]


async def test_trunk_calls_reach_the_engine_with_the_line_headers(tmp_path: Path,
                                                                  sipp_dir: Path) -> None:
    """The edge alone, with SIPp standing where the engine listens, checking the headers."""
    edge_port, engine_port = free_port(), free_port()
    db = Database.open(tmp_path / "pbx.db")
    import_yaml(db, office(free_port()))
    edge = Edge(EdgeConfig(bind="127.0.0.1", port=edge_port, engine_port=engine_port,
                           keepalive_s=0), db)
    await edge.start()
    engine = sipp_background("-sf", str(HERE / "engine_uas_trunk.xml"), "-i", "127.0.0.1",
                             "-p", str(engine_port), "-m", "1", "-mp",
                             str(free_port_block(4)), cwd=sipp_dir)
    try:
        call = await asyncio.to_thread(
            sipp, f"127.0.0.1:{edge_port}", "-sf", str(HERE / "trunk_uac.xml"),
            "-i", PROVIDER_IP, "-p", str(free_port()), "-s", "84951112233", "-d", "300",
            "-m", "1", "-mi", PROVIDER_IP, "-mp", str(free_port_block(4)), cwd=sipp_dir)
        assert call.returncode == 0, call.stdout[-3000:] + errors(sipp_dir)
        code, out = await asyncio.to_thread(finished, engine)
        assert code == 0, out[-3000:] + errors(sipp_dir)
        assert edge.trunks.calls.count("prov") == 0  # the BYE freed the channel
    finally:
        if engine.poll() is None:
            engine.kill()
        await edge.stop()
        db.close()


def test_a_call_out_through_the_trunk_answers_a_407_and_the_channel_limit_holds(
        start_box: Callable[..., EngineProcess], settings: Settings, sipp_dir: Path) -> None:
    port = free_port()
    provider = sipp_background("-sf", str(HERE / "trunk_uas.xml"), "-i", PROVIDER_IP,
                               "-p", str(port), "-m", "1", "-mi", PROVIDER_IP,
                               "-mp", str(free_port_block(4)), "-rtp_echo", "-trace_logs",
                               cwd=sipp_dir)
    try:
        start_box(office(port, channels=1))
        results: dict[str, subprocess.CompletedProcess[str]] = {}

        def first_call() -> None:
            results["first"] = pbx(settings, "trunks", "test", "prov", "+79001234567",
                                   "--caller-id", "+74951112233", "--hold", "3")

        caller = threading.Thread(target=first_call)
        caller.start()
        wait_until(lambda: (trunk(settings, "prov") or {}).get("calls") == 1,
                   what="the first call to take the channel")
        # The only channel is taken: a second call is refused at once, never sent.
        started = time.monotonic()
        second = control(settings.control_socket, "POST", "/trunks/test-call",
                         {"line": "prov", "number": "+79001234568"}, timeout=30)
        assert (second["answered"], second["code"]) == (False, 503), second
        assert time.monotonic() - started < 5
        caller.join(timeout=60)
        first = results["first"]
        assert first.returncode == 0, first.stdout + first.stderr
        assert "answered" in first.stdout
        code, out = finished(provider)
        assert code == 0, out[-3000:] + errors(sipp_dir)
        assert_digest_answers_the_challenge(sipp_dir)
        assert trunk(settings, "prov")["calls"] == 0  # type: ignore[index]
        status = control(settings.control_socket, "GET", "/status")["sip"]
        assert status["trunk_auth_answered"] == 1 and status["trunk_refused"] == 1
    finally:
        if provider.poll() is None:
            provider.kill()


def assert_digest_answers_the_challenge(sipp_dir: Path) -> None:
    """The Proxy-Authorization SIPp logged answers its challenge for trunkuser's password.

    (SIPp's own verifyauth reads Authorization only; it checks the box's REGISTER digest
    in the registration test, this checks the INVITE's.)
    """
    logged = "".join(p.read_text() for p in sipp_dir.glob("trunk_uas_*_logs.log"))
    value = logged.split("PROXY-AUTHORIZATION ", 1)[1].splitlines()[0]
    params = parse_credentials(value).as_dict()
    assert params["nonce"].startswith("p") and params["qop"] == "auth"
    expected = digest_response(ha1("trunkuser", "provider.test", "Tr-secret-42", "MD5"),
                               params["nonce"], "INVITE", params["uri"], "MD5", qop="auth",
                               nc=params["nc"], cnonce=params["cnonce"])
    assert params["response"] == expected
    assert params["uri"].startswith("sip:+79001234567@127.0.0.2:")


def test_an_fxo_gateway_registers_to_the_box_and_calls_in(
        start_box: Callable[..., EngineProcess], settings: Settings, sipp_dir: Path) -> None:
    start_box(office(free_port(), trunk=False))
    phone = desk_phone(settings)
    (sipp_dir / "users.csv").write_text(
        "SEQUENTIAL\nfxo1;fxo1;Fxo-secret-77;"
        "[authentication username=fxo1 password=Fxo-secret-77]\n")
    (sipp_dir / "tone.pcmu").write_bytes(b"\xff" * 8000)
    target = f"127.0.0.1:{settings.sip_port}"
    common = ["-inf", "users.csv", "-key", "domain", "127.0.0.1", "-i", GATEWAY_IP,
              "-m", "1"]
    try:
        phone.wait(registered)
        reg = sipp(target, "-sf", str(SHARED / "register.xml"), *common, "-key", "expires",
                   "300", "-p", str(free_port()), cwd=sipp_dir)
        assert reg.returncode == 0, reg.stdout[-2000:] + errors(sipp_dir)
        gateway = trunk(settings, "fxo")
        assert gateway is not None and gateway["mode"] == "registers_to_box"
        assert gateway["state"] == "registered" and gateway["contacts"]
        call = sipp(target, "-sf", str(SHARED / "uac_auth.xml"), *common, "-s", "84954445566",
                    "-d", "1000", "-p", str(free_port()), "-mp", str(free_port_block(4)),
                    "-mi", GATEWAY_IP, cwd=sipp_dir)
        assert call.returncode == 0, call.stdout[-3000:] + errors(sipp_dir)
        phone.wait(lambda e: e.get("event") == "incoming")
    finally:
        phone.close()
    rows = sqlite3.connect(settings.db_path).execute(
        "SELECT dialled, disposition FROM call_records").fetchall()
    assert rows == [("+74954445566", "answered")]  # the DID, routed through its flow to 101
