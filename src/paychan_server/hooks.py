"""What happens after a payment is stored: counters, and the value callback of spec 10.6 / 7.3 step 10.

PayChanService calls these hooks; the default (no metrics, no callback) does nothing, so the core runs
unchanged in tests that build it bare. app.py installs the real ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from paychan_common.state import Family

if TYPE_CHECKING:
    from paychan_common.payment import Payment

    from .callback import ValueCallback
    from .server_metrics import ServerMetrics
    from .service import PaymentResult, StaticChannel

__all__ = ["PaymentHooks"]


class PaymentHooks:
    """Called by PayChanService once a payment's new state is durably stored."""

    __slots__ = ("callback", "metrics")

    def __init__(self, metrics: ServerMetrics | None = None, callback: ValueCallback | None = None) -> None:
        self.metrics = metrics
        self.callback = callback

    def opened(self, family: Family, value_received: int) -> None:
        """The opening payment is stored."""
        if self.metrics is not None:
            self.metrics.payment("open", family, value_received)

    def closed(self, family: Family, value_received: int) -> None:
        """A closing payment (or a v1 DELETE) was accepted and the channel settled."""
        if self.metrics is not None:
            self.metrics.payment("close", family, value_received)

    async def paid(self, result: PaymentResult, st: StaticChannel, payment: Payment) -> PaymentResult:
        """A payment is stored: count it, then ask the application for application_data (never fails)."""
        if self.metrics is not None:
            self.metrics.payment("pay", st.family, result.value_received)
        if self.callback is None:
            return result
        outpoint = result.outpoint
        app_data = await self.callback.call({
            "amount": result.value_received,
            "sender": st.client_pubkey.hex(),
            "chan_value_left": result.value_left,
            "chan_total_value": st.funding_value,
            "funding_txid": outpoint.display_txid,
            "funding_vout": outpoint.vout,
            "channel_status": result.status,
            "application_data": payment.application_data,
        })
        return replace(result, application_data=app_data) if app_data else result
