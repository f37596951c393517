"""The fast front of the public port: payments served without the web framework, everything else by aiohttp.

Each connection starts with `FastFront`, an asyncio protocol that frames requests itself (head up to the
blank line, then Content-Length bytes) and parses each one with httptools. A request that is plainly a
payment (`PUT` on the v1, v2-seed or v2.3.0 payment route, HTTP/1.1 keep-alive, for v2 a JSON body with a
Content-Length within `listen.max_body_bytes`, no Transfer-Encoding, Expect, Upgrade, Content-Encoding,
no percent-escape or '+' in the target) is answered here through the same functions as the aiohttp
handlers (`v1.v1_payment`, `v2.seed_path`, `v2.seed_payment`, `v2.v23_payment`), the same error edge
(`middleware.error_answer`), the same CORS headers, latency histogram and access log. At the first
request that is anything else the connection is handed over, from that request's first byte on, to
aiohttp's own protocol for the rest of its life: unusual requests, other routes and every refusal of the
HTTP layer stay aiohttp's.

Requests on one connection are served one after the other, in order (pipelined requests wait in the
buffer); an answer is written only once its payment is durably stored, as in the aiohttp handler. A
connection that goes away while its payment is being stored does not cancel it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, cast

import httptools
import orjson
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from paychan_common.errors import PaychanError
from paychan_common.messages import PaymentResult, result_json, result_json_v1
from paychan_common.state import Family
from paychan_common.wire_v2 import parse_v2_payment
from paychan_runtime.http import parse_json
from paychan_runtime.logs import ACCESS_LOGGER, log_request
from paychan_runtime.metrics import LatencyRecorder, latency_recorder

from ..domain.service import PayChanService
from ..operator.metrics import METRICS
from .keys import MAX_BODY, SERVICE
from .middleware import CORS_HEADERS, error_answer, http_exception_answer, unexpected_answer
from .params import parse_outpoint, parse_secret, required
from .routes import SEED, V1_CHANNEL, V23
from .v1 import v1_payment
from .v2 import check_json_type, seed_path, seed_payment, v23_payment

__all__ = ["FastFront", "FrontContext", "front"]

MAX_HEAD = 8190  # aiohttp's own line limit: a longer head goes to aiohttp, which refuses it as today
MAX_BUFFERED = 1 << 20  # pipelined bytes held while a payment is stored; beyond, reading pauses
KEEPALIVE_SECONDS = 75.0  # aiohttp's keepalive_timeout
_REFUSED_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"})


def _fixed_headers() -> bytes:
    lines = [f"{name}: {value}\r\n" for name, value in CORS_HEADERS.items()]
    return ("".join(lines) + f"Server: {SERVER_SOFTWARE}\r\n").encode("latin-1")


class _Date:
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


class FrontContext:
    """What every connection of one worker shares: the app (its service, once ready), metrics, the log."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        self.app = app
        self.server = server
        self.max_body = app[MAX_BODY]
        self.observe: LatencyRecorder = latency_recorder(app[METRICS])
        self.access = logging.getLogger(ACCESS_LOGGER)
        self.fixed = _fixed_headers()
        self.date = _Date()
        self.connections: set[FastFront] = set()
        self._drained = asyncio.Event()

    @property
    def service(self) -> PayChanService | None:
        """The payment service once the app's resources are up."""
        return self.app.get(SERVICE)

    def answer(self, status: int, reason: str, body: bytes) -> bytes:
        """One complete HTTP/1.1 answer with a JSON body."""
        return b"".join((
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (status, reason.encode("latin-1")),
            self.fixed, b"Content-Length: %d\r\n" % len(body), self.date.header(), b"\r\n", body))

    def protocol(self) -> FastFront:
        """A new connection's protocol (the listening server's factory)."""
        return FastFront(self)

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

    def forget(self, conn: FastFront) -> None:
        """A connection closed or handed over."""
        self.connections.discard(conn)
        if not self.connections:
            self._drained.set()


