"""ChannelStore (the ChanStore core) over every storage adapter, plus LevelDB restart and fail-stop tests."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chan_store import keys
from chan_store.contract import ChannelExistsAt, PaymentApplied, PaymentItem, StateConflict, state_digest
from chan_store.engine import ChannelEngine
from chan_store.leveldb_storage import LevelDBStorage
from chan_store.memory_storage import MemoryStorage
from chan_store.postgres import PostgresChannelStore
from chan_store.storage import Storage, StorageError, WriteBatch
from chan_store.store import ChannelStore
from paychan_common.errors import (
    ChannelGone,
    ChannelNotFound,
    InvalidInput,
    InvalidPayment,
    PaychanError,
    ServiceUnavailable,
)
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint
from paychan_runtime.http_errors import http_status
from tests.support.channels import OPENED_AT, STORE_EXP_TIME, make_channel, with_status
from tests.support.postgres import fresh_pg_engine
from tests.support.storage import WAIT, FatalRecorder, GatedWriter

# --------------------------------------------------------------------------- fixtures


ADAPTERS = ["memory", "leveldb"]


def open_storage(kind: str, path: Path) -> Storage:
    return MemoryStorage() if kind == "memory" else LevelDBStorage(path)


@pytest.fixture(params=ADAPTERS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each storage adapter in turn, on a fresh directory."""
    opened = open_storage(request.param, tmp_path / "db")
    yield opened
    await opened.close()


@pytest.fixture
def fatal() -> FatalRecorder:
    return FatalRecorder()


@pytest.fixture
def kv_store(storage: Storage, fatal: FatalRecorder) -> ChannelStore:
    """A loaded ChannelStore over the key-value adapter under test (for tests that look at the storage)."""
    core = ChannelStore(storage, on_fatal=fatal)
    core.load()
    return core


ENGINES = [*ADAPTERS, "postgres"]


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path, fatal: FatalRecorder) -> AsyncIterator[Any]:
    """The channel-engine contract: every engine in turn (LevelDB's single writer over each key-value
    adapter, and PostgreSQL, where the database decides every write)."""
    if request.param == "postgres":
        engine = await fresh_pg_engine(request.getfixturevalue("pg_server"))
        yield engine
        await engine.close()
        return
    opened = open_storage(request.param, tmp_path / "db")
    core = ChannelStore(opened, on_fatal=fatal)
    core.load()
    yield core
    await opened.close()


async def counts(store: ChannelEngine) -> dict[str, int]:
    """The engine's channel counts, refreshed from the database where the engine keeps none itself."""
    if isinstance(store, PostgresChannelStore):
        await store.refresh_counts()
    return store.counts()


async def close_channel(store: ChannelEngine, state: ChannelState) -> ChannelState:
    """open -> closing -> closed through compare-and-set."""
    closing = await store.compare_and_set(state_digest(state), with_status(state, Status.CLOSING))
    return await store.compare_and_set(state_digest(closing), with_status(closing, Status.CLOSED, "ab" * 32))


# --------------------------------------------------------------------------- create / get


async def test_create_then_get(store: ChannelEngine) -> None:
    chan = make_channel(1)
    assert await store.create(chan.state) == chan.state
    assert await store.get(chan.outpoint) == chan.state
    assert await store.get(make_channel(2).outpoint) is None
    assert await counts(store) == {"open": 1, "closing": 0, "closed": 0}


async def test_create_same_outpoint_exists(store: ChannelEngine) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    with pytest.raises(ChannelExistsAt) as info:
        await store.create(chan.state)
    assert info.value.code == "channel_exists"
    assert http_status(info.value) == 409
    assert info.value.existing_outpoint == chan.outpoint
    assert "funding outpoint" in info.value.message


async def test_create_open_channel_for_same_key_exists(store: ChannelEngine) -> None:
    first = make_channel(1)
    second = make_channel(1, vout=first.outpoint.vout + 1)
    assert first.state.client_pubkey == second.state.client_pubkey
    await store.create(first.state)
    with pytest.raises(ChannelExistsAt) as info:
        await store.create(second.state)
    assert info.value.code == "open_channel_exists"
    assert info.value.existing_outpoint == first.outpoint
    assert "client key" in info.value.message
    assert await store.get(second.outpoint) is None


