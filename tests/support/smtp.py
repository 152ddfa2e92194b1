"""A real SMTP server for tests: aiosmtpd on loopback, with optional TLS and AUTH.

`SmtpSink` collects every accepted mail as a parsed `email.message.EmailMessage`;
`self_signed()` makes a throwaway certificate for 127.0.0.1 with the openssl tool.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    """One mail as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class _Handler:
    refuse: set[str] = field(default_factory=set)
    mails: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or envelope.content,
                                          policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.mails.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1:port in its own thread."""

    def __init__(self, port: int, *, tls_context: ssl.SSLContext | None = None,
                 implicit_tls: bool = False, require_starttls: bool = False,
                 login: tuple[str, str] | None = None) -> None:
        self.handler = _Handler()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if login is not None:
            kwargs.update(authenticator=self._authenticator(login), auth_required=True,
                          auth_require_tls=True)
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port,
                                     ready_timeout=10, **kwargs)
        self.port = port
        self.running = False

    def _authenticator(self, login: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str,
                  data: Any) -> AuthResult:
            ok = (isinstance(data, LoginPassword) and data.login.decode() == login[0]
                  and data.password.decode() == login[1])
            if ok:
                self.logins.append(login[0])
            return AuthResult(success=ok, handled=False)
        return check

    @property
    def refuse(self) -> set[str]:
        """Recipients answered 550."""
        return self.handler.refuse

    @property
    def mails(self) -> list[Received]:
        """Mails accepted so far."""
        with self.handler.lock:
            return list(self.handler.mails)

    def start(self) -> SmtpSink:
        """Listen (returns once the server accepts connections)."""
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        """Stop listening (again: nothing)."""
        if self.running:
            self.running = False
            self.controller.stop()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate and key for 127.0.0.1 (cert path, key path)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The TLS context of the test server."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the test certificate (hostname checked)."""
    return ssl.create_default_context(cafile=str(cert))
