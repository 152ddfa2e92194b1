"""The mailer against a real aiosmtpd server on loopback: plain, STARTTLS, TLS, AUTH, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.db import Database
from appliance.mailer import Mailer, MailError, MailNotConfigured, build_message, read_smtp
from tests.conftest import free_port
from tests.support.smtp import SmtpSink, client_context, self_signed, server_context


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "pbx.db") as database:
        yield database


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def configure(db: Database, port: int, security: str = "none", username: str | None = None,
              password: str | None = None, sender: str | None = "pbx@office.example") -> None:
    db.write(lambda c: c["notification_settings"].upsert(
        {"id": 1, "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": security,
         "smtp_username": username, "smtp_password": password, "from_address": sender},
        pk="id"))


class Sleeps:
    """A fake clock for retries: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_plain_mail_with_attachment(db: Database) -> None:
    sink = SmtpSink(free_port()).start()
    try:
        configure(db, sink.port)
        wav = bytes(range(256)) * 40
        await Mailer(db).send(["ivan@office.example", "maria@office.example"],
                              "Голосовое сообщение от +79161234567", "Текст письма\n",
                              [("vm.wav", wav, "audio/wav")])
        [mail] = sink.mails
        assert mail.mail_from == "pbx@office.example"
        assert mail.rcpt_tos == ["ivan@office.example", "maria@office.example"]
        msg = mail.message
        assert msg["Subject"] == "Голосовое сообщение от +79161234567"
        assert msg["From"] == "pbx@office.example"
        body = msg.get_body(("plain",))
        assert body is not None
        assert body.get_content().replace("\r\n", "\n") == "Текст письма\n"
        [part] = list(msg.iter_attachments())
        assert part.get_filename() == "vm.wav"
        assert part.get_content_type() == "audio/wav"
        assert part.get_payload(decode=True) == wav
    finally:
        sink.stop()


async def test_starttls_with_login(db: Database, cert: tuple[Path, Path]) -> None:
    sink = SmtpSink(free_port(), tls_context=server_context(*cert), require_starttls=True,
                    login=("pbx", "s3cret")).start()
    try:
        configure(db, sink.port, "starttls", "pbx", "s3cret")
        await Mailer(db, ssl_context=client_context(cert[0])).send(
            ["ivan@office.example"], "subject", "body")
        assert len(sink.mails) == 1
        assert sink.logins == ["pbx"]
        # A wrong password is refused, and that is not worth retrying.
        configure(db, sink.port, "starttls", "pbx", "wrong")
        with pytest.raises(MailError, match="refused the login") as info:
            await Mailer(db, ssl_context=client_context(cert[0])).send(
                ["ivan@office.example"], "subject", "body")
        assert info.value.permanent
        # The system's CAs do not know the self-signed certificate: refused, not sent.
        configure(db, sink.port, "starttls", "pbx", "s3cret")
        with pytest.raises(MailError, match="TLS"):
            await Mailer(db).send(["ivan@office.example"], "subject", "body")
        assert len(sink.mails) == 1
    finally:
        sink.stop()


async def test_implicit_tls(db: Database, cert: tuple[Path, Path]) -> None:
    sink = SmtpSink(free_port(), tls_context=server_context(*cert), implicit_tls=True).start()
    try:
        configure(db, sink.port, "tls")
        await Mailer(db, ssl_context=client_context(cert[0])).send(
            ["ivan@office.example"], "over TLS", "body")
        assert [m.message["Subject"] for m in sink.mails] == ["over TLS"]
    finally:
        sink.stop()


async def test_starttls_asked_but_not_offered_never_sends_in_clear(db: Database) -> None:
    sink = SmtpSink(free_port()).start()
    try:
        configure(db, sink.port, "starttls")
        with pytest.raises(MailError, match="does not offer STARTTLS") as info:
            await Mailer(db).send(["ivan@office.example"], "s", "b")
        assert info.value.permanent
        assert sink.mails == []
    finally:
        sink.stop()


async def test_server_down_is_retried_with_backoff_then_given_up(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    configure(db, free_port())  # nothing listens there
    sleeps = Sleeps()
    mailer = Mailer(db, sleep=sleeps, timeout=5)
    with pytest.raises(MailError, match="cannot send through") as info:
        await mailer.send(["ivan@office.example"], "s", "b")
    assert not info.value.permanent
    with caplog.at_level(logging.WARNING, logger="appliance.mailer"):
        assert await mailer.send_with_retries(["ivan@office.example"], "s", "b",
                                              what="test mail") is False
    assert sleeps.waits == [30.0, 120.0, 600.0]
    assert "giving up after 4 attempt(s)" in caplog.text


async def test_server_back_during_the_retries(db: Database) -> None:
    port = free_port()
    configure(db, port)
    sink = SmtpSink(port)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            sink.start()  # the mail server comes back during the second wait

    try:
        assert await Mailer(db, sleep=sleep).send_with_retries(
            ["ivan@office.example"], "late", "b") is True
        assert sleeps == [30.0, 120.0]
        assert [m.message["Subject"] for m in sink.mails] == ["late"]
    finally:
        sink.stop()


async def test_refused_recipient_is_not_retried(db: Database) -> None:
    sink = SmtpSink(free_port()).start()
    sink.refuse.add("nobody@office.example")
    sleeps = Sleeps()
    try:
        configure(db, sink.port)
        with pytest.raises(MailError, match=r"refused nobody@office\.example") as info:
            await Mailer(db).send(["nobody@office.example"], "s", "b")
        assert info.value.permanent
        assert await Mailer(db, sleep=sleeps).send_with_retries(
            ["nobody@office.example"], "s", "b") is False
        assert sleeps.waits == []
        assert sink.mails == []
    finally:
        sink.stop()


async def test_not_configured_is_skipped_with_one_line(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    assert read_smtp(db.read().conn) is None
    with pytest.raises(MailNotConfigured):
        await Mailer(db).send(["ivan@office.example"], "s", "b")
    sleeps = Sleeps()
    with caplog.at_level(logging.INFO, logger="appliance.mailer"):
        assert await Mailer(db, sleep=sleeps).send_with_retries(
            ["ivan@office.example"], "s", "b", what="voicemail message 7") is False
    lines = [r.getMessage() for r in caplog.records if r.name == "appliance.mailer"]
    assert lines == ["voicemail message 7 not e-mailed: no SMTP server is configured"]
    assert sleeps.waits == []


def test_settings_defaults(db: Database) -> None:
    configure(db, 1, "tls", sender=None, username="robot@office.example")
    db.write(lambda c: c.conn.execute("UPDATE notification_settings SET smtp_port = NULL"))
    smtp = read_smtp(db.read().conn)
    assert smtp is not None
    assert (smtp.port, smtp.security, smtp.from_address) == (465, "tls",
                                                             "robot@office.example")


def test_header_injection_is_refused_or_flattened() -> None:
    with pytest.raises(MailError, match="not a usable"):
        build_message("pbx@office.example", ["a@b.example\r\nBcc: x@evil.example"], "s", "b",
                      [])
    msg = build_message("pbx@office.example", ["a@b.example"],
                        "hi\r\nBcc: x@evil.example", "b", [])
    assert msg["Bcc"] is None
    assert "\n" not in str(msg["Subject"])

