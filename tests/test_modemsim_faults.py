"""Faults of the modem simulator: freeze, line noise, split writes, \\r\\r\\nOK, URCs inside
replies, unplug/replug on new paths, and the AT+CFUN=1,1 reboot."""

from __future__ import annotations

import os
import select
import statistics
import time

import pytest

from tests.support.atclient import AtClient, sim_session

pytestmark = pytest.mark.timeout(30)


def _eof(client: AtClient, timeout: float = 2.0) -> bool:
    """True once the port reports end of file (or EIO), as after a USB unplug."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not client.eof:
        client.pump(deadline - time.monotonic())
    return client.eof


def test_freeze_and_unfreeze() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        since = sim.now()
        sim.freeze()
        at.write(b"AT\r")
        assert sim.wait_for_command(r"^AT$", timeout=2, since=since) == "AT"
        # Received, never answered: nothing at all comes back, URCs included.
        sim.set_sim("SIM PIN")
        assert at.lines_for(0.3) == []
        sim.unfreeze()
        assert at.command("AT") == ["OK"]


def test_freeze_after_n_commands() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.freeze_after(2)
        assert at.command("AT") == ["OK"]
        assert at.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]
        with pytest.raises(TimeoutError):
            at.command("AT", timeout=0.3)
        assert sim.frozen
        # A reboot (here by the simulator, as a watchdog's USB reset would) clears it.
        sim.reboot()
        assert sim.wait_plugged(False) and sim.wait_plugged(True)
        assert not sim.frozen


def test_inject_non_utf8_bytes() -> None:
    with sim_session("simcom-7600") as (sim, at):
        sim.inject(b"\xff\xfe\r\n")
        sim.inject(b"\r\n\x00\x80garbage\xc3\r\n")
        assert at.wait_line("garbage") == "\x00\x80garbage\xc3"
        assert b"\xff\xfe\r\n" in bytes(at.raw)
        assert at.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]


def test_split_writes() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        sim.split_writes(True)
        sizes = []
        os.write(at.fd, b"ATI\r")
        deadline = time.monotonic() + 3
        data = bytearray()
        while not data.endswith(b"OK\r\n") and time.monotonic() < deadline:
            readable, _, _ = select.select([at.fd], [], [], 0.5)
            if readable:
                chunk = os.read(at.fd, 4096)
                sizes.append(len(chunk))
                data.extend(chunk)
        assert bytes(data) == (b"\r\nQuectel\r\n\r\nEC25\r\n\r\nRevision: EC25EFAR06A06M4G\r\n"
                               b"\r\nOK\r\n")
        # Pieces of 1-4 bytes (two may meet in the pty buffer when the reader is slow).
        assert len(sizes) > 8 and statistics.median(sizes) <= 4
        sim.split_writes(False)
        assert at.command("AT+CGMM") == ["EC25", "OK"]


def test_double_cr() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.double_cr(True)
        mark = len(at.raw)
        assert at.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]
        assert bytes(at.raw[mark:]) == b"\r\n+CSQ: 20,99\r\n\r\r\nOK\r\n"
        assert at.command("AT+FOO") == ["COMMAND NOT SUPPORT"]


@pytest.mark.parametrize(("profile", "inside"), [
    ("huawei-e1550", b"\r\n^RSSI: 20\r\n"),
    ("quectel-ec25", b'\r\n+QIND: "csq",20,99\r\n'),
])
def test_urc_inside_response(profile: str, inside: bytes) -> None:
    with sim_session(profile) as (sim, at):
        sim.urc_inside_response(True)
        mark = len(at.raw)
        at.command("AT+CSQ")
        assert bytes(at.raw[mark:]) == b"\r\n+CSQ: 20,99\r\n" + inside + b"\r\nOK\r\n"
        sim.urc_inside_response(False)
        mark = len(at.raw)
        at.command("AT+CSQ")
        assert bytes(at.raw[mark:]) == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_urcs_wait_for_the_reply() -> None:
    with sim_session("quectel-ec25", time_scale=1.0) as (sim, at):
        sim.set_response_delay(0.2, "+COPS")
        at.write(b"AT+COPS?\r")
        sim.wait_for_command(r"COPS")
        sim.set_sim("SIM PIN")  # +CPIN: SIM PIN raised while the reply is being made
        mark = len(at.raw)
        at.wait_line(r"^\+CPIN")
        assert bytes(at.raw[mark:]).index(b"OK\r\n") < bytes(at.raw[mark:]).index(b"+CPIN")


def test_unplug_and_replug_on_new_paths() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        old_at, old_audio = sim.at_path, sim.audio_path
        link = sim.at_link
        assert os.readlink(link) == old_at
        sim.unplug()
        assert _eof(at)
        assert sim.at_path is None and not link.exists() and not sim.audio_link.exists()
        sim.replug()
        assert sim.at_path and sim.audio_path
        assert {sim.at_path, sim.audio_path}.isdisjoint({old_at, old_audio})
        assert os.readlink(link) == sim.at_path
        assert os.readlink(sim.audio_link) == sim.audio_path
        again = AtClient(str(link))
        try:
            for urc in ("RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE"):
                assert again.wait_line(".") == urc
            # A fresh boot: echo is on again.
            assert again.command("AT") == ["AT", "OK"]
            assert again.command("AT+CREG?")[-1] == "OK"
            assert sim.wait_for_command(r"^AT\+CREG\?$") == "AT+CREG?"
        finally:
            again.close()


@pytest.mark.parametrize(("profile", "boot"), [
    ("huawei-e1550", ["^BOOT:20483128,0,0,0,75", "^SIMST:1", "^SRVST:2"]),
    ("quectel-ec25", ["RDY", "+CFUN: 1", "+CPIN: SIM PIN", "+QUSIM: 1", "+QIND: SMS DONE"]),
    ("simcom-7600", ["RDY", "+CPIN: SIM PIN", "SMS DONE", "PB DONE"]),
])
def test_cfun_reboot_cycle(profile: str, boot: list[str]) -> None:
    with sim_session(profile, pin="1234") as (sim, at):
        assert at.command('AT+CREG=1;+CPIN="1234"') == ["OK"]
        assert at.wait_line(r"^\+CREG: 1") == "+CREG: 1"
        sim.script_number("100", answer_after=0.1)
        assert at.command("ATD100;") == ["OK"]
        old = sim.at_path
        t0 = time.monotonic()
        assert at.command("AT+CFUN=1,1") == ["OK"]
        assert _eof(at)
        assert time.monotonic() - t0 < 0.1 + 0.05
        assert sim.wait_plugged(False, timeout=1) and sim.wait_plugged(True, timeout=3)
        assert sim.at_path != old and sim.reboots == 1
        again = AtClient(str(sim.at_link))
        try:
            assert [again.wait_line(".") for _ in boot] == boot
            # The call is gone and the SIM wants its PIN again.
            assert again.command("ATE0") == ["ATE0", "OK"]
            assert again.command("AT+CLCC") == ["OK"]
            assert again.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
        finally:
            again.close()
