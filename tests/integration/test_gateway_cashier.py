"""The gateway's exactly-once rules (paychan_gateway.cashier) over the real ledger code on the in-memory
storage adapter, with a fake PayChanService behind the same two calls (locate, pay)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from chan_store.memory_storage import MemoryStorage
from paychan_common.channel import ClientSignature
from paychan_common.errors import Conflict, InvalidPayment, ServiceUnavailable
from paychan_common.payment import Payment
from paychan_common.tx import OutPoint
from paychan_gateway.cashier import Cashier, PaymentRequired
from paychan_gateway.config import RouteConfig
from paychan_gateway.header import PaymentHeader, request_key
from paychan_gateway.ledger import Ledger
from paychan_gateway.pricing import Quote
from paychan_server.domain.results import PaymentResult

OP = OutPoint(bytes(range(32)), 1)
FUNDING = 1_000_000
SIG = ClientSignature(bytes.fromhex("3006020101020101"), 0x83)


@dataclass
class FakeService:
    """Applies payments like ChanStore does: change may not rise; value = previous - new change."""

    change: int = FUNDING
    applied: list[int] = field(default_factory=list)
    fail_next: bool = False
    lose_answer: bool = False  # apply the payment, then fail as if the answer was lost

    async def locate(self, outpoint: OutPoint, family: Any, *, secret: bytes | None = None) -> object:
        return object()

    async def pay(self, outpoint: OutPoint, payment: Payment, st: object) -> PaymentResult:
        if self.fail_next:
            self.fail_next = False
            raise InvalidPayment("signature verification failed")
        if payment.change_value > self.change:
            raise InvalidPayment("out-of-order payment", code="out_of_order")
        value = self.change - payment.change_value
        self.change = payment.change_value
        self.applied.append(value)
        if self.lose_answer:
            self.lose_answer = False
            raise ServiceUnavailable("ChanStore did not answer")
        return PaymentResult(channel_status="open", channel_value_left=self.change, value_received=value,
                             settlement_txid=None)


def _route(**price: Any) -> RouteConfig:
    return RouteConfig.model_validate({"name": "r", "prefix": "/", "upstream": "http://127.0.0.1:1", "price": price})


FIXED = Quote(_route(per_request=100), 100)
METERED = Quote(_route(per_kib=10, increment_kib=4), 40, 10)


def _header(change: int) -> PaymentHeader:
    return PaymentHeader(OP, bytes(32), Payment(change, SIG))


def _cashier(svc: FakeService, storage: MemoryStorage | None = None) -> tuple[Cashier, Ledger]:
    ledger = Ledger(storage or MemoryStorage())
    return Cashier(cast(Any, svc), ledger), ledger


KEY_A = request_key("GET", "/a", None)
KEY_B = request_key("GET", "/b", None)


async def test_a_payment_serves_one_request_once() -> None:
    svc = FakeService()
    cashier, _ = _cashier(svc)
    adm = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert adm.reserved == 100
    assert await cashier.settle(adm, upstream_ok=True, delivered=True) == 100
    for key in (KEY_A, KEY_B):  # the same request again, or another one: the payment is used up
        with pytest.raises(PaymentRequired) as info:
            await cashier.admit(_header(FUNDING - 100), key, FIXED)
        assert info.value.code == "payment_already_used"
    assert svc.applied == [100]


async def test_in_flight_duplicate_is_a_conflict() -> None:
    cashier, _ = _cashier(FakeService())
    await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    with pytest.raises(Conflict):
        await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)


async def test_unserved_request_is_not_charged_and_its_retry_is_served_once() -> None:
    svc = FakeService()
    cashier, ledger = _cashier(svc)
    adm = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert await cashier.settle(adm, upstream_ok=False, delivered=False) == 0
    assert ledger.credit(OP) == 100
    with pytest.raises(PaymentRequired):  # another request cannot take this payment
        await cashier.admit(_header(FUNDING - 100), KEY_B, FIXED)
    retry = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert await cashier.settle(retry, upstream_ok=True, delivered=True) == 100
    assert ledger.credit(OP) == 0 and svc.applied == [100]


async def test_short_payment_goes_to_credit_and_the_next_pays_the_rest() -> None:
    svc = FakeService()
    cashier, ledger = _cashier(svc)
    with pytest.raises(PaymentRequired) as info:
        await cashier.admit(_header(FUNDING - 60), KEY_A, FIXED)
    assert info.value.code == "payment_short" and info.value.credit == 60
    adm = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert await cashier.settle(adm, upstream_ok=True, delivered=True) == 100
    assert ledger.credit(OP) == 0 and sum(svc.applied) == 100


async def test_refused_payment_leaves_no_receipt() -> None:
    svc = FakeService(fail_next=True)
    cashier, ledger = _cashier(svc)
    with pytest.raises(InvalidPayment):
        await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert ledger.receipt(OP, FUNDING - 100) is None
    adm = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)  # a good payment with that value works
    assert adm.value == 100


async def test_metered_charges_the_kib_sent_and_credits_the_rest() -> None:
    svc = FakeService()
    cashier, ledger = _cashier(svc)
    adm = await cashier.admit(_header(FUNDING - 80), KEY_A, METERED)
    assert adm.reserved == 80 and METERED.allowance(adm.reserved) == 8 * 1024
    assert await cashier.settle(adm, upstream_ok=True, delivered=False, sent_bytes=3 * 1024 + 1) == 40
    assert ledger.credit(OP) == 40


async def test_a_crash_after_the_payment_leaves_a_retry_that_is_served_once() -> None:
    svc, storage = FakeService(), MemoryStorage()
    cashier, _ = _cashier(svc, storage)
    await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)  # stored in ChanStore; then the gateway dies
    restarted, ledger = _cashier(svc, storage)
    adm = await restarted.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert await restarted.settle(adm, upstream_ok=True, delivered=True) == 100
    assert sum(svc.applied) == 100 and ledger.credit(OP) == 0  # re-applied once: worth 0 the second time
    with pytest.raises(PaymentRequired):
        await restarted.admit(_header(FUNDING - 100), KEY_A, FIXED)


async def test_final_receipts_become_durable() -> None:
    storage = MemoryStorage()
    cashier, ledger = _cashier(FakeService(), storage)
    adm = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    await cashier.settle(adm, upstream_ok=True, delivered=True)
    await ledger.flush()
    assert ledger._overlay == {}
    receipt = Ledger(storage).receipt(OP, FUNDING - 100)
    assert receipt is not None and receipt.state == "served" and receipt.charged == 100


async def test_an_unknown_outcome_keeps_the_receipt_for_the_retry() -> None:
    svc = FakeService(lose_answer=True)
    cashier, ledger = _cashier(svc)
    with pytest.raises(ServiceUnavailable):
        await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)  # ChanStore stored it; the answer was lost
    receipt = ledger.receipt(OP, FUNDING - 100)
    assert receipt is not None and receipt.state == "pending"
    adm = await cashier.admit(_header(FUNDING - 100), KEY_A, FIXED)
    assert await cashier.settle(adm, upstream_ok=True, delivered=True) == 100
    assert sum(svc.applied) == 100 and ledger.credit(OP) == 0
