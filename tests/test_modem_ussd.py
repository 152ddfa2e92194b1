"""USSD request encoding, reply decoding for dcs 15 and 72, and the balance parser."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.modem.balance import Balance, parse_balance
from hw.modem.messages import UssdReply
from hw.modem.urcs import parse_line
from hw.modem.ussd import (
    UssdAlphabet,
    UssdEncoding,
    alphabet_of,
    decode_reply,
    decode_text,
    encode_request,
    request_command,
)
from hw.sms import gsm7

EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=1000, database=None,
                suppress_health_check=[HealthCheck.too_slow])
BALANS_UCS2 = "04110430043B0430043D0441"  # "Баланс", as gsmmodem left it undecoded


def test_requests_per_encoding():
    assert encode_request("*100#", UssdEncoding.PACKED_HEX) == ("AA180C3602", 15)
    assert encode_request("*100#", UssdEncoding.TEXT) == ("*100#", 15)
    assert encode_request("*100#", UssdEncoding.UCS2_HEX) == ("002A0031003000300023", 15)
    assert request_command("*102#", UssdEncoding.TEXT) == 'AT+CUSD=1,"*102#",15'
    for bad in ('*1"#', "*1\r#", "*1Ж#"):
        with pytest.raises(ValueError):
            encode_request(bad, UssdEncoding.TEXT)
    with pytest.raises(ValueError):
        encode_request("Ж", UssdEncoding.PACKED_HEX)


def test_dcs_alphabets():
    assert alphabet_of(15) is UssdAlphabet.GSM7 and alphabet_of(0) is UssdAlphabet.GSM7
    assert alphabet_of(72) is UssdAlphabet.UCS2 and alphabet_of(0x11) is UssdAlphabet.UCS2
    assert alphabet_of(0x44) is UssdAlphabet.DATA8 and alphabet_of(0xF4) is UssdAlphabet.DATA8
    assert alphabet_of(None) is UssdAlphabet.GSM7 and alphabet_of(0xA0) is UssdAlphabet.GSM7


def test_replies_dcs_72_ucs2():
    reply = parse_line(f'+CUSD: 0,"{BALANS_UCS2}",72')
    assert isinstance(reply, UssdReply)
    for encoding in UssdEncoding:
        assert decode_reply(reply, encoding) == "Баланс"


def test_replies_dcs_15():
    packed = gsm7.pack_ussd("Balance: 12.30 RUB").hex().upper()
    assert decode_text(packed, 15, UssdEncoding.PACKED_HEX) == "Balance: 12.30 RUB"
    # Plain text on Quectel/SIMCom with CSCS="GSM": digits-only text is not hex.
    assert decode_text("100", 15, UssdEncoding.TEXT) == "100"
    assert decode_text("Balance 5 r", 15, UssdEncoding.TEXT) == "Balance 5 r"
    # With CSCS="UCS2" the modem converts dcs 15 text to UCS2 hex.
    assert decode_text("00420061006C", 15, UssdEncoding.UCS2_HEX) == "Bal"
    # Not hex where hex was expected: passed through as text.
    assert decode_text("Balance 5 r", 15, UssdEncoding.PACKED_HEX) == "Balance 5 r"
    assert decode_text("zz", 72, UssdEncoding.TEXT) == "zz"
    assert decode_reply(UssdReply(4), UssdEncoding.TEXT) == ""


@FUZZ
@given(st.text(max_size=200), st.one_of(st.none(), st.integers(-5, 300)),
       st.sampled_from(list(UssdEncoding)))
def test_decode_never_raises(payload: str, dcs: int | None, encoding: UssdEncoding):
    assert isinstance(decode_text(payload, dcs, encoding), str)


@FUZZ
@given(st.text(alphabet=[c for c in gsm7.BASIC if c not in "\x1b\r"] + ["€", "{"], max_size=160))
def test_packed_round_trip(text: str):
    payload, dcs = encode_request(text, UssdEncoding.PACKED_HEX)
    # A text ending in '@' on an octet boundary can't be told from padding (23.038 says so).
    if not (text.endswith("@") and gsm7.septet_count(text) % 8 == 0):
        assert decode_text(payload, dcs, UssdEncoding.PACKED_HEX) == text


@pytest.mark.parametrize(("text", "amount", "currency"), [
    ("Баланс: 123,45 р.", "123.45", "RUB"),
    ("Ваш баланс 1 234.50 руб", "1234.50", "RUB"),
    ("Balance: -12.30 RUB", "-12.30", "RUB"),
    ("Баланс:-5.20р", "-5.20", "RUB"),
    ("Баланс: минус 7,10 руб.", "-7.10", "RUB"),
    ("Ваш баланс −15,00 ₽", "-15.00", "RUB"),
    ("Баланс 150 руб. 45 коп.", "150.45", "RUB"),
    ("Остаток 1,234.56 ₽", "1234.56", "RUB"),
    ("Ваш баланс составляет 1\u00a0234,00 руб. Подключите *111#", "1234.00", "RUB"),
    ("Тариф 300 р/мес. Баланс: 12,5 р", "12.5", "RUB"),
    ("Баланс - 123 р", "123", "RUB"),
    ("Баланс 45.60", "45.60", None),
    ("Na schetu 100 rub", "100", "RUB"),
    ("Balans 3.5 r. Zvonite 0500", "3.5", "RUB"),
    ("Баланс 120 грн", "120", "UAH"),
    ("Balance $12.30", "12.30", "USD"),
])
def test_balance_texts(text: str, amount: str, currency: str | None):
    assert parse_balance(text) == Balance(Decimal(amount), currency)


@pytest.mark.parametrize("text", [
    "", "Спасибо за звонок", "Звоните 8 800 100-00-00", "Запрос принят. Ожидайте SMS",
    "Услуга недоступна", "Ваш номер 79001234567", "Сегодня 12.05",
])
def test_no_amount_is_none(text: str):
    assert parse_balance(text) is None


@FUZZ
@given(st.text(max_size=300))
def test_balance_never_raises(text: str):
    result = parse_balance(text)
    assert result is None or isinstance(result.amount, Decimal)


@FUZZ
@given(st.decimals(min_value=-99999, max_value=9999999, places=2, allow_nan=False),
       st.sampled_from(["Баланс: {} р.", "Ваш баланс {} руб", "Balance: {} RUB", "Остаток {}₽"]),
       st.sampled_from([",", "."]))
def test_balance_amounts_round_trip(amount: Decimal, template: str, sep: str):
    text = template.format(str(amount).replace(".", sep))
    result = parse_balance(text)
    assert result is not None and result.amount == amount and result.currency == "RUB"
