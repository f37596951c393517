"""Several ChanStore instances serving one database, behind the one ChannelStorePort.

Each PayChanServer worker prefers one instance (by process id, so the workers spread over them) and moves
to the next when its instance answers 503 or cannot be reached; it tries its preferred one again after a
cool-down. Reads are retried on the next instance at once. A write is never re-sent by this layer: once a
request may have reached a store, re-sending it elsewhere could apply it twice in the caller's eyes (a
payment replayed is stored once but would report 0 received), so the caller gets the 503 and the client
retries. Every instance must serve the same store: their identities (`GET /health`: engine and store_id)
are compared before an instance is first used, and an instance of another store is never used (running
two LevelDB ChanStores behind one server would split the channels between two disks).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from chan_store.client import ChanStoreClient
from chan_store.contract import ChannelPage, PaymentApplied, StoreStats
from paychan_common.errors import ServiceUnavailable
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = ["FailoverChanStore"]

log = logging.getLogger("paychan.server")

T = TypeVar("T")
COOL_DOWN_S = 2.0


class FailoverChanStore:
    """ChannelStorePort and TotalsSource over several ChanStore instances of one (PostgreSQL) store."""

    def __init__(self, clients: Sequence[ChanStoreClient], names: Sequence[str], *, prefer: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not clients or len(clients) != len(names):
            raise ValueError("one name per ChanStore client, at least one")
        self._clients = list(clients)
        self._names = list(names)
        self._preferred = (os.getpid() if prefer is None else prefer) % len(clients)
        self._current = self._preferred
        self._down_since: float | None = None
        self._clock = clock
        self._identity: str | None = None
        self._verified: set[int] = set()
        self._foreign: set[int] = set()

    @property
    def current(self) -> str:
        """The instance in use now."""
        return self._names[self._current]

    async def verify(self) -> None:
        """Compare the identity of every instance that answers now; ServiceUnavailable if none answers."""
        for index in range(len(self._clients)):
            try:
                await self._check_identity(index)
            except ServiceUnavailable:
                continue
        if not self._verified:
            raise ServiceUnavailable("no ChanStore instance answers")

    async def _check_identity(self, index: int) -> None:
        if index in self._verified:
            return
        identity = await self._clients[index].identity()
        if len(self._clients) > 1 and not identity.startswith("postgres:"):
            self._foreign.add(index)
            log.critical("ChanStore %s serves %s: several ChanStore URLs need the postgres engine behind "
                         "them all; it is not used", self._names[index], identity)
            raise ServiceUnavailable("ChanStore instance refused: not a shared store")
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            self._foreign.add(index)
            log.critical("ChanStore %s serves another store (%s, expected %s): it is not used",
                         self._names[index], identity, self._identity)
            raise ServiceUnavailable("ChanStore instance refused: another store")
        self._verified.add(index)

    def _order(self) -> list[int]:
        """Instances to try, the current one first; back to the preferred one after the cool-down."""
        if self._current != self._preferred and self._down_since is not None \
                and self._clock() - self._down_since >= COOL_DOWN_S:
            self._current = self._preferred
            self._down_since = None
        n = len(self._clients)
        return [i for i in ((self._current + k) % n for k in range(n)) if i not in self._foreign]

    async def _call(self, op: Callable[[ChanStoreClient], Awaitable[T]], *, retry: bool) -> T:
        last: ServiceUnavailable | None = None
        for index in self._order():
            try:
                await self._check_identity(index)
                result = await op(self._clients[index])
            except ServiceUnavailable as exc:
                last = exc
                if index == self._current:
                    self._move_on(index)
                if not retry and index in self._verified:
                    raise
                continue
            return result
        raise last if last is not None else ServiceUnavailable("no ChanStore instance is usable")

    def _move_on(self, index: int) -> None:
        n = len(self._clients)
        if n == 1:
            return
        self._current = (index + 1) % n
        if self._down_since is None:
            self._down_since = self._clock()
        log.warning("ChanStore %s unavailable; using %s", self._names[index], self._names[self._current])

    # ------------------------------------------------------------------ ChannelStorePort

    async def create(self, state: ChannelState) -> ChannelState:
        """Store a new open channel (not re-sent on failure)."""
        return await self._call(lambda c: c.create(state), retry=False)

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        """The channel's state, or None (retried on the next instance)."""
        return await self._call(lambda c: c.get(outpoint), retry=True)

    async def apply_payment(self, outpoint: OutPoint, change_value: int, der: bytes, sighash: int,
                            now: int) -> PaymentApplied:
        """Apply one payment (not re-sent on failure)."""
        return await self._call(lambda c: c.apply_payment(outpoint, change_value, der, sighash, now), retry=False)

    async def compare_and_set(self, old: ChannelState, new: ChannelState) -> ChannelState:
        """Replace old by new if old is still stored (not re-sent on failure)."""
        return await self._call(lambda c: c.compare_and_set(old, new), retry=False)

    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> list[ChannelState]:
        """One page of states (retried on the next instance)."""
        return await self._call(lambda c: c.list(status=status, client_pubkey=client_pubkey,
                                                 expiring_before=expiring_before, after=after, limit=limit),
                                retry=True)

    async def list_page(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                        expiring_before: int | None = None, after: OutPoint | None = None,
                        limit: int = 100) -> ChannelPage:
        """One page with its cursor (retried on the next instance)."""
        return await self._call(lambda c: c.list_page(status=status, client_pubkey=client_pubkey,
                                                      expiring_before=expiring_before, after=after, limit=limit),
                                retry=True)

    async def stats(self) -> StoreStats:
        """The current instance's stats (retried on the next instance)."""
        return await self._call(lambda c: c.stats(), retry=True)

    async def close(self) -> None:
        """Close every client."""
        for client in self._clients:
            await client.close()