async def test_closing_channel_for_same_key_does_not_block(store: ChannelEngine) -> None:
    first = make_channel(1)
    await store.create(first.state)
    await store.compare_and_set(state_digest(first.state), with_status(first.state, Status.CLOSING))
    second = make_channel(1, vout=first.outpoint.vout + 1)
    await store.create(second.state)  # only an OPEN channel of the key blocks (spec 6.5)


async def test_closed_channel_for_same_key_does_not_block_new_outpoint(store: ChannelEngine) -> None:
    first = make_channel(1)
    await store.create(first.state)
    await close_channel(store, first.state)
    second = make_channel(1, vout=first.outpoint.vout + 1)
    assert await store.create(second.state) == second.state
    with pytest.raises(ChannelExistsAt) as info:  # the closed outpoint itself stays taken
        await store.create(first.state)
    assert info.value.existing_outpoint == first.outpoint


async def test_create_refuses_non_open_state(store: ChannelEngine) -> None:
    chan = make_channel(1)
    with pytest.raises(InvalidInput):
        await store.create(with_status(chan.state, Status.CLOSING))
    with pytest.raises(InvalidInput):
        await store.create(dataclasses.replace(chan.state, client_pubkey=b"\x02" * 32))
    with pytest.raises(InvalidInput):
        await store.create(dataclasses.replace(chan.state, payment_count=2**32))  # does not serialize
    assert await store.get(chan.outpoint) is None


async def test_concurrent_creates_of_one_channel_exactly_one_wins(store: ChannelEngine) -> None:
    chan = make_channel(1)
    outcomes = await asyncio.gather(*(store.create(chan.state) for _ in range(20)), return_exceptions=True)
    assert sum(1 for o in outcomes if o == chan.state) == 1
    assert sum(1 for o in outcomes if isinstance(o, ChannelExistsAt)) == 19
    assert (await counts(store))["open"] == 1


async def test_concurrent_creates_of_one_key_exactly_one_wins(store: ChannelEngine) -> None:
    chans = [make_channel(1, vout=v) for v in range(10)]
    outcomes = await asyncio.gather(*(store.create(c.state) for c in chans), return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, ChannelState)]
    assert len(winners) == 1
    assert all(isinstance(o, ChannelExistsAt) and o.existing_outpoint == winners[0].outpoint
               for o in outcomes if not isinstance(o, ChannelState))


# --------------------------------------------------------------------------- payments


async def test_apply_payments_in_order(store: ChannelEngine) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    start = chan.state.change_value
    total = 0
    for i in range(1, 6):
        [result] = await store.apply_payments([chan.pay(start - 1000 * i, OPENED_AT + i)], OPENED_AT + 100)
        assert isinstance(result, PaymentApplied)
        assert result == PaymentApplied(1000, start - 1000 * i, Status.OPEN)
        total += result.value_received
    state = await store.get(chan.outpoint)
    assert state is not None
    assert state.change_value == start - total
    assert state.payment_count == 6
    assert state.last_payment_time == OPENED_AT + 5
    item = chan.pay(start - 5000)
    assert state.signature == item.der


async def test_item_without_time_takes_the_call_time(store: ChannelEngine) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    item = dataclasses.replace(chan.pay(chan.state.change_value - 1), now=None)
    await store.apply_payments([item], OPENED_AT + 777)
    state = await store.get(chan.outpoint)
    assert state is not None and state.last_payment_time == OPENED_AT + 777


async def test_out_of_order_payment(store: ChannelEngine) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    start = chan.state.change_value
    await store.apply_payments([chan.pay(start - 5000)], OPENED_AT)
    [result] = await store.apply_payments([chan.pay(start - 4000)], OPENED_AT)
    assert isinstance(result, InvalidPayment)
    assert result.code == "out_of_order"
    state = await store.get(chan.outpoint)
    assert state is not None and state.change_value == start - 5000
    [same] = await store.apply_payments([chan.pay(start - 5000)], OPENED_AT)  # a zero-value payment is fine
    assert isinstance(same, PaymentApplied) and same.value_received == 0


async def test_payment_to_unknown_channel(store: ChannelEngine) -> None:
    [result] = await store.apply_payments([make_channel(9).pay(1000)], OPENED_AT)
    assert isinstance(result, ChannelNotFound)
    assert http_status(result) == 404


