"""The pure parts of voicemail, fuzzed: WAV lengths, names, addresses, PINs, e-mail text."""

from __future__ import annotations

import email
import email.policy
import io
import json
import unicodedata
import wave
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import vmparts
from appliance.mailer import build_message

SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def wav_bytes(rate: int, channels: int, width: int, frames: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x01" * (frames * channels * width))
    return out.getvalue()


@given(st.sampled_from([8000, 16000, 44100, 48000]), st.integers(1, 2), st.integers(1, 3),
       st.integers(0, 20000))
def test_wav_seconds_of_real_files(rate: int, channels: int, width: int, frames: int) -> None:
    data = wav_bytes(rate, channels, width, frames)
    seconds = vmparts.wav_seconds(data[:vmparts.WAV_HEAD_BYTES], len(data))
    assert seconds is not None and abs(seconds - frames / rate) < 1e-9
    # A header whose sizes were never filled in: the audio is the rest of the file.
    unfinished = bytearray(data)
    unfinished[40:44] = b"\xff\xff\xff\xff"
    assert vmparts.wav_seconds(bytes(unfinished[:4096]), len(data)) == seconds
    # A file cut short: only what is there counts.
    cut = len(data) - (len(data) - 44) // 2
    short = vmparts.wav_seconds(data[:min(cut, 4096)], cut)
    assert short is not None and short <= seconds


@given(st.binary(max_size=300), st.integers(0, 2**40))
def test_wav_seconds_never_raises(head: bytes, size: int) -> None:
    seconds = vmparts.wav_seconds(head, size)
    assert seconds is None or seconds >= 0
    riff = b"RIFF\x00\x00\x00\x00WAVE" + head
    seconds = vmparts.wav_seconds(riff, size)
    assert seconds is None or seconds >= 0


def test_wav_seconds_refuses_what_is_not_a_wav() -> None:
    assert vmparts.wav_seconds(b"", 0) is None
    assert vmparts.wav_seconds(b"ID3\x03" + b"\x00" * 100, 104) is None
    # A data chunk before any fmt chunk has no rate to measure it by.
    assert vmparts.wav_seconds(b"RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00abcd", 24) is None


@given(st.text(max_size=200))
def test_safe_name(text: str) -> None:
    name = vmparts.safe_name(text)
    assert name and set(name) <= SAFE and not name.startswith(".") and len(name) <= 64


@given(st.text(max_size=60))
def test_box_keys_are_path_safe(key: str) -> None:
    if vmparts.valid_box_key(key):
        assert "/" not in key and ".." not in key and key[0] not in "._-"


ADDRESS = st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True)


@given(st.lists(ADDRESS, max_size=5))
def test_parse_emails_keeps_valid_lists(addresses: list[str]) -> None:
    assert vmparts.parse_emails(json.dumps(addresses)) == list(dict.fromkeys(addresses))


@given(st.one_of(st.text(max_size=200),
                 st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()),
                          max_size=6).map(json.dumps)))
def test_parse_emails_never_raises_and_keeps_only_safe_addresses(raw: str) -> None:
    for address in vmparts.parse_emails(raw):
        assert vmparts.valid_address(address)
        assert not any(c in address for c in "\r\n<>,;\" ")
        build_message("pbx@office.example", [address], "s", "b", [])


def test_parse_emails_cases() -> None:
    assert vmparts.parse_emails(None) == []
    assert vmparts.parse_emails("{}") == []
    assert vmparts.parse_emails('["a@b.example", "a@b.example", "x", 3, "c@d\\r\\n.example"]') \
        == ["a@b.example"]
    assert vmparts.parse_emails("[" * 100000) == []


@settings(max_examples=30, deadline=None)
@given(st.from_regex(r"[0-9]{4,12}", fullmatch=True), st.text(max_size=14))
def test_pins_round_trip(pin: str, other: str) -> None:
    stored = vmparts.hash_pin(pin, iterations=1000)
    assert vmparts.verify_pin(pin, stored)
    assert vmparts.verify_pin(other, stored) == (other == pin)
    assert pin not in stored.split("$")[2:]


