"""A batch commit through ChanStore acknowledges nothing before its synced write has returned.

The LevelDB writer is replaced (LevelDBStorage's `writer=` seam) by one that blocks until released: while
the synced group write carrying a `POST /payments` batch is blocked, neither that request nor the
coalesced `ChanStoreClient.apply_payment` calls nor a read of the new state may be answered; a write that
then fails answers every payment of the batch with an error, never a success.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from chan_store.app import create_app
from chan_store.client import ChanStoreClient
from chan_store.config import StoreConfig
from chan_store.contract import PaymentApplied, outpoint_hex, payment_item_json, state_hex
from chan_store.leveldb_storage import LevelDBStorage
from chan_store.storage import Storage
from paychan_common.errors import ServiceUnavailable
from tests.integration.test_chan_store_app import AUTH, store_config
from tests.support.channels import OPENED_AT, StoredChannel, make_channel
from tests.support.storage import FatalRecorder, GatedWriter

SETTLE = 0.2  # how long an answer that must not come is given to (wrongly) arrive

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]


class Harness:
    """ChanStore's app on a real TCP port, over LevelDB with the blocking writer."""

    def __init__(self, server: TestServer, writer: GatedWriter, fatal: FatalRecorder) -> None:
        self.server = server
        self.writer = writer
        self.fatal = fatal
        self.url = str(server.make_url(""))

    def client(self, overlap_below: int = 0) -> ChanStoreClient:
        """A ChanStoreClient on the app with one request in flight at a time (so payments coalesce), and
        one more while those in flight carry fewer than `overlap_below` payments."""
        return ChanStoreClient(self.url, AUTH["Authorization"].removeprefix("Bearer "), max_in_flight=1,
                               overlap_below=overlap_below)

    @staticmethod
    def pay(client: ChanStoreClient, chan: StoredChannel, value: int) -> asyncio.Task[PaymentApplied]:
        """A payment of `value` through client, as a task (its signature is not ChanStore's concern)."""
        return asyncio.create_task(client.apply_payment(chan.outpoint, chan.state.change_value - value,
                                                        b"\x30" * 70, 0x83, OPENED_AT))

    async def post(self, session: ClientSession, path: str, body: Any) -> tuple[int, Any]:
        async with session.post(self.url + path, data=orjson.dumps(body), headers=AUTH) as resp:
            return resp.status, await resp.json()

    async def get(self, session: ClientSession, path: str) -> tuple[int, Any]:
        async with session.get(self.url + path, headers=AUTH) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def harness(aiohttp_server: AiohttpServer, tmp_path: Path) -> AsyncIterator[Harness]:
    writer = GatedWriter()
    fatal = FatalRecorder()

    def factory(config: StoreConfig) -> Storage:
        assert config.storage.sync, "the default config syncs"
        return LevelDBStorage(config.storage.directory, sync=config.storage.sync, writer=writer)

    config = store_config(tmp_path)
    config.storage.directory.parent.mkdir(parents=True)
    server = await aiohttp_server(create_app(config, storage_factory=factory, on_fatal=fatal))
    try:
        yield Harness(server, writer, fatal)
    finally:
        writer.gate.set()  # never leave the writer thread blocked


async def open_channels(h: Harness, session: ClientSession, count: int) -> list[StoredChannel]:
    chans = [make_channel(100 + i) for i in range(count)]
    for chan in chans:
        status, body = await h.post(session, "/channels", {"state": state_hex(chan.state)})
        assert status == 201, body
    return chans


async def assert_pending(*tasks: asyncio.Future[Any]) -> None:
    """None of the tasks finishes while the write is blocked."""
    done, _ = await asyncio.wait(set(tasks), timeout=SETTLE)
    assert not done, "answered before the synced write returned"


