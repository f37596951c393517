"""What PayChanServer needs from ChanStore (implemented by chan_store.client.ChanStoreClient)."""

from __future__ import annotations

from typing import Protocol

from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint


class AppliedPayment(Protocol):
    """ChanStore's answer to one payment."""

    @property
    def value_received(self) -> int: ...
    @property
    def change_value(self) -> int: ...


class ChannelStorePort(Protocol):
    """ChanStore operations used by PayChanServer."""

    async def create(self, state: ChannelState) -> ChannelState: ...
    async def get(self, outpoint: OutPoint) -> ChannelState | None: ...
    async def apply_payment(self, outpoint: OutPoint, change_value: int, der: bytes, sighash: int,
                            now: int) -> AppliedPayment: ...
    async def compare_and_set(self, old: ChannelState, new: ChannelState) -> ChannelState: ...
    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> list[ChannelState]: ...
    async def close(self) -> None: ...
