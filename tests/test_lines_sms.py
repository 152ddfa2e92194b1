"""SMS and USSD on SIM lines over the simulator: stored before deleted, multipart both ways,
status reports matched, storage full, mid-call traffic, balance checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.lines.base import (
    BalanceChecked,
    LineCallState,
    LowBalance,
    SmsReceived,
    SmsStatusChanged,
)
from appliance.lines.context import LineTimers
from tests.support.lines import FAST, line_rig

pytestmark = pytest.mark.timeout(60)
CYRILLIC = ("Здравствуйте! Это длинное сообщение на русском языке, которое не помещается "
            "в одну часть SMS: кириллица идёт в UCS2, а часть вмещает 67 знаков. Нужна и третья.")


def _rows(rig, sql: str, *args: object) -> list[tuple]:  # type: ignore[no-untyped-def]
    return list(rig.db.read().execute(sql, list(args)).fetchall())


@pytest.mark.parametrize("profile", ["quectel-ec25", "huawei-e1550"])
async def test_three_part_cyrillic_out_of_order(tmp_path: Path, profile: str) -> None:
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        pdus = await sim.a_deliver_sms("+79001234567", CYRILLIC, parts_order=[3, 1, 2])
        assert len(pdus) == 3
        got = await rig.until(lambda: rig.of(SmsReceived), what="SmsReceived")
        assert got[0].text == CYRILLIC and got[0].sender == "+79001234567"
        assert not got[0].partial
        rows = _rows(rig, "SELECT id, line_key, direction, peer, text, parts, status, partial"
                          " FROM sms")
        assert rows == [(got[0].sms_id, "sim1", "in", "+79001234567", CYRILLIC, 3,
                         "received", 0)]
        # Every part was written before it left the SIM, and is linked to the message.
        parts = _rows(rig, "SELECT sms_id FROM sms_parts")
        assert len(parts) == 3 and {p[0] for p in parts} == {got[0].sms_id}
        await rig.until(lambda: not sim.stored_sms("SM"), what="SIM emptied")
        deletes = [d for _, kind, d in sim.log if kind == "rx" and d.startswith(b"AT+CMGD=")]
        assert len(deletes) >= 3


async def test_part_never_comes_partial_message_kept(tmp_path: Path) -> None:
    timers = LineTimers(**{**FAST.__dict__, "sms_part_limit_s": 1.5})
    async with line_rig(tmp_path, {"sim1": "simcom-7600"}, timers=timers) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_deliver_sms("+79001234567", CYRILLIC, drop_part=2)
        got = await rig.until(lambda: rig.of(SmsReceived), what="partial SmsReceived")
        assert got[0].partial and "[…]" in got[0].text
        row = _rows(rig, "SELECT partial, missing_parts, parts FROM sms")
        assert row == [(1, "[2]", 3)]


async def test_sms_survives_restart_between_parts(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_deliver_sms("+79001234567", CYRILLIC, drop_part=3)
        await rig.until(lambda: len(_rows(rig, "SELECT id FROM sms_parts")) == 2,
                        what="two parts stored")
        assert _rows(rig, "SELECT count(*) FROM sms") == [(0,)]
        # A new worker (as after a restart) reloads the waiting parts from the database.
        line = rig.line()
        await line.sms.stop()
        from appliance.lines.simsms import SmsWorker

        line.sms = SmsWorker(line)
        line.sms.start()
        await rig.until(lambda: len(line.sms.reassembler) == 1, what="parts restored")


async def test_direct_push_is_stored_and_acknowledged(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        since = sim.now()
        await sim.a_deliver_sms("+79001234567", "Hello there", direct=True)
        got = await rig.until(lambda: rig.of(SmsReceived), what="SmsReceived")
        assert got[0].text == "Hello there"
        await sim.a_wait_for_command(r"^AT\+CNMA", timeout=5, since=since)


async def test_storage_full_is_emptied(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "huawei-e1550"},
                        sim_args={"sim1": {"sms_capacity": 2}}) as rig:
        line = await rig.ready()
        await line.sms.stop()  # nobody reads while the store fills up
        sim = rig.modems["sim1"]
        for n in range(4):
            await sim.a_deliver_sms("+7900123456" + str(n), f"message {n}")
        await asyncio.to_thread(lambda: None)
        from appliance.lines.simsms import SmsWorker

        line.sms = SmsWorker(line)
        line.sms.start()
        line.sms.sweep()
        await rig.until(lambda: len(rig.of(SmsReceived)) == 4, timeout=20,
                        what="all four messages")
        texts = sorted(e.text for e in rig.of(SmsReceived))
        assert texts == [f"message {n}" for n in range(4)]


@pytest.mark.parametrize("profile", ["quectel-ec25", "huawei-e1550"])
async def test_send_two_part_ucs2_and_match_report(tmp_path: Path, profile: str) -> None:
    text = "Добрый день! " * 8  # 104 UCS2 characters: two parts
    async with line_rig(tmp_path, {"sim1": profile}) as rig:
        await rig.ready()
        sim = rig.modems["sim1"]
        result = await rig.manager.send_sms("sim1", "+79001234567", text)
        assert result["status"] == "sent"
        assert sim.sent_messages() == [("+79001234567", text)]
        assert len(sim.sent_sms) == 2
        delivered = await rig.until(
            lambda: [e for e in rig.of(SmsStatusChanged) if e.status == "delivered"],
            what="delivered")
        assert delivered[0].sms_id == result["id"]
        row = _rows(rig, "SELECT status, parts, delivered_at IS NOT NULL FROM sms WHERE id = ?",
                    result["id"])
        assert row == [("delivered", 2, 1)]


async def test_sms_and_ussd_during_a_call_leave_it_up(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_set_ussd("*100#", "Баланс: 42,50 р.", dcs=72)
        call = await line.dial("+79005550010")
        await call.wait_state(LineCallState.ACTIVE, timeout=5)
        assert await sim.a_wait_flowing(True, timeout=5)
        await sim.a_deliver_sms("+79001234567", CYRILLIC, parts_order=[2, 3, 1])
        await rig.until(lambda: rig.of(SmsReceived), what="SMS mid-call")
        result = await line.ussd("*100#")
        assert result.amount is not None and float(result.amount) == 42.5
        sent = await rig.manager.send_sms("sim1", "+79001234567", "in a call")
        assert sent["status"] == "sent"
        assert call.state is LineCallState.ACTIVE and sim.calls()[0].stat == 0
        assert sim.audio.flowing
        await call.hangup()


@pytest.mark.parametrize(("profile", "dcs"), [("huawei-e1550", 15), ("huawei-e1550", 72),
                                              ("quectel-ec25", 15), ("simcom-7600", 72)])
async def test_balance_check_parsed_stored_and_low_balance(tmp_path: Path, profile: str,
                                                           dcs: int) -> None:
    text = "Balance: 12.30 RUB" if dcs == 15 else "Ваш баланс 12,30 руб."
    async with line_rig(tmp_path, {"sim1": profile}, threshold=50.0,
                        columns={"sim1": {"sim_ussd_balance": "*100#"}}) as rig:
        line = await rig.ready()
        sim = rig.modems["sim1"]
        await sim.a_set_ussd("*100#", text, dcs=dcs)
        result = await line.check_balance()
        assert result is not None and result.text == text
        assert float(result.amount or 0) == 12.3 and result.currency == "RUB"
        low = rig.of(LowBalance)
        assert len(low) == 1 and low[0].amount == 12.3 and low[0].threshold == 50.0
        assert rig.of(BalanceChecked)[0].amount == 12.3
        assert sim.ussd_requests == ["*100#"]
        row = _rows(rig, "SELECT line_key, request, response, balance, currency, ok"
                         " FROM ussd_history")
        assert row == [("sim1", "*100#", text, 12.3, "RUB", 1)]
        assert line.health()["balance"] == {"amount": 12.3, "currency": "RUB"}


async def test_periodic_balance_check(tmp_path: Path) -> None:
    timers = LineTimers(**{**FAST.__dict__, "balance_first_s": 0.5,
                           "balance_interval_s": 1.0})
    async with line_rig(tmp_path, {"sim1": "simcom-7600"}, timers=timers,
                        columns={"sim1": {"sim_ussd_balance": "*102#"}}) as rig:
        await rig.ready()
        await rig.modems["sim1"].a_set_ussd("*102#", "Остаток 100 р.", dcs=72)
        await rig.until(lambda: len(rig.of(BalanceChecked)) >= 2, timeout=15,
                        what="two periodic checks")
        assert all(e.amount == 100.0 for e in rig.of(BalanceChecked))
        assert not rig.of(LowBalance)


async def test_unknown_ussd_code_is_an_error_and_recorded(tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"}) as rig:
        line = await rig.ready()
        with pytest.raises(RuntimeError, match="not supported"):
            await line.ussd("*555#")
        assert _rows(rig, "SELECT ok, error FROM ussd_history") == [
            (0, "not supported by the network")]


async def test_full_store_without_a_urc_is_emptied_by_the_periodic_sweep(
        tmp_path: Path) -> None:
    async with line_rig(tmp_path, {"sim1": "quectel-ec25"},
                        sim_args={"sim1": {"sms_capacity": 2}}) as rig:
        line = await rig.ready()
        await line.sms.stop()  # nobody reads while the store fills up
        sim = rig.modems["sim1"]
        for n in range(4):
            await sim.a_deliver_sms("+7900123456" + str(n), f"message {n}")
        await rig.until(lambda: len(sim.stored_sms("SM")) == 2, what="SIM store full")
        from appliance.lines.simsms import SmsWorker

        line.sms = SmsWorker(line)  # +CMTI went to the stopped worker; the EC25 says no more
        line.sms.start()
        await rig.until(lambda: len(rig.of(SmsReceived)) == 4, timeout=30,
                        what="all four messages through the poll's sweep")
        assert sorted(e.text for e in rig.of(SmsReceived)) == [f"message {n}"
                                                                for n in range(4)]
