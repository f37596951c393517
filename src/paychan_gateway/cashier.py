"""Exactly-once charging: a payment from the header is applied through PayChanService (durably stored in
ChanStore before the upstream sees the request), bound to its request by a receipt, and settled once the
gateway knows whether the upstream's answer was delivered.

* A payment is used at most once: presented again for another request, or after its request was served,
  it is refused (402 payment_already_used).
* A request the upstream did not serve (unreachable, 5xx, timeout, answer not delivered) is not charged:
  its price goes back to the channel's credit, and the same request retried with the same payment is
  served from that credit. Credit also pays part of any later request on the channel.
* Metered routes reserve everything available (payment plus credit), send at most what it buys, charge
  the KiB actually sent and return the rest to credit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from paychan_common.errors import Conflict, PaychanError
from paychan_common.state import Family
from paychan_runtime.http_errors import http_status
from paychan_server.domain.service import PayChanService

from .header import PaymentHeader
from .ledger import Ledger, Receipt
from .metrics import GatewayMetrics
from .pricing import Quote

__all__ = ["Admission", "Cashier", "PaymentRequired"]

log = logging.getLogger("paychan.gateway")


class PaymentRequired(PaychanError):
    """402: pay (more) for this request; carries the quote and what the channel holds in credit."""

    code = "payment_required"

    def __init__(self, message: str, quote: Quote, *, credit: int = 0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.kind = "payment_error"
        self.quote = quote
        self.credit = credit


@dataclass(slots=True)
class Admission:
    """A paid request on its way through: what it may cost, and how it ended."""

    header: PaymentHeader
    request_key: bytes
    quote: Quote
    reserved: int  # what this request may cost: the price, or (metered) all that was available
    value: int  # what the payment itself was worth
    settled: bool = field(default=False)

    @property
    def change_value(self) -> int:
        """The payment's change value (its identity on the channel)."""
        return self.header.payment.change_value


class Cashier:
    """Applies header payments to channels and keeps the receipts; one per gateway process."""

    def __init__(self, service: PayChanService, ledger: Ledger, metrics: GatewayMetrics | None = None) -> None:
        self.service = service
        self.ledger = ledger
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._credit: dict[bytes, int] = {}  # channel credit, authoritative in this process (ledger: durable)
        self._in_flight: set[tuple[bytes, int]] = set()

    @asynccontextmanager
    async def _channel(self, key: bytes) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):  # one small lock per channel seen
            yield

    def _credit_of(self, header: PaymentHeader) -> int:
        key = header.outpoint.serialize()
        if key not in self._credit:
            self._credit[key] = self.ledger.credit(header.outpoint)
        return self._credit[key]

    async def admit(self, header: PaymentHeader, request_key: bytes, quote: Quote) -> Admission:
        """Take the header's payment for this request (or recognise its retry); 402 if it is not enough."""
        op = header.outpoint
        c = header.payment.change_value
        st = await self.service.locate(op, Family.V2_3, secret=header.secret)  # 404 unless channel + secret
        async with self._channel(op.serialize()):
            if (op.serialize(), c) in self._in_flight:
                raise Conflict("this payment's request is still in progress", code="request_in_progress")
            credit = self._credit_of(header)
            receipt = self.ledger.receipt(op, c)
            if receipt is not None:
                if receipt.request_key != request_key or receipt.state in ("served", "credited"):
                    raise PaymentRequired("this payment was already used; sign a new one", quote, credit=credit,
                                          code="payment_already_used")
                value = receipt.value
                if receipt.state == "pending":  # a crash left it: find out whether ChanStore has it
                    result = await self.service.pay(op, header.payment, st)
                    value = result.value_received or receipt.price
                    credit += value
                assert value is not None
            else:
                await self.ledger.record(op, c, Receipt(request_key, "pending", quote.price))
                try:
                    result = await self.service.pay(op, header.payment, st)
                except PaychanError as exc:
                    if http_status(exc) < 500:  # refused: it never counted. Else (ChanStore down, ...) the outcome
                        await self.ledger.forget(op, c)  # is unknown: the receipt stays pending for the retry
                    raise
                value = result.value_received
                if value == 0:
                    await self.ledger.forget(op, c)
                    raise PaymentRequired("this payment transfers no value; sign a new one", quote, credit=credit,
                                          code="payment_already_used")
                credit += value
            if credit < quote.price:
                self._credit[op.serialize()] = credit
                await self.ledger.record(op, c, Receipt(request_key, "credited", quote.price, value), credit)
                raise PaymentRequired(f"price is {quote.price}, the channel holds {credit}", quote, credit=credit,
                                      code="payment_short")
            reserved = credit if quote.per_kib is not None else quote.price
            self._credit[op.serialize()] = credit - reserved
            self._in_flight.add((op.serialize(), c))
            return Admission(header, request_key, quote, reserved, value)

    async def settle(self, adm: Admission, *, upstream_ok: bool, delivered: bool, sent_bytes: int = 0) -> int:
        """Record how the request ended; return what it was charged (the rest goes back to credit).

        Per request: the price if the upstream answered below 500 and the answer was delivered, else 0.
        Metered: the KiB actually sent, if the upstream answered below 500."""
        if adm.settled:
            return 0
        adm.settled = True
        op = adm.header.outpoint
        if adm.quote.per_kib is not None:
            charged = min(adm.reserved, adm.quote.charge_for(sent_bytes)) if upstream_ok else 0
        else:
            charged = adm.reserved if upstream_ok and delivered else 0
        served = charged > 0 or (upstream_ok and delivered)
        key = op.serialize()
        async with self._channel(key):
            credit = self._credit.get(key, 0) + adm.reserved - charged
            self._credit[key] = credit
            receipt = Receipt(adm.request_key, "served" if served else "unserved", adm.quote.price, adm.value,
                              charged)
            try:  # synced with the channel's next durable write, or within milliseconds (ledger.Ledger)
                await self.ledger.record(op, adm.change_value, receipt, credit, durable=False)
            finally:
                self._in_flight.discard((key, adm.change_value))
        self.metrics.settled(adm.quote.route.name, served=served, charged=charged, returned=adm.reserved - charged)
        if not served:
            log.info("request on %s not served: %d sat back to credit", adm.header.channel, adm.reserved)
        return charged

    def credit(self, header: PaymentHeader) -> int:
        """The channel's credit as this process knows it."""
        return self._credit_of(header)

