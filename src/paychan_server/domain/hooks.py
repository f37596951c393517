"""What happens after a payment is stored: the port PayChanService calls (spec 10.6 / 7.3 step 10).

The default does nothing, so the core runs unchanged in tests that build it bare; the operator layer
(`paychan_server.operator.hooks`) passes one with counters and the value callback at construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paychan_common.state import Family

if TYPE_CHECKING:
    from paychan_common.messages import PaymentResult
    from paychan_common.payment import Payment

    from .results import StaticChannel

__all__ = ["PaymentHooks", "SettlementHooks"]


class PaymentHooks:
    """Called by PayChanService once a payment's new state is durably stored; these defaults do nothing."""

    def opened(self, family: Family, value_received: int) -> None:
        """The opening payment is stored."""

    def closed(self, family: Family, value_received: int) -> None:
        """A closing payment (or a v1 DELETE) was accepted and the channel settled."""

    async def paid(self, result: PaymentResult, st: StaticChannel, payment: Payment) -> PaymentResult:
        """A payment is stored; returns the result the client is told (possibly with application_data)."""
        return result


class SettlementHooks:
    """Called by the Settler (spec 8.6); these defaults do nothing, the operator layer counts."""

    def bumped(self) -> None:
        """A replacement settlement was signed and stored."""

    def confirmed(self, bumps: int) -> None:
        """A settlement reached its confirmations after `bumps` replacements."""

    def near_deadline(self, channels: int, value: int) -> None:
        """After a pass over the closing channels: those unconfirmed within alert_hours_before_deadline."""
