"""Money in flight: channels by status, value received but not yet settled, and value at risk bucketed
by hours to expiry (read from ChanStore page by page; shared by the management API and /metrics).

A channel's value at risk is what the server holds in it (funding value minus the client's change) while
the channel is open or closing: if no settlement confirms before `exp_time`, the client can take it all
back with the refund transaction.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from chan_store.contract import ChannelPage, StoreStats
from paychan_common.state import Status
from paychan_common.tx import OutPoint

from ..domain.clock import ClockPort

__all__ = [
    "BUCKETS", "Bucket", "ScanCache", "Totals", "TotalsCache", "TotalsSource", "bucket_index", "compute_totals",
]

PAGE = 1000  # ChanStore's largest page
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bucket:
    """Channels whose hours to expiry are below `below_hours` (and at or above the previous bucket's)."""

    label: str
    below_hours: float


BUCKETS: tuple[Bucket, ...] = (
    Bucket("expired", 0), Bucket("<12h", 12), Bucket("12-24h", 24), Bucket("1-2d", 48), Bucket("2-7d", 168),
    Bucket(">7d", math.inf),
)


def bucket_index(exp_time: int, now: int) -> int:
    """Index in BUCKETS of a channel expiring at exp_time."""
    hours = (exp_time - now) / 3600
    for i, bucket in enumerate(BUCKETS):
        if hours < bucket.below_hours:
            return i
    return len(BUCKETS) - 1


class TotalsSource(Protocol):
    """What the totals need from ChanStore (chan_store.client.ChanStoreClient)."""

    async def list_page(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                        expiring_before: int | None = None, after: OutPoint | None = None,
                        limit: int = 100) -> ChannelPage: ...

    async def stats(self) -> StoreStats: ...


@dataclass(frozen=True, slots=True)
class Totals:
    """A snapshot of money in flight."""

    as_of: int
    counts: dict[str, int]
    unsettled_value: int
    bucket_channels: tuple[int, ...]
    bucket_value: tuple[int, ...]
    computed_seconds: float = 0.0

    @property
    def open_channels(self) -> int:
        """Open channels (ChanStore's count)."""
        return self.counts.get(Status.OPEN.label, 0)

    def to_json(self) -> dict[str, object]:
        """The management API's `GET /totals` body."""
        return {
            "as_of": self.as_of,
            "open_channels": self.open_channels,
            "channels": dict(self.counts),
            "value_received_unsettled": self.unsettled_value,
            "value_at_risk": [
                {"hours_to_expiry": b.label, "below_hours": None if math.isinf(b.below_hours) else b.below_hours,
                 "channels": n, "value": v}
                for b, n, v in zip(BUCKETS, self.bucket_channels, self.bucket_value, strict=True)],
            "computed_in_seconds": round(self.computed_seconds, 6),
        }


async def compute_totals(source: TotalsSource, now: int) -> Totals:
    """Scan the open and closing channels (pages of 1000) and ChanStore's counts."""
    started = time.perf_counter()
    channels = [0] * len(BUCKETS)
    values = [0] * len(BUCKETS)
    unsettled = 0
    for status in (Status.OPEN, Status.CLOSING):
        after: OutPoint | None = None
        while True:
            page = await source.list_page(status=status, after=after, limit=PAGE)
            for state in page.states:
                held = max(state.funding_value - state.change_value, 0)
                i = bucket_index(state.exp_time, now)
                channels[i] += 1
                values[i] += held
                unsettled += held
            if page.next is None:
                break
            after = page.next
    stats = await source.stats()
    return Totals(now, dict(stats.counts), unsettled, tuple(channels), tuple(values),
                  time.perf_counter() - started)


class ScanCache(Generic[T]):
    """The latest result of a ChanStore scan; one scan at a time, reused while younger than `max_age` s."""

    def __init__(self, compute: Callable[[int], Awaitable[T]], clock: ClockPort) -> None:
        self._compute = compute
        self._clock = clock
        self._lock = asyncio.Lock()
        self.latest: T | None = None
        self._at = -math.inf  # monotonic time of the latest scan's end

    async def get(self, max_age: float = 0.0) -> T:
        """A fresh result (max_age 0), or the cached one if younger than max_age."""
        requested = time.monotonic()
        async with self._lock:
            latest = self.latest
            if latest is not None and (self._at >= requested or (max_age > 0 and requested - self._at < max_age)):
                return latest  # computed while we waited, or young enough
            latest = await self._compute(self._clock.now())
            self.latest, self._at = latest, time.monotonic()
            return latest


class TotalsCache(ScanCache[Totals]):
    """The latest totals (compute_totals over a TotalsSource)."""

    def __init__(self, source: TotalsSource, clock: ClockPort) -> None:
        async def compute(at: int) -> Totals:
            return await compute_totals(source, at)

        super().__init__(compute, clock)
