"""The control API: a pure, fuzzed request parser and a live Unix-socket server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.control import (
    BadRequest,
    ControlError,
    ControlServer,
    Request,
    call,
    content_length,
    parse_body,
    parse_head,
)


def test_parse_head() -> None:
    method, path, headers = parse_head(
        b"POST /reload HTTP/1.1\r\nHost: engine\r\nContent-Length: 2")
    assert (method, path) == ("POST", "/reload")
    assert headers == {"host": "engine", "content-length": "2"}


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GARBAGE", 400),
        (b"BREW /pot HTTP/1.1", 405),
        (b"GET nopath HTTP/1.1", 400),
        (b"GET / HTTP/2", 400),
        (b"GET / HTTP/1.1\r\nno colon here", 400),
        (b"GET / HTTP/1.1\r\n folded: header", 400),
        ("GET /\u00e9 HTTP/1.1".encode(), 400),
    ],
)
def test_bad_heads(head: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as info:
        parse_head(head)
    assert info.value.status == status


def test_bodies() -> None:
    assert parse_body({}, b"") is None
    assert parse_body({"content-type": "application/json"}, b'{"a": 1}') == {"a": 1}
    with pytest.raises(BadRequest, match="JSON"):
        parse_body({}, b"{nope")
    with pytest.raises(BadRequest) as info:
        parse_body({"content-type": "text/plain"}, b"hi")
    assert info.value.status == 415
    with pytest.raises(BadRequest) as info:
        content_length({"content-length": str(10**9)})
    assert info.value.status == 413
    with pytest.raises(BadRequest):
        content_length({"content-length": "-1"})
    with pytest.raises(BadRequest):
        content_length({"transfer-encoding": "chunked"})


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_parser_only_raises_bad_request(data: bytes) -> None:
    """Whatever arrives, the parser answers with BadRequest or a parsed request."""
    try:
        _method, _path, headers = parse_head(data)
        parse_body(headers, data[:64])
        content_length(headers)
    except BadRequest as exc:
        assert 400 <= exc.status < 500


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
    st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        max_size=5,
    ),
)
def test_fuzz_well_formed_heads_round_trip(method: str, path: str, headers: dict[str, str]
                                          ) -> None:
    path = "/" + path
    head = f"{method} {path} HTTP/1.1" + "".join(f"\r\n{k}: {v}" for k, v in headers.items())
    m, p, h = parse_head(head.encode())
    assert (m, p) == (method, path)
    assert h == {k.lower(): v.strip() for k, v in headers.items()}


@pytest.fixture
async def server(unix_dir: Path) -> Any:
    srv = ControlServer(unix_dir / "control.sock")

    async def echo(req: Request) -> Any:
        return {"method": req.method, "body": req.body}

    async def boom(req: Request) -> Any:
        raise RuntimeError("handler bug")

    srv.route("POST", "/echo", echo)
    srv.route("GET", "/boom", boom)
    await srv.start()
    yield srv
    await srv.stop()


async def test_server_round_trip_and_errors(server: ControlServer) -> None:
    path = server.path
    assert oct(path.stat().st_mode & 0o777) == "0o660"
    run = asyncio.get_running_loop().run_in_executor
    assert await run(None, call, path, "POST", "/echo", {"x": "é"}) == {
        "method": "POST", "body": {"x": "é"}}
    with pytest.raises(ControlError, match="404"):
        await run(None, call, path, "GET", "/nowhere")
    with pytest.raises(ControlError, match="405"):
        await run(None, call, path, "GET", "/echo")
    with pytest.raises(ControlError, match="500: internal error: RuntimeError"):
        await run(None, call, path, "GET", "/boom")


async def test_server_survives_garbage(server: ControlServer) -> None:
    """Raw junk, a truncated body and an early hang-up leave the server serving."""
    loop = asyncio.get_running_loop()

    def raw(data: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(server.path))
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            return sock.recv(4096)

    assert b" 400 " in await loop.run_in_executor(None, raw, b"\x00\xff junk\r\n\r\n")
    assert b" 400 " in await loop.run_in_executor(
        None, raw, b"POST /echo HTTP/1.1\r\nContent-Length: 50\r\n\r\n{}")
    assert b" 431 " in await loop.run_in_executor(None, raw, b"GET / HTTP/1.1\r\nX: " +
                                                  b"a" * 70000 + b"\r\n\r\n")
    assert await loop.run_in_executor(None, call, server.path, "POST", "/echo") == {
        "method": "POST", "body": None}


def test_client_reports_a_missing_engine(unix_dir: Path) -> None:
    with pytest.raises(ControlError, match="cannot reach the engine"):
        call(unix_dir / "absent.sock", "GET", "/status", timeout=1)


async def test_pattern_routes_and_query(unix_dir: Path) -> None:
    srv = ControlServer(unix_dir / "pattern.sock")

    async def show(req: Request) -> Any:
        return {"params": req.params, "query": req.query, "body": req.body}

    srv.route("POST", "/lines/{key}/ussd", show)
    srv.route("GET", "/sms", show)
    await srv.start()
    try:
        run = asyncio.get_running_loop().run_in_executor
        path = srv.path
        assert await run(None, call, path, "POST", "/lines/sim%2D1/ussd", {"code": "*1#"}) == {
            "params": {"key": "sim-1"}, "query": {}, "body": {"code": "*1#"}}
        assert await run(None, call, path, "GET", "/sms?line=a&limit=5") == {
            "params": {}, "query": {"line": "a", "limit": "5"}, "body": None}
        with pytest.raises(ControlError, match="405"):
            await run(None, call, path, "GET", "/lines/x/ussd")
        for missing in ("/lines//ussd", "/lines/a/b/ussd", "/lines/x/ussdx"):
            with pytest.raises(ControlError, match="404"):
                await run(None, call, path, "POST", missing)
    finally:
        await srv.stop()


@given(st.text(max_size=80))
def test_fuzz_route_lookup(path: str) -> None:
    srv = ControlServer(Path("/nonexistent/control.sock"))

    async def nothing(req: Request) -> Any:
        return None

    srv.route("POST", "/lines/{key}/ussd", nothing)
    srv.route("GET", "/lines", nothing)
    handler, params, _ = srv._find("POST", path)
    if handler is not None:
        raw = path[len("/lines/"):-len("/ussd")]
        assert path.startswith("/lines/") and path.endswith("/ussd")
        assert raw and "/" not in raw and set(params) == {"key"}
