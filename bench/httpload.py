"""A cheap HTTP/1.1 keep-alive load engine for the benchmarks (raw asyncio protocol, pre-built requests).

The load generator shares the machine's cores with the services it measures, so it does as little as
possible per request: every request is pre-serialized to bytes before the timed phase, a connection is an
`asyncio.Protocol` that writes those bytes and cuts the answer out of its buffer by `Content-Length`, and
answers are checked only after the timed phase. aiohttp's client costs several times more CPU per request.

Shape (the original benchmark's): T "lanes" (channels), each sending its requests one after the other on
a keep-alive connection, all lanes concurrent. With `rate` set, an open-loop scheduler assigns request k
of lane c the start time `start + (k*T + c) / rate` (the lanes interleave evenly at `rate` requests per
second overall); a request's latency is measured from its scheduled time, so a slow answer that delays the
next request of its lane is charged to that request too (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Answer", "Connection", "LaneResult", "build_request", "connect", "run_lanes"]

Answer = tuple[int, bytes]  # (status, body)


def build_request(method: str, path: str, host: str, body: bytes | None = None,
                  content_type: str = "application/json") -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if body is not None:
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    else:
        head.append("Content-Length: 0")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: BaseException | None = None
        self.lock = asyncio.Lock()  # for lanes that share a connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is not None:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("connection closed by the server")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)
            self._waiter = None

    def _parse(self) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            waiter, self._waiter = self._waiter, None
            assert waiter is not None
            waiter.set_exception(ConnectionError("answer without Content-Length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            return
        status = int(head[9:12])
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        waiter, self._waiter = self._waiter, None
        assert waiter is not None
        waiter.set_result((status, body))

    async def request(self, raw: bytes) -> Answer:
        """Send one pre-built request and return (status, body)."""
        if self._lost is not None:
            raise ConnectionError(f"connection lost: {self._lost!r}")
        assert self._transport is not None and self._waiter is None
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._transport.write(raw)
        if self._buf:
            self._parse()
        return await waiter

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()


async def connect(host: str, port: int) -> Connection:
    """Open one keep-alive connection."""
    _, proto = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return proto


@dataclass
class LaneResult:
    """What one lane saw: per request, its answer, latency (s) and completion time (perf_counter)."""

    answers: list[Answer | None] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _lane(conn: Connection, requests: Sequence[bytes], index: int, lanes: int, rate: float | None,
                start: float, out: LaneResult) -> None:
    clock = time.perf_counter
    answers, latencies, done_at = out.answers, out.latencies, out.done_at
    for k, raw in enumerate(requests):
        if rate is not None:
            began = start + (k * lanes + index) / rate
            delay = began - clock()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            began = clock()
        try:
            async with conn.lock:
                answer = await conn.request(raw)
        except (OSError, ConnectionError) as exc:
            out.errors.append(f"request {k}: {exc!r}")
            answers.append(None)
            now = clock()
            latencies.append(now - began)
            done_at.append(now)
            continue
        now = clock()
        answers.append(answer)
        latencies.append(now - began)
        done_at.append(now)


async def run_lanes(conns: Sequence[Connection], lanes: Sequence[Sequence[bytes]], rate: float | None = None,
                    *, start: float | None = None, first_index: int = 0, total_lanes: int | None = None
                    ) -> tuple[float, float, list[LaneResult]]:
    """Run every lane concurrently (lane i on conns[i % len(conns)]); return (start, end, results).

    `start` (a `time.perf_counter()` value, shared by several generator processes: it is CLOCK_MONOTONIC)
    defaults to 10 ms from now; lane i of this call is lane `first_index + i` of `total_lanes` overall.
    """
    results = [LaneResult() for _ in lanes]
    if start is None:
        start = time.perf_counter() + 0.01
    total = len(lanes) if total_lanes is None else total_lanes
    delay = start - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    began = start if rate is not None else time.perf_counter()
    await asyncio.gather(*(_lane(conns[i % len(conns)], reqs, first_index + i, total, rate, began, results[i])
                           for i, reqs in enumerate(lanes)))
    return began, time.perf_counter(), results
