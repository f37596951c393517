"""The gateway's receipts: which request each channel payment paid for, and each channel's credit.

Stored through chan_store's storage port (LevelDB, synced group commit). Keys::

    b"r" + outpoint (36) + change_value (8, big-endian)  ->  Receipt (JSON)
    b"c" + outpoint (36)                                 ->  credit in satoshis (decimal)

A payment (one signature, one change value) is a receipt: bound to one request, used at most once.
Credit is value paid through the gateway and not yet spent on a served request (refunds, overpayment).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import orjson

from chan_store.storage import Storage, WriteBatch
from paychan_common.tx import OutPoint

__all__ = ["Ledger", "Receipt", "ReceiptState"]

ReceiptState = Literal["pending", "served", "unserved", "credited"]
# pending: stored before the payment goes to ChanStore; the request is (or was, before a crash) in flight.
# served: the upstream's answer was delivered; the payment can never be used again.
# unserved: the upstream did not serve it (down, 5xx, timeout, response not delivered); its price went to
#           credit, and a retry of the same request with the same payment is served from that credit.
# credited: the payment was worth less than the price; its value went to credit, the request got 402.


@dataclass(frozen=True, slots=True)
class Receipt:
    """One payment's binding to a request and what became of it."""

    request_key: bytes  # SHA256 binding of the request (method, target, idempotency key)
    state: ReceiptState
    price: int  # what the request was priced at when the payment arrived
    value: int | None = None  # what the payment was worth (None while pending: not yet known)
    charged: int = 0  # what was finally charged for the request

    def to_bytes(self) -> bytes:
        """JSON form."""
        return orjson.dumps({"k": self.request_key.hex(), "s": self.state, "p": self.price, "v": self.value,
                             "c": self.charged})

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Inverse of to_bytes."""
        d = orjson.loads(data)
        return cls(bytes.fromhex(d["k"]), d["s"], d["p"], d["v"], d["c"])


def _receipt_key(outpoint: OutPoint, change_value: int) -> bytes:
    return b"r" + outpoint.serialize() + change_value.to_bytes(8, "big")


def _credit_key(outpoint: OutPoint) -> bytes:
    return b"c" + outpoint.serialize()


class Ledger:
    """Receipts and credits over a durable storage.

    `record(..., durable=True)` returns once synced. `durable=False` (a request's final state) is visible to
    reads at once and reaches the disk with the next durable write or within `flush_delay` seconds, so a
    sequential client costs one synced ledger write per request. Lost on a crash, such a record leaves the
    receipt pending: the same request retried with the same payment is served once more (the operator's
    risk, never the client's)."""

    def __init__(self, storage: Storage, *, flush_delay: float = 0.005) -> None:
        self.storage = storage
        self.flush_delay = flush_delay
        self._overlay: dict[bytes, bytes] = {}  # written, not yet durable
        self._flusher: asyncio.Task[None] | None = None

    def _get(self, key: bytes) -> bytes | None:
        value = self._overlay.get(key)
        return value if value is not None else self.storage.get(key)

    def receipt(self, outpoint: OutPoint, change_value: int) -> Receipt | None:
        """The receipt of this payment, if it was ever presented."""
        data = self._get(_receipt_key(outpoint, change_value))
        return None if data is None else Receipt.from_bytes(data)

    def credit(self, outpoint: OutPoint) -> int:
        """The channel's stored credit."""
        data = self._get(_credit_key(outpoint))
        return 0 if data is None else int(data)

    async def record(self, outpoint: OutPoint, change_value: int, receipt: Receipt, credit: int | None = None,
                     *, durable: bool = True) -> None:
        """Store a receipt (and the channel's new credit) in one batch; synced before returning if durable."""
        puts = [(_receipt_key(outpoint, change_value), receipt.to_bytes())]
        if credit is not None:
            puts.append((_credit_key(outpoint), str(credit).encode()))
        self._overlay.update(puts)
        if durable:
            await self._commit()
        elif self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.flush_delay)
        self._flusher = None
        await self._commit()

    async def flush(self) -> None:
        """Make every record so far durable."""
        await self._commit()

    async def _commit(self) -> None:
        batch = dict(self._overlay)
        if not batch:
            return
        await self.storage.commit(WriteBatch(puts=tuple(batch.items())))
        for key, value in batch.items():
            if self._overlay.get(key) is value:
                del self._overlay[key]

    async def forget(self, outpoint: OutPoint, change_value: int) -> None:
        """Drop a pending receipt whose payment ChanStore refused (it never counted)."""
        key = _receipt_key(outpoint, change_value)
        self._overlay.pop(key, None)
        await self.storage.commit(WriteBatch(deletes=(key,)))

    async def close(self) -> None:
        """Write what is not yet durable, then release the storage."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        await self._commit()
        await self.storage.close()
