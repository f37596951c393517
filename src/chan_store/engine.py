"""The channel engine port: what ChanStore's HTTP app needs from a store of channel states.

Compare-and-set and the batch of payments are part of the contract, so every engine decides them itself:
the LevelDB engine (`chan_store.store.ChannelStore`) in the memory of its single writer, the PostgreSQL
engine (`chan_store.postgres.PostgresChannelStore`) in the database, by row locks and conditional
updates, so that several ChanStore processes can serve one database. One contract suite runs over both
(`tests/integration/test_chan_store.py`).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Protocol

from chan_store.contract import ChannelPage, CommitStats, PaymentItem, PaymentResult
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = ["ChannelEngine"]


class ChannelEngine(Protocol):
    """A durable store of channel states; every answer is given only once what it reports is durable."""

    @property
    def failed(self) -> bool:
        """True once the engine refuses every request until restarted (LevelDB's fail-stop)."""
        ...

    def counts(self) -> dict[str, int]:
        """Number of channels by status label."""
        ...

    def memory(self) -> dict[str, int]:
        """What the engine holds in memory (informational)."""
        ...

    def storage_stats(self) -> CommitStats:
        """The engine's commit counters."""
        ...

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        """The channel's state, or None."""
        ...

    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> ChannelPage:
        """One page of states (by client key, else by status and expiry, else by outpoint)."""
        ...

    async def create(self, state: ChannelState) -> ChannelState:
        """Store a new open channel; ChannelExistsAt when the outpoint or an open channel of the key exists."""
        ...

    async def apply_payments(self, items: Sequence[PaymentItem], now: int) -> builtins.list[PaymentResult]:
        """Apply payments in order (rules.apply_payment); every success is durable when this returns."""
        ...

    async def compare_and_set(self, expected_sha256: bytes, new_state: ChannelState) -> ChannelState:
        """Replace the state if SHA256(current serialized state) == expected; else StateConflict(current)."""
        ...
