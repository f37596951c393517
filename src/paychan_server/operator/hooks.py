"""The operator's payment hooks: counters, and the value callback to the application (spec 10.6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paychan_common.state import Family

from ..domain.hooks import PaymentHooks, SettlementHooks

if TYPE_CHECKING:
    from paychan_common.messages import PaymentResult
    from paychan_common.payment import Payment

    from ..adapters.callback import ValueCallback
    from ..domain.results import StaticChannel
    from .metrics import ServerMetrics

__all__ = ["OperatorHooks", "SettlementCounters"]


class OperatorHooks(PaymentHooks):
    """Counts every stored payment; asks the application for application_data when a callback is set."""

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
        outpoint = st.verifier.outpoint
        app_data = await self.callback.call({
            "amount": result.value_received,
            "sender": st.client_pubkey.hex(),
            "chan_value_left": result.channel_value_left,
            "chan_total_value": st.funding_value,
            "funding_txid": outpoint.display_txid,
            "funding_vout": outpoint.vout,
            "channel_status": result.channel_status,
            "application_data": payment.application_data,
        })
        return result.model_copy(update={"application_data": app_data}) if app_data else result


class SettlementCounters(SettlementHooks):
    """The Settler's hooks (spec 8.6): replacements, settlements by number of bumps, value near its deadline."""

    __slots__ = ("metrics",)

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def bumped(self) -> None:
        """A replacement settlement was signed and stored."""
        self.metrics.bumps.inc()

    def confirmed(self, bumps: int) -> None:
        """A settlement confirmed after `bumps` replacements."""
        self.metrics.settlements_confirmed.labels(str(bumps) if bumps < 4 else "4+").inc()

    def near_deadline(self, channels: int, value: int) -> None:
        """Closing channels still unconfirmed within alert_hours_before_deadline of their deadline."""
        self.metrics.near_deadline_channels.set(channels)
        self.metrics.near_deadline_value.set(value)