class _Head:
    """The httptools callbacks of one request head."""

    __slots__ = ("complete", "content_length", "content_type", "refused", "url")

    def __init__(self) -> None:
        self.url = b""
        self.content_type: bytes | None = None
        self.content_length: bytes | None = None
        self.refused = False  # a header this front leaves to aiohttp, or a repeated one it reads
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
        elif lower in _REFUSED_HEADERS:
            self.refused = True

    def on_headers_complete(self) -> None:
        self.complete = True


Route = tuple[str, list[str], str]  # (route template, path segments, query)
V1_PAY = V1_CHANNEL + "/pay"
_V1_ROUTES = (V1_CHANNEL, V1_PAY)
_FAMILY = {V1_CHANNEL: Family.V1, V1_PAY: Family.V1, SEED: Family.V2_SEED, V23: Family.V2_3}


def _payment_route(url: bytes) -> Route | None:
    """The payment route a request target names exactly (no escapes), with its segments and query."""
    if b"%" in url or b"#" in url or b"+" in url or not url.startswith((b"/v2/channels/", b"/v1/channels/")):
        return None
    try:
        text = url.decode("ascii")
    except UnicodeDecodeError:
        return None
    path, _, query = text.partition("?")
    parts = path.split("/")
    if any(not part for part in parts[1:]):
        return None
    if parts[1] == "v1":
        if len(parts) == 5 and parts[3] != "new":
            return V1_CHANNEL, parts, query
        if len(parts) == 6 and parts[5] == "pay":
            return V1_PAY, parts, query
        return None
    if len(parts) == 7:
        return SEED, parts, query
    if len(parts) == 5:
        return V23, parts, query
    return None


def _query_value(query: str, wanted: str) -> str | None:
    """The first value of `wanted` in a query without escapes or '+' (as aiohttp's `request.query.get`)."""
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if name == wanted:
            return value if eq else ""
    return None