@pytest.mark.parametrize("status", [Status.CLOSING, Status.CLOSED])
async def test_payment_to_closing_or_closed_channel_is_gone(store: ChannelEngine, status: Status) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    closing = await store.compare_and_set(state_digest(chan.state), with_status(chan.state, Status.CLOSING))
    if status is Status.CLOSED:
        await store.compare_and_set(state_digest(closing), with_status(closing, Status.CLOSED, "cd" * 32))
    [result] = await store.apply_payments([chan.pay(chan.state.change_value - 10)], OPENED_AT)
    assert isinstance(result, ChannelGone)
    assert result.code == f"channel_{status.label}"
    assert http_status(result) == 410


async def test_batch_with_mixed_results_is_one_commit(kv_store: ChannelStore, storage: Storage) -> None:
    store = kv_store
    a, b, c = make_channel(1), make_channel(2), make_channel(3)
    for chan in (a, b, c):
        await store.create(chan.state)
    await close_channel(store, c.state)
    before = storage.stats().writes
    start_a, start_b = a.state.change_value, b.state.change_value
    results = await store.apply_payments([
        a.pay(start_a - 100),
        make_channel(4).pay(5),      # unknown
        a.pay(start_a - 50),         # out of order after the first
        b.pay(start_b - 300),
        c.pay(c.state.change_value - 1),  # closed
        a.pay(start_a - 250),        # same channel again, applied after the first
    ], OPENED_AT)
    assert [type(r) for r in results] == [PaymentApplied, ChannelNotFound, InvalidPayment, PaymentApplied,
                                          ChannelGone, PaymentApplied]
    assert results[0] == PaymentApplied(100, start_a - 100, Status.OPEN)
    assert results[5] == PaymentApplied(150, start_a - 250, Status.OPEN)
    assert storage.stats().writes == before + 1
    state_a, state_b = await store.get(a.outpoint), await store.get(b.outpoint)
    assert state_a is not None and state_a.change_value == start_a - 250 and state_a.payment_count == 3
    assert state_b is not None and state_b.change_value == start_b - 300


async def test_all_failed_batch_writes_nothing(kv_store: ChannelStore, storage: Storage) -> None:
    store = kv_store
    before = storage.stats().writes
    results = await store.apply_payments([make_channel(4).pay(5)], OPENED_AT)
    assert isinstance(results[0], ChannelNotFound)
    assert storage.stats().writes == before


async def test_apply_payments_refuses_bad_calls(store: ChannelEngine) -> None:
    with pytest.raises(InvalidInput):
        await store.apply_payments([], -1)
    with pytest.raises(InvalidInput):
        await store.apply_payments([make_channel(1).pay(1)] * 10_001, OPENED_AT)
    with pytest.raises(InvalidInput):
        PaymentItem(make_channel(1).outpoint, -1, b"\x30", 0x83)


# --------------------------------------------------------------------------- compare-and-set and indexes


async def test_cas_success_moves_index_entries(kv_store: ChannelStore, storage: Storage) -> None:
    store = kv_store
    chan = make_channel(1)
    await store.create(chan.state)
    op = chan.outpoint.serialize()
    open_key = keys.status_key(Status.OPEN, STORE_EXP_TIME, op)
    closing_key = keys.status_key(Status.CLOSING, STORE_EXP_TIME, op)
    assert storage.get(open_key) == b""
    assert storage.get(keys.client_key(chan.state.client_pubkey, op)) == b""
    closing = with_status(chan.state, Status.CLOSING)
    assert await store.compare_and_set(state_digest(chan.state), closing) == closing
    assert storage.get(open_key) is None
    assert storage.get(closing_key) == b""
    assert storage.get(keys.channel_key(op)) == closing.serialize()
    assert await store.get(chan.outpoint) == closing
    assert await counts(store) == {"open": 0, "closing": 1, "closed": 0}


async def test_cas_conflict_returns_current(store: ChannelEngine) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    await store.apply_payments([chan.pay(chan.state.change_value - 10)], OPENED_AT)
    current = await store.get(chan.outpoint)
    with pytest.raises(StateConflict) as info:
        await store.compare_and_set(state_digest(chan.state), with_status(chan.state, Status.CLOSING))
    assert info.value.current == current
    assert http_status(info.value) == 409
    assert await store.get(chan.outpoint) == current


