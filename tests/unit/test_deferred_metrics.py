"""DeferredUpdates (paychan_runtime.metrics): deferred counter increments and histogram observations give
exactly the values direct updates give, once flushed, and nothing before."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from paychan_runtime.metrics import LATENCY_BUCKETS, DeferredUpdates


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in registry.collect() for s in metric.samples if not s.name.endswith("_created")}


def _pair() -> tuple[CollectorRegistry, Histogram, Counter]:
    registry = CollectorRegistry()
    return (registry, Histogram("lat", "l", ["route"], buckets=LATENCY_BUCKETS, registry=registry),
            Counter("paid", "p", ["kind"], registry=registry))


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 40, allow_nan=False), st.integers(0, 5000)),
                max_size=60))
def test_deferred_updates_equal_direct_ones_once_flushed(events: list[tuple[str, float, int]]) -> None:
    direct, deferred_on = _pair(), _pair()

    async def run() -> None:  # inside a loop: updates wait for the timer or a flush
        deferred = DeferredUpdates(interval=3600)
        for route, seconds, value in events:
            direct[1].labels(route).observe(seconds)
            direct[2].labels(route).inc(value)
            deferred.observe(deferred_on[1].labels(route), seconds)
            deferred.inc(deferred_on[2].labels(route), value)
        if events:
            assert _samples(deferred_on[0]) != _samples(direct[0])  # nothing applied yet
        deferred.flush()

    asyncio.run(run())
    assert _samples(deferred_on[0]) == _samples(direct[0])


def test_the_timer_applies_pending_updates() -> None:
    registry, _, counter = _pair()

    async def run() -> float:
        deferred = DeferredUpdates(interval=0.01)
        deferred.inc(counter.labels("x"), 3)
        await asyncio.sleep(0.1)
        return _samples(registry)[("paid_total", (("kind", "x"),))]

    assert asyncio.run(run()) == 3


def test_without_an_event_loop_updates_apply_at_once() -> None:
    registry, histogram, _ = _pair()
    DeferredUpdates().observe(histogram.labels("y"), 0.002)
    assert _samples(registry)[("lat_count", (("route", "y"),))] == 1
