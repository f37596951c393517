"""The internal HTTP/1.1 transport (paychan_runtime.http1 under InternalClient) against real servers:
keep-alive reuse, chunked answers, `Connection: close`, malformed answers and typed error bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from paychan_common.errors import ChannelNotFound, ServiceUnavailable
from paychan_runtime.client import InternalClient
from paychan_runtime.http1 import build_request, open_connection


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"method": request.method, "path": request.path_qs, "len": len(body),
                              "auth": request.headers.get("Authorization"), "peer": request.transport is not None})


async def _chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    resp.content_type = "application/json"
    await resp.prepare(request)
    for part in (b'{"parts": ', b"[1, 2, ", b"3]}"):
        await resp.write(part)
    await resp.write_eof()
    return resp


async def _close(_request: web.Request) -> web.Response:
    return web.json_response({"bye": True}, headers={"Connection": "close"})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.json_response({"slow": True})


async def _missing(_request: web.Request) -> web.Response:
    return web.json_response({"error": {"class": "ChannelNotFound", "code": "channel_not_found",
                                        "message": "no such channel"}}, status=404)


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/close", _close)
    app.router.add_get("/missing", _missing)
    app.router.add_get("/slow", _slow)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


def _client(srv: TestServer, **kw: object) -> InternalClient:
    return InternalClient(f"http://127.0.0.1:{srv.port}", "tok", name="test service", **kw)  # type: ignore[arg-type]


async def test_keep_alive_reuses_one_connection(server: TestServer) -> None:
    client = _client(server)
    try:
        first = await client.request("POST", "/echo", {"a": 1}, params={"x": "1 2"})
        second = await client.request("GET", "/echo")
        assert first == {"method": "POST", "path": "/echo?x=1+2", "len": 7, "auth": "Bearer tok", "peer": True}
        assert second["method"] == "GET" and second["len"] == 0
        assert len(client._idle) == 1  # the same connection carried both
    finally:
        await client.close()


async def test_chunked_answer_and_connection_close(server: TestServer) -> None:
    client = _client(server)
    try:
        assert await client.request("GET", "/chunked") == {"parts": [1, 2, 3]}
        assert await client.request("GET", "/close") == {"bye": True}
        assert client._idle == []  # the peer closed it: not kept
        assert (await client.request("GET", "/echo"))["method"] == "GET"  # a fresh connection
    finally:
        await client.close()


async def test_error_body_raises_the_typed_error(server: TestServer) -> None:
    client = _client(server)
    try:
        with pytest.raises(ChannelNotFound, match="no such channel"):
            await client.request("GET", "/missing")
    finally:
        await client.close()


async def test_a_late_answer_times_out_on_a_new_and_on_a_reused_connection(server: TestServer) -> None:
    client = _client(server, timeout=0.3)
    try:
        with pytest.raises(ServiceUnavailable, match="test service unreachable: TimeoutError"):
            await client.request("GET", "/slow", params={"s": "2"})  # the first exchange: a new connection
        assert client._idle == []  # its state is unknown: closed, not kept
        assert (await client.request("GET", "/echo"))["method"] == "GET"
        assert len(client._idle) == 1
        started = asyncio.get_running_loop().time()
        with pytest.raises(ServiceUnavailable, match="test service unreachable: TimeoutError"):
            await client.request("GET", "/slow", params={"s": "2"})  # on the idle connection (its own timer)
        assert 0.25 < asyncio.get_running_loop().time() - started < 1.5
        assert client._idle == []
        assert await client.request("GET", "/slow", params={"s": "0.05"}) == {"slow": True}  # within time
        assert len(client._idle) == 1
    finally:
        await client.close()


async def _raw_server(answer: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        try:
            await asyncio.sleep(0.5)
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


@pytest.mark.parametrize("answer", [b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
async def test_malformed_or_cut_answers_are_service_unavailable(answer: bytes) -> None:
    srv, port = await _raw_server(answer)
    client = InternalClient(f"http://127.0.0.1:{port}", "tok", name="raw", timeout=5)
    try:
        with pytest.raises(ServiceUnavailable, match="raw"):
            await client.request("GET", "/")
        assert client._idle == []
    finally:
        await client.close()
        srv.close()
        await srv.wait_closed()


async def test_unsolicited_bytes_close_the_connection() -> None:
    srv, port = await _raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n")
    conn = await open_connection("127.0.0.1", port)
    try:
        assert await conn.exchange(build_request("GET", "/", "x")) == (200, b"{}")
        assert not conn.reusable  # bytes beyond the answer: the connection is not trusted again
    finally:
        conn.close()
        srv.close()
        await srv.wait_closed()


async def test_send_hands_each_answer_to_its_callback_which_may_send_the_next(server: TestServer) -> None:
    """The callback form of an exchange (the load generator's): answers in order, the next request sent
    from within the previous answer's callback, a busy connection refused at once, and a lost connection
    told to the callback as its exception."""
    conn = await open_connection("127.0.0.1", server.port or 0)
    got: list[tuple[int, bytes] | BaseException] = []
    finished = asyncio.Event()
    paths = ["/echo?n=1", "/echo?n=2", "/missing"]

    def on_answer(outcome: tuple[int, bytes] | BaseException) -> None:
        got.append(outcome)
        if len(got) < len(paths):
            conn.send(build_request("GET", paths[len(got)], "x"), on_answer)
        else:
            finished.set()

    try:
        conn.send(build_request("GET", paths[0], "x"), on_answer)
        with pytest.raises(ConnectionError, match="not usable"):  # one exchange at a time
            conn.send(build_request("GET", "/echo", "x"), on_answer)
        await asyncio.wait_for(finished.wait(), 5)
        assert [a[0] for a in got if isinstance(a, tuple)] == [200, 200, 404]
        assert [json.loads(a[1])["path"] for a in got[:2] if isinstance(a, tuple)] == ["/echo?n=1", "/echo?n=2"]
        assert conn.reusable
        lost: list[tuple[int, bytes] | BaseException] = []
        conn.send(build_request("GET", "/slow?s=5", "x"), lost.append)
        await server.close()  # the server goes away in the middle of the exchange
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.02)
        assert len(lost) == 1 and isinstance(lost[0], ConnectionError) and not conn.reusable
    finally:
        conn.close()


def test_build_request_sets_length_and_headers() -> None:
    raw = build_request("PUT", "/p?q=1", "h:1", b"abc", {"X-A": "b"})
    assert raw == b"PUT /p?q=1 HTTP/1.1\r\nHost: h:1\r\nX-A: b\r\nContent-Length: 3\r\n\r\nabc"
    assert build_request("GET", "/", "h").endswith(b"Content-Length: 0\r\n\r\n")