async def test_concurrent_cas_exactly_one_wins(store: ChannelEngine) -> None:
    chan = make_channel(1)
    await store.create(chan.state)
    digest = state_digest(chan.state)
    news = [dataclasses.replace(chan.state, status=Status.CLOSING, settlement_fee=i) for i in range(10)]
    outcomes = await asyncio.gather(*(store.compare_and_set(digest, n) for n in news), return_exceptions=True)
    assert sum(1 for o in outcomes if isinstance(o, ChannelState)) == 1
    assert sum(1 for o in outcomes if isinstance(o, StateConflict)) == 9


async def test_cas_unknown_and_identity_changes(store: ChannelEngine) -> None:
    chan = make_channel(1)
    with pytest.raises(ChannelNotFound):
        await store.compare_and_set(state_digest(chan.state), chan.state)
    await store.create(chan.state)
    other_key = dataclasses.replace(chan.state, client_pubkey=make_channel(2).state.client_pubkey)
    with pytest.raises(InvalidInput):
        await store.compare_and_set(state_digest(chan.state), other_key)
    with pytest.raises(InvalidInput):
        await store.compare_and_set(b"short", chan.state)
    assert await store.compare_and_set(state_digest(chan.state), chan.state) == chan.state  # no-op


async def test_closed_channels_leave_memory_and_stay_readable(store: ChannelEngine) -> None:
    chans = [make_channel(i) for i in range(3)]
    for chan in chans:
        await store.create(chan.state)
    assert store.memory()["live"] == 3
    closed = await close_channel(store, chans[0].state)
    assert store.memory()["live"] == 2
    assert await store.get(chans[0].outpoint) == closed
    assert await counts(store) == {"open": 2, "closing": 0, "closed": 1}
    # a closed channel can still be updated by compare-and-set (read from storage)
    confirmed = dataclasses.replace(closed, settlement_fee=1234)
    assert await store.compare_and_set(state_digest(closed), confirmed) == confirmed
    assert store.memory()["live"] == 2
    assert await store.get(chans[0].outpoint) == confirmed
    assert (await counts(store))["closed"] == 1


async def test_cache_is_bounded(storage: Storage, fatal: FatalRecorder) -> None:
    store = ChannelStore(storage, cache_size=2, on_fatal=fatal)
    store.load()
    chans = [make_channel(i) for i in range(5)]
    for chan in chans:
        await store.create(chan.state)
    assert store.memory() == {"live": 5, "cached": 2}
    for chan in chans:
        assert await store.get(chan.outpoint) == chan.state
    assert store.memory()["cached"] == 2


async def test_list_by_status_expiry_client_and_pages(store: ChannelEngine) -> None:
    chans = [make_channel(i, exp_time=STORE_EXP_TIME + 10 * (5 - i)) for i in range(6)]  # decreasing expiry
    for chan in chans:
        await store.create(chan.state)
    await store.compare_and_set(state_digest(chans[0].state), with_status(chans[0].state, Status.CLOSING))
    await close_channel(store, chans[1].state)

    open_page = await store.list(status=Status.OPEN)
    assert [s.outpoint for s in open_page.states] == [c.outpoint for c in reversed(chans[2:])]  # by expiry
    assert open_page.next is None
    assert [s.outpoint for s in (await store.list(status=Status.CLOSING)).states] == [chans[0].outpoint]
    assert [s.outpoint for s in (await store.list(status=Status.CLOSED)).states] == [chans[1].outpoint]

    expiring = await store.list(status=Status.OPEN, expiring_before=STORE_EXP_TIME + 20)
    assert [s.outpoint for s in expiring.states] == [chans[5].outpoint, chans[4].outpoint]

    first = await store.list(status=Status.OPEN, limit=3)
    assert len(first.states) == 3 and first.next == first.states[-1].outpoint
    second = await store.list(status=Status.OPEN, limit=3, after=first.next)
    assert [s.outpoint for s in first.states + second.states] == [c.outpoint for c in reversed(chans[2:])]

    everything = await store.list()
    assert sorted(s.outpoint.serialize() for s in everything.states) == [s.outpoint.serialize()
                                                                          for s in everything.states]
    assert len(everything.states) == 6
    paged: list[ChannelState] = []
    cursor: OutPoint | None = None
    while True:
        page = await store.list(limit=4, after=cursor)
        paged += page.states
        if page.next is None:
            break
        cursor = page.next
    assert paged == list(everything.states)

    mine = await store.list(client_pubkey=chans[1].state.client_pubkey)
    assert [s.status for s in mine.states] == [Status.CLOSED]
    assert (await store.list(client_pubkey=chans[1].state.client_pubkey, status=Status.OPEN)).states == ()


