"""The product's AT layer (hw.modem) against the simulator: both written from the same
notes by different hands, so each checks the other's reading of the dialects."""

from __future__ import annotations

import pytest

from hw.modem.calls import CallerId, CallResult
from hw.modem.port import open_channel
from hw.modemsim import FakeModem, pdu

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("profile", ["huawei-e1550", "quectel-ec25", "simcom-7600"])
async def test_product_channel_on_the_simulator(profile: str) -> None:
    sim = await FakeModem(profile, time_scale=0.05).a_start()
    chan = await open_channel(str(sim.at_link))
    try:
        if profile == "huawei-e1550":
            # The E3372/E1550 habits the layer must survive (gsm-modems.md, complaint 4).
            sim.split_writes(True)
            sim.double_cr(True)
            sim.urc_inside_response(True)
        assert (await chan.command("ATE0")).final.line == "OK"
        csq = await chan.command("AT+CSQ")
        assert csq.lines == ("+CSQ: 20,99",)
        assert (await chan.command("AT+CLIP=1")).final.line == "OK"
        with chan.watch(lambda u: isinstance(u, CallerId)) as clips:
            idx = await sim.a_ring("+79001234567")
            clip = await clips.next(timeout=3)
        assert isinstance(clip, CallerId) and clip.number == "+79001234567"
        assert (await chan.command("ATA")).final.line == "OK"
        with chan.watch(lambda u: isinstance(u, CallResult)) as ended:
            await sim.a_remote_hangup(idx)
            assert isinstance(await ended.next(timeout=3), CallResult)
        submit = pdu.build_submit("+79005556677", "Привет", status_report=True)
        reply = await chan.send_pdu(f"AT+CMGS={pdu.tpdu_length(submit)}", submit)
        assert reply.final.line == "OK" and reply.lines == ("+CMGS: 0",)
        assert sim.sent_messages() == [("+79005556677", "Привет")]
    finally:
        await chan.close()
        await sim.a_stop()
