"""A fast front for an aiohttp app: one hot request kind served without the web framework, the rest by aiohttp.

Each connection starts with a `FrontConnection`, an asyncio protocol that frames requests itself (head up to
the blank line, then Content-Length bytes) and reads each head with httptools (`read_head`). A subclass
says which requests it serves (`take`: a plain HTTP/1.1 keep-alive request of the hot kind, else None) and
how it answers one (`respond`: the complete answer's bytes, which must be what the app itself would have
answered; or, overriding `serve`, a call of `deliver` with them from a callback, without a task). At the
first request it does not take, the connection is handed over, from that request's first byte on, to
aiohttp's own protocol for the rest of its life: unusual requests, other routes and every refusal of the
HTTP layer stay aiohttp's.

Requests on one connection are served one after the other, in order (pipelined requests wait in the
buffer, reading pauses beyond `MAX_BUFFERED` bytes); an answer is written only once `respond` returns (or
`deliver` is called). A connection that goes away while a request is served does not cancel it.

Used by PayChanServer's public port (`paychan_server.api.front`: the payment routes) and by ChanStore's
internal port (`chan_store.front`: binary `POST /payments`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from typing import Any, Generic, TypeVar, cast

import httptools
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from .logs import ACCESS_LOGGER, log_request
from .metrics import LatencyRecorder, Metrics, latency_recorder

__all__ = ["FrontConnection", "FrontContext", "Head", "HttpDate", "read_head"]

log = logging.getLogger("paychan.front")

MAX_HEAD = 8190  # aiohttp's own line limit: a longer head goes to aiohttp, which refuses it as today
MAX_BUFFERED = 1 << 20  # pipelined bytes held while a request is served; beyond, reading pauses
KEEPALIVE_SECONDS = 75.0  # aiohttp's keepalive_timeout
_REFUSED_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"})


class HttpDate:
    """The Date header, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def header(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._value


class Head:
    """The httptools callbacks of one request head: its target and the headers a front reads."""

    __slots__ = ("authorization", "complete", "content_length", "content_type", "refused", "url")

    def __init__(self) -> None:
        self.url = b""
        self.content_type: bytes | None = None
        self.content_length: bytes | None = None
        self.authorization: bytes | None = None
        self.refused = False  # a header the front leaves to aiohttp, or a repeated one it reads
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length":
            self.refused |= self.content_length is not None
            self.content_length = value
        elif lower == b"content-type":
            self.refused |= self.content_type is not None
            self.content_type = value
        elif lower == b"authorization":
            self.refused |= self.authorization is not None
            self.authorization = value
        elif lower in _REFUSED_HEADERS:
            self.refused = True

    def on_headers_complete(self) -> None:
        self.complete = True

    def length(self, max_body: int) -> int | None:
        """The Content-Length if it is plain digits within max_body; None otherwise (or when absent)."""
        text = self.content_length
        if text is None or not text.isdigit() or len(text) > 9:
            return None
        length = int(text)
        return length if length <= max_body else None


def read_head(head: bytes, method: bytes) -> Head | None:
    """The head's fields if it is a complete, plain HTTP/1.1 keep-alive `method` request; None otherwise."""
    callbacks = Head()
    parser = httptools.HttpRequestParser(callbacks)
    try:
        parser.feed_data(head)
    except httptools.HttpParserError:
        return None
    if (not callbacks.complete or callbacks.refused or parser.get_method() != method
            or parser.get_http_version() != "1.1" or not parser.should_keep_alive()):
        return None
    return callbacks


class FrontContext:
    """What every connection of one listening socket shares: aiohttp's server (for hand-overs), the fixed
    answer headers, the open connections (for shutdown)."""

    def __init__(self, server: web.Server, metrics: Metrics, fixed_headers: dict[str, str] | None = None) -> None:
        self.server = server
        self._observe: LatencyRecorder = latency_recorder(metrics)
        self._access = logging.getLogger(ACCESS_LOGGER)
        lines = [f"{name}: {value}\r\n" for name, value in (fixed_headers or {}).items()]
        self.fixed = ("".join(lines) + f"Server: {SERVER_SOFTWARE}\r\n").encode("latin-1")
        self.date = HttpDate()
        self.connections: set[FrontConnection[Any]] = set()
        self._drained = asyncio.Event()

    def answer(self, status: int, reason: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
        """One complete HTTP/1.1 answer (the headers aiohttp writes for a `web.Response` with a body)."""
        return b"".join((
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n" % (status, reason.encode("latin-1"), content_type),
            self.fixed, b"Content-Length: %d\r\n" % len(body), self.date.header(), b"\r\n", body))

    def protocol(self) -> asyncio.Protocol:
        """A new connection's protocol (the listening server's factory)."""
        raise NotImplementedError

    def served(self, method: str, route: str, path: str, status: int, started: float, peer: str | None) -> None:
        """Record one answered request as the app's middlewares would: its latency, and the access-log line
        at DEBUG (the routes a front serves are the quiet ones)."""
        seconds = time.perf_counter() - started
        self._observe(method, route, status, seconds)
        if self._access.isEnabledFor(logging.DEBUG):
            log_request(self._access, logging.DEBUG, method, route, path, status, seconds, peer)

    async def shutdown(self) -> None:
        """Close idle connections now and the busy ones right after their answer; the caller bounds the wait
        (those still open then are dropped)."""
        for conn in list(self.connections):
            conn.close_when_idle()
        try:
            while self.connections:
                self._drained.clear()
                await self._drained.wait()
        finally:
            for conn in list(self.connections):
                conn.abort()

    def forget(self, conn: FrontConnection[Any]) -> None:
        """A connection closed or handed over."""
        self.connections.discard(conn)
        if not self.connections:
            self._drained.set()


Taken = TypeVar("Taken")


class FrontConnection(asyncio.Protocol, Generic[Taken]):
    """One connection (see the module docstring); subclasses define `take` and `respond`."""

    def __init__(self, ctx: FrontContext) -> None:
        self._front = ctx
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy = False
        self._paused = False
        self._reading_paused = False
        self._eof = False
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_answer = 0.0  # loop time of the last answer written (or of the connection's start)
        self.peer: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_next = False

    # -- what a front serves --------------------------------------------------------------------------
    def take(self, head: bytes) -> tuple[Taken, int] | None:
        """(what `respond` needs, the body's length) for a request this front serves; None hands over."""
        raise NotImplementedError

    async def respond(self, taken: Taken, body: bytes) -> bytes:
        """The complete answer to one taken request (it must not raise)."""
        raise NotImplementedError

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self._front.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) and peer else None
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next()
        elif len(self._buffer) > MAX_BUFFERED and self._transport is not None and not self._reading_paused:
            self._transport.pause_reading()  # a peer pipelining faster than its requests are served
            self._reading_paused = True

    def eof_received(self) -> bool:
        self._eof = True
        if not self._busy:
            self._next()
        return True  # keep the transport open until an answer in progress is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._front.forget(self)
        if self._timer is not None:
            self._timer.cancel()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if not self._busy:
            self._next()

    # -- shutdown -------------------------------------------------------------------------------------
    def close_when_idle(self) -> None:
        """Close now if no answer is in progress, else right after it."""
        self._closing = True
        if not self._busy and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection."""
        if self._transport is not None:
            self._transport.abort()

    # -- requests -------------------------------------------------------------------------------------
    def _arm_timer(self) -> None:
        """The keep-alive timer, armed once: it closes the connection KEEPALIVE_SECONDS after its last answer
        (an answer only notes its time, which costs less than cancelling and re-creating a timer per answer)."""
        self._last_answer = self._loop.time()
        self._timer = self._loop.call_at(self._last_answer + KEEPALIVE_SECONDS, self._idle)

    def _idle(self) -> None:
        self._timer = None
        if self._transport is None:
            return
        now = self._loop.time()
        due = self._last_answer + KEEPALIVE_SECONDS
        if self._busy or due > now:  # answering now, or answered since the timer was set: check again later
            self._timer = self._loop.call_at(max(due, now + 1.0), self._idle)
            return
        self._transport.close()

    def _next(self) -> None:
        """Serve the buffered requests this front takes, one after the other (a loop, not a recursion: an
        answer given at once comes back here through `deliver`); hand the connection over at anything else."""
        if self._in_next:
            return  # `deliver` from within `serve`: the loop below goes on
        self._in_next = True
        try:
            while not self._busy and self._start_next():
                pass
        finally:
            self._in_next = False

    def _start_next(self) -> bool:
        """Start serving the next buffered request; False when there is none (yet) or the connection is
        handed over, closed or paused."""
        transport = self._transport
        if transport is None or self._paused:
            return False
        if self._closing:
            transport.close()
            return False
        buffer = self._buffer
        if self._reading_paused and len(buffer) <= MAX_BUFFERED:
            self._reading_paused = False
            transport.resume_reading()
        if not buffer:
            if self._eof:
                transport.close()
            return False
        end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(buffer) > MAX_HEAD or self._eof:
                self._hand_over()
            return False
        head_size = end + 4
        taken = self.take(bytes(buffer[:head_size]))
        if taken is None:
            self._hand_over()
            return False
        request, length = taken
        if len(buffer) < head_size + length:
            if self._eof:
                self._hand_over()
            return False  # the body is on its way
        body = bytes(buffer[head_size:head_size + length])
        del buffer[:head_size + length]
        self._busy = True
        self.serve(request, body)
        return True

    def serve(self, taken: Taken, body: bytes) -> None:
        """Answer one taken request: call `deliver` with its answer, now or later, exactly once (or `fail`).
        By default a task awaits `respond`; a front whose answers come from callbacks overrides this and
        spares the task and the loop iterations it costs."""
        task = self._loop.create_task(self._serve(taken, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, request: Taken, body: bytes) -> None:
        try:
            answer = await self.respond(request, body)
        except Exception as exc:  # noqa: BLE001 - a front's bug: never leave the connection hanging, never answer half
            self.fail(exc)
            return
        self.deliver(answer)

    def deliver(self, answer: bytes) -> None:
        """Write the answer to the request being served, then serve the next one."""
        self._busy = False
        transport = self._transport
        if transport is not None:
            transport.write(answer)
            self._last_answer = self._loop.time()
            self._next()

    def fail(self, exc: BaseException) -> None:
        """The request being served cannot be answered (`exc`: a front's bug, logged with its traceback):
        close the connection rather than leave it hanging or answer half."""
        log.error("fast front failed to answer; closing the connection", exc_info=exc)
        self._busy = False
        self._closing = True  # nothing more is served on it, even from what is already buffered
        if self._transport is not None:
            self._transport.close()

    def _hand_over(self) -> None:
        """Give the connection, from the current request on, to aiohttp's protocol."""
        transport = self._transport
        if transport is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._front.forget(self)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        handler: Any = self._front.server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        self._transport = None
        if self._buffer:
            handler.data_received(bytes(self._buffer))
            self._buffer.clear()
        if self._eof:
            handler.eof_received()
