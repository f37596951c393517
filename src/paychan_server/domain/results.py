"""What the domain answers: an opened channel, the channel that already exists, a channel's static part
(a payment's result is the wire message `paychan_common.messages.PaymentResult`)."""

from __future__ import annotations

from dataclasses import dataclass

from paychan_common.address import Address
from paychan_common.channel import PaymentVerifier
from paychan_common.errors import ChannelExists
from paychan_common.messages import PaymentResult
from paychan_common.state import ChannelState, Family
from paychan_common.tx import OutPoint

__all__ = ["ExistingChannel", "Opened", "PaymentResult", "StaticChannel"]


@dataclass(frozen=True, slots=True)
class Opened:
    """A channel just opened: where it is (v1 learns it here) and what the client is told."""

    outpoint: OutPoint
    result: PaymentResult


class ExistingChannel(ChannelExists):
    """409: the channel exists at this outpoint, or an open one exists for this client key (spec 6.5)."""

    def __init__(self, existing: ChannelState) -> None:
        super().__init__(f"channel already exists ({existing.status.label})", code="channel_exists")
        self.existing = existing


@dataclass(frozen=True, slots=True)
class StaticChannel:
    """The parts of a channel that never change while it is open; cached per worker."""

    client_pubkey: bytes
    exp_time: int
    family: Family
    secret: bytes
    verifier: PaymentVerifier
    change_address: Address
    funding_value: int = 0
