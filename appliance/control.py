"""The engine's control API: HTTP/1.1 with JSON bodies on a Unix socket.

The web UI and the `pbx` command use it for live state and actions.  It is
local only (filesystem permissions guard the socket), small on purpose, and
its request parser is pure so it can be fuzzed.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
READ_TIMEOUT_S = 10.0

Handler = Callable[["Request"], Awaitable[Any]]


class BadRequest(ValueError):
    """The request cannot be parsed or is not allowed; carries the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """One parsed control request."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    # Named path segments of a pattern route ("/lines/{key}/ussd"), and the query string.
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Parse a request line and headers (without the final blank line)."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("request head is not ASCII") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, path, _ = parts
    if method not in ("GET", "POST", "PUT", "DELETE"):
        raise BadRequest(f"method {method[:16]!r} not allowed", 405)
    if not path.startswith("/") or any(c in path for c in " \t\0"):
        raise BadRequest("malformed path")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name.strip() != name:
            raise BadRequest("malformed header line")
        headers[name.lower()] = value.strip()
    return method, path, headers


def parse_body(headers: dict[str, str], body: bytes) -> Any:
    """Decode a JSON body ('' -> None); reject anything else."""
    if not body:
        return None
    ctype = headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype != "application/json":
        raise BadRequest("body must be application/json", 415)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def content_length(headers: dict[str, str]) -> int:
    """The declared body length, bounded."""
    if "transfer-encoding" in headers:
        raise BadRequest("chunked bodies are not supported", 411)
    raw = headers.get("content-length", "0")
    if not raw.isdigit():
        raise BadRequest("bad Content-Length")
    length = int(raw)
    if length > MAX_BODY:
        raise BadRequest("body too large", 413)
    return length


def response(status: int, payload: Any) -> bytes:
    """Serialize a JSON response; the connection closes after it."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    reason = http.client.responses.get(status, "Unknown")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ControlServer:
    """Routes (method, path) to async handlers on a Unix socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._routes: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: asyncio.AbstractServer | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Register a handler; it returns a JSON-able payload or raises BadRequest.

        A path with `{name}` segments matches any one segment there (Request.params).
        """
        if "{" not in path:
            self._routes[(method, path)] = handler
            return
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self._patterns.append((method, re.compile(f"^{regex}$"), handler))

    def _find(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, path parameters, whether the path exists for another method)."""
        handler = self._routes.get((method, path))
        if handler is not None:
            return handler, {}, True
        known = any(p == path for _, p in self._routes)
        for pattern_method, pattern, pattern_handler in self._patterns:
            match = pattern.match(path)
            if match is None:
                continue
            if pattern_method == method:
                params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return pattern_handler, params, True
            known = True
        return None, {}, known

    async def start(self) -> None:
        """Listen on the socket (owner-only permissions)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o117)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)

    async def stop(self) -> None:
        """Close the socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Only reading the request is time-limited here: a slow client must not hold a
        # connection open. A handler bounds its own work (a trunk's test call waits for
        # the far end to answer, which takes longer than reading ever should).
        try:
            request = await asyncio.wait_for(self._read(reader), READ_TIMEOUT_S)
        except TimeoutError:
            status, payload = 408, {"error": "request timed out"}
        except BadRequest as exc:
            status, payload = exc.status, {"error": str(exc)}
        except Exception as exc:
            log.exception("reading a control request failed")
            status, payload = 500, {"error": f"internal error: {type(exc).__name__}"}
        else:
            status, payload = await self._run(request)
        try:
            writer.write(response(status, payload))
            await writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> Request:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise BadRequest("request head too large", 431) from None
        except asyncio.IncompleteReadError:
            raise BadRequest("incomplete request") from None
        if len(head) > MAX_HEAD:
            raise BadRequest("request head too large", 431)
        method, path, headers = parse_head(head[:-4])
        length = content_length(headers)
        try:
            raw = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise BadRequest("body shorter than Content-Length") from None
        return Request(method, path, headers, parse_body(headers, raw))

    async def _run(self, request: Request) -> tuple[int, Any]:
        try:
            route_path, _, query_text = request.path.partition("?")
            handler, params, known = self._find(request.method, route_path)
            if handler is None:
                raise BadRequest("method not allowed" if known else "not found",
                                 405 if known else 404)
            query = dict(urllib.parse.parse_qsl(query_text, max_num_fields=20))
            return 200, await handler(replace(request, params=params, query=query))
        except BadRequest as exc:
            return exc.status, {"error": str(exc)}
        except Exception as exc:
            log.exception("control request failed")
            return 500, {"error": f"internal error: {type(exc).__name__}"}


class ControlError(RuntimeError):
    """The engine could not be reached or refused the request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """`status` is the engine's HTTP status when it answered, None when it did not."""
        super().__init__(message)
        self.status = status


class EngineDownError(ControlError):
    """Nothing answered on the control socket (the engine is stopped or starting)."""


def call(socket_path: Path, method: str, path: str, body: Any = None,
         timeout: float = 10.0) -> Any:
    """Blocking client for the CLI and the web UI; returns the decoded JSON."""
    payload = b"" if body is None else json.dumps(body).encode()
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise EngineDownError(f"cannot reach the engine at {socket_path}: {exc}") from None
    raw = b"".join(chunks)
    head, _, body_bytes = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
        data = json.loads(body_bytes or b"null")
    except (IndexError, ValueError):
        raise ControlError("the engine sent a malformed reply") from None
    if status != 200:
        message = data.get("error") if isinstance(data, dict) else data
        raise ControlError(f"engine answered {status}: {message}", status)
    return data
