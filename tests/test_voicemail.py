"""Voicemail around the recorded file: rows, outbox, e-mail (real aiosmtpd), lamps, PINs."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from appliance.db import Database
from appliance.mailer import Mailer
from appliance.presence import MessageSummary
from appliance.sip import Request
from appliance.voicemail import Voicemail, VoicemailError
from tests.conftest import free_port
from tests.support.smtp import SmtpSink
from tests.test_edge_units import add_devices
from tests.test_subscriptions import FakeEdge, answer, statuses

# 16:25 UTC is 19:25 in Moscow.
T0 = datetime(2026, 11, 23, 16, 25, 7, tzinfo=UTC)


class Clock:
    """The fake wall clock Voicemail is given."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Sleeps:
    """The mailer's fake retry clock: records each wait, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def write_wav(path: Path, seconds: float, rate: int = 8000) -> bytes:
    """A 440 Hz tone as 8 kHz mono 16-bit PCM (what the engine records); its bytes."""
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
                      for n in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path.read_bytes()


def office(db: Database) -> None:
    """Two employees, a personal box and a department box, settings, one call record."""
    add_devices(db, "101", "102", password="Kx7-desk-alpha")

    def fill(c: sqlite_utils.Database) -> None:
        conn = c.conn
        conn.execute("UPDATE employees SET name = 'Иван Петров', email = 'ivan@office.example'"
                     " WHERE extension = '101'")
        conn.execute("INSERT INTO voicemail_boxes (key, name, extension, employee_id) "
                     "VALUES ('ivan', 'Иван Петров', '601', 1)")
        conn.execute("INSERT INTO voicemail_boxes (key, name, extension, notify_emails, "
                     "language, attach_audio) VALUES ('sales', 'Sales', '600', ?, 'en', 1)",
                     (json.dumps(["sales@office.example", "head@office.example"]),))
        conn.execute("INSERT INTO box_settings (key, value) VALUES ('time_zone', "
                     "'\"Europe/Moscow\"'), ('language', '\"ru\"')")
        conn.execute("INSERT INTO call_records (uuid, direction, caller) "
                     "VALUES ('call-0001', 'inbound', '+79161234567')")
    db.write(fill)


def smtp(db: Database, port: int) -> None:
    db.write(lambda c: c["notification_settings"].upsert(
        {"id": 1, "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
         "from_address": "pbx@office.example"}, pk="id"))


@dataclass
class World:
    db: Database
    data: Path
    clock: Clock
    sleeps: Sleeps
    vm: Voicemail
    lamps: list[str]
    sink: SmtpSink


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[World]:
    sink = SmtpSink(free_port()).start()
    with Database.open(tmp_path / "data" / "pbx.db") as db:
        office(db)
        smtp(db, sink.port)
        clock, sleeps = Clock(), Sleeps()
        vm = Voicemail(db, tmp_path / "data", Mailer(db, sleep=sleeps), clock)
        await vm.start()
        lamps: list[str] = []
        vm.attach(lamps.append)
        try:
            yield World(db, tmp_path / "data", clock, sleeps, vm, lamps, sink)
        finally:
            await vm.stop()
            sink.stop()


def rows(db: Database, sql: str) -> list[dict[str, object]]:
    return [dict(r) for r in db.read().query(sql)]


async def test_a_message_is_stored_announced_and_mailed_with_its_audio(w: World) -> None:
    path = w.vm.message_path("ivan", "call-0001")
    assert path == w.data / "voicemail" / "ivan" / "2026" / "11" / "call-0001.wav"
    assert path.parent.is_dir()
    audio = write_wav(path, 3.0)
    message_id = await w.vm.deliver("ivan", "+79161234567", "call-0001", path, 3.4)
    assert message_id is not None
    [row] = rows(w.db, "SELECT * FROM voicemail_messages")
    call = rows(w.db, "SELECT id FROM call_records WHERE uuid = 'call-0001'")[0]["id"]
    assert row["id"] == message_id
    assert (row["box_key"], row["box_id"], row["call_id"], row["call_uuid"]) == (
        "ivan", 1, call, "call-0001")
    assert row["path"] == "voicemail/ivan/2026/11/call-0001.wav"
    assert row["duration_s"] == 3.0  # measured from the WAV, not the 3.4 s the call took
    assert (row["caller"], row["is_read"], row["deleted_at"]) == ("+79161234567", 0, None)
    assert row["created_at"] == "2026-11-23T16:25:07.000Z"
    [event] = rows(w.db, "SELECT * FROM event_outbox")
    assert (event["kind"], event["call_id"], event["delivered_at"]) == ("voicemail.new", call,
                                                                       None)
    payload = json.loads(str(event["payload"]))
    assert payload == {"box": "ivan", "caller": "+79161234567", "duration_s": 3.0,
                       "message_id": message_id, "call_uuid": "call-0001",
                       "path": "voicemail/ivan/2026/11/call-0001.wav",
                       "created_at": "2026-11-23T16:25:07.000Z"}
    # The lamps of the box's extension and of its owner's.
    assert w.lamps == ["101", "601"]
    assert w.vm.counts("101") == w.vm.counts("601") == MessageSummary(new=1, old=0)
    assert w.vm.counts("102") == MessageSummary()

    await w.vm.drain()
    [mail] = w.sink.mails
    assert mail.rcpt_tos == ["ivan@office.example"]  # the box has no list: its owner
    msg = mail.message
    assert msg["Subject"] == "Голосовое сообщение от +79161234567 (Иван Петров)"
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "23.11.2026 19:25 (Europe/Moscow)" in text
    assert "Длительность: 0:03" in text
    assert "Запись во вложении." in text
    [part] = list(msg.iter_attachments())
    assert part.get_content_type() == "audio/wav"
    assert part.get_filename() == f"voicemail-{message_id}.wav"
    assert part.get_payload(decode=True) == audio
    [row] = rows(w.db, "SELECT notified_at FROM voicemail_messages")
    assert row["notified_at"] == "2026-11-23T16:25:07.000Z"
    assert w.sleeps.waits == []


async def test_a_department_box_mails_its_list_in_its_language(w: World) -> None:
    w.db.write(lambda c: c.conn.execute("UPDATE voicemail_boxes SET attach_audio = 0 "
                                        "WHERE key = 'sales'"))
    path = w.vm.message_path("sales", "call-0002")
    write_wav(path, 65.0)
    message_id = await w.vm.deliver("sales", "", "call-0002", path, 66)
    assert w.lamps == ["600"]
    await w.vm.drain()
    [mail] = w.sink.mails
    assert mail.rcpt_tos == ["sales@office.example", "head@office.example"]
    assert mail.message["Subject"] == "Voicemail from unknown number (Sales)"
    body = mail.message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Received: 2026-11-23 19:25 (Europe/Moscow)" in text and "Length: 1:05" in text
    assert list(mail.message.iter_attachments()) == []
    # The call record did not exist (yet): the uuid is kept, the link is empty.
    [row] = rows(w.db, f"SELECT call_id, call_uuid FROM voicemail_messages "
                       f"WHERE id = {message_id}")
    assert row == {"call_id": None, "call_uuid": "call-0002"}
    [event] = rows(w.db, "SELECT call_id, payload FROM event_outbox")
    assert event["call_id"] is None
    assert json.loads(str(event["payload"]))["call_uuid"] == "call-0002"
    # The record is written later: the next start links the message to it.
    w.db.write(lambda c: c.conn.execute("INSERT INTO call_records (uuid, direction) "
                                        "VALUES ('call-0002', 'inbound')"))
    await w.vm.start()
    [row] = rows(w.db, f"SELECT m.call_id = r.id AS linked FROM voicemail_messages m "
                       f"JOIN call_records r ON r.uuid = m.call_uuid WHERE m.id = {message_id}")
    assert row == {"linked": 1}


async def test_hanging_up_at_the_beep_leaves_nothing(w: World) -> None:
    path = w.vm.message_path("ivan", "call-0003")
    write_wav(path, 0.6)
    # The call lasted 9 s (greeting and beep), the recording has 0.6 s of audio.
    assert await w.vm.deliver("ivan", "+79161234567", "call-0003", path, 9.0) is None
    assert not path.exists()
    assert rows(w.db, "SELECT id FROM voicemail_messages") == []
    assert rows(w.db, "SELECT id FROM event_outbox") == []
    assert w.lamps == []
    # A file that never appeared (the recorder failed) is not a message either.
    missing = w.vm.message_path("ivan", "call-0004")
    assert await w.vm.deliver("ivan", "+79161234567", "call-0004", missing, 30.0) is None
    await w.vm.drain()
    assert w.sink.mails == []


async def test_a_recording_whose_header_was_never_finished(w: World) -> None:
    path = w.vm.message_path("ivan", "call-0005")
    write_wav(path, 2.0)
    raw = bytearray(path.read_bytes())
    raw[40:44] = b"\x00\x00\x00\x00"  # data size 0: the recorder was killed
    path.write_bytes(bytes(raw))
    message_id = await w.vm.deliver("ivan", "+7916", "call-0005", path, 0.0)
    assert message_id is not None
    [row] = rows(w.db, "SELECT duration_s FROM voicemail_messages")
    assert row["duration_s"] == 2.0


async def test_smtp_down_is_retried_then_given_up_and_the_message_stays(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    w.sink.stop()
    path = w.vm.message_path("ivan", "call-0001")
    write_wav(path, 2.0)
    with caplog.at_level(logging.INFO):
        message_id = await w.vm.deliver("ivan", "+79161234567", "call-0001", path, 2)
        await w.vm.drain()
    assert w.sleeps.waits == [30.0, 120.0, 600.0]
    assert f"voicemail message {message_id} (box ivan) not e-mailed to ivan@office.example, " \
           f"giving up after 4 attempt(s)" in caplog.text
    [row] = rows(w.db, "SELECT id, notified_at, deleted_at FROM voicemail_messages")
    assert row == {"id": message_id, "notified_at": None, "deleted_at": None}
    assert path.exists()
    assert w.vm.counts("101") == MessageSummary(new=1)


async def test_deliver_returns_before_the_mail_is_sent(w: World) -> None:
    """The caller's hangup never waits for the mail server."""
    gate = asyncio.Event()

    async def held(seconds: float) -> None:
        await gate.wait()

    w.sink.stop()
    w.vm.mailer.sleep = held
    path = w.vm.message_path("ivan", "call-0001")
    write_wav(path, 2.0)
    message_id = await asyncio.wait_for(
        w.vm.deliver("ivan", "+79161234567", "call-0001", path, 2), timeout=10)
    assert message_id is not None
    gate.set()
    await w.vm.drain()


