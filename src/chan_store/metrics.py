"""ChanStore's Prometheus metrics: commit latency as its callers see it, group-commit batch sizes and
sync latency of the engine writes, the storage's cumulative commit counters, channels by status.

`InstrumentedStorage` wraps the storage port: every `commit` is timed; when the engine's write counter
has moved, the latest engine write's batch size and sync time are observed (under heavy load several
engine writes can finish between two observations: the histograms then sample, the counters stay exact).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from chan_store.contract import CommitStats
from chan_store.engine import ChannelEngine
from chan_store.storage import Storage, WriteBatch
from paychan_runtime.logs import access_log_middleware, quiet_routes
from paychan_runtime.metrics import Metrics, latency_middleware

__all__ = ["QUIET_ROUTES", "STORE_METRICS", "InstrumentedStorage", "StoreMetrics", "store_middlewares"]

_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class _StoreCollector(Collector):
    """Scrape-time values: the storage's counters and the store's channel counts."""

    def __init__(self, owner: StoreMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        """Nothing until the store is open."""
        store = self._owner.store
        if store is None:
            return
        stats: CommitStats = store.storage_stats()
        yield CounterMetricFamily("chanstore_engine_writes", "Synced engine writes (each carries >= 1 batch)",
                                  value=stats.commits)
        yield CounterMetricFamily("chanstore_batches_committed", "WriteBatch commits acknowledged durable",
                                  value=stats.writes)
        yield CounterMetricFamily("chanstore_sync_seconds", "Time spent in engine writes, fsync included",
                                  value=stats.total_sync_seconds)
        yield GaugeMetricFamily("chanstore_max_batch_size", "Most batches carried by one engine write",
                                value=stats.max_batch_size)
        yield GaugeMetricFamily("chanstore_mean_batch_size", "Batches per engine write, on average",
                                value=stats.mean_batch_size)
        channels = GaugeMetricFamily("chanstore_channels", "Channels by status", labels=["status"])
        for status, count in sorted(store.counts().items()):
            channels.add_metric([status], count)
        yield channels
        memory = GaugeMetricFamily("chanstore_memory_channels", "Channels held in memory (live) and parsed (cached)",
                                   labels=["kind"])
        for kind, count in sorted(store.memory().items()):
            memory.add_metric([kind], count)
        yield memory
        yield GaugeMetricFamily("chanstore_failed", "1 once a write failed (the store fail-stops)",
                                value=1 if store.failed else 0)


class StoreMetrics(Metrics):
    """The registry of the ChanStore process."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.commit_latency = Histogram("chanstore_commit_duration_seconds",
                                        "Time from handing a batch to the storage until it is durable",
                                        buckets=_SECONDS, registry=r)
        self.batch_size = Histogram("chanstore_engine_write_batches", "Batches carried by one engine write "
                                    "(group commit), sampled", buckets=_SIZES, registry=r)
        self.sync_latency = Histogram("chanstore_engine_write_duration_seconds",
                                      "One engine write including fsync, sampled", buckets=_SECONDS, registry=r)
        self.store: ChannelEngine | None = None
        self.add_collector(_StoreCollector(self))


class InstrumentedStorage:
    """A Storage that times commits and samples the engine's batch sizes (see the module docstring)."""

    def __init__(self, inner: Storage, metrics: StoreMetrics) -> None:
        self.inner = inner
        self._metrics = metrics
        self._seen = inner.stats().commits

    def get(self, key: bytes) -> bytes | None:
        """Delegated."""
        return self.inner.get(key)

    def scan(self, prefix: bytes, start: bytes | None = None,
             limit: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Delegated."""
        return self.inner.scan(prefix, start, limit)

    def start_commit(self, batch: WriteBatch) -> asyncio.Future[None]:
        """Delegated; once durable, timed and the latest engine write sampled (if a new one finished)."""
        start = time.perf_counter()
        future = self.inner.start_commit(batch)
        future.add_done_callback(lambda done: self._observe(done, start))
        return future

    async def commit(self, batch: WriteBatch) -> None:
        """Delegated, timed; then sample the latest engine write if a new one finished."""
        await self.start_commit(batch)

    def _observe(self, done: asyncio.Future[None], start: float) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        self._metrics.commit_latency.observe(time.perf_counter() - start)
        stats = self.inner.stats()
        if stats.commits != self._seen:
            self._seen = stats.commits
            self._metrics.batch_size.observe(stats.last_batch_size)
            self._metrics.sync_latency.observe(stats.last_sync_seconds)

    def stats(self) -> CommitStats:
        """Delegated."""
        return self.inner.stats()

    async def close(self) -> None:
        """Delegated."""
        await self.inner.close()


STORE_METRICS: web.AppKey[StoreMetrics] = web.AppKey("store_metrics", StoreMetrics)

# Per-payment and polling routes: their access-log line is DEBUG; the others are INFO.
QUIET_ROUTES = (("POST", "/payments"), ("GET", "/channels/{outpoint}"), ("GET", "/health"), ("GET", "/metrics"))


def store_middlewares(metrics: StoreMetrics) -> list[Middleware]:
    """Outermost middlewares of the ChanStore app: request latency, then one access-log line."""
    return [latency_middleware(metrics), access_log_middleware(quiet_routes(QUIET_ROUTES))]
