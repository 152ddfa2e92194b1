"""The modem simulator's own PDU/GSM7/UCS2 codec, cross-checked against gsmmodem.pdu."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import gsmmodem.pdu as ref
import pytest

from hw.modemsim import gsm7, pdu

pytestmark = pytest.mark.timeout(30)

FIXTURE = ("07919700000000F0040B919700214365F70008521103120000000C"
           "041F04400438043204350442")
WHEN = datetime(2025, 11, 30, 21, 0, 0, tzinfo=UTC)
CYRILLIC = "Здравствуйте! Ваш заказ №12345 готов к выдаче в пункте на Ленина, 5. " * 3


def test_fixture_pdu_is_privet_from_the_spec() -> None:
    theirs = ref.decodeSmsPdu(FIXTURE)
    assert theirs["text"] == "Привет"
    assert theirs["number"] == "+79001234567"
    ours = pdu.parse_deliver(FIXTURE)
    assert (ours.text, ours.number, ours.smsc) == ("Привет", "+79001234567", "+79000000000")
    assert ours.scts == WHEN
    built = pdu.build_deliver("+79001234567", "Привет", pdu.DCS_UCS2, WHEN,
                              smsc="+79000000000")
    assert built == FIXTURE


def test_default_alphabet_matches_gsmmodem() -> None:
    # gsmmodem has '`' at 0x5F where 23.038 puts '§' (its table's typo): compare the rest.
    for i, (ours, theirs) in enumerate(zip(gsm7.BASIC, ref.GSM7_BASIC, strict=True)):
        if i != 0x5F:
            assert ours == theirs, hex(i)
    assert gsm7.BASIC[0x5F] == "§"
    for ch, code in gsm7.EXTENSION.items():
        if ch != "\f":
            assert ref.GSM7_EXTENDED[ch] == chr(code)


@pytest.mark.parametrize("text", ["hello", "1234567", "12345678", "{curly} [square] €5 ~^|\\",
                                  "x" * 160])
def test_gsm7_packing_matches_gsmmodem(text: str) -> None:
    septets = gsm7.encode(text)
    assert gsm7.pack(septets) == bytes(ref.packSeptets(ref.encodeGsm7(text)))
    assert gsm7.decode(gsm7.unpack(gsm7.pack(septets), len(septets))) == text


def test_ussd_packed_hex() -> None:
    assert gsm7.ussd_pack_hex("*100#") == "AA180C3602"
    assert gsm7.ussd_unpack_hex("AA180C3602") == "*100#"
    # Seven characters leave 7 spare bits: filled with CR, which decoding drops.
    assert gsm7.ussd_unpack_hex(gsm7.ussd_pack_hex("*102*1#")) == "*102*1#"
    assert gsm7.from_ucs2_hex(gsm7.ucs2_hex("Баланс")) == "Баланс"
    assert gsm7.ucs2_hex("Баланс") == "04110430043B0430043D0441"


@pytest.mark.parametrize(("text", "parts", "dcs"), [
    ("short", 1, 0), ("a" * 160, 1, 0), ("a" * 161, 2, 0), ("€" * 80, 1, 0),
    ("€" * 81, 2, 0), ("Привет", 1, 8), ("Ж" * 70, 1, 8), ("Ж" * 71, 2, 8), (CYRILLIC, 4, 8),
], ids=["short", "gsm7-160", "gsm7-161", "euro-80", "euro-81", "privet", "ucs2-70",
        "ucs2-71", "cyrillic-4-parts"])
def test_multipart_delivers_decode_with_gsmmodem(text: str, parts: int, dcs: int) -> None:
    pdus = pdu.build_delivers("+79001234567", text, WHEN, smsc="+79000000000", ref=42)
    assert len(pdus) == parts
    texts = []
    for seq, hex_pdu in enumerate(pdus, start=1):
        theirs = ref.decodeSmsPdu(hex_pdu)
        assert theirs["type"] == "SMS-DELIVER"
        assert theirs["number"] == "+79001234567"
        assert theirs["tpdu_length"] == pdu.tpdu_length(hex_pdu)
        if parts > 1:
            (concat,) = theirs["udh"]
            assert (concat.reference, concat.parts, concat.number) == (42, parts, seq)
        ours = pdu.parse_deliver(hex_pdu)
        assert ours.text == theirs["text"]
        assert ours.dcs == dcs
        texts.append(ours.text)
    assert "".join(texts) == text


def test_parts_never_split_a_surrogate_pair_or_an_escape() -> None:
    emoji = "😀" * 40  # 80 UTF-16 units: two parts, each pair kept whole
    dcs, parts = pdu.split_text(emoji)
    assert dcs == pdu.DCS_UCS2 and "".join(parts) == emoji
    assert all(len(p.encode("utf-16-be")) // 2 <= pdu.UCS2_PART for p in parts)
    dcs, parts = pdu.split_text("a" * 152 + "€" + "b" * 10)
    assert dcs == pdu.DCS_GSM7 and parts[0] == "a" * 152 and parts[1].startswith("€")


def test_alphanumeric_sender() -> None:
    hex_pdu = pdu.build_delivers("MyBank", "Code 1234", WHEN, smsc=None, ref=0, alnum=True)[0]
    assert ref.decodeSmsPdu(hex_pdu)["number"] == "MyBank"
    assert pdu.parse_deliver(hex_pdu).number == "MyBank"


def test_submit_cross_decoding() -> None:
    # gsmmodem encodes, we decode: what the product (or any library) sends after AT+CMGS.
    for part in ref.encodeSmsSubmitPdu("+79001234567", "Ж" * 100, reference=7,
                                       requestStatusReport=True):
        ours = pdu.parse_submit(str(part))
        assert ours.number == "+79001234567" and ours.status_report
        assert ours.tpdu_len == part.tpduLength
        assert ours.concat is not None and ours.concat.total == 2
    # We encode, gsmmodem decodes: the test side's own SUBMITs are real ones.
    mine = pdu.build_submit("89001234567", "Hi [there]", mr=9, status_report=True,
                            concat=pdu.Concat(5, 2, 1))
    theirs = ref.decodeSmsPdu(mine)
    assert (theirs["type"], theirs["number"], theirs["text"], theirs["reference"]) == (
        "SMS-SUBMIT", "89001234567", "Hi [there]", 9)


def test_status_report_cross_decoding() -> None:
    later = WHEN + timedelta(seconds=5)
    hex_pdu = pdu.build_status_report(200, "+79001234567", WHEN, later, smsc="+79000000000")
    theirs = ref.decodeSmsPdu(hex_pdu)
    assert (theirs["type"], theirs["reference"], theirs["number"], theirs["status"]) == (
        "SMS-STATUS-REPORT", 200, "+79001234567", 0)
    ours = pdu.parse_status_report(hex_pdu)
    assert (ours.mr, ours.discharge) == (200, later)


def test_timestamps_with_negative_zone() -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert pdu.decode_timestamp(pdu.encode_timestamp(when)) == when


def test_garbage_is_a_pdu_error() -> None:
    for bad in ("00", "0011", "07919700000000F0FF"):
        with pytest.raises(pdu.PduError):
            pdu.parse_submit(bad)
