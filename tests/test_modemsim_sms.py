"""SMS and USSD on the modem simulator, read and sent over its pty; PDUs checked with
gsmmodem.pdu (an independent decoder)."""

from __future__ import annotations

import re

import gsmmodem.pdu as ref
import pytest

from hw.modemsim import gsm7
from tests.support.atclient import AtClient, sim_session

pytestmark = pytest.mark.timeout(30)

PROFILES = ["huawei-e1550", "quectel-ec25", "simcom-7600"]
LONG_RU = ("Добрый день! Напоминаем, что ваша запись к врачу назначена на завтра, 10:30, "
           "кабинет 214. Пожалуйста, возьмите с собой паспорт и полис. Если не сможете прийти, "
           "позвоните нам заранее.")


def _read(at: AtClient, idx: int) -> tuple[str, str]:
    """(+CMGR header, PDU) of message idx."""
    lines = at.command(f"AT+CMGR={idx}")
    assert lines[-1] == "OK" and len(lines) == 3, lines
    return lines[0], lines[1]


def _cmti_indices(at: AtClient, count: int) -> list[int]:
    return [int(at.wait_line(r'^\+CMTI: "SM",').rsplit(",", 1)[1]) for _ in range(count)]


def test_multipart_cyrillic_out_of_order() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        pdus = sim.deliver_sms("+79001234567", LONG_RU, parts_order=[3, 1, 2])
        assert len(pdus) == 3
        indices = _cmti_indices(at, 3)
        assert indices == [0, 1, 2]
        got = {}
        for idx in indices:
            header, hex_pdu = _read(at, idx)
            assert re.fullmatch(r"\+CMGR: 0,,\d+", header)
            assert int(header.rsplit(",", 1)[1]) == ref.decodeSmsPdu(hex_pdu)["tpdu_length"]
            decoded = ref.decodeSmsPdu(hex_pdu)
            assert decoded["number"] == "+79001234567"
            (concat,) = decoded["udh"]
            assert concat.parts == 3
            got[(idx, concat.number)] = decoded["text"]
        # Stored in arrival order: part 3 first.
        assert sorted(got) == [(0, 3), (1, 1), (2, 2)]
        assert "".join(text for (_i, _seq), text in sorted(got.items(), key=lambda kv: kv[0][1])
                       ) == LONG_RU
        # Read now: stat 1; then deleted one by one.
        assert _read(at, 0)[0].startswith("+CMGR: 1,,")
        for idx in indices:
            assert at.command(f"AT+CMGD={idx}") == ["OK"]
        assert at.command("AT+CMGR=0") == ["+CMS ERROR: 321"]
        assert at.command("AT+CPMS?") == ['+CPMS: "SM",0,20,"SM",0,20,"SM",0,20', "OK"]


def test_dropped_part_and_listing() -> None:
    with sim_session("simcom-7600") as (sim, at):
        sim.deliver_sms("+79001234567", LONG_RU, drop_part=2)
        assert _cmti_indices(at, 2) == [0, 1]
        assert at.lines_for(0.2) == []
        listed = at.command("AT+CMGL=4")
        assert listed[-1] == "OK"
        headers = [line for line in listed if line.startswith("+CMGL:")]
        assert [h.split(",")[:2] for h in headers] == [["+CMGL: 0", "0"], ["+CMGL: 1", "0"]]
        seqs = sorted(ref.decodeSmsPdu(line)["udh"][0].number
                      for line in listed if re.fullmatch(r"[0-9A-F]+", line))
        assert seqs == [1, 3]
        # Listing marked them read; delete everything read.
        assert at.command("AT+CMGL=0") == ["OK"]
        assert at.command("AT+CMGD=0,1") == ["OK"]
        assert at.command("AT+CMGL=4") == ["OK"]


