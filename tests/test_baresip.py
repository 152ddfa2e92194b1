"""baresip as a real peer: digest registration, and calls both ways with audio."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.settings import Settings
from tests.conftest import free_port
from tests.support.harness import EngineProcess
from tests.support.tones import dominant, middle, read_wav, write_wav
from tests.test_edge_calls import desk_phone, registered

pytestmark = pytest.mark.timeout(120)

OFFICE = """\
version: 1
employees:
  - extension: "101"
    name: pjsua2 desk phone
    devices: [{username: "101", password: "Kx7-desk-alpha"}]
  - extension: "102"
    name: baresip softphone
    # baresip 1.0 fails on a SHA-256 challenge instead of skipping it.
    devices: [{username: "102", password: "Kx7-desk-bravo", auth: md5, kind: softphone}]
"""


def start_baresip(tmp: Path, edge_port: int, *commands: str) -> subprocess.Popen[str]:
    """baresip registered as 102: answers automatically, plays 1200 Hz, records to wav."""
    conf, snd = tmp / "baresip", tmp / "baresip-snd"
    conf.mkdir()
    snd.mkdir()
    tone = tmp / "tone-1200.wav"
    write_wav(tone, 1200.0, 30.0)
    (conf / "config").write_text(
        f"sip_listen 127.0.0.1:{free_port()}\n"
        f"audio_player aufile,/dev/null\naudio_source aufile,{tone}\n"
        "audio_alert aufile,/dev/null\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule sndfile.so\n"
        "module account.so\nmodule menu.so\n"
        f"snd_path {snd}\n")
    (conf / "accounts").write_text(
        f"<sip:102@127.0.0.1:{edge_port}>;auth_pass=Kx7-desk-bravo;regint=300;"
        "answermode=auto\n")
    args = ["baresip", "-4", "-f", str(conf), "-t", "20"]
    for command in commands:
        args += ["-e", command]
    log = (tmp / "baresip.log").open("w")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True)


def received_audio(snd: Path) -> Path:
    """The wav baresip's sndfile wrote of what it heard (the decoder side)."""
    [wav] = [p for p in snd.glob("*.wav") if "dec" in p.name]
    return wav


def wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


@pytest.fixture
def box(start_box: Callable[..., EngineProcess]) -> EngineProcess:
    assert shutil.which("baresip"), "baresip is installed by `make deps`"
    return start_box(OFFICE)


def test_pjsua2_phone_calls_baresip(box: EngineProcess, settings: Settings,
                                    tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    bare = start_baresip(tmp_path, settings.sip_port)
    phone = desk_phone(settings, "101", "Kx7-desk-alpha", "--record-dir", str(rec))
    try:
        phone.wait(registered(phone))
        wait_for(lambda: "registered 102" in box.log_path.read_text()
                 or "102 registered" in box.log_path.read_text())
        cid = phone.call(f"sip:102@127.0.0.1:{settings.sip_port}", tone=700, record=True)
        phone.wait(lambda e: e.get("id") == cid and e.get("state") == "CONFIRMED")
        time.sleep(1.5)  # audio needs wall-clock time
        phone.send(cmd="hangup", id=cid)
        phone.wait(lambda e: e.get("id") == cid and e.get("state") == "DISCONNECTED")
    finally:
        phone.close()
        bare.terminate()
        bare.wait(10)
    samples, rate = read_wav(received_audio(tmp_path / "baresip-snd"))
    freq, share = dominant(middle(samples, rate, 0.8), rate, [700.0, 1200.0])
    assert freq == 700.0 and share > 0.8  # baresip heard the desk phone
    [wav] = list(rec.glob("*.wav"))
    samples, rate = read_wav(wav)
    freq, share = dominant(middle(samples, rate, 0.8), rate, [700.0, 1200.0])
    assert freq == 1200.0 and share > 0.8  # and the desk phone heard baresip


def test_baresip_calls_a_pjsua2_phone(box: EngineProcess, settings: Settings,
                                      tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    phone = desk_phone(settings, "101", "Kx7-desk-alpha", "--tone", "700",
                       "--record-dir", str(rec))
    bare = None
    try:
        phone.wait(registered(phone))
        # baresip challenges nothing itself: the box asks it for credentials (407).
        bare = start_baresip(tmp_path, settings.sip_port,
                             f"/dial sip:101@127.0.0.1:{settings.sip_port}")
        phone.wait(lambda e: e.get("state") == "CONFIRMED")
        time.sleep(1.5)  # audio needs wall-clock time
        phone.send(cmd="hangup_all")
        phone.wait(lambda e: e.get("state") == "DISCONNECTED")
    finally:
        phone.close()
        if bare is not None:
            bare.terminate()
            bare.wait(10)
    [wav] = list(rec.glob("*.wav"))
    samples, rate = read_wav(wav)
    freq, share = dominant(middle(samples, rate, 0.8), rate, [700.0, 1200.0])
    assert freq == 1200.0 and share > 0.8
    samples, rate = read_wav(received_audio(tmp_path / "baresip-snd"))
    freq, share = dominant(middle(samples, rate, 0.8), rate, [700.0, 1200.0])
    assert freq == 700.0 and share > 0.8
