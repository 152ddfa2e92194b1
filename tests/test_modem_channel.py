"""The AT command engine against a scripted modem on a pty pair (tests/support/atpeer.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.modem.calls import CallResult, Ring, Urc
from hw.modem.channel import AtChannel
from hw.modem.commands import AtCommandError, AtTimeout, PortClosed
from hw.modem.messages import MessagePushed, MessageSent, MessageStored, UssdReply
from hw.modem.network import SignalQuality
from hw.modem.port import open_channel
from hw.modem.results import FinalKind
from hw.modem.urcs import UnknownLine
from tests.support.atpeer import AtPeer, Step, ok

pytestmark = pytest.mark.timeout(30)


class Rig:
    """A peer, a channel on its pty, and the URCs the channel delivered."""

    def __init__(self, peer: AtPeer, channel: AtChannel) -> None:
        self.peer = peer
        self.channel = channel
        self.urcs: list[Urc] = []
        channel.subscribe(self.urcs.append)

    async def urc(self, kind: type, timeout: float = 2.0) -> Urc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.urcs:
                if isinstance(item, kind):
                    return item
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {kind.__name__} among {self.urcs}")


@pytest.fixture
def script() -> dict[str, Callable[[str], list[Step] | None]]:
    return {}


@pytest.fixture
async def rig(script: dict[str, Callable[[str], list[Step] | None]]) -> AsyncIterator[Rig]:
    def answer(cmd: str) -> list[Step] | None:
        for prefix, fn in script.items():
            if cmd.upper().startswith(prefix):
                return fn(cmd)
        # AT+CMGS: the peer's default is the "> " prompt.
        return None if cmd.upper().startswith("AT+CMGS") else ok()

    peer = AtPeer(answer)
    await peer.start()
    channel = await open_channel(peer.path, name="test", default_timeout=2.0)
    yield Rig(peer, channel)
    await channel.close()
    peer.close()


async def test_command_collects_lines_until_ok(rig: Rig, script):
    script["AT+CGSN"] = lambda c: ok("860000000000001")
    script["AT+CSQ"] = lambda c: ok("+CSQ: 21,99")
    response = await rig.channel.command("AT+CGSN")
    assert response.ok and response.lines == ("860000000000001",)
    response = await rig.channel.command("AT+CSQ")
    assert response.first(SignalQuality) == SignalQuality(21, None, "+CSQ")
    assert rig.peer.commands == ["AT+CGSN", "AT+CSQ"]


async def test_echo_is_tolerated(rig: Rig, script):
    rig.peer.echo = True
    script["AT+CGMM"] = lambda c: ok("EC25")
    response = await rig.channel.command("AT+CGMM")
    assert response.lines == ("EC25",)


async def test_urcs_between_and_inside_replies(rig: Rig, script):
    script["AT+CSQ"] = lambda c: [b"\r\n+CSQ: 20,99\r\n", 0.02, b"\r\nRING\r\n\r\n^RSSI: 19\r\n",
                                  b"\r\n+CMTI: \"SM\",2\r\n\r\nOK\r\n"]
    response = await rig.channel.command("AT+CSQ")
    assert response.lines == ("+CSQ: 20,99",)
    await rig.urc(MessageStored)
    assert rig.urcs == [Ring(""), SignalQuality(19, None, "^RSSI"), MessageStored("SM", 2)]


async def test_split_writes_and_double_cr(rig: Rig, script):
    answer = b'\r\n+COPS: 0,0,"SimNet",7\r\r\n\r\r\nOK\r\r\n'
    pieces: list[Step] = []
    for byte in answer:
        pieces += [bytes([byte]), 0.001]
    script["AT+COPS?"] = lambda c: pieces
    response = await rig.channel.command("AT+COPS?")
    assert response.ok and response.lines == ('+COPS: 0,0,"SimNet",7',)


async def test_error_results_are_returned_and_can_raise(rig: Rig, script):
    script["AT+CPIN="] = lambda c: [b"\r\n+CME ERROR: 16\r\n"]
    script["AT^FOO"] = lambda c: [b"\r\nCOMMAND NOT SUPPORT\r\n"]
    response = await rig.channel.command('AT+CPIN="0000"')
    assert response.final.kind is FinalKind.CME_ERROR and response.final.code == 16
    with pytest.raises(AtCommandError, match="incorrect password"):
        response.expect_ok()
    assert (await rig.channel.command("AT^FOO")).final.kind is FinalKind.NOT_SUPPORTED
    assert rig.channel.stats.errors == 2


async def test_timeout_then_late_answer_does_not_answer_the_next_command(rig: Rig, script):
    # The answer comes 0.1 s after the timeout: within the quiet period the next command waits.
    script["AT+SLOW"] = lambda c: [0.3, b"\r\n+SLOW: late\r\n\r\nERROR\r\n"]
    script["AT+CSQ"] = lambda c: ok("+CSQ: 9,99")
    with pytest.raises(AtTimeout) as info:
        await rig.channel.command("AT+SLOW", timeout=0.2)
    assert info.value.command == "AT+SLOW"
    response = await rig.channel.command("AT+CSQ")
    assert response.ok and response.lines == ("+CSQ: 9,99",)
    assert rig.channel.stats.timeouts == 1


async def test_no_carrier_mid_command_is_a_urc(rig: Rig, script):
    script["AT+CSQ"] = lambda c: [b"\r\nNO CARRIER\r\n", b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n"]
    response = await rig.channel.command("AT+CSQ")
    assert response.ok
    assert CallResult(FinalKind.NO_CARRIER) in rig.urcs


async def test_dial_busy_is_the_final_result(rig: Rig, script):
    script["ATD"] = lambda c: [0.05, b"\r\nBUSY\r\n"]
    response = await rig.channel.command("ATD+79001234567;")
    assert response.final.kind is FinalKind.BUSY


async def test_remote_hangup_without_command_is_a_urc(rig: Rig):
    rig.peer.send(b"\r\nNO CARRIER\r\n")
    assert await rig.urc(CallResult) == CallResult(FinalKind.NO_CARRIER)


async def test_one_command_in_flight(rig: Rig, script):
    seen: list[tuple[str, float]] = []

    def slow(cmd: str) -> list[Step]:
        seen.append((cmd, time.monotonic()))
        return [0.2, *ok()]

    def fast(cmd: str) -> list[Step]:
        seen.append((cmd, time.monotonic()))
        return ok()

    script["AT+ONE"] = slow
    script["AT+TWO"] = fast
    first, second = await asyncio.gather(rig.channel.command("AT+ONE"),
                                         rig.channel.command("AT+TWO"))
    assert first.ok and second.ok
    assert [c for c, _ in seen] == ["AT+ONE", "AT+TWO"]
    assert seen[1][1] - seen[0][1] >= 0.19


async def test_sms_prompt_flow(rig: Rig):
    rig.peer.on_pdu = lambda pdu: [b"\r\n+CMGS: 42\r\n\r\nOK\r\n"]
    response = await rig.channel.send_pdu("AT+CMGS=18", "0011000B919700214365F70000AA05E8329BFD06")
    assert response.ok and response.first(MessageSent) == MessageSent(42)
    assert rig.peer.pdus == ["0011000B919700214365F70000AA05E8329BFD06"]


async def test_sms_prompt_flow_with_echo(rig: Rig):
    rig.peer.echo = True
    # Echo on: the modem echoes the command, and the PDU with Ctrl-Z after the prompt.
    rig.peer.on_pdu = lambda pdu: [pdu.encode() + b"\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n"]
    response = await rig.channel.send_pdu("AT+CMGS=5", "00AABBCCDD")
    assert response.ok and response.lines == ("+CMGS: 7",)


async def test_sms_error_instead_of_prompt(rig: Rig, script):
    script["AT+CMGS"] = lambda c: [b"\r\n+CMS ERROR: 331\r\n"]
    response = await rig.channel.send_pdu("AT+CMGS=5", "00AABBCCDD")
    assert response.final.kind is FinalKind.CMS_ERROR and response.final.code == 331
    assert rig.peer.pdus == []


async def test_sms_no_prompt_sends_escape(rig: Rig, script):
    script["AT+CMGS"] = lambda c: []
    with pytest.raises(AtTimeout):
        await rig.channel.send_pdu("AT+CMGS=5", "00AABBCCDD", prompt_timeout=0.2)
    await rig.peer.idle()
    assert rig.peer.cancelled == 1 and rig.peer.pdus == []
    assert (await rig.channel.command("AT")).ok


async def test_sms_cancelled_after_the_pdu_sends_no_escape(rig: Rig, script):
    script["AT+CMGS"] = lambda c: [b"\r\n> "]
    rig.peer.on_pdu = lambda pdu: [3.0, *ok("+CMGS: 1")]
    task = asyncio.create_task(rig.channel.send_pdu("AT+CMGS=5", "00AABBCCDD"))
    await asyncio.sleep(0.1)
    assert not task.done()
    # The PDU went out; cancel while waiting for +CMGS: no Esc then (it would be too late).
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.peer.pdus == ["00AABBCCDD"] and rig.peer.cancelled == 0


async def test_sms_cancelled_before_the_prompt_sends_escape(rig: Rig, script):
    script["AT+CMGS"] = lambda c: [1.0, b"\r\n> "]
    task = asyncio.create_task(rig.channel.send_pdu("AT+CMGS=5", "00AABBCCDD"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert rig.peer.cancelled == 1


async def test_urc_during_sms_prompt(rig: Rig, script):
    script["AT+CMGS"] = lambda c: [b"\r\nRING\r\n", b"\r\n> "]
    rig.peer.on_pdu = lambda pdu: [b'\r\n+CMTI: "SM",1\r\n', *ok("+CMGS: 3")]
    response = await rig.channel.send_pdu("AT+CMGS=5", "00AABBCCDD")
    assert response.first(MessageSent) == MessageSent(3)
    await rig.urc(MessageStored)
    assert isinstance(rig.urcs[0], Ring)


async def test_pushed_sms_with_pdu_mid_command(rig: Rig, script):
    script["AT+CSQ"] = lambda c: [b"\r\n+CMT: ,24\r\n0791AABB\r\n", *ok("+CSQ: 1,2")]
    response = await rig.channel.command("AT+CSQ")
    assert response.lines == ("+CSQ: 1,2",)
    assert await rig.urc(MessagePushed) == MessagePushed(24, "0791AABB")


async def test_watch_catches_a_cusd_that_beats_the_ok(rig: Rig, script):
    script["AT+CUSD=1"] = lambda c: [b'\r\n+CUSD: 0,"AA180C3602",15\r\n', *ok()]
    with rig.channel.watch(lambda u: isinstance(u, UssdReply)) as watch:
        response = await rig.channel.command('AT+CUSD=1,"AA180C3602",15')
        assert response.ok and response.lines == ()
        reply = await watch.next(1.0)
    assert reply == UssdReply(0, "AA180C3602", 15)


async def test_non_utf8_bytes_do_not_break_anything(rig: Rig, script):
    rig.peer.send(b"\xff\xfe\r\n\x80abc\xc3\r\n")
    await rig.urc(UnknownLine)
    script["AT+CSQ"] = lambda c: [b"\r\n+CSQ: \xff1,99\r\n\xfe\r\n\r\nOK\r\n"]
    response = await rig.channel.command("AT+CSQ")
    assert response.ok and len(response.lines) == 2
    assert any(isinstance(u, UnknownLine) for u in rig.urcs)
    assert (await rig.channel.command("AT")).ok


async def test_a_failing_handler_does_not_stop_the_reader(rig: Rig):
    def broken(urc: Urc) -> None:
        raise RuntimeError("subscriber bug")

    rig.channel.subscribe(broken)
    rig.peer.send(b"\r\nRING\r\n", 0.05, b'\r\n+CMTI: "SM",1\r\n')
    await rig.urc(MessageStored)
    assert rig.channel.stats.handler_errors == 2
    assert (await rig.channel.command("AT")).ok


async def test_unsubscribe(rig: Rig):
    got: list[Urc] = []
    undo = rig.channel.subscribe(got.append)
    undo()
    undo()
    rig.peer.send(b"\r\nRING\r\n")
    await rig.urc(Ring)
    assert got == []


async def test_unplug_fails_the_command_and_closes(rig: Rig, script):
    script["AT+CFUN"] = lambda c: [5.0, *ok()]
    task = asyncio.create_task(rig.channel.command("AT+CFUN=1,1", timeout=10))
    await asyncio.sleep(0.1)
    rig.peer.unplug()
    with pytest.raises(PortClosed):
        await task
    await asyncio.wait_for(rig.channel.wait_closed(), 2)
    assert rig.channel.closed and rig.channel.close_reason is not None
    with pytest.raises(PortClosed):
        await rig.channel.command("AT")


async def test_close_is_idempotent(rig: Rig):
    await rig.channel.close()
    await rig.channel.close()
    with pytest.raises(PortClosed):
        await rig.channel.command("AT")


class _FakeWriter:
    """A writer that hands what the channel writes to a callback (no pty needed)."""

    def __init__(self, on_write: Callable[[bytes], None]) -> None:
        self.on_write = on_write

    def write(self, data: bytes) -> None:
        self.on_write(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


URC_CHUNKS = [b"\r\nRING\r\n", b'\r\n+CMTI: "SM",4\r\n', b"\r\n^RSSI: 12\r\n",
              b'\r\n+QIND: "csq",20,99\r\n', b"\r\n\xff\xfe\r\n"]


@settings(max_examples=100, deadline=2000, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(st.sampled_from(URC_CHUNKS), max_size=4),
       st.lists(st.sampled_from(URC_CHUNKS), max_size=3), st.sampled_from([b"\r\n", b"\r\r\n"]),
       st.lists(st.integers(0, 300), max_size=15))
def test_engine_any_split_keeps_answer_and_urcs(echo: bool, before: list[bytes],
                                                inside: list[bytes], ending: bytes,
                                                cuts: list[int]):
    stream = (b"AT+CSQ\r" if echo else b"") + b"".join(before)
    stream += b"\r\n+CSQ: 20,99\r\n" + b"".join(inside) + ending + b"OK" + ending

    async def run() -> tuple[list[str], FinalKind, int]:
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()

        def respond(data: bytes) -> None:
            last = 0
            for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
                loop.call_soon(reader.feed_data, stream[last:cut])
                last = cut

        channel = AtChannel(reader, _FakeWriter(respond))
        got: list[Urc] = []
        channel.subscribe(got.append)
        channel.start()
        response = await channel.command("AT+CSQ", timeout=2)
        await channel.close()
        return list(response.lines), response.final.kind, len(got)

    lines, kind, urcs = asyncio.run(run())
    # A line without a prefix (the undecodable one) can only be taken as part of the answer.
    junk = URC_CHUNKS[-1]
    assert [x for x in lines if "\ufffd" not in x] == ["+CSQ: 20,99"] and kind is FinalKind.OK
    assert len(lines) == 1 + (before + inside).count(junk)
    assert urcs == len(before) + len(inside) - (before + inside).count(junk)
