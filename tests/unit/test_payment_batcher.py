"""ChanStoreClient's payment batcher (chan_store/client.py `_PaymentBatcher`) against a fake `send` port: an idle
batcher's payment travels alone in its caller's task, what queues meanwhile goes as the next batch, and the
lone path keeps the batch task's error edge (typed errors only) and its bookkeeping when the caller is
cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chan_store.client import _PaymentBatcher
from chan_store.contract import PaymentApplied, PaymentItem, PaymentResult
from paychan_common.errors import ChannelNotFound, ServiceUnavailable
from paychan_common.state import Status
from paychan_common.tx import OutPoint

DER = bytes.fromhex("3006020101020101")


def _item(n: int) -> PaymentItem:
    return PaymentItem(OutPoint(n.to_bytes(32, "big"), 0), 1_000 - n, DER, 0x83, now=1_700_000_000)


class _Store:
    """The send port: records each batch, answers after `release` is set (or at once), or fails."""

    def __init__(self, *, fail: BaseException | None = None) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail = fail
        self.tasks: list[asyncio.Task[object] | None] = []

    async def send(self, items: Sequence[PaymentItem]) -> list[PaymentResult]:
        self.batches.append([item.change_value for item in items])
        self.tasks.append(asyncio.current_task())
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [PaymentApplied(item.change_value, item.change_value, Status.OPEN) for item in items]


async def test_an_idle_batchers_payment_goes_alone_in_its_callers_task_and_the_queue_follows() -> None:
    store = _Store()
    batcher = _PaymentBatcher(store.send, max_in_flight=1, max_batch=100)
    result = await batcher.submit(_item(1))
    assert result == PaymentApplied(999, 999, Status.OPEN)
    assert store.tasks == [asyncio.current_task()]  # no batch task: sent from the caller's own task
    store.release.clear()
    first = asyncio.ensure_future(batcher.submit(_item(2)))
    await asyncio.sleep(0)  # the first is under way, alone
    rest = [asyncio.ensure_future(batcher.submit(_item(n))) for n in range(3, 7)]
    await asyncio.sleep(0)
    store.release.set()
    done = await asyncio.gather(first, *rest)
    assert [r.change_value for r in done if isinstance(r, PaymentApplied)] == [998, 997, 996, 995, 994]
    assert store.batches == [[999], [998], [997, 996, 995, 994]]
    assert batcher.batches_sent == 3
    assert store.tasks[1] is first and store.tasks[2] not in rest  # the queued ones went in a batch task


async def test_the_lone_path_raises_typed_errors_only() -> None:
    typed = _PaymentBatcher(_Store(fail=ChannelNotFound("no channel")).send, max_in_flight=1, max_batch=10)
    with pytest.raises(ChannelNotFound, match="no channel"):
        await typed.submit(_item(1))
    broken = _PaymentBatcher(_Store(fail=RuntimeError("internal detail")).send, max_in_flight=1, max_batch=10)
    with pytest.raises(ServiceUnavailable, match="chan store payment batch failed") as info:
        await broken.submit(_item(1))
    assert "internal detail" not in str(info.value)
    assert broken._in_flight == 0 and broken._in_flight_items == 0


async def test_a_cancelled_lone_caller_leaves_the_batcher_idle_and_the_queue_served() -> None:
    store = _Store()
    batcher = _PaymentBatcher(store.send, max_in_flight=1, max_batch=10)
    store.release.clear()
    lone = asyncio.ensure_future(batcher.submit(_item(1)))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(batcher.submit(_item(2)))
    await asyncio.sleep(0)
    lone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lone
    store.release.set()
    assert await queued == PaymentApplied(998, 998, Status.OPEN)  # sent once the lone one ended
    assert store.batches == [[999], [998]]
    assert batcher._in_flight == 0 and batcher._in_flight_items == 0 and not batcher._queue
