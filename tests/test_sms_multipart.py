"""Splitting long texts into parts, and reassembling received parts with a time limit."""

from __future__ import annotations

import datetime as dt
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.sms import (
    GAP,
    Address,
    Alphabet,
    Concat,
    Reassembler,
    SmsDeliver,
    decode_pdu,
    encode_deliver_pdu,
    gsm7,
    split_text,
)
from hw.sms.multipart import GSM7_PART, UCS2_PART

EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, database=None,
                suppress_health_check=[HealthCheck.too_slow])
WHEN = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SENDER = "+79001234567"


def parts_of(text: str, ref: int = 7, sender: str = SENDER, ref_bits: int = 8) -> list[SmsDeliver]:
    alphabet, pieces = split_text(text, ref_bits=ref_bits)
    out = []
    for seq, piece in enumerate(pieces, start=1):
        concat = Concat(ref, len(pieces), seq, ref_bits) if len(pieces) > 1 else None
        msg = decode_pdu(encode_deliver_pdu(sender, piece, alphabet=alphabet, timestamp=WHEN,
                                            concat=concat))
        assert isinstance(msg, SmsDeliver)
        out.append(msg)
    return out


def test_split_limits():
    assert split_text("a" * 160) == (Alphabet.GSM7, ["a" * 160])
    alphabet, parts = split_text("a" * 161)
    assert alphabet is Alphabet.GSM7 and [len(p) for p in parts] == [153, 8]
    assert split_text("ж" * 70)[1] == ["ж" * 70]
    assert [len(p) for p in split_text("ж" * 71)[1]] == [67, 4]
    assert [len(p) for p in split_text("ж" * 134, ref_bits=16)[1]] == [66, 66, 2]


def test_split_never_cuts_an_escape_pair_or_a_code_point():
    alphabet, parts = split_text("a" * 152 + "€" + "b" * 10)
    assert alphabet is Alphabet.GSM7
    assert parts[0] == "a" * 152 and parts[1].startswith("€")
    assert all(gsm7.septet_count(p) <= GSM7_PART[8] for p in parts)
    emoji = "ж" * 66 + "😀" + "ж" * 10
    _, parts = split_text(emoji)
    assert parts[0] == "ж" * 66 and parts[1].startswith("😀")


def test_three_cyrillic_parts_out_of_order():
    text = "Здравствуйте! Это длинное сообщение. " * 5
    parts = parts_of(text)
    assert len(parts) == 3
    box = Reassembler(limit_s=600)
    assert box.add(parts[2], 0.0) == []
    assert box.add(parts[0], 1.0) == []
    assert box.add(parts[0], 1.5) == []  # a duplicate changes nothing
    (message,) = box.add(parts[1], 2.0)
    assert message.complete and message.text == text and message.sender == SENDER
    assert message.parts_total == 3 and message.parts_received == (1, 2, 3)
    assert message.timestamp == WHEN and message.reference == 7
    assert len(box) == 0 and box.next_deadline() is None


def test_missing_part_gives_a_partial_message_after_the_limit():
    text = "x" * 400
    parts = parts_of(text)
    box = Reassembler(limit_s=60)
    box.add(parts[0], 100.0)
    box.add(parts[2], 110.0)
    assert box.next_deadline() == 160.0
    assert box.expire(159.9) == []
    (message,) = box.expire(160.0)
    assert not message.complete and message.missing == (2,)
    assert message.text == "x" * 153 + GAP + "x" * 94
    assert len(box) == 0


def test_single_part_passes_straight_through():
    (part,) = parts_of("hello")
    (message,) = Reassembler().add(part, 0.0, owner="sim1")
    assert message.text == "hello" and message.complete and message.owner == "sim1"


