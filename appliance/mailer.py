"""E-mail through the office's SMTP server (the `notification_settings` row).

smtplib runs in a worker thread so a slow or dead mail server never stalls the event loop
that carries the SIP edge. `send()` makes one attempt and raises `MailError`;
`send_with_retries()` is what notifications use: a few attempts with backoff, then it gives
up, logging every step and never raising.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from typing import Any

from .db import Database
from .vmparts import header_text, valid_address

log = logging.getLogger(__name__)

#: Seconds each socket operation with the mail server may take.
SMTP_TIMEOUT_S = 15.0
#: Waits before the 2nd, 3rd and 4th attempt; then the mail is given up.
RETRY_DELAYS_S: tuple[float, ...] = (30.0, 120.0, 600.0)
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}

Attachment = tuple[str, bytes, str]  # file name, data, MIME type ("audio/wav")


class MailError(Exception):
    """A mail could not be sent; `permanent` when trying again cannot help (a 5xx answer)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailNotConfigured(MailError):
    """No SMTP server is configured: nothing is sent."""

    def __init__(self) -> None:
        super().__init__("no SMTP server is configured (notifications.smtp)", permanent=True)


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the mail server."""

    host: str
    port: int
    security: str  # none | starttls | tls
    username: str | None
    password: str | None
    from_address: str


def read_smtp(conn: Any) -> SmtpSettings | None:
    """The SMTP settings from the database (a sqlite3 connection), None if there are none."""
    row = conn.execute(
        "SELECT smtp_host, smtp_port, smtp_security, smtp_username, smtp_password, "
        "from_address FROM notification_settings WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return None
    host, port, security, username, password, sender = row
    security = security if security in DEFAULT_PORTS else "starttls"
    return SmtpSettings(host=host, port=int(port or DEFAULT_PORTS[security]), security=security,
                        username=username or None, password=password,
                        from_address=sender or username or f"pbx@{host}")


def build_message(sender: str, to: Sequence[str], subject: str, body: str,
                  attachments: Sequence[Attachment]) -> EmailMessage:
    """The MIME message (text body plus attachments); MailError for an unusable address."""
    for address in (sender, *to):
        if not valid_address(address):
            raise MailError(f"not a usable e-mail address: {address!r}", permanent=True)
    if not to:
        raise MailError("no recipients", permanent=True)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    subject = header_text(subject, limit=200)
    if subject.isascii():
        msg["Subject"] = subject
    else:
        # The default policy's folding drops the space between two encoded words when it
        # breaks a long non-ASCII subject ("от номер" arrives as "отномер"); the classic
        # Header encoder keeps spaces inside the encoded words, and set_raw skips refolding.
        msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode())
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain=sender.rsplit("@", 1)[1])
    msg.set_content(body)
    for filename, data, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype or "application",
                           subtype=subtype or "octet-stream",
                           filename=header_text(filename, limit=100) or "attachment")
    return msg


class Mailer:
    """Sends e-mail with the SMTP settings stored in the database."""

    def __init__(self, db: Database, *, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = SMTP_TIMEOUT_S,
                 retry_delays: Sequence[float] = RETRY_DELAYS_S,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """`ssl_context` verifies the server (default: the system's CAs); `sleep` is the
        clock retries wait on (tests pass a fake one)."""
        self.db = db
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.sleep = sleep

    def settings(self) -> SmtpSettings | None:
        """The SMTP settings as stored now (read on the calling thread)."""
        return read_smtp(self.db.read().conn)

    async def send(self, to: list[str], subject: str, body: str,
                   attachments: list[tuple[str, bytes, str]] = []) -> None:  # noqa: B006
        """Send one mail, one attempt; MailError (MailNotConfigured without SMTP) on failure."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, lambda: self._send_blocking(list(to), subject, body, list(attachments)))

    async def send_with_retries(self, to: list[str], subject: str, body: str,
                                attachments: list[tuple[str, bytes, str]] = [],  # noqa: B006
                                *, what: str = "mail") -> bool:
        """Send, retrying with backoff; True once sent, False when skipped or given up.

        Never raises (except cancellation): `what` names the mail in the log lines.
        """
        attempts = len(self.retry_delays) + 1
        for attempt in range(1, attempts + 1):
            try:
                await self.send(to, subject, body, attachments)
            except MailNotConfigured:
                log.info("%s not e-mailed: no SMTP server is configured", what)
                return False
            except MailError as exc:
                if exc.permanent or attempt == attempts:
                    log.error("%s not e-mailed to %s, giving up after %d attempt(s): %s",
                              what, ", ".join(to), attempt, exc)
                    return False
                delay = self.retry_delays[attempt - 1]
                log.warning("%s not e-mailed to %s (attempt %d of %d): %s; again in %g s",
                            what, ", ".join(to), attempt, attempts, exc, delay)
                await self.sleep(delay)
            except Exception:
                log.exception("%s not e-mailed: unexpected error", what)
                return False
            else:
                log.info("%s e-mailed to %s", what, ", ".join(to))
                return True
        return False

    # --- the worker thread ---------------------------------------------------------------
    def _send_blocking(self, to: list[str], subject: str, body: str,
                       attachments: list[Attachment]) -> None:
        smtp = self.settings()
        if smtp is None:
            raise MailNotConfigured()
        msg = build_message(smtp.from_address, to, subject, body, attachments)
        where = f"{smtp.host}:{smtp.port}"
        context = self.ssl_context or ssl.create_default_context()
        try:
            client: smtplib.SMTP
            if smtp.security == "tls":
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=self.timeout,
                                          context=context)
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if smtp.security == "starttls":
                    # Never fall back to plain text when STARTTLS was asked for.
                    if not client.has_extn("starttls"):
                        raise MailError(f"{where} does not offer STARTTLS", permanent=True)
                    client.starttls(context=context)
                    client.ehlo()
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                client.send_message(msg)
        except MailError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(f"{where} refused the login of {smtp.username!r}: "
                            f"{exc.smtp_code} {_text(exc.smtp_error)}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in exc.recipients.items())
            permanent = all(c >= 500 for c, _m in exc.recipients.values())
            raise MailError(f"{where} refused {refused}", permanent=permanent) from None
        except smtplib.SMTPResponseException as exc:
            raise MailError(f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                            permanent=exc.smtp_code >= 500) from None
        except TimeoutError:
            raise MailError(f"{where} timed out after {self.timeout:g} s") from None
        except ssl.SSLError as exc:
            raise MailError(f"TLS with {where} failed: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"cannot send through {where}: {exc}") from None


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