def test_fixture_delivered_and_alphanumeric_sender() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.deliver_sms("+79001234567", "Привет")
        (idx,) = _cmti_indices(at, 1)
        _, hex_pdu = _read(at, idx)
        assert hex_pdu[:44] == "07919700000000F0040B919700214365F70008521103"
        assert ref.decodeSmsPdu(hex_pdu)["text"] == "Привет"
        sim.deliver_sms("Tinkoff", "Kod: 4321", alnum=True)
        (idx,) = _cmti_indices(at, 1)
        decoded = ref.decodeSmsPdu(_read(at, idx)[1])
        assert (decoded["number"], decoded["text"]) == ("Tinkoff", "Kod: 4321")


def test_direct_cmt_with_cnma_redelivery() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        assert at.command("AT+CSMS=1") == ["+CSMS: 1,1,1", "OK"]
        assert at.command("AT+CNMI=2,2,0,0,0") == ["OK"]
        assert at.command("AT+CNMA") == ["+CMS ERROR: 340"]
        sim.deliver_sms("+79001234567", "first")
        header = at.wait_line(r"^\+CMT: ")
        hex_pdu = at.wait_line(r"^[0-9A-F]+$")
        assert header == f"+CMT: ,{ref.decodeSmsPdu(hex_pdu)['tpdu_length']}"
        assert ref.decodeSmsPdu(hex_pdu)["text"] == "first"
        # No AT+CNMA: pushed again after 15 s (0.3 s here).
        at.wait_line(r"^\+CMT: ", timeout=2)
        assert at.wait_line(r"^[0-9A-F]+$") == hex_pdu
        assert at.command("AT+CNMA") == ["OK"]
        assert not [ln for ln in at.lines_for(0.5) if ln.startswith("+CMT")]
        # direct=True pushes whatever CNMI says; nothing is stored.
        assert at.command("AT+CNMI=2,1,0,2,0;+CSMS=0") == ["+CSMS: 1,1,1", "OK"]
        sim.deliver_sms("+79001234567", "second", direct=True)
        at.wait_line(r"^\+CMT: ")
        assert ref.decodeSmsPdu(at.wait_line(r"^[0-9A-F]+$"))["text"] == "second"
        assert sim.stored_sms() == {}


@pytest.mark.parametrize("profile", PROFILES)
def test_storage_full(profile: str) -> None:
    with sim_session(profile, sms_capacity=2) as (sim, at):
        for n in range(2):
            sim.deliver_sms("+79001234567", f"msg {n}")
        assert _cmti_indices(at, 2) == [0, 1]
        sim.deliver_sms("+79001234567", "msg 2")
        lines = at.lines_for(0.3)
        assert not [ln for ln in lines if ln.startswith("+CMTI")]
        if profile == "huawei-e1550":
            assert '^SMMEMFULL: "SM"' in lines
        else:
            assert lines == []
            assert at.command("AT+CMGW=10") == ["> "]
            at.write(gsm7.ussd_pack_hex("x").encode() + b"\x1b")  # cancelled
            assert at.until_final() == ["OK"]
            submit = ref.encodeSmsSubmitPdu("+79001234567", "draft")[0]
            assert at.command(f"AT+CMGW={submit.tpduLength}") == ["> "]
            at.write(str(submit).encode() + b"\x1a")
            assert at.until_final() == ["+CMS ERROR: 322"]
        assert at.command("AT+CPMS?")[0].startswith('+CPMS: "SM",2,2')
        # Space again: the network delivers what it held.
        assert at.command("AT+CMGD=0") == ["OK"]
        assert _cmti_indices(at, 1) == [0]
        assert ref.decodeSmsPdu(_read(at, 0)[1])["text"] == "msg 2"


def _send(at: AtClient, hex_pdu: str, length: int) -> list[str]:
    assert at.command(f"AT+CMGS={length}") == ["> "]
    at.write(hex_pdu.encode() + b"\x1a")
    return at.until_final(timeout=5)