async def test_list_by_client_across_channels(store: ChannelEngine) -> None:
    first = make_channel(1, vout=0)
    await store.create(first.state)
    await close_channel(store, first.state)
    second = make_channel(1, vout=1)
    await store.create(second.state)
    page = await store.list(client_pubkey=first.state.client_pubkey, limit=1)
    assert page.states[0].outpoint == first.outpoint and page.next == first.outpoint
    rest = await store.list(client_pubkey=first.state.client_pubkey, limit=1, after=page.next)
    assert rest.states[0] == second.state


async def test_list_refuses_bad_queries(store: ChannelEngine) -> None:
    with pytest.raises(InvalidInput):
        await store.list(expiring_before=5)  # needs an index
    with pytest.raises(InvalidInput):
        await store.list(limit=0)
    with pytest.raises(InvalidInput):
        await store.list(limit=1001)
    with pytest.raises(InvalidInput):
        await store.list(status=Status.OPEN, after=make_channel(1).outpoint)  # unknown cursor
    with pytest.raises(InvalidInput):
        await store.list(client_pubkey=b"\x02" * 5)


# --------------------------------------------------------------------------- LevelDB: restart, durability


async def test_restart_reloads_open_and_closing_and_counts(tmp_path: Path, fatal: FatalRecorder) -> None:
    chans = [make_channel(i) for i in range(6)]
    storage = LevelDBStorage(tmp_path / "db")
    store = ChannelStore(storage, on_fatal=fatal)
    store.load()
    for chan in chans:
        await store.create(chan.state)
    await store.apply_payments([chans[2].pay(chans[2].state.change_value - 777)], OPENED_AT)
    await store.compare_and_set(state_digest(chans[3].state), with_status(chans[3].state, Status.CLOSING))
    await close_channel(store, chans[4].state)
    await close_channel(store, chans[5].state)
    expected = {c.outpoint: await store.get(c.outpoint) for c in chans}
    await storage.close()

    reopened = LevelDBStorage(tmp_path / "db")
    try:
        again = ChannelStore(reopened, on_fatal=fatal)
        again.load()
        assert again.counts() == {"open": 3, "closing": 1, "closed": 2}
        assert again.memory()["live"] == 4
        for chan in chans:
            assert await again.get(chan.outpoint) == expected[chan.outpoint]
        [result] = await again.apply_payments([chans[2].pay(chans[2].state.change_value - 1000)], OPENED_AT)
        assert result == PaymentApplied(223, chans[2].state.change_value - 1000, Status.OPEN)
        with pytest.raises(ChannelExistsAt):
            await again.create(make_channel(0, vout=6).state)  # key 0 still has its open channel
    finally:
        await reopened.close()
    assert fatal.calls == []


async def test_nothing_is_acknowledged_before_it_is_durable(tmp_path: Path, fatal: FatalRecorder) -> None:
    writer = GatedWriter()
    storage = LevelDBStorage(tmp_path / "db", writer=writer)
    try:
        store = ChannelStore(storage, on_fatal=fatal)
        store.load()
        chan = make_channel(1)
        await store.create(chan.state)
        writer.gate.clear()
        writer.entered.clear()
        pay = asyncio.create_task(store.apply_payments([chan.pay(chan.state.change_value - 10)], OPENED_AT))
        await asyncio.to_thread(writer.entered.wait, WAIT)
        read = asyncio.create_task(store.get(chan.outpoint))  # sees the new state: must wait for it too
        done, _ = await asyncio.wait({pay, read}, timeout=0.05)
        assert not done
        writer.gate.set()
        [result] = await pay
        assert isinstance(result, PaymentApplied)
        state = await read
        assert state is not None and state.change_value == chan.state.change_value - 10
    finally:
        writer.gate.set()
        await storage.close()


class Replies:
    """What `ChannelStore.start_payments` replied, and a way to wait for it."""

    def __init__(self) -> None:
        self.got: list[list[Any] | Exception] = []
        self.event = asyncio.Event()

    def __call__(self, outcome: list[Any] | Exception) -> None:
        self.got.append(outcome)
        self.event.set()

    async def one(self) -> list[Any] | Exception:
        await asyncio.wait_for(self.event.wait(), WAIT)
        await asyncio.sleep(0.01)  # a second reply would arrive meanwhile
        assert len(self.got) == 1, self.got
        return self.got[0]


