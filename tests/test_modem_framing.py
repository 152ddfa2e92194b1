"""The AT line framer: echo, URCs between replies, split writes, \\r\\r\\nOK, the prompt, bad bytes.

Property tests: any byte string, cut anywhere, frames the same as in one piece; nothing
raises; every final result sent is found again.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.modem.framing import PROMPT, Line, LineFramer, Prompt
from hw.modem.results import parse_final

EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=1000, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def texts(items: list[Line | Prompt]) -> list[str]:
    return [">" if isinstance(i, Prompt) else i.text for i in items]


def frame(data: bytes, max_line: int = 4096) -> list[Line | Prompt]:
    framer = LineFramer(max_line)
    return framer.feed(data) + framer.flush()


def test_plain_reply_and_echo():
    data = b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert texts(frame(data)) == ["AT+CSQ", "+CSQ: 20,99", "OK"]


def test_double_cr_before_ok():
    # bg111#272: \r\r\nOK must read as OK, not as an empty line plus garbage.
    assert texts(frame(b"\r\n+CREG: 0,1\r\r\n\r\r\nOK\r\r\n")) == ["+CREG: 0,1", "OK"]


def test_bare_lf_and_bare_cr_endings():
    assert texts(frame(b"RING\n+CLIP: \"123\",129\rOK\n")) == ["RING", '+CLIP: "123",129', "OK"]


def test_urc_between_and_inside_replies():
    data = b"\r\n+CSQ: 20,99\r\n\r\n^RSSI: 19\r\n\r\nOK\r\n\r\n+CMTI: \"SM\",3\r\n"
    assert texts(frame(data)) == ["+CSQ: 20,99", "^RSSI: 19", "OK", '+CMTI: "SM",3']


def test_split_writes_one_byte_at_a_time():
    data = b"\r\n+CUSD: 0,\"AA180C3602\",15\r\n\r\nOK\r\n"
    framer = LineFramer()
    out: list[Line | Prompt] = []
    for i in range(len(data)):
        out += framer.feed(data[i:i + 1])
    assert texts(out) == ['+CUSD: 0,"AA180C3602",15', "OK"]


def test_sms_prompt_without_line_ending():
    framer = LineFramer()
    assert framer.feed(b"\r\n> ") == [PROMPT]
    assert framer.feed(b"") == []
    assert texts(framer.feed(b"\r\n+CMGS: 5\r\n\r\nOK\r\n")) == ["+CMGS: 5", "OK"]


def test_prompt_split_between_writes():
    framer = LineFramer()
    assert framer.feed(b"\r\n>") == []
    assert framer.feed(b" ") == [PROMPT]


def test_prompt_only_at_line_start():
    assert texts(frame(b"+X: a> b\r\n")) == ["+X: a> b"]
    assert texts(frame(b">\r\n")) == [">"]


def test_non_utf8_bytes_kept_raw():
    (line,) = frame(b"\xff\xfe+CSQ: 1\xc3\r\n")
    assert isinstance(line, Line)
    assert line.raw == b"\xff\xfe+CSQ: 1\xc3"
    assert "+CSQ: 1" in line.text


def test_nul_bytes_and_spaces_trimmed():
    assert texts(frame(b"\x00\x00RDY \r\n  \r\n\x00\r\n")) == ["RDY"]


def test_overlong_line_bounded_and_next_line_intact():
    framer = LineFramer(max_line=64)
    out = framer.feed(b"A" * 1000)
    out += framer.feed(b"B" * 1000 + b"\r\nOK\r\n")
    assert len(out) == 2
    first, second = out
    assert isinstance(first, Line) and first.truncated and len(first.raw) == 64
    assert isinstance(second, Line) and second.text == "OK"
    assert len(framer.pending) == 0


def test_pending_partial_line():
    framer = LineFramer()
    assert framer.feed(b"+CSQ: 2") == []
    assert framer.pending == b"+CSQ: 2"
    assert texts(framer.flush()) == ["+CSQ: 2"]


def test_echo_of_pdu_with_ctrl_z_is_a_line():
    # With echo on, the modem echoes the PDU and Ctrl-Z; the engine drops it, the framer keeps it.
    assert texts(frame(b"0011AABB\x1a\r\n+CMGS: 1\r\n")) == ["0011AABB\x1a", "+CMGS: 1"]


FINALS = [b"OK", b"ERROR", b"+CME ERROR: 10", b"+CMS ERROR: 321", b"NO CARRIER", b"BUSY",
          b"NO ANSWER", b"NO DIALTONE", b"COMMAND NOT SUPPORT"]
ENDINGS = [b"\r\n", b"\r\r\n", b"\r", b"\n", b"\n\r", b"\r\n\r\n"]
NOISE = st.binary(max_size=40).map(lambda b: bytes(x for x in b if x not in b"\r\n"))


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=12))
def test_any_split_frames_like_one_piece(data: bytes, cuts: list[int]):
    whole = frame(data)
    framer = LineFramer()
    pieces: list[Line | Prompt] = []
    last = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        pieces += framer.feed(data[last:cut])
        last = cut
    pieces += framer.feed(data[last:]) + framer.flush()
    assert pieces == whole


@FUZZ
@given(st.lists(st.tuples(NOISE, st.sampled_from(FINALS), st.sampled_from(ENDINGS)),
                min_size=1, max_size=8),
       st.lists(st.integers(0, 1000), max_size=10))
def test_final_results_never_lost(chunks: list[tuple[bytes, bytes, bytes]], cuts: list[int]):
    """Noise lines, each followed by a final result on its own line, split anywhere."""
    data = b"".join(noise + b"\r\n" + final + ending for noise, final, ending in chunks)
    framer = LineFramer()
    out: list[Line | Prompt] = []
    last = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        out += framer.feed(data[last:cut])
        last = cut
    out += framer.feed(data[last:]) + framer.flush()
    finals = [parse_final(i.text) for i in out if isinstance(i, Line)]
    found = [f.line.encode() for f in finals if f is not None]
    expected = [final for _, final, _ in chunks]
    # Noise can itself spell a final result (or a prompt): the sent ones are there, in order.
    it = iter(found)
    assert all(any(f == want for f in it) for want in expected)


@FUZZ
@given(st.binary(max_size=3000), st.integers(16, 200))
def test_bounded_lines_never_raise(data: bytes, max_line: int):
    for item in frame(data, max_line):
        if isinstance(item, Line):
            assert len(item.raw) <= max_line
            assert b"\r" not in item.raw and b"\n" not in item.raw
            assert isinstance(item.text, str)
