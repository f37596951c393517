"""The internal HTTP/1.1 client transport: keep-alive connections whose answers httptools (llhttp) parses.

Used by every internal client (`paychan_runtime.client.InternalClient`, hence ChanStore's and the
SigningService's) and by the benchmark's load generator (`bench/httpload.py`). A connection carries one
exchange at a time (no pipelining), awaited (`exchange`) or handed to a callback (`send`); requests are
bytes built by `build_request`. aiohttp's client costs about 100 us of CPU a request, which on the hot path
is paid for every one or two payments; this costs a few. Measured against a hand parser and h11 before it
was chosen: bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping

import httptools

__all__ = ["Answer", "Http1Connection", "build_request", "open_connection"]

Answer = tuple[int, bytes]
"""(status, body) of one answer."""

MAX_BODY = 1 << 26
"""Largest answer body accepted (64 MiB); a larger one fails the exchange and closes the connection."""


def build_request(method: str, target: str, host: str, body: bytes | None = None,
                  headers: Mapping[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request (Content-Length always set)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body) if body is not None else 0}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Http1Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection, one exchange at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._on_answer: Callable[[Answer | BaseException], None] | None = None  # `send`'s, instead of a waiter
        self._body: list[bytes] = []
        self._size = 0
        self._lost: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once: each lookup is a getpid() call
        self.reusable = True
        """False once the connection is closed, broken, or the peer asked to close it."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self._loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None and self._on_answer is None:  # nothing asked for: a misbehaving peer
            self._fail(ConnectionError("unsolicited data from the peer"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._lost = exc or ConnectionResetError("connection closed by the peer")
        self._fail(self._lost)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._waiter is None and self._on_answer is None:
            # bytes beyond the answer asked for: fails the feed, closes the connection
            raise ConnectionError("unsolicited answer from the peer")
        self._body = []
        self._size = 0

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            raise ConnectionError("answer body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        on_answer, self._on_answer = self._on_answer, None
        if (waiter is None and on_answer is None) or not self._parser.should_keep_alive():
            self.reusable = False  # an answer nobody asked for, or the peer closes after this one
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        answer = (self._parser.get_status_code(), body)
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
        if not self.reusable:
            self.close()
        if on_answer is not None:
            on_answer(answer)  # last: it may send the next request

    # API

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        on_answer, self._on_answer = self._on_answer, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()
        if on_answer is not None:
            on_answer(exc)

    async def exchange(self, request: bytes, timeout: float | None = None) -> Answer:  # noqa: ASYNC109 - one timer costs less than asyncio.timeout per exchange
        """Send one request, return (status, body); ConnectionError if the connection cannot carry it.
        With `timeout` (seconds), TimeoutError when no complete answer came by then; the connection is then
        closed (one timer: cheaper than `asyncio.timeout` on the hot path)."""
        loop, transport = self._usable()
        waiter: asyncio.Future[Answer] = loop.create_future()
        self._waiter = waiter
        transport.write(request)
        if timeout is None:
            return await waiter
        timer = loop.call_later(timeout, self._expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def send(self, request: bytes, on_answer: Callable[[Answer | BaseException], None]) -> None:
        """`exchange` without a future, for a caller driven by callbacks (the benchmark's load generator):
        send one request; `on_answer` gets (status, body), or the exception that ended the exchange, from
        the loop's callback that read it, after the connection's own bookkeeping, so it may send the next
        request (it must not raise). ConnectionError at once if the connection cannot carry it."""
        _, transport = self._usable()
        self._on_answer = on_answer
        transport.write(request)

    def _usable(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Transport]:
        """The connection's loop and transport, if it can carry a new exchange now; else ConnectionError."""
        if self._lost is not None:
            raise ConnectionError(f"connection lost: {self._lost!r}")
        loop, transport = self._loop, self._transport
        if not self.reusable or transport is None or self._waiter is not None or self._on_answer is not None \
                or loop is None:
            raise ConnectionError("connection not usable")
        return loop, transport

    def _expire(self, waiter: asyncio.Future[Answer]) -> None:
        if self._waiter is waiter:
            self._fail(TimeoutError("no answer in time"))

    def close(self) -> None:
        """Close the connection (an exchange under way fails)."""
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


async def open_connection(host: str, port: int, unix_path: str | None = None) -> Http1Connection:
    """Open one keep-alive connection over TCP, or over the unix socket `unix_path` when given."""
    loop = asyncio.get_running_loop()
    if unix_path:
        _, conn = await loop.create_unix_connection(Http1Connection, unix_path)
    else:
        _, conn = await loop.create_connection(Http1Connection, host, port)
    return conn
