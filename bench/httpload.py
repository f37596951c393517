"""A cheap HTTP/1.1 keep-alive load engine for the benchmarks (raw asyncio protocol, pre-built requests).

The load generator shares the machine's cores with the services it measures, so it does as little as
possible per request: every request is pre-serialized to bytes before the timed phase, a connection is
the services' own internal transport (`paychan_runtime.http1`: an `asyncio.Protocol` writing those
bytes, httptools parsing the answer), and answers are checked only after the timed phase. aiohttp's
client costs several times more CPU per request.

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


async def _lane(conn: Http1Connection, lock: asyncio.Lock | None, requests: Sequence[bytes], index: int, lanes: int,
                rate: float | None, start: float, out: LaneResult) -> None:
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
            if lock is None:  # the lane's own connection
                answer = await conn.exchange(raw)
            else:
                async with lock:  # lanes share the connection
                    answer = await conn.exchange(raw)
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
    shared = len(lanes) > len(conns)
    locks = [asyncio.Lock() if shared else None for _ in conns]
    await asyncio.gather(*(_lane(conns[i % len(conns)], locks[i % len(conns)], reqs, first_index + i, total, rate,
                                 began, results[i]) for i, reqs in enumerate(lanes)))
    return began, time.perf_counter(), results
