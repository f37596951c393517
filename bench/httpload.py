"""A cheap HTTP/1.1 keep-alive load engine for the benchmarks (raw asyncio protocol, pre-built requests).

The load generator shares the machine's cores with the services it measures, so it does as little as
possible per request: every request is pre-serialized to bytes before the timed phase, a connection is
the services' own internal transport (`paychan_runtime.http1`: an `asyncio.Protocol` writing those
bytes, httptools parsing the answer), and answers are checked only after the timed phase. A lane with a
connection of its own is driven by callbacks (`Http1Connection.send`): the next request is written from
the callback that read the answer before it, or from a timer at its scheduled time, with no task, future
or coroutine per request. aiohttp's client costs several times more CPU per request.

Shape (the original benchmark's): T "lanes" (channels), each sending its requests one after the other on
a keep-alive connection, all lanes concurrent. With `rate` set, an open-loop scheduler assigns request k
of lane c the start time `start + (k*T + c) / rate` (the lanes interleave evenly at `rate` requests per
second overall); a request's latency is measured from its scheduled time, so a slow answer that delays the
next request of its lane is charged to that request too (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from paychan_runtime.http1 import Answer, Http1Connection, build_request, open_connection

__all__ = ["Answer", "Http1Connection", "LaneResult", "build_request", "connect", "run_lanes"]


async def connect(host: str, port: int) -> Http1Connection:
    """Open one keep-alive connection."""
    return await open_connection(host, port)


@dataclass
class LaneResult:
    """What one lane saw: per request, its answer, latency (s) and completion time (perf_counter)."""

    answers: list[Answer | None] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, answer: Answer | None, began: float, error: str | None = None) -> None:
        """One request done now: its answer (None on an error, then told), latency from `began`."""
        now = time.perf_counter()
        if error is not None:
            self.errors.append(error)
        self.answers.append(answer)
        self.latencies.append(now - began)
        self.done_at.append(now)


def _scheduled(start: float, k: int, lanes: int, index: int, rate: float) -> float:
    """Open loop: the start time of request k of lane `index` (of `lanes`) at `rate` requests/s overall."""
    return start + (k * lanes + index) / rate


async def _lane(conn: Http1Connection, lock: asyncio.Lock, requests: Sequence[bytes], index: int, lanes: int,
                rate: float | None, start: float, out: LaneResult) -> None:
    clock = time.perf_counter
    for k, raw in enumerate(requests):
        if rate is not None:
            began = _scheduled(start, k, lanes, index, rate)
            delay = began - clock()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            began = clock()
        try:
            async with lock:  # lanes share the connection
                answer = await conn.exchange(raw)
        except (OSError, ConnectionError) as exc:
            out.record(None, began, f"request {k}: {exc!r}")
            continue
        out.record(answer, began)


class _Driver:
    """One lane on a connection of its own, driven by the connection's callbacks (the same schedule and the
    same records as `_lane`: latency from the request's start, or from its scheduled time with `rate`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Http1Connection, requests: Sequence[bytes],
                 index: int, lanes: int, rate: float | None, start: float, out: LaneResult) -> None:
        self._loop, self._conn, self._requests, self._out = loop, conn, requests, out
        self._index, self._lanes, self._rate, self._start = index, lanes, rate, start
        self._began = 0.0
        self.done: asyncio.Future[None] = loop.create_future()

    def next(self) -> None:
        """Send the lane's next request (now, or at its scheduled time); resolve `done` after the last."""
        clock = time.perf_counter
        while (k := len(self._out.answers)) < len(self._requests):
            if self._rate is not None:
                began = _scheduled(self._start, k, self._lanes, self._index, self._rate)
                delay = began - clock()
                if delay > 0:
                    self._loop.call_later(delay, self._send_at, began)
                    return
            else:
                began = clock()
            if self._send(began):
                return
        if not self.done.done():
            self.done.set_result(None)

    def _send_at(self, began: float) -> None:
        if not self._send(began):
            self.next()

    def _send(self, began: float) -> bool:
        """Send the next request; False when the connection refused it at once (recorded as an error)."""
        self._began = began
        k = len(self._out.answers)
        try:
            self._conn.send(self._requests[k], self._answered)
        except (OSError, ConnectionError) as exc:
            self._out.record(None, began, f"request {k}: {exc!r}")
            return False
        return True

    def _answered(self, outcome: Answer | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self._out.record(None, self._began, f"request {len(self._out.answers)}: {outcome!r}")
        else:
            self._out.record(outcome, self._began)
        self.next()


async def run_lanes(conns: Sequence[Http1Connection], lanes: Sequence[Sequence[bytes]], rate: float | None = None,
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
    if len(lanes) <= len(conns):  # a connection per lane: callbacks
        loop = asyncio.get_running_loop()
        drivers = [_Driver(loop, conns[i], reqs, first_index + i, total, rate, began, results[i])
                   for i, reqs in enumerate(lanes)]
        for driver in drivers:
            driver.next()
        await asyncio.gather(*(driver.done for driver in drivers))
    else:  # lanes share connections: one exchange at a time on each
        locks = [asyncio.Lock() for _ in conns]
        await asyncio.gather(*(_lane(conns[i % len(conns)], locks[i % len(conns)], reqs, first_index + i, total,
                                     rate, began, results[i]) for i, reqs in enumerate(lanes)))
    return began, time.perf_counter(), results
