"""Fakes at ChanStore's storage seams: a LevelDB writer that blocks until released (and can fail), and a
recorder for the fail-stop action."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from chan_store.leveldb_storage import LevelDBHandle, write_batches
from chan_store.storage import WriteBatch

__all__ = ["WAIT", "FatalRecorder", "GatedWriter"]

WAIT = 10.0  # bound of a thread handshake; reached only when the code under test is broken


class GatedWriter:
    """LevelDB's writer seam: each group write waits in the writer thread until `gate` is set, then writes for
    real (or fails: `fail`, or `fail_first` for the first group only). Records every group write."""

    def __init__(self, *, released: bool = True, fail_first: bool = False) -> None:
        self.gate = threading.Event()
        if released:
            self.gate.set()
        self.entered = threading.Event()
        self.fail = False
        self.fail_first = fail_first
        self.calls: list[tuple[int, bool]] = []  # (number of puts, sync) of each group write started
        self.group_sizes: list[int] = []  # batches per group write
        self.durable: set[bytes] = set()  # keys whose synced write has returned
        self.finished = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        """Block the next write (and report when it has started)."""
        self.entered.clear()
        self.gate.clear()

    def __call__(self, db: LevelDBHandle, batches: Sequence[WriteBatch], sync: bool) -> None:
        with self._lock:
            self.calls.append((sum(len(b.puts) for b in batches), sync))
        self.entered.set()
        if not self.gate.wait(WAIT):
            raise TimeoutError("the test never released the write")
        with self._lock:
            self.group_sizes.append(len(batches))
            if self.fail or (self.fail_first and len(self.group_sizes) == 1):
                raise OSError(5, "injected disk failure")
        write_batches(db, batches, sync)
        with self._lock:
            self.durable.update(key for batch in batches for key, _ in batch.puts)
            self.finished += 1

    async def wait_entered(self) -> None:
        """Wait (without blocking the event loop) until a write has started."""
        assert await asyncio.to_thread(self.entered.wait, WAIT), "no write started"


class FatalRecorder:
    """Injected fail-stop action: records instead of ending the process."""

    def __init__(self) -> None:
        self.calls: list[BaseException] = []

    def __call__(self, exc: BaseException) -> None:
        self.calls.append(exc)
