"""In-memory adapter of the storage port, for unit tests of the service layer (not durable)."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterator

from chan_store.contract import CommitStats
from chan_store.storage import StorageClosedError, WriteBatch, scan_begin

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """`Storage` over a dict plus a sorted key list; each commit applies atomically and returns."""

    __slots__ = ("_closed", "_commits", "_data", "_keys")

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._commits = 0
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value of `key`, or None if it is absent."""
        self._check_open()
        return self._data.get(key)

    def scan(
        self, prefix: bytes, start: bytes | None = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) pairs with `prefix`, ascending, from `start` inclusive, as of this call."""
        self._check_open()
        begin = scan_begin(prefix, start, limit)
        found: list[tuple[bytes, bytes]] = []
        for i in range(bisect.bisect_left(self._keys, begin), len(self._keys)):
            if limit is not None and len(found) >= limit:
                break
            key = self._keys[i]
            if not key.startswith(prefix):
                break
            found.append((key, self._data[key]))
        return iter(found)

    def start_commit(self, batch: WriteBatch) -> asyncio.Future[None]:
        """Apply `batch` now; the future is already resolved (or failed: storage closed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._apply(batch)
        except StorageClosedError as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)
        return future

    async def commit(self, batch: WriteBatch) -> None:
        """Apply `batch` (deletes, then puts) at once."""
        self._apply(batch)

    def _apply(self, batch: WriteBatch) -> None:
        self._check_open()
        for key in batch.deletes:
            if self._data.pop(key, None) is not None:
                del self._keys[bisect.bisect_left(self._keys, key)]
        for key, value in batch.puts:
            if key not in self._data:
                bisect.insort(self._keys, key)
            self._data[key] = value
        self._commits += 1

    def stats(self) -> CommitStats:
        """Return the counters; every commit counts as one write of one batch taking no time."""
        size = 1 if self._commits else 0
        return CommitStats(
            commits=self._commits,
            writes=self._commits,
            last_batch_size=size,
            max_batch_size=size,
            total_sync_seconds=0.0,
            last_sync_seconds=0.0,
        )

    async def close(self) -> None:
        """Refuse further use; idempotent."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError("storage is closed")