async def test_no_smtp_configured_stores_and_skips(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    w.db.write(lambda c: c.conn.execute("DELETE FROM notification_settings"))
    path = w.vm.message_path("ivan", "call-0001")
    write_wav(path, 2.0)
    with caplog.at_level(logging.INFO, logger="appliance.mailer"):
        message_id = await w.vm.deliver("ivan", "+79161234567", "call-0001", path, 2)
        await w.vm.drain()
    assert [r.getMessage() for r in caplog.records if r.name == "appliance.mailer"] == [
        f"voicemail message {message_id} (box ivan) not e-mailed: no SMTP server is configured"]
    assert len(rows(w.db, "SELECT id FROM voicemail_messages")) == 1
    assert w.sleeps.waits == []


async def test_lamps_follow_deliver_read_and_delete(w: World) -> None:
    ids = []
    for n in range(3):
        path = w.vm.message_path("ivan", f"call-1{n}")
        write_wav(path, 1.5)
        w.clock.now = T0 + timedelta(minutes=n)
        ids.append(await w.vm.deliver("ivan", f"+7916000000{n}", f"call-1{n}", path, 2))
    assert w.vm.counts("101") == MessageSummary(new=3)
    w.lamps.clear()
    await w.vm.mark_read(ids[1])
    assert w.lamps == ["101", "601"]
    assert w.vm.counts("601") == MessageSummary(new=2, old=1)
    await w.vm.mark_read(ids[1])  # already heard: no change, no lamp update
    assert w.lamps == ["101", "601"]
    listed = w.vm.messages("ivan")
    assert [m.id for m in listed] == [ids[0], ids[2], ids[1]]  # unread first, oldest first
    assert [m.is_read for m in listed] == [False, False, True]
    assert listed[0].path == w.data / "voicemail/ivan/2026/11/call-10.wav"
    assert listed[0].caller == "+79160000000" and listed[0].call_uuid == "call-10"
    w.lamps.clear()
    await w.vm.delete(ids[1])
    await w.vm.delete(ids[0])
    assert w.lamps == ["101", "601", "101", "601"]
    assert w.vm.counts("101") == MessageSummary(new=1, old=0)
    assert not listed[0].path.exists() and not listed[2].path.exists()
    assert listed[1].path.exists()
    assert [m.id for m in w.vm.messages("ivan")] == [ids[2]]
    deleted = rows(w.db, "SELECT id, deleted_at FROM voicemail_messages "
                         "WHERE deleted_at IS NOT NULL ORDER BY id")
    assert [r["id"] for r in deleted] == [ids[0], ids[1]]
    with pytest.raises(VoicemailError, match="no voicemail message"):
        await w.vm.delete(ids[0])
    with pytest.raises(VoicemailError, match="no voicemail message"):
        await w.vm.mark_read(99999)
    # A restarted engine loads the same counts from the database.
    again = Voicemail(w.db, w.data, w.vm.mailer, w.clock)
    await again.start()
    assert again.counts("101") == again.counts("601") == MessageSummary(new=1, old=0)
    await w.vm.drain()


async def test_reload_moves_the_lamp_to_the_new_extension(w: World) -> None:
    path = w.vm.message_path("sales", "call-0001")
    write_wav(path, 2.0)
    await w.vm.deliver("sales", "+79161234567", "call-0001", path, 2)
    w.db.write(lambda c: c.conn.execute(
        "UPDATE voicemail_boxes SET extension = '650', employee_id = 2 WHERE key = 'sales'"))
    w.lamps.clear()
    await w.vm.reload()
    assert sorted(w.lamps) == ["102", "600", "650"]
    assert w.vm.counts("600") == MessageSummary()
    assert w.vm.counts("650") == w.vm.counts("102") == MessageSummary(new=1)
    await w.vm.drain()


async def test_pins(w: World) -> None:
    assert not w.vm.has_pin("ivan")
    assert not w.vm.check_pin("ivan", "1234")  # no PIN: only the owner's desk phone
    await w.vm.set_pin("ivan", "4711")
    assert w.vm.has_pin("ivan")
    [row] = rows(w.db, "SELECT pin_hash FROM voicemail_boxes WHERE key = 'ivan'")
    assert str(row["pin_hash"]).startswith("pbkdf2_sha256$") and "4711" not in str(row)
    assert w.vm.check_pin("ivan", "4711")
    assert not w.vm.check_pin("ivan", "4712")
    assert not w.vm.check_pin("sales", "4711")
    assert not w.vm.check_pin("nobody", "4711")
    with pytest.raises(VoicemailError, match="4-12 digits"):
        await w.vm.set_pin("ivan", "12a4")
    with pytest.raises(VoicemailError, match="no voicemail box"):
        await w.vm.set_pin("nobody", "1234")
    # Five wrong PINs lock the box for 15 minutes, even against the right one.
    for n in range(5):
        assert not w.vm.check_pin("ivan", f"000{n}")
    assert not w.vm.check_pin("ivan", "4711")
    w.clock.now += timedelta(minutes=14)
    assert not w.vm.check_pin("ivan", "4711")
    w.clock.now += timedelta(minutes=2)
    assert w.vm.check_pin("ivan", "4711")
    await w.vm.set_pin("ivan", None)
    assert not w.vm.has_pin("ivan") and not w.vm.check_pin("ivan", "4711")


async def test_message_paths(w: World) -> None:
    first = w.vm.message_path("ivan", "call-9")
    first.write_bytes(b"x")
    second = w.vm.message_path("ivan", "call-9")
    assert second == first.with_name("call-9-2.wav")
    hostile = w.vm.message_path("ivan", "../../../../etc/passwd")
    assert hostile.parent == first.parent and hostile.name == "_.._.._.._etc_passwd.wav"
    with pytest.raises(VoicemailError):
        w.vm.message_path("../x", "call")
    elsewhere = w.data.parent / "elsewhere.wav"
    write_wav(elsewhere, 2.0)
    with pytest.raises(ValueError, match="not under the data directory"):
        await w.vm.deliver("ivan", "+7916", "call-x", elsewhere, 2.0)
    assert elsewhere.exists()


async def test_the_edge_lights_a_subscribed_phone(w: World) -> None:
    """Wired as the box does it: the edge's NOTIFY carries the counts."""
    fake = FakeEdge(w.db)
    subs = fake.edge.subscriptions
    subs.mailbox = w.vm.counts
    w.vm.attach(subs.mailbox_changed)
    out = fake.authenticated(event="message-summary", user="101")
    assert statuses(out) == [200, "NOTIFY"]
    first = out[1][0]
    assert isinstance(first, Request) and b"Voice-Message: 0/0" in first.body
    fake.receive(answer(first))
    fake.sent.clear()
    path = w.vm.message_path("ivan", "call-0001")
    write_wav(path, 2.0)
    message_id = await w.vm.deliver("ivan", "+79161234567", "call-0001", path, 2)
    assert message_id is not None
    await asyncio.sleep(0)  # the edge sends a burst's NOTIFYs on the next loop iteration
    [(lit, _)] = fake.sent
    assert isinstance(lit, Request)
    assert b"Messages-Waiting: yes" in lit.body and b"Voice-Message: 1/0" in lit.body
    fake.receive(answer(lit))
    fake.sent.clear()
    await w.vm.mark_read(message_id)
    await asyncio.sleep(0)
    [(heard, _)] = fake.sent
    assert isinstance(heard, Request)
    assert b"Messages-Waiting: no" in heard.body and b"Voice-Message: 0/1" in heard.body
    await w.vm.drain()


async def test_stop_does_not_wait_for_a_mail_server_that_hangs(w: World) -> None:
    """Shutdown is bounded: a mail still waiting for its retry is cancelled."""
    never = asyncio.Event()

    async def held(seconds: float) -> None:
        await never.wait()

    w.sink.stop()
    w.vm.mailer.sleep = held
    path = w.vm.message_path("ivan", "call-0001")
    write_wav(path, 2.0)
    await w.vm.deliver("ivan", "+79161234567", "call-0001", path, 2)
    await asyncio.wait_for(w.vm.stop(), timeout=10)
    await asyncio.wait_for(w.vm.drain(), timeout=1)  # nothing left in flight
    [row] = rows(w.db, "SELECT notified_at FROM voicemail_messages")
    assert row["notified_at"] is None


def test_the_schema_guards_pins_and_languages(tmp_path: Path) -> None:
    with Database.open(tmp_path / "pbx.db") as db:
        office(db)
        for column, value in (("language", "de"), ("pin_hash", "1234"),
                              ("pin_hash", "pbkdf2_sha256$")):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                db.write(lambda c, column=column, value=value: c.conn.execute(
                    f"UPDATE voicemail_boxes SET {column} = ? WHERE key = 'ivan'", (value,)))
