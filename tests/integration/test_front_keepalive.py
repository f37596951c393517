"""The fast front's keep-alive timer (paychan_runtime.front) on real sockets: an idle connection is closed
KEEPALIVE_SECONDS after its last answer, a connection answered meanwhile is not."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from paychan_runtime import front as front_module
from paychan_runtime.front import FrontConnection, FrontContext, read_head
from paychan_runtime.metrics import Metrics

PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


class _PingFront(FrontContext):
    def protocol(self) -> _Ping:
        return _Ping(self)


class _Ping(FrontConnection[None]):
    def take(self, head: bytes) -> tuple[None, int] | None:
        fields = read_head(head, b"GET")
        return None if fields is None or fields.url != b"/ping" else (None, 0)

    async def respond(self, taken: None, body: bytes) -> bytes:
        return self._front.answer(200, "OK", b"pong", b"text/plain")


async def _unexpected(_request: web.BaseRequest) -> web.Response:
    return web.Response(status=500, text="the test sends only requests the front takes")


async def _ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(PING)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert await reader.readexactly(4) == b"pong"


async def test_idle_connections_close_after_the_keepalive_and_busy_ones_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(front_module, "KEEPALIVE_SECONDS", 0.6)
    ctx = _PingFront(web.Server(_unexpected), Metrics("keepalive_test"))
    server = await asyncio.get_running_loop().create_server(ctx.protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        await _ping(idle_reader, idle_writer)
        started = asyncio.get_running_loop().time()
        for _ in range(8):  # 1.6 s of answers 0.2 s apart: more than twice the keep-alive, never idle that long
            await _ping(busy_reader, busy_writer)
            await asyncio.sleep(0.2)
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # the idle one was closed (EOF) ...
        assert asyncio.get_running_loop().time() - started < 2.5
        await _ping(busy_reader, busy_writer)  # ... the busy one is still served
        closed_at = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(busy_reader.read(), 5) == b""  # and closed once idle in its turn
        assert 0.5 < asyncio.get_running_loop().time() - closed_at < 2.5
        for writer in (idle_writer, busy_writer):
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