def test_cmgs_prompt_length_and_cancel() -> None:
    with sim_session("quectel-ec25", echo=True) as (sim, at):
        submit = ref.encodeSmsSubmitPdu("+79001234567", "Hello there", requestStatusReport=False)[0]
        at.write(f"AT+CMGS={submit.tpduLength}\r".encode())
        assert at.until_final() == [f"AT+CMGS={submit.tpduLength}", "> "]
        assert bytes(at.raw).endswith(b"\r\n> ")
        at.write(str(submit).encode() + b"\x1a")
        reply = at.until_final()
        assert reply[-2:] == ["+CMGS: 0", "OK"]
        assert at.command("ATE0")[-1] == "OK"
        # Wrong length, not hex, cancelled: nothing more is sent.
        assert _send(at, str(submit), submit.tpduLength + 1) == ["+CMS ERROR: 304"]
        assert _send(at, "ZZ" + str(submit), submit.tpduLength) == ["+CMS ERROR: 304"]
        assert at.command("AT+CMGS=20") == ["> "]
        at.write(b"0011\x1b")
        assert at.until_final() == ["OK"]
        assert [(s.number, s.text, s.mr) for s in sim.sent_sms] == [
            ("+79001234567", "Hello there", 0)]
        assert _send(at, str(submit), submit.tpduLength) == ["+CMGS: 1", "OK"]
        assert sim.wait_for_command(r"^0001").endswith("\x1a")


@pytest.mark.parametrize("profile", PROFILES)
def test_two_part_ucs2_with_status_reports(profile: str) -> None:
    text = "Ж" * 100
    with sim_session(profile) as (sim, at):
        parts = ref.encodeSmsSubmitPdu("+79005556677", text, reference=77,
                                       requestStatusReport=True)
        assert len(parts) == 2
        mrs = []
        for part in parts:
            reply = _send(at, str(part), part.tpduLength)
            assert reply[-1] == "OK"
            mrs.append(int(reply[0].split(": ")[1]))
        assert mrs == [0, 1]
        assert sim.sent_messages() == [("+79005556677", text)]
        assert [s.mr for s in sim.sent_sms] == mrs
        # A stored SMS-STATUS-REPORT for each, with the same MR, announced by +CDSI.
        sr = [int(at.wait_line(r'^\+CDSI: "SR",').rsplit(",", 1)[1]) for _ in mrs]
        assert sr == [0, 1]
        assert at.command('AT+CPMS="SR"')[-1] == "OK"
        for idx, mr in zip(sr, mrs, strict=True):
            report = ref.decodeSmsPdu(_read(at, idx)[1])
            assert report["type"] == "SMS-STATUS-REPORT"
            assert (report["reference"], report["number"], report["status"]) == (
                mr, "+79005556677", 0)


def test_status_report_pushed_with_ds1() -> None:
    with sim_session("simcom-7600") as (_sim, at):
        assert at.command("AT+CNMI=2,1,0,1,0") == ["OK"]
        part = ref.encodeSmsSubmitPdu("+79005556677", "ping", requestStatusReport=True)[0]
        assert _send(at, str(part), part.tpduLength) == ["+CMGS: 0", "OK"]
        header = at.wait_line(r"^\+CDS: ")
        report = ref.decodeSmsPdu(at.wait_line(r"^[0-9A-F]+$"))
        assert header == f"+CDS: {report['tpdu_length']}" and report["reference"] == 0


def test_cmgs_without_network_is_331() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.drop_network()
        part = ref.encodeSmsSubmitPdu("+79005556677", "ping")[0]
        assert _send(at, str(part), part.tpduLength) == ["+CMS ERROR: 331"]
        assert sim.sent_sms == []
        # A message from the network waits for the network to come back.
        sim.deliver_sms("+79001234567", "later")
        assert not [ln for ln in at.lines_for(0.1) if "CMTI" in ln]
        sim.restore_network()
        assert _cmti_indices(at, 1) == [0]


# -- USSD ------------------------------------------------------------------------------


