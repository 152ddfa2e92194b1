"""SIP over a byte stream: the incremental framer (RFC 3261 §18.3, RFC 5626 keep-alives)."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.sip import Close, Frame, Ping, SipFramer, SipParseError, parse_message
from appliance.sip.stream import Event

FUZZ = settings(max_examples=int(os.environ.get("PBX_FUZZ_EXAMPLES", "150")), deadline=1000,
                database=None)


def msg(n: int, body: bytes = b"", extra: str = "") -> bytes:
    head = (f"OPTIONS sip:{n}@pbx SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK{n}\r\n"
            f"From: <sip:a@pbx>;tag={n}\r\nTo: <sip:{n}@pbx>\r\nCall-ID: c{n}\r\n"
            f"CSeq: {n} OPTIONS\r\n{extra}Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def feed_all(framer: SipFramer, data: bytes, chunk: int) -> list[Event]:
    events: list[Event] = []
    for i in range(0, len(data), chunk):
        events += framer.feed(data[i:i + chunk])
    return events


def frames(events: list[Event]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Frame)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 100000])
def test_messages_in_any_chunking(chunk: int) -> None:
    messages = [msg(1), msg(2, b"v=0\r\n\r\n\r\nbinary\x00\xff"), msg(3, b"x" * 3000)]
    framer = SipFramer()
    assert frames(feed_all(framer, b"".join(messages), chunk)) == messages
    assert framer.buffered == 0 and not framer.pending and not framer.closed


def test_keepalives() -> None:
    framer = SipFramer()
    events = framer.feed(b"\r\n\r\n" + msg(1) + b"\r\n\r\n\r\n\r\n")
    assert events == [Ping(), Frame(msg(1)), Ping(), Ping()]
    assert framer.feed(b"\r\n") == []  # a pong (or a ping still arriving): wait
    assert framer.feed(b"\r\n") == [Ping()]
    assert framer.feed(b"\r") == [] and framer.feed(b"\n\r") == [] and framer.feed(b"\n") == [
        Ping()]
    assert framer.feed(b"\r\n" + msg(2)) == [Frame(msg(2))]  # lone CRLF before a message


def test_partial_message_waits() -> None:
    framer = SipFramer()
    data = msg(1, b"hello")
    assert framer.feed(data[:-2]) == []
    assert framer.pending and framer.buffered == len(data) - 2
    assert framer.feed(data[-2:]) == [Frame(data)]


def test_missing_content_length_means_empty_body() -> None:
    data = msg(1).replace(b"Content-Length: 0\r\n", b"")
    assert SipFramer().feed(data + msg(2)) == [Frame(data), Frame(msg(2))]


@pytest.mark.parametrize("bad", [b"-1", b"abc", b"1 2", b"99999999999", b""])
def test_bad_content_length_closes(bad: bytes) -> None:
    framer = SipFramer()
    data = msg(1).replace(b"Content-Length: 0", b"Content-Length: " + bad)
    events = framer.feed(data + msg(2))
    assert len(events) == 1 and isinstance(events[0], Close) and events[0].status == 400
    assert framer.closed and framer.buffered == 0 and framer.feed(msg(3)) == []
    with pytest.raises(SipParseError) as info:
        parse_message(events[0].head)
    assert info.value.can_respond and info.value.response_headers


def test_two_content_lengths_close() -> None:
    data = msg(1, extra="l: 5\r\n")
    (event,) = SipFramer().feed(data)
    assert isinstance(event, Close) and "Content-Length" in event.reason


def test_size_limits_close_with_513() -> None:
    (event,) = SipFramer(max_size=1000).feed(msg(1, b"x" * 2000))
    assert isinstance(event, Close) and event.status == 513
    framer = SipFramer(max_size=1000)
    events = feed_all(framer, b"OPTIONS sip:a SIP/2.0\r\nX: " + b"y" * 2000, 100)
    assert len(events) == 1 and isinstance(events[0], Close) and events[0].status == 513
    assert framer.buffered == 0


def test_resynchronises_after_garbage() -> None:
    framer = SipFramer()
    events = framer.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + msg(1))
    assert events == [Frame(msg(1))]
    # Lines that look like a start line but are malformed are still framed (answered 400).
    bad = msg(2).replace(b"OPTIONS sip:2@pbx SIP/2.0", b"OPTIONS  sip:2@pbx  SIP/2.0")
    assert SipFramer().feed(bad) == [Frame(bad)]


def test_garbage_budget_closes() -> None:
    framer = SipFramer(max_garbage=100)
    events = framer.feed(b"junk line\r\n" * 20)
    assert len(events) == 1 and isinstance(events[0], Close) and framer.closed


def test_long_request_line_arriving_in_pieces() -> None:
    data = msg(1).replace(b"sip:1@pbx", b"sip:" + b"a" * 3000 + b"@pbx", 1)
    assert frames(feed_all(SipFramer(), data, 100)) == [data]


MESSAGES = st.lists(st.tuples(st.integers(1, 99), st.binary(max_size=300)), min_size=1,
                    max_size=6)


@FUZZ
@given(MESSAGES, st.lists(st.integers(1, 400), min_size=1, max_size=30),
       st.lists(st.sampled_from([b"", b"\r\n\r\n"]), min_size=6, max_size=6))
def test_fuzz_chunking_preserves_messages(specs: list[tuple[int, bytes]], cuts: list[int],
                                          pings: list[bytes]) -> None:
    messages = [msg(n, body) for n, body in specs]
    stream = b"".join(p + m for p, m in zip(pings, messages, strict=False))
    framer = SipFramer()
    events: list[Event] = []
    pos = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        if pos >= len(stream):
            break
        events += framer.feed(stream[pos:pos + cut])
        pos += cut
    events += framer.feed(stream[pos:])
    assert frames(events) == messages
    assert sum(isinstance(e, Ping) for e in events) == sum(1 for p in pings[:len(messages)] if p)


@FUZZ
@given(st.lists(st.binary(max_size=600), max_size=10))
def test_fuzz_random_bytes_never_raise(chunks: list[bytes]) -> None:
    framer = SipFramer(max_size=2000)
    for chunk in chunks:
        for event in framer.feed(chunk):
            if isinstance(event, Frame):
                assert len(event.data) <= 2000
                with contextlib.suppress(SipParseError):
                    parse_message(event.data)
        assert framer.buffered <= 2000
