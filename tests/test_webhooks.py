"""The webhook destination against a real HTTP server on loopback, and its reply parser fuzzed."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.routing.snapshot import Dest, Webhook
from appliance.webhooks import (
    MAX_REPLY,
    SIGNATURE_HEADER,
    WebhookCall,
    WebhookError,
    ask_webhook,
    parse_reply,
)

SECRET = "s3cret-for-tests"
CALL = WebhookCall(call_id="c0ffee00-0001", caller="+79161234567", dialled="+74955550001",
                   line="trunk1", started_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


@dataclass
class Seen:
    """What the server received, and whether the signature checked out."""

    bodies: list[bytes] = field(default_factory=list)
    headers: list[Message] = field(default_factory=list)  # names case-insensitive
    signed_ok: list[bool] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


Reply = Callable[[BaseHTTPRequestHandler, Seen], None]
Start = Callable[..., tuple[Webhook, Seen]]  # (reply, secret=...) -> the hook and what it saw


def serve(reply: Reply) -> tuple[ThreadingHTTPServer, Seen]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.bodies.append(body)
            seen.headers.append(self.headers)
            want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            seen.signed_ok.append(hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""),
                                                      want))
            reply(self, seen)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def http() -> Iterator[Start]:
    servers: list[tuple[ThreadingHTTPServer, Seen]] = []

    def start(reply: Reply, secret: str | None = SECRET) -> tuple[Webhook, Seen]:
        server, seen = serve(reply)
        servers.append((server, seen))
        port = server.server_address[1]
        return Webhook("crm-router", f"http://127.0.0.1:{port}/route", secret=secret), seen

    yield start
    for server, seen in servers:
        seen.release.set()
        server.shutdown()
        server.server_close()


def send(handler: BaseHTTPRequestHandler, code: int, body: bytes,
         headers: dict[str, str] | None = None) -> None:
    handler.send_response(code)
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def answer(doc: object, code: int = 200) -> Reply:
    return lambda h, _seen: send(h, code, json.dumps(doc).encode())


async def test_a_signed_request_gets_the_destination_named(http: Start) -> None:
    hook, seen = http(answer({"destination": "employee:101"}))
    assert await ask_webhook(hook, CALL, timeout=5) == Dest("employee", "101")
    [body] = seen.bodies
    assert seen.signed_ok == [True]
    assert json.loads(body) == {"event": "call.route", "webhook": "crm-router",
                                "call_id": CALL.call_id, "caller": "+79161234567",
                                "dialled": "+74955550001", "line": "trunk1",
                                "started_at": "2026-11-23T10:00:00.000+00:00"}
    assert seen.headers[0]["Content-Type"] == "application/json"
    assert seen.headers[0]["X-PBX-Webhook"] == "crm-router"


async def test_the_yaml_shapes_and_no_opinion(http: Start) -> None:
    hook, _ = http(answer({"destination": {"external": "8 916 000-00-00", "line": "sim1"}}))
    assert await ask_webhook(hook, CALL, 5) == Dest("external", "+79160000000", "sim1")
    hook, _ = http(answer({"destination": None}))
    assert await ask_webhook(hook, CALL, 5) is None
    hook, _ = http(lambda h, _s: send(h, 204, b""))
    assert await ask_webhook(hook, CALL, 5) is None


async def test_without_a_secret_nothing_is_signed(http: Start) -> None:
    hook, seen = http(answer({"destination": "department:sales"}), secret=None)
    assert await ask_webhook(hook, CALL, 5) == Dest("department", "sales")
    assert SIGNATURE_HEADER not in seen.headers[0]


async def test_a_slow_server_times_out(http: Start) -> None:
    def slow(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        seen.release.wait(10)  # until the test ends
        send(handler, 200, b'{"destination": null}')

    hook, _ = http(slow)
    with pytest.raises(WebhookError, match=r"no reply within 0\.3 s"):
        await ask_webhook(hook, CALL, timeout=0.3)


async def test_a_trickling_server_is_cut_off_at_the_deadline(http: Start) -> None:
    def trickle(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            if seen.release.wait(0.05):
                return

    hook, _ = http(trickle)
    with pytest.raises(WebhookError, match=r"within 0\.4 s"):
        await ask_webhook(hook, CALL, timeout=0.4)


@pytest.mark.parametrize(("reply", "message"), [
    (lambda h, _s: send(h, 500, b"oops"), "HTTP 500"),
    (lambda h, _s: send(h, 302, b"", {"Location": "http://127.0.0.1:1/x"}), "HTTP 302"),
    (lambda h, _s: send(h, 200, b"<html>hello</html>"), "not JSON"),
    (lambda h, _s: send(h, 200, b'["employee:101"]'), "JSON object"),
    (lambda h, _s: send(h, 200, b'{"destination": "teleport:1"}'), "not valid"),
    (lambda h, _s: send(h, 200, b'{"destination": "webhook:other"}'), "may not"),
    (lambda h, _s: send(h, 200, b'{"destination": "employee:101", "x": 1}'), "unexpected: x"),
    (lambda h, _s: send(h, 200, b'{"destination": "' + b"1" * MAX_REPLY + b'"}'),
     "larger than"),
    (lambda h, _s: h.wfile.write(b"garbage, not HTTP\r\n\r\n"), "connection failed"),
])
async def test_bad_answers_are_errors(http: Start, reply: Reply, message: str) -> None:
    hook, _ = http(reply)
    with pytest.raises(WebhookError, match=message):
        await ask_webhook(hook, CALL, timeout=5)


async def test_nobody_listening_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    with pytest.raises(WebhookError, match="cannot reach"):
        await ask_webhook(Webhook("x", f"http://127.0.0.1:{port}/"), CALL, timeout=2)


# -- the reply parser, fuzzed ----------------------------------------------------------------

KINDS = ["employee", "department", "voice_menu", "queue", "voicemail", "flow", "chain",
         "external", "sip_uri", "webhook", "fax", "callback", "hangup", "menu", "bogus"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_cleanly(body: bytes) -> None:
    try:
        out = parse_reply(body)
    except WebhookError:
        return
    assert out is None or isinstance(out, Dest)


@given(st.one_of(
    json_values,
    st.fixed_dictionaries({"destination": json_values}),
    st.fixed_dictionaries({"destination": st.builds(lambda k, t: f"{k}:{t}",
                                                    st.sampled_from(KINDS), st.text())}),
    st.fixed_dictionaries({"destination": st.dictionaries(st.sampled_from([*KINDS, "line"]),
                                                          st.text() | st.integers(),
                                                          min_size=1, max_size=3)}),
))
def test_json_replies_give_a_destination_or_a_clear_error(doc: object) -> None:
    try:
        out = parse_reply(json.dumps(doc).encode())
    except WebhookError as exc:
        assert str(exc)
        return
    assert isinstance(doc, dict) and set(doc) == {"destination"}
    if out is None:
        assert doc["destination"] is None
    else:
        assert out.kind in KINDS[:13] and out.kind != "webhook"


def test_parser_examples() -> None:
    assert parse_reply(b'{"destination": "menu:main"}') == Dest("voice_menu", "main")
    assert parse_reply(b'{"destination": "hangup"}') == Dest("hangup")
    assert parse_reply(b'{"destination": {"employee": 101}}') == Dest("employee", "101")
    assert parse_reply(b'{"destination": "sip:reception@192.168.1.20"}') == Dest(
        "sip_uri", "sip:reception@192.168.1.20")
    with pytest.raises(WebhookError, match="not valid"):
        parse_reply(b'{"destination": {"line": "sim1"}}')
    with pytest.raises(WebhookError, match="not JSON"):
        parse_reply(b"\xff\xfe")


# -- HTTPS -----------------------------------------------------------------------------------


@pytest.fixture
def tls_hook(tmp_path: Path) -> Iterator[tuple[Webhook, Path]]:
    """An HTTPS webhook on loopback with a fresh self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    server, seen = serve(answer({"destination": "voicemail:general"}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    yield Webhook("tls", f"https://127.0.0.1:{port}/", secret=SECRET), cert
    seen.release.set()
    server.shutdown()
    server.server_close()


async def test_https_is_verified(tls_hook: tuple[Webhook, Path],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    hook, cert = tls_hook
    with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
        await ask_webhook(hook, CALL, timeout=5)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now the box trusts it
    assert await ask_webhook(hook, CALL, timeout=5) == Dest("voicemail", "general")
