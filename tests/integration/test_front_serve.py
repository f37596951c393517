"""`FrontConnection.serve` overridden to answer from callbacks (as ChanStore's front does), on real sockets:
answers given at once for pipelined requests go out in order, and a front that fails on a request closes
the connection without serving what was pipelined behind it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from paychan_runtime.front import FrontConnection, FrontContext, read_head
from paychan_runtime.metrics import Metrics


class _Front(FrontContext):
    def __init__(self) -> None:
        super().__init__(web.Server(_unexpected), Metrics("front_serve_test"))
        self.served_paths: list[bytes] = []

    def protocol(self) -> _Now:
        return _Now(self)


class _Now(FrontConnection[bytes]):
    """Answers `GET /n` at once from `serve`, `GET /later` from a callback of the next loop iteration, and
    breaks on `GET /bug`."""

    def __init__(self, ctx: _Front) -> None:
        super().__init__(ctx)
        self._ctx = ctx

    def take(self, head: bytes) -> tuple[bytes, int] | None:
        fields = read_head(head, b"GET")
        return None if fields is None else (fields.url, 0)

    def serve(self, taken: bytes, body: bytes) -> None:
        self._ctx.served_paths.append(taken)
        if taken == b"/bug":
            try:
                raise RuntimeError("a front's bug")
            except RuntimeError as exc:
                self.fail(exc)
            return
        answer = self._front.answer(200, "OK", taken, b"text/plain")
        if taken == b"/later":
            asyncio.get_running_loop().call_soon(self.deliver, answer)
        else:
            self.deliver(answer)


async def _unexpected(_request: web.BaseRequest) -> web.Response:
    return web.Response(status=500, text="the test sends only requests the front takes")


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def _read_one(reader: asyncio.StreamReader) -> bytes:
    """One 200 answer's body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    return await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))


async def _read_answers(reader: asyncio.StreamReader) -> list[bytes]:
    """Every answer's body until the server closes the connection."""
    bodies = []
    while True:
        try:
            bodies.append(await _read_one(reader))
        except asyncio.IncompleteReadError:
            return bodies


async def test_answers_given_at_once_and_later_go_out_in_order_and_a_bug_closes_the_connection(
        caplog: pytest.LogCaptureFixture) -> None:
    ctx = _Front()
    server = await asyncio.get_running_loop().create_server(ctx.protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        paths = [f"/n{i}" for i in range(3000)] + ["/later", "/n-after"]  # far beyond the recursion limit
        writer.write(b"".join(_get(p) for p in paths))
        await writer.drain()
        bodies = [await _read_one(reader) for _ in paths]
        assert bodies == [p.encode() for p in paths]
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ctx.served_paths.clear()
        with caplog.at_level(logging.ERROR, logger="paychan.front"):
            writer.write(_get("/n1") + _get("/bug") + _get("/n2") + _get("/n3"))
            await writer.drain()
            assert await _read_answers(reader) == [b"/n1"]  # then EOF: nothing after the bug is answered
        assert ctx.served_paths == [b"/n1", b"/bug"]
        assert any("fast front failed to answer" in r.getMessage() for r in caplog.records)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
