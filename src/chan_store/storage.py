"""Storage port of ChanStore: ordered byte keys to byte values, written in durable batches.

The port knows nothing about channels. Adapters implement `Storage`; one contract test suite
(`tests/integration/test_storage_contract.py`) runs against every adapter.

Exception tree::

    StorageError                 any adapter failure; on commit: the outcome is unknown
    ├── StorageClosedError       the storage was closed
    └── StorageFailedError       an earlier write failed; the storage refuses further commits
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from chan_store.contract import CommitStats

__all__ = [
    "CommitStats",
    "Storage",
    "StorageClosedError",
    "StorageError",
    "StorageFailedError",
    "WriteBatch",
    "scan_begin",
]


class StorageError(Exception):
    """Base of every adapter failure (I/O, closed, corrupt); a failed commit's outcome is unknown."""


class StorageClosedError(StorageError):
    """The storage was closed; open a new one."""


class StorageFailedError(StorageError):
    """A write failed earlier; the storage is fail-stop and must be reopened from disk."""


def _check_bytes(what: str, value: object) -> None:
    if type(value) is not bytes:
        raise TypeError(f"WriteBatch {what} must be bytes, not {type(value).__name__}")


def scan_begin(prefix: bytes, start: bytes | None, limit: int | None) -> bytes:
    """The first key a `Storage.scan(prefix, start, limit)` may yield; ValueError for a negative limit."""
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    return prefix if start is None else max(prefix, start)


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """An atomic set of writes: first every delete, then every put, in tuple order."""

    puts: tuple[tuple[bytes, bytes], ...] = ()
    deletes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        # Checked here, in the caller's frame: a bad batch must never reach (and fail-stop) a writer.
        if type(self.puts) is not tuple or type(self.deletes) is not tuple:
            raise TypeError("WriteBatch puts and deletes must be tuples")
        for put in self.puts:
            if type(put) is not tuple or len(put) != 2:
                raise TypeError("WriteBatch puts must be (key, value) pairs")
            _check_bytes("key", put[0])
            _check_bytes("value", put[1])
        for key in self.deletes:
            _check_bytes("key", key)

    def __len__(self) -> int:
        """Return the number of operations in the batch."""
        return len(self.puts) + len(self.deletes)


class Storage(Protocol):
    """Ordered key/value storage whose writes are acknowledged only once durable."""

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value of `key`, or None if it is absent."""
        ...

    def scan(
        self, prefix: bytes, start: bytes | None = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield committed (key, value) pairs whose key has `prefix`, ascending, from `start` inclusive.

        The view is a snapshot taken when `scan` is called; commits made while iterating are not seen.
        """
        ...

    def start_commit(self, batch: WriteBatch) -> asyncio.Future[None]:
        """Hand `batch` over now (from the event loop's thread); the future resolves once it is applied
        atomically and durable, or fails with a `StorageError` (a refusal too: it never raises itself).

        Batches are applied in the order they were handed over. Cancelling the future does not withdraw
        the batch: it may still be written. ChanStore's hot path waits on this future directly (a task
        around `commit` costs event-loop iterations per batch).
        """
        ...

    async def commit(self, batch: WriteBatch) -> None:
        """`start_commit(batch)` and wait for it: return only once durable, raise `StorageError` otherwise.
        Cancelling the caller does not withdraw a batch already handed over: it may still be written."""
        ...

    def stats(self) -> CommitStats:
        """Return a snapshot of the commit counters."""
        ...

    async def close(self) -> None:
        """Wait for the writes already handed over, then release the storage; idempotent."""
        ...