@given(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=200)))
def test_verify_pin_never_raises(pin: str, stored: str | None) -> None:
    assert vmparts.verify_pin(pin, stored) in (True, False)


def test_stored_pins_that_are_corrupt_never_match() -> None:
    good = vmparts.hash_pin("1234", salt=b"\x01" * 16, iterations=1000)
    head, rounds, salt, digest = good.split("$")
    for bad in (f"md5${rounds}${salt}${digest}", f"{head}$x${salt}${digest}",
                f"{head}$0${salt}${digest}", f"{head}$9999999999${salt}${digest}",
                f"{head}${rounds}$zz${digest}", f"{head}${rounds}$${digest}",
                f"{head}${rounds}${salt}${digest[:-2]}", good + "$"):
        assert not vmparts.verify_pin("1234", bad)


def test_caller_labels() -> None:
    assert vmparts.caller_label("+79161234567") == "+79161234567"
    assert vmparts.caller_label("sip:+79161234567@trunk;user=phone") == "+79161234567"
    assert vmparts.caller_label('"Иван" <sip:101@10.0.0.5:5060;transport=tcp>') == \
        "Иван (101)"
    assert vmparts.caller_label("<tel:%2B7916;phone-context=x>") == "+7916"
    assert vmparts.caller_label("Anonymous <sip:anonymous@anonymous.invalid>") == \
        "Anonymous (anonymous)"
    assert vmparts.caller_label("sip:101@box\r\nBcc: x") == "101"
    assert vmparts.caller_label("") == ""


@given(st.text(max_size=200))
def test_caller_label_never_raises(caller: str) -> None:
    label = vmparts.caller_label(caller)
    assert label == vmparts.header_text(label)


@given(st.text(max_size=300), st.integers(1, 120))
def test_header_text_is_one_clean_line(text: str, limit: int) -> None:
    line = vmparts.header_text(text, limit)
    assert len(line) <= limit and line == line.strip()
    assert not any(unicodedata.category(c)[0] == "C" for c in line)
    assert "\n" not in line and "\r" not in line


@settings(deadline=None)
@given(st.sampled_from(["ru", "en", "de"]), st.text(max_size=120), st.text(max_size=120),
       st.floats(0, 7200), st.sampled_from(["attached", "too_large", "not_attached"]))
def test_any_caller_makes_a_well_formed_mail(language: str, box: str, caller: str,
                                             seconds: float, attachment: str) -> None:
    when = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)  # the night Europe goes to DST
    subject, body = vmparts.compose(language, box, caller, when, ZoneInfo("Europe/Berlin"),
                                    seconds, attachment)
    msg = build_message("pbx@office.example", ["ivan@office.example"], subject, body,
                        [("vm.wav", b"RIFF", "audio/wav")])
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["To"] == "ivan@office.example" and parsed["Bcc"] is None
    assert vmparts.format_duration(seconds) in body
    assert "29.03.2026 01:59" in body or "2026-03-29 01:59" in body


def test_mail_text_in_both_languages() -> None:
    when = datetime(2026, 11, 23, 16, 25, tzinfo=UTC)
    zone = ZoneInfo("Asia/Yekaterinburg")
    subject, body = vmparts.compose("ru", "Продажи", "+79161234567", when, zone, 42.4,
                                    "too_large")
    assert subject == "Голосовое сообщение от +79161234567 (Продажи)"
    assert body.splitlines() == [
        "В голосовом ящике «Продажи» новое сообщение.", "",
        "От: +79161234567", "Когда: 23.11.2026 21:25 (Asia/Yekaterinburg)",
        "Длительность: 0:42", "",
        "Запись слишком велика для письма: прослушайте её в веб-интерфейсе."]
    subject, _ = vmparts.compose("ru", "Продажи", "sip:+79161234567@trunk", when, zone, 1,
                                 "attached")
    assert subject == "Голосовое сообщение от +79161234567 (Продажи)"
    subject, body = vmparts.compose("en", "", "\r\n", when, zone, 3599.6, "not_attached")
    assert subject == "Voicemail from unknown number (-)"
    assert "Length: 60:00" in body