async def test_start_payments_replies_once_what_apply_payments_returns(kv_store: ChannelStore,
                                                                      storage: Storage) -> None:
    chan = make_channel(1)
    await kv_store.create(chan.state)
    start = chan.state.change_value
    paid = Replies()
    kv_store.start_payments([chan.pay(start - 700), make_channel(9).pay(1000)], OPENED_AT, paid)
    if isinstance(storage, MemoryStorage):
        assert len(paid.got) == 1  # nothing to wait for: the reply came before start_payments returned
    else:
        assert paid.got == []  # the group write runs in a later callback
    applied, unknown = await paid.one()  # type: ignore[misc]
    assert applied == PaymentApplied(700, start - 700, Status.OPEN)
    assert isinstance(unknown, ChannelNotFound)
    stored = await kv_store.get(chan.outpoint)
    assert stored is not None and stored.change_value == start - 700
    refused = Replies()
    kv_store.start_payments([make_channel(9).pay(1000)], OPENED_AT, refused)
    assert len(refused.got) == 1 and isinstance(refused.got[0][0], ChannelNotFound)  # type: ignore[index]
    bad = Replies()
    kv_store.start_payments([chan.pay(start - 800)], -1, bad)  # refused as apply_payments would raise it
    assert len(bad.got) == 1 and isinstance(bad.got[0], InvalidInput)
    with pytest.raises(InvalidInput):
        await kv_store.apply_payments([chan.pay(start - 800)], -1)


async def test_start_payments_replies_after_the_write_and_waits_for_a_write_judged_against(
        tmp_path: Path, fatal: FatalRecorder) -> None:
    writer = GatedWriter(released=False)
    storage = LevelDBStorage(tmp_path / "db", writer=writer)
    chan = make_channel(1)
    try:
        store = ChannelStore(storage, on_fatal=fatal)
        store.load()
        writer.gate.set()
        await store.create(chan.state)
        writer.close()
        start = chan.state.change_value
        first, late = Replies(), Replies()
        store.start_payments([chan.pay(start - 500)], OPENED_AT, first)
        await writer.wait_entered()
        # an out-of-order payment is judged against the pending state: its refusal waits for that write
        store.start_payments([chan.pay(start - 400)], OPENED_AT, late)
        await asyncio.sleep(0.05)
        assert first.got == [] and late.got == []
        writer.gate.set()
        [applied] = await first.one()  # type: ignore[misc]
        assert applied == PaymentApplied(500, start - 500, Status.OPEN)
        assert chan.outpoint.serialize() in {k[-36:] for k in writer.durable}
        [refused] = await late.one()  # type: ignore[misc]
        assert isinstance(refused, InvalidPayment) and refused.code == "out_of_order"
        writer.fail = True
        failed = Replies()
        store.start_payments([chan.pay(start - 600)], OPENED_AT, failed)
        assert isinstance(await failed.one(), ServiceUnavailable)
        assert store.failed and len(fatal.calls) == 1
    finally:
        await storage.close()


async def test_storage_error_fail_stops_and_acknowledges_nothing(tmp_path: Path, fatal: FatalRecorder) -> None:
    writer = GatedWriter()
    storage = LevelDBStorage(tmp_path / "db", writer=writer)
    chan, other = make_channel(1), make_channel(2)
    try:
        store = ChannelStore(storage, on_fatal=fatal)
        store.load()
        await store.create(chan.state)
        writer.fail = True
        outcomes = await asyncio.gather(
            store.apply_payments([chan.pay(chan.state.change_value - 10)], OPENED_AT),
            store.create(other.state),
            return_exceptions=True,
        )
        assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes
        assert len(fatal.calls) == 1
        assert store.failed
        with pytest.raises(ServiceUnavailable):
            await store.get(chan.outpoint)
        with pytest.raises(ServiceUnavailable):
            await store.apply_payments([chan.pay(chan.state.change_value - 20)], OPENED_AT)
    finally:
        await storage.close()
    reopened = LevelDBStorage(tmp_path / "db")  # the restart: disk holds only what was acknowledged
    try:
        again = ChannelStore(reopened, on_fatal=fatal)
        again.load()
        assert await again.get(chan.outpoint) == chan.state
        assert await again.get(other.outpoint) is None
    finally:
        await reopened.close()