def test_huawei_ussd_packed_hex() -> None:
    with sim_session("huawei-e1550") as (sim, at):
        sim.set_ussd("*100#", "Balance 123.45 rub", dcs=15)
        sim.set_ussd("*102#", "Баланс 10 р.", dcs=72)
        assert at.command('AT+CUSD=1,"*100#",15') == ["ERROR"]  # plain text is refused
        assert at.command('AT+CUSD=1,"AA180C3602",15') == ["OK"]
        reply = at.wait_line(r"^\+CUSD: ")
        m = re.fullmatch(r'\+CUSD: 0,"([0-9A-F]+)",15', reply)
        assert m and gsm7.ussd_unpack_hex(m.group(1)) == "Balance 123.45 rub"
        assert sim.ussd_requests == ["*100#"]
        request = gsm7.ussd_pack_hex("*102#")
        assert at.command(f'AT+CUSD=1,"{request}",15') == ["OK"]
        reply = at.wait_line(r"^\+CUSD: ")
        assert reply == f'+CUSD: 0,"{gsm7.ucs2_hex("Баланс 10 р.")}",72'
        assert bytes.fromhex(reply.split('"')[1]).decode("utf-16-be") == "Баланс 10 р."
        # ^USSDMODE=0: plain text both ways (dcs 15).
        assert at.command("AT^USSDMODE=0") == ["OK"]
        assert at.command('AT+CUSD=1,"*100#",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD: ") == '+CUSD: 0,"Balance 123.45 rub",15'


@pytest.mark.parametrize("profile", ["quectel-ec25", "simcom-7600"])
def test_ussd_follows_cscs(profile: str) -> None:
    with sim_session(profile) as (sim, at):
        sim.set_ussd("*100#", "Balance 5 rub", dcs=15)
        sim.set_ussd("*102#", "Баланс 5 р.", dcs=72)
        assert at.command('AT+CSCS="UCS2";+CMEE=1') == ["OK"]
        for code, text, dcs in (("*100#", "Balance 5 rub", 15), ("*102#", "Баланс 5 р.", 72)):
            assert at.command(f'AT+CUSD=1,"{gsm7.ucs2_hex(code)}",15') == ["OK"]
            assert at.wait_line(r"^\+CUSD: ") == f'+CUSD: 0,"{gsm7.ucs2_hex(text)}",{dcs}'
        assert at.command('AT+CUSD=1,"*100#",15') == ["+CME ERROR: 25"]
        assert at.command('AT+CSCS="GSM"') == ["OK"]
        assert at.command('AT+CUSD=1,"*100#",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD: ") == '+CUSD: 0,"Balance 5 rub",15'


def test_ussd_unknown_timeout_and_session() -> None:
    with sim_session("quectel-ec25") as (sim, at):
        sim.set_ussd("*111#", "1. Balance\n2. Tariff", dcs=15, m=1)
        sim.set_ussd("1", "Balance 7 rub", dcs=15)
        sim.set_ussd("*222#", None, timeout=True, delay=1.0)
        assert at.command('AT+CUSD=1,"*999#",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD") == "+CUSD: 4"
        assert at.command('AT+CUSD=1,"*222#",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD") == "+CUSD: 5"
        assert at.command('AT+CUSD=1,"*111#",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD").startswith('+CUSD: 1,"1. Balance')
        assert at.command('AT+CUSD=1,"1",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD") == '+CUSD: 0,"Balance 7 rub",15'
        # An open session that is cancelled, and one left idle (30 s: 0.6 s here).
        assert at.command('AT+CUSD=1,"*111#",15;+CUSD=2') == ["OK"]
        assert not [ln for ln in at.lines_for(0.2) if ln.startswith("+CUSD")]
        assert at.command('AT+CUSD=1,"*111#",15') == ["OK"]
        assert at.wait_line(r"^\+CUSD").startswith("+CUSD: 1,")
        assert at.wait_line(r"^\+CUSD", timeout=3) == "+CUSD: 5"
        sim.drop_network()
        assert at.command('AT+CUSD=1,"*100#",15') == ["+CME ERROR: 30"]
