"""Prometheus metrics shared by the three services: one registry per app (no process-global state), the
`/metrics` handler, and a request-latency middleware labelled by the route's path template.

Several PayChanServer workers (SO_REUSEPORT) share their counters and histograms through
prometheus-client's multiprocess mode: the supervisor sets `PROMETHEUS_MULTIPROC_DIR` before the workers
start (see `enable_multiprocess`), and a scrape then merges every worker's files. Values computed at
scrape time (gauges read from ChanStore) are custom collectors: they are added to the scrape either way.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .http import Handler

__all__ = [
    "LATENCY_BUCKETS",
    "MULTIPROC_ENV",
    "DeferredUpdates",
    "LatencyRecorder",
    "Metrics",
    "enable_multiprocess",
    "latency_middleware",
    "latency_recorder",
    "metrics_handler",
    "observed",
    "route_template",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


def multiprocess_dir() -> str | None:
    """The multiprocess directory when several processes share their metrics, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


def enable_multiprocess(prefix: str = "paychan-metrics-") -> str | None:
    """Create a fresh directory and name it in the environment (before any worker starts); return it for
    removal at exit, or None when the environment already names one (the operator's, kept)."""
    if multiprocess_dir() is not None:
        return None
    path = tempfile.mkdtemp(prefix=prefix)
    os.environ[MULTIPROC_ENV] = path
    return path


def route_template(request: web.Request) -> str:
    """The matched route's canonical path template (`/v1/channels/{txid}/{vout}`), never the raw URL."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


class DeferredUpdates:
    """Counter increments and histogram observations summed in plain Python and applied to the Prometheus
    values at most once per `interval` (and before every scrape): in multiprocess mode each update of a
    value is an mmap write behind a pid check, several per payment on the hot path. A scrape of another
    worker's values is then at most `interval` seconds behind."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._counts: dict[Any, float] = {}  # counter child -> pending increment
        self._observed: dict[Any, list[float]] = {}  # histogram child -> [sum, count per bucket...]
        self._timer: asyncio.TimerHandle | None = None

    def inc(self, counter: Any, amount: float = 1.0) -> None:
        """counter.inc(amount), deferred."""
        self._counts[counter] = self._counts.get(counter, 0.0) + amount
        if self._timer is None:
            self._arm()

    def observe(self, histogram: Any, amount: float) -> None:
        """histogram.observe(amount), deferred (its bucket found now)."""
        pending = self._observed.get(histogram)
        bounds = histogram._upper_bounds
        if pending is None:
            pending = self._observed[histogram] = [0.0] * (len(bounds) + 1)
        pending[0] += amount
        for i, bound in enumerate(bounds):
            if amount <= bound:
                pending[i + 1] += 1
                break
        if self._timer is None:
            self._arm()

    def flush(self) -> None:
        """Apply every pending update now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for counter, amount in counts.items():
            counter.inc(amount)
        for histogram, pending in observed.items():
            # prometheus-client's Histogram.observe, per bucket in bulk (its value objects: _sum, _buckets)
            histogram._sum.inc(pending[0])
            for bucket, count in zip(histogram._buckets, pending[1:], strict=True):
                if count:
                    bucket.inc(count)

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script, a test): apply at once
            self.flush()
            return
        self._timer = loop.call_later(self.interval, self.flush)


class Metrics:
    """One service's metrics: a registry, the request-latency histogram, and scrape-time collectors."""

    def __init__(self, namespace: str = "paychan") -> None:
        self.deferred = DeferredUpdates()
        self.registry = CollectorRegistry(auto_describe=True)
        self.namespace = namespace
        self._live: list[Collector] = []
        self.request_latency = Histogram(
            "http_request_duration_seconds", "Time to answer an HTTP request, by method, route template and status",
            ["method", "route", "status"], namespace=namespace, buckets=LATENCY_BUCKETS, registry=self.registry)
        if multiprocess_dir() is None:
            ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes

    def add_collector(self, collector: Collector) -> None:
        """A collector computed at scrape time (merged into the scrape in multiprocess mode too)."""
        self._live.append(collector)
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text exposition of every metric (all workers' in multiprocess mode); this process's deferred
        updates are applied by the caller, on the event loop's thread (`metrics_handler`)."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in self._live:
            registry.register(collector)
        return generate_latest(registry)

    def collectors(self) -> Iterable[Collector]:
        """The scrape-time collectors."""
        return tuple(self._live)


def metrics_handler(metrics: Metrics, before: Callable[[], Awaitable[Any]] | None = None) -> Handler:
    """GET /metrics: `before` (if any) refreshes scrape-time values, then the exposition is rendered."""

    async def handler(request: web.Request) -> web.Response:
        if before is not None:
            await before()
        metrics.deferred.flush()
        if multiprocess_dir() is None:
            body = metrics.exposition()
        else:  # reads every worker's files: off the event loop
            body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


LatencyRecorder = Callable[[str, str, int, float], None]
"""observe(method, route template, status, seconds)."""


def latency_recorder(metrics: Metrics) -> LatencyRecorder:
    """Observe one request's duration in `metrics.request_latency` (label children remembered)."""
    children: dict[tuple[str, str, int], Any] = {}
    histogram = metrics.request_latency
    deferred = metrics.deferred

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "OTHER", route, status)
        child = children.get(key)
        if child is None:
            child = histogram.labels(key[0], route, str(status))
            if len(children) < 10_000:
                children[key] = child
        deferred.observe(child, seconds)

    return observe


async def observed(request: web.Request, handler: Handler, done: Callable[[int, float], None]) -> web.StreamResponse:
    """Run the handler; then `done(final status, seconds)`, however it ended: the answer's status, an
    HTTPException's, 499 when the client went away (cancelled), 500 for any other exception."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        done(status, time.perf_counter() - start)


def latency_middleware(metrics: Metrics) -> Middleware:
    """Observe every request's duration by method, route template and final status."""
    observe = latency_recorder(metrics)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await observed(request, handler, lambda status, seconds: observe(
            request.method, route_template(request), status, seconds))

    return middleware
