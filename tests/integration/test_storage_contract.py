"""Contract tests of the ChanStore storage port over every adapter, plus LevelDB group-commit tests."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chan_store.leveldb_storage import LevelDBStorage, write_batches
from chan_store.memory_storage import MemoryStorage
from chan_store.storage import (
    Storage,
    StorageClosedError,
    StorageError,
    StorageFailedError,
    WriteBatch,
)
from tests.support.storage import GatedWriter


@dataclass(frozen=True, slots=True)
class Adapter:
    """How to open one adapter on a directory, and whether its data outlives close()."""

    name: str
    open: Callable[[Path], Storage]
    durable: bool


ADAPTERS = [
    Adapter("memory", lambda _path: MemoryStorage(), durable=False),
    Adapter("leveldb", lambda path: LevelDBStorage(path), durable=True),
    Adapter("leveldb-inline", lambda path: LevelDBStorage(path, inline_below=1_000_000), durable=True),
]


@pytest.fixture(params=ADAPTERS, ids=lambda adapter: adapter.name)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    """Each adapter in turn."""
    chosen: Adapter = request.param
    return chosen


@pytest.fixture
async def storage(adapter: Adapter, tmp_path: Path) -> AsyncIterator[Storage]:
    """A fresh storage of the adapter under test, closed afterwards."""
    store = adapter.open(tmp_path / "db")
    yield store
    await store.close()


def put(*pairs: tuple[bytes, bytes]) -> WriteBatch:
    return WriteBatch(puts=pairs)


def delete(*keys: bytes) -> WriteBatch:
    return WriteBatch(deletes=keys)


# --------------------------------------------------------------------------- contract, every adapter


async def test_get_missing(storage: Storage) -> None:
    assert storage.get(b"absent") is None
    assert list(storage.scan(b"")) == []


async def test_put_then_get(storage: Storage) -> None:
    await storage.commit(put((b"k", b"v"), (b"empty", b"")))
    assert storage.get(b"k") == b"v"
    assert storage.get(b"empty") == b""
    assert storage.get(b"k2") is None


async def test_delete(storage: Storage) -> None:
    await storage.commit(put((b"a", b"1"), (b"b", b"2")))
    await storage.commit(delete(b"a", b"never-there"))
    assert storage.get(b"a") is None
    assert storage.get(b"b") == b"2"
    assert list(storage.scan(b"")) == [(b"b", b"2")]


async def test_scan_by_prefix_in_order(storage: Storage) -> None:
    keys = [b"s\x02z", b"r\xff", b"s", b"s\x01b", b"t", b"s\x01a", b"s\xff\xff", b"", b"s\x00"]
    await storage.commit(WriteBatch(puts=tuple((key, key + b"!") for key in keys)))
    expected = sorted(key for key in keys if key.startswith(b"s"))
    assert list(storage.scan(b"s")) == [(key, key + b"!") for key in expected]
    assert [key for key, _ in storage.scan(b"s\x01")] == [b"s\x01a", b"s\x01b"]
    assert [key for key, _ in storage.scan(b"")] == sorted(keys)
    assert list(storage.scan(b"q")) == []


async def test_scan_with_start_and_limit(storage: Storage) -> None:
    await storage.commit(WriteBatch(puts=tuple((b"p%d" % i, b"%d" % i) for i in range(10))))
    await storage.commit(put((b"o9", b"x"), (b"q0", b"x")))

    def keys(start: bytes | None = None, limit: int | None = None) -> list[bytes]:
        return [key for key, _ in storage.scan(b"p", start, limit)]

    assert keys(b"p5") == [b"p5", b"p6", b"p7", b"p8", b"p9"]  # start is inclusive
    assert keys(b"p45") == [b"p5", b"p6", b"p7", b"p8", b"p9"]  # start between keys
    assert keys(b"a") == keys()  # start before the prefix range
    assert keys(b"q") == []  # start after the prefix range
    assert keys(limit=3) == [b"p0", b"p1", b"p2"]
    assert keys(b"p8", limit=5) == [b"p8", b"p9"]
    assert keys(b"p2", limit=2) == [b"p2", b"p3"]
    assert keys(limit=0) == []
    with pytest.raises(ValueError):
        storage.scan(b"p", limit=-1)


async def test_scan_is_a_snapshot(storage: Storage) -> None:
    await storage.commit(put((b"a1", b"old"), (b"a2", b"old")))
    view = storage.scan(b"a")
    await storage.commit(WriteBatch(puts=((b"a2", b"new"), (b"a3", b"new")), deletes=(b"a1",)))
    assert list(view) == [(b"a1", b"old"), (b"a2", b"old")]


async def test_batch_is_atomic(storage: Storage) -> None:
    await storage.commit(WriteBatch(puts=tuple((b"k%02d" % i, b"old") for i in range(60))))
    before = tuple(storage.scan(b"k"))
    change = WriteBatch(
        puts=tuple((b"k%02d" % i, b"new") for i in range(0, 60, 2)),
        deletes=tuple(b"k%02d" % i for i in range(1, 60, 2)),
    )
    after = tuple((b"k%02d" % i, b"new") for i in range(0, 60, 2))
    committing = asyncio.create_task(storage.commit(change))
    while not committing.done():  # read while the commit is in flight: all or nothing, never a mix
        assert tuple(storage.scan(b"k")) in (before, after)
        await asyncio.sleep(0)
    await committing
    assert tuple(storage.scan(b"k")) == after


def test_batch_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        WriteBatch(puts=((b"k", "v"),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WriteBatch(puts=(("k", b"v"),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WriteBatch(deletes=(bytearray(b"k"),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WriteBatch(puts=[(b"k", b"v")])  # type: ignore[arg-type]
    assert len(WriteBatch(puts=((b"k", b"v"),), deletes=(b"x", b"y"))) == 3


async def test_later_put_wins(storage: Storage) -> None:
    await storage.commit(put((b"k", b"1"), (b"k", b"2")))
    assert storage.get(b"k") == b"2"
    await storage.commit(WriteBatch(puts=((b"k", b"3"),), deletes=(b"k",)))  # deletes apply first
    assert storage.get(b"k") == b"3"
    await asyncio.gather(*(storage.commit(put((b"k", b"%d" % i))) for i in range(20)))
    assert storage.get(b"k") == b"19"  # concurrent commits apply in call order


async def test_start_commit_hands_over_in_order_and_a_cancelled_future_is_still_written(storage: Storage) -> None:
    futures = [storage.start_commit(put((b"k", b"%d" % i), (b"n%d" % i, b"x"))) for i in range(5)]
    futures[2].cancel()  # the waiter gives up: the batch was handed over all the same
    await asyncio.gather(*futures[:2], *futures[3:])
    assert storage.get(b"k") == b"4"  # applied in the order handed over
    assert all(storage.get(b"n%d" % i) == b"x" for i in range(5))  # the cancelled one too
    await storage.close()
    refused = storage.start_commit(put((b"k", b"late")))  # a refusal comes in the future, never raised
    with pytest.raises(StorageClosedError):
        await refused


async def test_close_then_commit_raises(storage: Storage) -> None:
    await storage.commit(put((b"k", b"v")))
    await storage.close()
    await storage.close()  # idempotent
    with pytest.raises(StorageClosedError):
        await storage.commit(put((b"k", b"w")))
    with pytest.raises(StorageError):
        storage.get(b"k")
    with pytest.raises(StorageError):
        storage.scan(b"")


async def test_reopen_keeps_data(adapter: Adapter, tmp_path: Path) -> None:
    if not adapter.durable:
        pytest.skip(f"{adapter.name} is not durable")
    store = adapter.open(tmp_path / "db")
    await store.commit(put((b"a", b"1"), (b"b", b"2")))
    await store.commit(delete(b"a"))
    await store.close()
    reopened = adapter.open(tmp_path / "db")
    try:
        assert list(reopened.scan(b"")) == [(b"b", b"2")]
    finally:
        await reopened.close()


async def test_stats_count_acknowledged_writes(storage: Storage) -> None:
    assert storage.stats().writes == 0
    for i in range(3):
        await storage.commit(put((b"k", b"%d" % i)))
    await asyncio.gather(*(storage.commit(put((b"c%d" % i, b""))) for i in range(10)))
    stats = storage.stats()
    assert stats.writes == 13
    assert 4 <= stats.commits <= 13
    assert 1 <= stats.last_batch_size <= stats.max_batch_size
    assert stats.total_sync_seconds >= stats.last_sync_seconds >= 0.0


_KEYS = st.lists(st.sampled_from([0x00, 0x61, 0x62, 0xFF]), max_size=3).map(bytes)
_BATCHES = st.builds(
    WriteBatch,
    puts=st.lists(st.tuples(_KEYS, st.binary(max_size=6)), max_size=4).map(tuple),
    deletes=st.lists(_KEYS, max_size=3).map(tuple),
)
_PROBES = st.lists(st.tuples(_KEYS, st.none() | _KEYS, st.none() | st.integers(0, 4)), max_size=4)


def _model_scan(
    model: dict[bytes, bytes], prefix: bytes, start: bytes | None, limit: int | None
) -> list[tuple[bytes, bytes]]:
    found = [(k, v) for k, v in sorted(model.items()) if k.startswith(prefix) and (start is None or k >= start)]
    return found if limit is None else found[:limit]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda adapter: adapter.name)
@settings(max_examples=60, deadline=None)
@given(batches=st.lists(_BATCHES, max_size=12), concurrent=st.booleans(), probes=_PROBES)
def test_random_batches_match_a_dict_model(
    adapter: Adapter,
    batches: list[WriteBatch],
    concurrent: bool,
    probes: list[tuple[bytes, bytes | None, int | None]],
) -> None:
    model: dict[bytes, bytes] = {}
    for batch in batches:
        for key in batch.deletes:
            model.pop(key, None)
        model.update(batch.puts)
    touched = {key for batch in batches for key in (*batch.deletes, *(k for k, _ in batch.puts))}

    def check(store: Storage) -> None:
        for key in touched:
            assert store.get(key) == model.get(key)
        assert list(store.scan(b"")) == sorted(model.items())
        for prefix, start, limit in probes:
            assert list(store.scan(prefix, start, limit)) == _model_scan(model, prefix, start, limit)

    async def scenario(path: Path) -> None:
        store = adapter.open(path)
        try:
            if concurrent:
                await asyncio.gather(*(store.commit(batch) for batch in batches))
            else:
                for batch in batches:
                    await store.commit(batch)
            check(store)
        finally:
            await store.close()
        if adapter.durable:
            reopened = adapter.open(path)
            try:
                check(reopened)
            finally:
                await reopened.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp) / "db"))


# --------------------------------------------------------------------------- LevelDB group commit


async def let_loop_run(rounds: int = 50) -> None:
    """Yield to the event loop repeatedly (no fixed sleep), letting every ready callback run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture
def gated() -> GatedWriter:
    return GatedWriter(released=False)


@pytest.fixture
async def gated_store(tmp_path: Path, gated: GatedWriter) -> AsyncIterator[LevelDBStorage]:
    """LevelDB on tmp_path/db behind the gated writer; the gate is released and the storage closed after."""
    store = LevelDBStorage(tmp_path / "db", writer=gated)
    try:
        yield store
    finally:
        gated.gate.set()
        await store.close()


def keyed(i: int) -> WriteBatch:
    return put((b"key%04d" % i, b"value%d" % i))


async def test_concurrent_commits_share_synced_writes(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db")
    try:
        await asyncio.gather(*(store.commit(keyed(i)) for i in range(200)))
        stats = store.stats()
        assert stats.writes == 200
        assert stats.commits < 200
        assert stats.max_batch_size > 1
        assert stats.total_sync_seconds > 0.0
        assert [key for key, _ in store.scan(b"key")] == [b"key%04d" % i for i in range(200)]
    finally:
        await store.close()


async def test_max_batch_caps_each_group(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db", max_batch=8)
    try:
        await asyncio.gather(*(store.commit(keyed(i)) for i in range(50)))
        stats = store.stats()
        assert stats.max_batch_size == 8
        assert stats.commits >= 7
        assert len(list(store.scan(b"key"))) == 50
    finally:
        await store.close()
    with pytest.raises(ValueError):
        LevelDBStorage(tmp_path / "other", max_batch=0)


async def test_nothing_is_acknowledged_before_its_sync(gated: GatedWriter, gated_store: LevelDBStorage) -> None:
    store = gated_store

    async def commit_and_check(i: int) -> None:
        await store.commit(keyed(i))
        assert b"key%04d" % i in gated.durable, "acknowledged before its synced write returned"

    first_group = [asyncio.create_task(commit_and_check(i)) for i in range(5)]
    await gated.wait_entered()
    later = [asyncio.create_task(commit_and_check(i)) for i in range(5, 12)]  # queue behind the write
    await let_loop_run()
    assert not any(task.done() for task in first_group + later)
    assert store.get(b"key0000") is None  # reads keep being served, and see only committed data
    assert store.stats().writes == 0

    gated.gate.set()
    await asyncio.gather(*first_group, *later)
    assert gated.group_sizes == [5, 7]
    assert [key for key, _ in store.scan(b"key")] == [b"key%04d" % i for i in range(12)]
    assert store.stats().commits == 2


async def test_close_waits_for_the_write_in_flight(tmp_path: Path, gated: GatedWriter,
                                                   gated_store: LevelDBStorage) -> None:
    store = gated_store
    commits = [asyncio.create_task(store.commit(keyed(i))) for i in range(3)]
    await gated.wait_entered()
    closing = asyncio.create_task(store.close())
    await let_loop_run()
    assert not closing.done()
    with pytest.raises(StorageClosedError):
        await store.commit(keyed(99))
    gated.gate.set()
    await asyncio.gather(*commits)
    await closing
    reopened = LevelDBStorage(tmp_path / "db")
    try:
        assert len(list(reopened.scan(b"key"))) == 3
    finally:
        await reopened.close()


async def test_failed_write_fails_its_waiters_and_stops(tmp_path: Path) -> None:
    failing = GatedWriter(released=False, fail_first=True)
    store = LevelDBStorage(tmp_path / "db", writer=failing)
    try:
        in_flight = [asyncio.create_task(store.commit(keyed(i))) for i in range(5)]
        await failing.wait_entered()
        queued = [asyncio.create_task(store.commit(keyed(i))) for i in range(5, 8)]
        await let_loop_run()
        failing.gate.set()
        outcomes = await asyncio.gather(*in_flight, *queued, return_exceptions=True)

        assert failing.group_sizes == [5]  # the queued batches never reached the disk
        for outcome in outcomes[:5]:
            assert isinstance(outcome, StorageError)
            assert isinstance(outcome.__cause__, OSError)
        for outcome in outcomes[5:]:
            assert isinstance(outcome, StorageFailedError)
        with pytest.raises(StorageFailedError):
            await store.commit(keyed(100))
        assert list(store.scan(b"key")) == []
        assert store.stats().writes == 0
    finally:
        failing.gate.set()
        await store.close()
    reopened = LevelDBStorage(tmp_path / "db")
    try:
        assert list(reopened.scan(b"key")) == []
    finally:
        await reopened.close()


async def test_small_groups_are_written_in_the_loop_thread_large_ones_by_the_writer(tmp_path: Path) -> None:
    threads: list[tuple[str, int]] = []

    def recording(db: Any, batches: Sequence[WriteBatch], sync: bool) -> None:
        threads.append((threading.current_thread().name, sum(len(b) for b in batches)))
        write_batches(db, batches, sync)

    store = LevelDBStorage(tmp_path / "db", writer=recording, inline_below=4)
    try:
        await asyncio.gather(*(store.commit(keyed(i)) for i in range(3)))  # one group of 3 operations
        await asyncio.gather(*(store.commit(keyed(i)) for i in range(3, 9)))  # one group of 6
        await store.commit(keyed(9))
        assert threads == [(threading.current_thread().name, 3), ("leveldb-writer", 6),
                           (threading.current_thread().name, 1)]
        assert [key for key, _ in store.scan(b"key")] == [b"key%04d" % i for i in range(10)]
        assert store.stats().writes == 10 and store.stats().commits == 3
    finally:
        await store.close()
    with pytest.raises(ValueError):
        LevelDBStorage(tmp_path / "other", inline_below=-1)


async def test_a_failed_inline_write_fails_its_waiters_and_stops(tmp_path: Path) -> None:
    def failing(db: Any, batches: Sequence[WriteBatch], sync: bool) -> None:
        raise OSError("disk on fire")

    store = LevelDBStorage(tmp_path / "db", writer=failing, inline_below=1_000)
    try:
        outcomes = await asyncio.gather(*(store.commit(keyed(i)) for i in range(3)), return_exceptions=True)
        assert all(isinstance(o, StorageError) and isinstance(o.__cause__, OSError) for o in outcomes)
        with pytest.raises(StorageFailedError):
            await store.commit(keyed(100))
        assert store.stats().writes == 0
    finally:
        await store.close()


async def test_data_survives_reopen(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db")
    try:
        await asyncio.gather(*(store.commit(keyed(i)) for i in range(100)))
        await asyncio.gather(
            *(store.commit(delete(b"key%04d" % i)) for i in range(0, 100, 3)),
            *(store.commit(put((b"key%04d" % i, b"updated"))) for i in range(1, 100, 3)),
        )
    finally:
        await store.close()
    reopened = LevelDBStorage(tmp_path / "db")
    try:
        expected = {b"key%04d" % i: b"value%d" % i for i in range(2, 100, 3)}
        expected |= {b"key%04d" % i: b"updated" for i in range(1, 100, 3)}
        assert list(reopened.scan(b"key")) == sorted(expected.items())
    finally:
        await reopened.close()


async def test_second_open_of_a_locked_db_raises_storage_error(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db")
    try:
        with pytest.raises(StorageError):
            LevelDBStorage(tmp_path / "db")
    finally:
        await store.close()


async def test_cancelled_commit_does_not_disturb_the_others(gated: GatedWriter, gated_store: LevelDBStorage) -> None:
    store = gated_store
    commits = [asyncio.create_task(store.commit(keyed(i))) for i in range(4)]
    await gated.wait_entered()
    commits[1].cancel()
    gated.gate.set()
    outcomes = await asyncio.gather(*commits, return_exceptions=True)
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert [outcomes[i] for i in (0, 2, 3)] == [None, None, None]
    assert store.get(b"key0001") == b"value1"  # handed over, so written all the same
    await store.commit(keyed(9))


async def test_unsynced_mode_still_writes(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db", sync=False)
    try:
        assert not store.sync
        await asyncio.gather(*(store.commit(keyed(i)) for i in range(20)))
        assert len(list(store.scan(b"key"))) == 20
    finally:
        await store.close()