class FastFront(asyncio.Protocol):
    """One public connection (see the module docstring)."""

    def __init__(self, ctx: FrontContext) -> None:
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy = False
        self._paused = False
        self._reading_paused = False
        self._eof = False
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._peer: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self._ctx.connections.add(self)
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) and peer else None
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next()
        elif len(self._buffer) > MAX_BUFFERED and self._transport is not None and not self._reading_paused:
            self._transport.pause_reading()  # a client pipelining faster than its payments are stored
            self._reading_paused = True

    def eof_received(self) -> bool:
        self._eof = True
        if not self._busy:
            self._next()
        return True  # keep the transport open until an answer in progress is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._ctx.forget(self)
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
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(KEEPALIVE_SECONDS, self._idle)

    def _idle(self) -> None:
        if not self._busy and self._transport is not None:
            self._transport.close()

    def _next(self) -> None:
        """Serve the next buffered request if it is a payment; hand the connection over at anything else."""
        transport = self._transport
        if transport is None or self._paused:
            return
        if self._closing:
            transport.close()
            return
        buffer = self._buffer
        if self._reading_paused and len(buffer) <= MAX_BUFFERED:
            self._reading_paused = False
            transport.resume_reading()
        if not buffer:
            if self._eof:
                transport.close()
            return
        end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(buffer) > MAX_HEAD or self._eof:
                self._hand_over()
            return
        head_size = end + 4
        parsed = self._parse_head(bytes(buffer[:head_size]))
        if parsed is None:
            self._hand_over()
            return
        route, length, content_type = parsed
        if len(buffer) < head_size + length:
            if self._eof:
                self._hand_over()
            return  # the body is on its way
        body = bytes(buffer[head_size:head_size + length])
        del buffer[:head_size + length]
        self._busy = True
        task = self._loop.create_task(self._serve(route, content_type, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _parse_head(self, head: bytes) -> tuple[Route, int, str] | None:
        """(route, content length, media type) of a plain payment request; None for anything else."""
        callbacks = _Head()
        parser = httptools.HttpRequestParser(callbacks)
        try:
            parser.feed_data(head)
        except httptools.HttpParserError:
            return None
        if (not callbacks.complete or callbacks.refused or parser.get_method() != b"PUT"
                or parser.get_http_version() != "1.1" or not parser.should_keep_alive()):
            return None
        route = _payment_route(callbacks.url)
        if route is None or self._ctx.service is None:
            return None
        length_text = callbacks.content_length
        if route[0] in _V1_ROUTES and length_text is None:
            return route, 0, ""  # a v1 payment travels in the query; it has no body
        if length_text is None or not length_text.isdigit() or len(length_text) > 9:
            return None
        length = int(length_text)
        if length > self._ctx.max_body:
            return None
        if route[0] in _V1_ROUTES:
            return route, length, ""  # the v1 handler never reads a body
        raw_type = callbacks.content_type
        media = raw_type.split(b";", 1)[0].strip() if raw_type is not None else b""
        if media != b"application/json":
            return None  # aiohttp answers 415, or reads a media type spelled otherwise
        return route, length, media.decode("ascii")

    async def _serve(self, route: Route, content_type: str, body: bytes) -> None:
        start = time.perf_counter()
        template, parts, query = route
        family = _FAMILY[template]
        path = route_path(parts)
        try:
            result = await self._pay(template, parts, query, content_type, body)
            encoded = result_json_v1(result) if family is Family.V1 else result_json(result)
            answer = self._ctx.answer(200, "OK", orjson.dumps(encoded))
            status = 200
        except PaychanError as err:
            status, reason, err_body = error_answer(err, family, "PUT", path)[0]
            answer = self._ctx.answer(status, reason, orjson.dumps(err_body))
        except web.HTTPException as exc:
            status, reason, err_body = http_exception_answer(exc)
            answer = self._ctx.answer(status, reason, orjson.dumps(err_body))
        except Exception:  # noqa: BLE001 - logged with its traceback, answered generically as aiohttp's edge does
            status, reason, err_body = unexpected_answer(family, "PUT", path)
            answer = self._ctx.answer(status, reason, orjson.dumps(err_body))
        ctx = self._ctx
        seconds = time.perf_counter() - start
        ctx.observe("PUT", template, status, seconds)
        if ctx.access.isEnabledFor(logging.DEBUG):  # payment routes are quiet: DEBUG
            log_request(ctx.access, logging.DEBUG, "PUT", template, path, status, seconds, self._peer)
        self._busy = False
        transport = self._transport
        if transport is not None:
            transport.write(answer)
            self._arm_timer()
            self._next()

    async def _pay(self, template: str, parts: list[str], query: str, content_type: str,
                   body: bytes) -> PaymentResult:
        """The same steps, in the same order, as `v1.pay`, `v2.seed_pay` and `v2.v23_pay`."""
        svc = self._ctx.service
        assert svc is not None  # checked before the request was taken
        if template in _V1_ROUTES:
            payload = _query_value(query, "payment")
            return await v1_payment(svc, parts[3], parts[4], required({} if payload is None else {"payment": payload},
                                                                     "payment"))
        if template == SEED:
            where = seed_path(svc, parts[3], parts[4], parts[5], parts[6])
            check_json_type(content_type)
            return await seed_payment(svc, where, parse_v2_payment(parse_json(body)))
        outpoint, secret = parse_outpoint(parts[3], parts[4]), parse_secret(_query_value(query, "secret"))
        check_json_type(content_type)
        return await v23_payment(svc, outpoint, secret, parse_v2_payment(parse_json(body)))

    def _hand_over(self) -> None:
        """Give the connection, from the current request on, to aiohttp's protocol."""
        transport = self._transport
        if transport is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._ctx.forget(self)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        handler: Any = self._ctx.server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        self._transport = None
        if self._buffer:
            handler.data_received(bytes(self._buffer))
            self._buffer.clear()
        if self._eof:
            handler.eof_received()


def route_path(parts: list[str]) -> str:
    """The request's path (for the log lines), rebuilt from its segments."""
    return "/".join(parts)


def front(app: web.Application) -> Callable[[web.Server], FrontContext]:
    """What `paychan_runtime.serve.serve_app(front=…)` takes: given aiohttp's server, the front."""
    return lambda server: FrontContext(app, server)