async def test_corrupt_stored_state_is_an_internal_error(storage: Storage, fatal: FatalRecorder) -> None:
    chan = make_channel(1)
    store = ChannelStore(storage, on_fatal=fatal)
    store.load()
    await storage.commit(WriteBatch(puts=((keys.channel_key(chan.outpoint.serialize()), b"garbage"),)))
    with pytest.raises(StorageError) as info:  # not a client error (PaychanError): a generic 500
        await store.get(chan.outpoint)
    assert not isinstance(info.value, PaychanError)
    with pytest.raises(StorageError, match=f"state of channel {chan.outpoint.serialize().hex()} is corrupt"):
        ChannelStore(storage, on_fatal=fatal).load()  # and the next start refuses the store


# --------------------------------------------------------------------------- key layout


@pytest.mark.parametrize("status", list(Status))
def test_raw_accessors_agree_with_parse(status: Status) -> None:
    state = with_status(make_channel(3, exp_time=0xFFFFFFFF).state, status, "ef" * 32)
    data, op = state.serialize(), state.outpoint.serialize()
    assert keys.raw_status(data) is status
    assert keys.raw_client_pubkey(data) == state.client_pubkey
    assert keys.raw_exp_time(data) == 0xFFFFFFFF
    assert keys.raw_outpoint(data) == op
    assert keys.raw_index_fields(data) == bytes([status.value]) + state.client_pubkey + b"\xff\xff\xff\xff"
    other = Status.CLOSED if status is Status.OPEN else Status.OPEN
    assert keys.same_status(data, data) and not keys.same_status(data, with_status(state, other, "").serialize())
    client_key, status_key = keys.index_keys(op, data)
    assert client_key == b"k" + state.client_pubkey + op
    assert status_key == b"s" + bytes([status.value]) + b"\xff\xff\xff\xff" + op
    assert keys.raw_index_key_ok(status_key, op, data)
    assert not keys.raw_index_key_ok(keys.status_key(status, 5, op), op, data)
    assert not keys.raw_index_key_ok(status_key, op, data[:100])
    assert keys.raw_index_keys(op, data) == (client_key, status_key)
    assert keys.raw_index_keys(make_channel(4).outpoint.serialize(), data) is None  # not its own state
    assert keys.raw_index_keys(op, data[:120]) is None
    assert keys.raw_index_keys(op, b"\x02" + data[1:]) is None  # another format version
    assert keys.raw_index_keys(op, data[:2] + b"\x09" + data[3:]) is None  # no such status


@pytest.mark.parametrize("damage", ["missing", "wrong_status", "wrong_expiry"])
async def test_load_refuses_an_inconsistent_index(storage: Storage, fatal: FatalRecorder, damage: str) -> None:
    chan = make_channel(1)
    op = chan.outpoint.serialize()
    data = chan.state.serialize()
    key = {"missing": keys.status_key(Status.OPEN, STORE_EXP_TIME, op),
           "wrong_status": keys.status_key(Status.CLOSING, STORE_EXP_TIME, op),
           "wrong_expiry": keys.status_key(Status.OPEN, STORE_EXP_TIME + 1, op)}[damage]
    puts = ((key, b""),) if damage == "missing" else ((key, b""), (keys.channel_key(op), data))
    await storage.commit(WriteBatch(puts=puts))
    with pytest.raises(StorageError):
        ChannelStore(storage, on_fatal=fatal).load()


# --------------------------------------------------------------------------- start-up check (2,000 channels)


def bulk_states(count: int) -> list[ChannelState]:
    """`count` stored channels of every status and many expiries (one key's state, moved to other outpoints)."""
    base = make_channel(1).state
    states = []
    for i in range(count):
        status = (Status.OPEN, Status.CLOSING, Status.CLOSED)[i % 3]
        moved = dataclasses.replace(base, outpoint=OutPoint(hashlib.sha256(b"%d" % i).digest(), i % 7),
                                    exp_time=STORE_EXP_TIME + i % 50)
        states.append(with_status(moved, status, "ab" * 32 if status is Status.CLOSED else ""))
    return states