def test_groups_are_kept_apart_by_sender_reference_and_owner():
    a = parts_of("a" * 200, ref=1)
    b = parts_of("b" * 200, ref=1, sender="+79990000000")
    c = parts_of("c" * 200, ref=2)
    box = Reassembler()
    for part in (a[0], b[0], c[0]):
        assert box.add(part, 0.0) == []
    assert box.add(a[0], 0.0, owner="other-sim") == []
    assert len(box) == 4
    assert box.add(b[1], 1.0)[0].text == "b" * 200
    assert box.add(c[1], 1.0)[0].text == "c" * 200
    assert box.add(a[1], 1.0)[0].text == "a" * 200


def test_surrogate_pair_cut_between_parts_is_repaired():
    # chan_dongle splits on UTF-16 units: an emoji can straddle two parts.
    high, low = "\ud83d", "\ude00"
    pieces = ["ж" * 66 + high, low + "ok"]
    parts = []
    for seq, piece in enumerate(pieces, start=1):
        msg = decode_pdu(encode_deliver_pdu(SENDER, piece, alphabet=Alphabet.UCS2,
                                            timestamp=WHEN, concat=Concat(3, 2, seq)))
        assert isinstance(msg, SmsDeliver)
        parts.append(msg)
    box = Reassembler()
    box.add(parts[1], 0.0)
    (message,) = box.add(parts[0], 0.0)
    assert message.text == "ж" * 66 + "😀ok"


def test_bounded_number_of_groups():
    box = Reassembler(max_groups=2)
    firsts = [parts_of("q" * 200, ref=ref)[0] for ref in (1, 2, 3)]
    assert box.add(firsts[0], 0.0) == []
    assert box.add(firsts[1], 1.0) == []
    (evicted,) = box.add(firsts[2], 2.0)
    assert evicted.reference == 1 and not evicted.complete
    assert len(box) == 2


def test_concat_out_of_range_is_ignored():
    bad = decode_pdu(encode_deliver_pdu(SENDER, "hi", alphabet=Alphabet.GSM7, timestamp=WHEN,
                                        concat=Concat(1, 2, 3)))
    assert isinstance(bad, SmsDeliver) and bad.concat is None
    (message,) = Reassembler().add(bad, 0.0)
    assert message.text == "hi"


texts = st.one_of(
    st.text(alphabet=[c for c in gsm7.BASIC if c != "\x1b"] + ["€", "[", "]"], max_size=700),
    st.text(alphabet=st.characters(min_codepoint=0x400, max_codepoint=0x4FF) | st.just("😀"),
            max_size=400),
)


@FUZZ
@given(texts, st.randoms(use_true_random=False), st.sampled_from([8, 16]))
def test_split_and_reassemble_any_order_with_duplicates(text: str, rnd, ref_bits: int):
    parts = parts_of(text, ref=300 if ref_bits == 16 else 44, ref_bits=ref_bits)
    limit = GSM7_PART if parts[0].user_data.alphabet is Alphabet.GSM7 else UCS2_PART
    assert len(parts) == 1 or all(len(p.user_data.payload) <= 2 * limit[ref_bits] for p in parts)
    # A single-part message has nothing to tell a duplicate by: only parts are deduplicated.
    shuffled = parts + (rnd.sample(parts, k=2) if len(parts) > 1 else [])
    rnd.shuffle(shuffled)
    box = Reassembler()
    done = []
    for i, part in enumerate(shuffled):
        done += box.add(part, float(i))
    assert len(done) == 1 and done[0].text == text and done[0].complete
    assert box.expire(1e9) == []


@FUZZ
@given(st.text(alphabet="abc", min_size=161, max_size=1000), st.data())
def test_dropping_any_part_marks_exactly_that_part_missing(text: str, data):
    parts = parts_of(text)
    drop = data.draw(st.integers(1, len(parts)))
    box = Reassembler(limit_s=10)
    for part in parts:
        if part.concat and part.concat.seq != drop:
            assert box.add(part, 0.0) == []
    (message,) = box.expire(10.0)
    assert message.missing == (drop,)
    assert message.text.replace(GAP, "") == "".join(
        p.text for p in parts if p.concat and p.concat.seq != drop)
    assert Address.parse(message.sender) == parts[0].sender
