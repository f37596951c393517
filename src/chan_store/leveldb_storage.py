"""LevelDB adapter of the storage port (plyvel), with durable group commit.

`commit()` queues its batch and waits. When no write is under way, every batch queued at that moment (up
to `max_batch`) goes to the writer thread (a plain thread fed by a queue: no executor, no drain task, no
future chaining), which writes them as ONE LevelDB write batch with `sync=True`; only when that write has
returned are they acknowledged, in the event loop, and the batches queued meanwhile go at once as the next
write. So N concurrent writers cost far fewer than N fsyncs. A failed write fails its waiters and
every queued one, and leaves the storage fail-stop: the service restarts and reloads from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import plyvel

from chan_store.storage import (
    CommitStats,
    StorageClosedError,
    StorageError,
    StorageFailedError,
    WriteBatch,
)
from paychan_runtime.files import private_directory

__all__ = ["BatchWriter", "LevelDBHandle", "LevelDBStorage", "LevelDBWriteBatch", "crashing_writer", "write_batches"]

logger = logging.getLogger(__name__)


class LevelDBWriteBatch(Protocol):
    """The part of `plyvel.WriteBatch` the writer uses."""

    def put(self, key: bytes, value: bytes) -> None:
        """Queue a put."""
        ...

    def delete(self, key: bytes) -> None:
        """Queue a delete."""
        ...

    def write(self) -> None:
        """Write every queued operation atomically."""
        ...


class LevelDBHandle(Protocol):
    """The part of `plyvel.DB` the writer uses."""

    def write_batch(self, *, sync: bool) -> LevelDBWriteBatch:
        """Start an atomic write batch."""
        ...


BatchWriter = Callable[[LevelDBHandle, Sequence[WriteBatch], bool], None]
"""Low-level write, run in the writer thread: write these batches as one atomic engine write."""


def write_batches(db: LevelDBHandle, batches: Sequence[WriteBatch], sync: bool) -> None:
    """Write `batches` in order (each: deletes, then puts) as one LevelDB batch, fsynced if `sync`."""
    engine_batch = db.write_batch(sync=sync)
    for batch in batches:
        for key in batch.deletes:
            engine_batch.delete(key)
        for key, value in batch.puts:
            engine_batch.put(key, value)
    engine_batch.write()


def crashing_writer(crash: Callable[[str], None], inner: BatchWriter = write_batches) -> BatchWriter:
    """`inner` with the crash points store.before_write and store.after_write (paychan_runtime.faults)."""

    def write(db: LevelDBHandle, batches: Sequence[WriteBatch], sync: bool) -> None:
        crash("store.before_write")
        inner(db, batches, sync)
        crash("store.after_write")  # durable on disk; no waiter has been answered yet

    return write


_Waiter = tuple[WriteBatch, asyncio.Future[None]]
_Job = tuple[asyncio.AbstractEventLoop, list[WriteBatch]]

MAX_OPEN_FILES = 256
"""LevelDB's table cache (its default is 1000). LevelDB memory-maps every table file it holds open (up to
1000 of them), and the pages a read touches count in ChanStore's RSS (RssFile: page cache, shared and
reclaimable); with 2-4 MiB tables this bounds that part to ~0.5-1 GiB however large the store, e.g. after
the start-up check has read every table (bench/RESULTS.md, 10,000,000 channels)."""


class LevelDBStorage:
    """`Storage` over a LevelDB directory; commits are acknowledged after a synced group write.

    `sync=False` skips the fsync: an acknowledged commit can then be lost on a power failure or an OS
    crash. It is UNSAFE and exists only to measure the cost of durability.
    `writer` replaces the low-level write (a seam for tests and fault injection); it must perform the
    write, e.g. by calling `write_batches`. `max_open_files`: see MAX_OPEN_FILES. `inline_below`: a group
    of fewer operations is written (and synced) in the event loop's thread instead of the writer thread
    (0, the default here: never; ChanStore's config `storage.inline_write_below` sets 16). Use the storage
    from one event loop at a time.
    """

    def __init__(
        self,
        path: Path,
        *,
        sync: bool = True,
        max_batch: int = 4096,
        writer: BatchWriter = write_batches,
        max_open_files: int = MAX_OPEN_FILES,
        inline_below: int = 0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        try:
            private_directory(path)  # channel states hold the latest client signatures and v2.3.0 secrets
            self._db: Any = plyvel.DB(str(path), create_if_missing=True, max_open_files=max_open_files)
        except OSError as exc:
            raise StorageError(f"cannot prepare the LevelDB directory {path}: {exc}") from exc
        except plyvel.Error as exc:
            raise StorageError(f"cannot open LevelDB at {path}: {exc}") from exc
        self._path = path
        self._sync = sync
        self._max_batch = max_batch
        self._writer = writer
        if inline_below < 0:
            raise ValueError("inline_below must be >= 0")
        self._inline_below = inline_below
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # to the writer thread; None: stop
        self._thread: threading.Thread | None = None  # started by the first write
        self._pending: deque[_Waiter] = deque()
        self._writing: list[_Waiter] | None = None  # the group the writer thread is writing
        self._drained: list[asyncio.Future[None]] = []  # close() waiting for the writes to end
        self._failure: BaseException | None = None
        self._closing = False
        self._closed = False
        self._commits = 0
        self._writes = 0
        self._last_batch_size = 0
        self._max_batch_size = 0
        self._total_sync_seconds = 0.0
        self._last_sync_seconds = 0.0

    @property
    def path(self) -> Path:
        """Return the database directory."""
        return self._path

    @property
    def sync(self) -> bool:
        """Return whether writes are fsynced before being acknowledged."""
        return self._sync

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value of `key`, or None if it is absent."""
        self._check_readable()
        try:
            value: bytes | None = self._db.get(key)
        except plyvel.Error as exc:
            raise StorageError(f"LevelDB read failed: {exc}") from exc
        return value

    def scan(
        self, prefix: bytes, start: bytes | None = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) pairs with `prefix`, ascending, from `start` inclusive, as of this call."""
        self._check_readable()
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        begin = prefix if start is None else max(prefix, start)
        try:
            engine_iterator = self._db.iterator(start=begin)  # holds an implicit snapshot
        except plyvel.Error as exc:
            raise StorageError(f"LevelDB read failed: {exc}") from exc
        return self._iterate(engine_iterator, prefix, limit)

    def _iterate(self, engine_iterator: Any, prefix: bytes, limit: int | None) -> Iterator[tuple[bytes, bytes]]:
        count = 0
        try:
            while limit is None or count < limit:
                if self._closed:  # the DB closed its iterators; do not touch this one
                    raise StorageClosedError("storage closed during scan")
                try:
                    key, value = next(engine_iterator)
                except StopIteration:
                    return
                except plyvel.Error as exc:
                    raise StorageError(f"LevelDB read failed: {exc}") from exc
                if not key.startswith(prefix):
                    return
                count += 1
                yield key, value
        finally:
            if not self._closed:
                engine_iterator.close()

    def start_commit(self, batch: WriteBatch) -> asyncio.Future[None]:
        """Queue `batch` for the next group write; the future resolves once that write is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._closing:
            future.set_exception(StorageClosedError("storage is closed"))
            return future
        if self._failure is not None:
            refused = StorageFailedError("an earlier write failed; reopen the storage")
            refused.__cause__ = self._failure
            future.set_exception(refused)
            return future
        self._pending.append((batch, future))
        if self._writing is None:  # the commits of this loop iteration go together
            self._writing = []
            loop.call_soon(self._start_write, loop)
        return future

    async def commit(self, batch: WriteBatch) -> None:
        """Queue `batch` for the next group write and return once that write is durable."""
        await self.start_commit(batch)

    def stats(self) -> CommitStats:
        """Return a snapshot of the commit counters."""
        return CommitStats(
            commits=self._commits,
            writes=self._writes,
            last_batch_size=self._last_batch_size,
            max_batch_size=self._max_batch_size,
            total_sync_seconds=self._total_sync_seconds,
            last_sync_seconds=self._last_sync_seconds,
        )

    async def close(self) -> None:
        """Refuse new commits, wait for the queued and in-flight writes, then close the DB; idempotent."""
        self._closing = True
        if self._closed:
            return
        if self._writing is not None:
            drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drained.append(drained)
            await asyncio.wait({drained})  # never cancels the writes, even if close() is cancelled
        if self._closed:  # closed by a concurrent close() while we waited
            return
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)
        if not self._closed:
            self._closed = True
            self._db.close()

    def _check_readable(self) -> None:
        if self._closed:
            raise StorageClosedError("storage is closed")

    def _start_write(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand every queued batch (up to max_batch) to the writer thread as one engine write (a group of
        fewer than `inline_below` operations: write it here)."""
        size = min(len(self._pending), self._max_batch)
        group = [self._pending.popleft() for _ in range(size)]
        self._writing = group
        batches = [batch for batch, _ in group]
        if self._inline_below and sum(len(batch) for batch in batches) < self._inline_below:
            # A small group (few clients): the loop waits for this one fsync itself, which costs less CPU and
            # latency than waking the writer thread and being woken by it; what arrives meanwhile waits in
            # the sockets and goes in the next group. Its outcome is delivered at once.
            self._written(*self._write_group(batches))
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_forever, name="leveldb-writer", daemon=True)
            self._thread.start()
        self._jobs.put((loop, batches))

    def _write_forever(self) -> None:
        """The writer thread: one engine write per job, in order; each outcome goes back to the job's loop."""
        while (job := self._jobs.get()) is not None:
            loop, batches = job
            outcome = self._write_group(batches)
            with contextlib.suppress(RuntimeError):  # RuntimeError: that loop is closed, nobody waits any more
                loop.call_soon_threadsafe(self._written, *outcome)

    def _write_group(self, batches: list[WriteBatch]) -> tuple[float, BaseException | None]:
        """One engine write of `batches`, in whichever thread calls it: (seconds taken, its failure or None)."""
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            self._writer(self._db, batches, self._sync)
        except BaseException as exc:  # noqa: BLE001 - any writer failure must reach the waiters, never a silent success
            error = exc
        return time.perf_counter() - started, error

    def _written(self, seconds: float, error: BaseException | None) -> None:
        """In the loop: the group write returned; acknowledge (or fail) its batches, start the next one."""
        group, self._writing = self._writing or [], None
        if error is not None:
            # One line, no traceback: the store above logs the one CRITICAL line of the fail-stop.
            logger.error("LevelDB group write of %d batches failed; storage is now fail-stop: %r", len(group), error)
            self._fail(error, group)
        else:
            self._commits += 1
            self._writes += len(group)
            self._last_batch_size = len(group)
            self._max_batch_size = max(self._max_batch_size, len(group))
            self._last_sync_seconds = seconds
            self._total_sync_seconds += seconds
            for _, future in group:
                if not future.done():  # a cancelled caller's batch is written all the same
                    future.set_result(None)
            if self._pending and self._failure is None:
                self._start_write(asyncio.get_running_loop())
                return
        while self._drained:
            drained = self._drained.pop()
            if not drained.done():
                drained.set_result(None)

    def _fail(self, exc: BaseException, group: list[_Waiter]) -> None:
        """Enter the fail-stop state: the group's outcome is unknown, the queued batches are refused."""
        if self._failure is None:
            self._failure = exc
        for _, future in group:
            if not future.done():
                error = StorageError(f"LevelDB write failed, outcome unknown: {exc!r}")
                error.__cause__ = exc
                future.set_exception(error)
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                error = StorageFailedError(f"not written: an earlier LevelDB write failed: {exc!r}")
                error.__cause__ = exc
                future.set_exception(error)