async def fill(storage: Storage, states: list[ChannelState]) -> None:
    """Write states and their index entries straight into the storage, as ChannelStore lays them out."""
    puts: list[tuple[bytes, bytes]] = []
    for state in states:
        op, data = state.outpoint.serialize(), state.serialize()
        puts.append((keys.channel_key(op), data))
        puts.extend((key, b"") for key in keys.index_keys(op, data))
    await storage.commit(WriteBatch(puts=tuple(puts)))


async def check_finished(store: ChannelStore) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while store.checking:
        assert asyncio.get_running_loop().time() < deadline, "the background start-up check did not finish"
        await asyncio.sleep(0.01)


async def test_background_check_passes_while_the_store_serves(storage: Storage, fatal: FatalRecorder) -> None:
    states = bulk_states(2000)
    await fill(storage, states)
    store = ChannelStore(storage, on_fatal=fatal)
    store.load(background_check=True)
    assert store.checking
    assert store.counts() == {"open": 667, "closing": 667, "closed": 666}
    chan = make_channel(2)  # served while the check reads its snapshot
    await store.create(chan.state)
    [paid] = await store.apply_payments([chan.pay(chan.state.change_value - 5)], OPENED_AT)
    assert isinstance(paid, PaymentApplied)
    assert await store.get(states[3].outpoint) == states[3]
    await check_finished(store)
    assert not store.failed and fatal.calls == []
    assert store.counts() == {"open": 668, "closing": 667, "closed": 666}
    store.load()  # the synchronous check passes too, the new channel included


DAMAGES = ["state_status", "state_expiry", "missing_status_entry", "missing_client_entry", "extra_entry",
           "corrupt_state", "foreign_state"]


async def damage_store(storage: Storage, states: list[ChannelState], damage: str) -> bytes:
    """Damage one channel of a filled store; the outpoint that must be named."""
    victim = states[1000]
    op, data = victim.outpoint.serialize(), victim.serialize()
    client_key, status_key = keys.index_keys(op, data)
    if damage == "state_status":
        batch = WriteBatch(puts=((keys.channel_key(op), with_status(victim, Status.CLOSED, "cd" * 32).serialize()),))
    elif damage == "state_expiry":
        batch = WriteBatch(puts=((keys.channel_key(op), dataclasses.replace(victim, exp_time=7).serialize()),))
    elif damage == "missing_status_entry":
        batch = WriteBatch(deletes=(status_key,))
    elif damage == "missing_client_entry":
        batch = WriteBatch(deletes=(client_key,))
    elif damage == "extra_entry":
        op = make_channel(9).outpoint.serialize()
        batch = WriteBatch(puts=((keys.status_key(Status.OPEN, STORE_EXP_TIME, op), b""),))
    elif damage == "corrupt_state":
        batch = WriteBatch(puts=((keys.channel_key(op), data[:90]),))
    else:  # the state of another channel under this outpoint
        batch = WriteBatch(puts=((keys.channel_key(op), states[1003].serialize()),))
    await storage.commit(batch)
    return op


@pytest.mark.parametrize("damage", DAMAGES)
async def test_start_up_check_finds_a_damaged_channel(storage: Storage, fatal: FatalRecorder, damage: str) -> None:
    states = bulk_states(2000)
    await fill(storage, states)
    ChannelStore(storage, on_fatal=fatal).load()  # sound before the damage
    op = await damage_store(storage, states, damage)
    with pytest.raises(StorageError, match=op.hex()):  # synchronous: the channel at fault is named
        ChannelStore(storage, on_fatal=fatal).load()

    store = ChannelStore(storage, on_fatal=fatal)
    store.load(background_check=True)  # in the background: the store serves, then fail-stops
    assert not store.failed
    await check_finished(store)
    assert store.failed
    assert len(fatal.calls) == 1 and isinstance(fatal.calls[0], StorageError)
    with pytest.raises(ServiceUnavailable):
        await store.get(states[0].outpoint)
    with pytest.raises(ServiceUnavailable):
        await store.create(make_channel(3).state)


async def test_background_check_stops_with_the_store(tmp_path: Path, fatal: FatalRecorder) -> None:
    storage = LevelDBStorage(tmp_path / "db")
    await fill(storage, bulk_states(2000))
    store = ChannelStore(storage, on_fatal=fatal)
    store.load(background_check=True)
    await store.stop_check()
    assert not store.checking and not store.failed and fatal.calls == []
    await storage.close()