async def test_post_payments_batch_is_answered_only_after_its_synced_write(harness: Harness) -> None:
    h = harness
    async with ClientSession() as session:
        chans = await open_channels(h, session, 3)
        items = [payment_item_json(c.pay(c.state.change_value - 7)) for c in chans]
        h.writer.close()
        pay = asyncio.create_task(h.post(session, "/payments", {"now": OPENED_AT, "payments": items}))
        await h.writer.wait_entered()
        # The group write carrying the whole batch has started, synced, and is blocked.
        puts, sync = h.writer.calls[-1]
        assert sync is True and puts == 3
        read = asyncio.create_task(h.get(session, "/channels/" + outpoint_hex(chans[0].outpoint)))
        await assert_pending(pay, read)
        assert h.writer.finished == 3  # only the three creates have been written

        h.writer.gate.set()
        status, body = await pay
        assert status == 200
        assert [r["ok"] for r in body["results"]] == [True, True, True]
        assert [r["value_received"] for r in body["results"]] == [7, 7, 7]
        assert h.writer.finished == 4  # the answer came after the write returned
        status, body = await read
        assert status == 200 and body["state"] != state_hex(chans[0].state)  # the read saw the durable state


@pytest.fixture
async def store_client(harness: Harness) -> AsyncIterator[ChanStoreClient]:
    """harness.client(), closed after (the writer released first, so no write stays blocked)."""
    client = harness.client()
    try:
        yield client
    finally:
        harness.writer.gate.set()
        await client.close()


async def test_coalesced_client_payments_wait_for_the_sync(harness: Harness, store_client: ChanStoreClient) -> None:
    h, client = harness, store_client
    async with ClientSession() as session:
        chans = await open_channels(h, session, 8)
    h.writer.close()
    first = h.pay(client, chans[0], 1)
    await h.writer.wait_entered()
    # More payments arrive while the first batch's write is blocked: they queue for the next batch.
    rest = [h.pay(client, c, 1) for c in chans[1:]]
    await assert_pending(first, *rest)
    h.writer.gate.set()
    results = await asyncio.gather(first, *rest)
    assert all(isinstance(r, PaymentApplied) and r.value_received == 1 for r in results)
    assert client.batches_sent == 2  # one request for the first, one for the seven that queued
    assert [sync for _, sync in h.writer.calls[-2:]] == [True, True]


async def test_an_overlapping_batch_waits_for_its_own_sync(harness: Harness) -> None:
    """Few payments: a second batch goes while the first one's write is blocked; ChanStore queues it for
    the next write, and neither is answered before the write carrying it returned."""
    h, client = harness, harness.client(overlap_below=3)
    try:
        async with ClientSession() as session:
            chans = await open_channels(h, session, 8)
        h.writer.close()
        first = h.pay(client, chans[0], 1)
        await h.writer.wait_entered()
        second = h.pay(client, chans[1], 1)
        for _ in range(20):  # the second request reaches ChanStore and queues behind the blocked write
            await asyncio.sleep(0.01)
        assert client.batches_sent == 2
        rest = [h.pay(client, c, 1) for c in chans[2:]]  # 2 batches in flight: these queue
        await assert_pending(first, second, *rest)
        assert client.batches_sent == 2
        h.writer.gate.set()
        results = await asyncio.gather(first, second, *rest)
        assert all(isinstance(r, PaymentApplied) and r.value_received == 1 for r in results)
        assert client.batches_sent == 3  # the six that queued went together
        assert h.writer.calls[-3:] == [(1, True), (1, True), (6, True)]  # one synced write per batch, in order
    finally:
        h.writer.gate.set()
        await client.close()


async def test_a_failed_synced_write_acknowledges_none_of_its_batch(harness: Harness,
                                                                   store_client: ChanStoreClient) -> None:
    h, client = harness, store_client
    async with ClientSession() as session:
        chans = await open_channels(h, session, 3)
        h.writer.close()
        pays = [h.pay(client, c, 2) for c in chans]
        await h.writer.wait_entered()
        await assert_pending(*pays)
        h.writer.fail = True
        h.writer.gate.set()
        outcomes = await asyncio.gather(*pays, return_exceptions=True)
        assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes
        assert len(h.fatal.calls) == 1  # the store fail-stops: memory is ahead of disk
        status, _ = await h.get(session, "/channels/" + outpoint_hex(chans[0].outpoint))
        assert status == 503
