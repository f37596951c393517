"""Fakes of every domain port (`paychan_server.domain.ports`, `.hooks`, `.clock`), for unit tests of the domain.

Each fake keeps its state in plain attributes a test sets and reads (the chain's transactions, the store's states),
records the calls made on it, and can be told to fail: `fail(method, error)` queues an error for the next call of
that method; `before(method, fn)` runs fn(*args) once, before the next call (a racing writer, say). Every awaited
method yields to the event loop once, so concurrent callers interleave as they would over a network.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chan_store.contract import ChannelExistsAt, StateConflict
from paychan_common.address import Address
from paychan_common.channel import Funding
from paychan_common.errors import ChannelNotFound
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import apply_payment
from paychan_common.settlement import SettlementInput, sign_settlement, unsigned_settlement
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint, Transaction
from paychan_server.domain.hooks import PaymentHooks
from paychan_server.domain.ports import OutputState, SignedSettlement, SignerPolicy, TxStatus
from paychan_server.domain.results import PaymentResult, StaticChannel

__all__ = ["FakeBlockchain", "FakeChannelStore", "FakeClock", "FakeHooks", "FakeSigner", "Scripted"]


class Scripted:
    """Call log, queued failures and one-shot interceptors shared by the fakes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._errors: dict[str, list[BaseException]] = defaultdict(list)
        self._before: dict[str, list[Callable[..., Any]]] = defaultdict(list)

    def fail(self, method: str, *errors: BaseException) -> None:
        """The next len(errors) calls of method raise these, in order."""
        self._errors[method].extend(errors)

    def before(self, method: str, fn: Callable[..., Any]) -> None:
        """Run fn(*args) once, before the next call of method (it may change state or raise)."""
        self._before[method].append(fn)

    def called(self, method: str) -> list[tuple[Any, ...]]:
        """The arguments of every call of method so far."""
        return [args for name, args in self.calls if name == method]

    async def _enter(self, method: str, *args: Any) -> None:
        await asyncio.sleep(0)  # yield once, as a network round trip would
        self.calls.append((method, args))
        if self._before[method]:
            self._before[method].pop(0)(*args)
        if self._errors[method]:
            raise self._errors[method].pop(0)


class FakeClock:
    """Time that moves only when told: `advance(s)`, or a `sleep(s)`, which returns at once after advancing."""

    def __init__(self, now: int = 1_700_000_000, monotonic: float = 1_000.0) -> None:
        self.wall = float(now)
        self.mono = monotonic
        self.sleeps: list[float] = []

    def now(self) -> int:
        """Wall-clock seconds."""
        return int(self.wall)

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return self.mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self.wall += seconds
        self.mono += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by it (no real waiting)."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class Applied:
    """ChanStore's answer to one payment (the port's AppliedPayment)."""

    value_received: int
    change_value: int


class FakeChannelStore(Scripted):
    """ChanStore in a dict, with its rules: create refuses a known outpoint or a second open channel of a key;
    payments follow `rules.apply_payment`; compare-and-set succeeds only on the current state."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[OutPoint, ChannelState] = {}
        self.closed = False

    def put(self, state: ChannelState) -> ChannelState:
        """Store a state directly (test set-up, or another writer)."""
        self.states[state.outpoint] = state
        return state

    async def create(self, state: ChannelState) -> ChannelState:
        await self._enter("create", state)
        if state.outpoint in self.states:
            raise ChannelExistsAt("channel exists: this funding outpoint is already stored", state.outpoint)
        for other in self.states.values():
            if other.client_pubkey == state.client_pubkey and other.status is Status.OPEN:
                raise ChannelExistsAt("channel exists: an open channel for this client key exists",
                                      other.outpoint, code="open_channel_exists")
        return self.put(state)

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        await self._enter("get", outpoint)
        return self.states.get(outpoint)

    async def apply_payment(self, outpoint: OutPoint, change_value: int, der: bytes, sighash: int,
                            now: int) -> Applied:
        await self._enter("apply_payment", outpoint, change_value, der, sighash, now)
        state = self.states.get(outpoint)
        if state is None:
            raise ChannelNotFound(f"no channel with funding outpoint {outpoint}")
        accepted = apply_payment(state, change_value, der, sighash, now)
        self.put(accepted.state)
        return Applied(accepted.value_received, accepted.state.change_value)

    async def compare_and_set(self, old: ChannelState, new: ChannelState) -> ChannelState:
        await self._enter("compare_and_set", old, new)
        current = self.states.get(new.outpoint)
        if current is None:
            raise ChannelNotFound(f"no channel with funding outpoint {new.outpoint}")
        if current != old:
            raise StateConflict("state conflict: the channel changed since it was read", current)
        return self.put(new)

    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> list[ChannelState]:
        await self._enter("list", status, client_pubkey, expiring_before, after, limit)
        def order(s: ChannelState) -> tuple[int, bytes]:  # ChanStore's status index: by expiry, then outpoint
            return s.exp_time, s.outpoint.serialize()

        found = sorted((s for s in self.states.values() if (status is None or s.status is status)
                        and (client_pubkey is None or s.client_pubkey == client_pubkey)
                        and (expiring_before is None or s.exp_time < expiring_before)), key=order)
        if after is not None:
            cursor = order(self.states[after])
            found = [s for s in found if order(s) > cursor]
        return found[:limit]

    async def close(self) -> None:
        self.closed = True


class FakeBlockchain(Scripted):
    """A chain of dicts: fundings by outpoint and by address, transactions by txid with their confirmations,
    and the state of outputs. A published transaction enters the mempool (0 confirmations) and marks the
    output it spends SPENT_IN_MEMPOOL, unless `accept_publish` is False (a node that drops it)."""

    def __init__(self, *, debug: bool = False, mtp: int | None = None, fee_rate: int = 10) -> None:
        super().__init__()
        self.debug = debug
        self.fundings: dict[OutPoint, Funding] = {}
        self.by_address: dict[str, list[Funding]] = {}
        self.txs: dict[str, int] = {}
        self.outputs: dict[OutPoint, OutputState] = {}
        self.published: list[bytes] = []
        self.accept_publish = True
        self.answer_txid: str | None = None  # a node answering publish with another txid
        self.mtp = mtp
        self.rate = fee_rate
        self.estimate: int | None = None  # estimate_rate's answer (spec 8.6): none, as on a fresh regtest node
        self.checked = False
        self.closed = False

    def fund(self, funding: Funding, address: Address) -> Funding:
        """Make funding findable by outpoint and by address."""
        self.fundings[funding.outpoint] = funding
        self.by_address.setdefault(address.text, []).append(funding)
        return funding

    def mine(self, txid: str, confirmations: int = 1) -> None:
        """The transaction has this many confirmations (its input is then spent on chain)."""
        self.txs[txid] = confirmations

    def evict(self, tx: bytes) -> None:
        """Drop a transaction from the mempool; the output it spent is unspent again."""
        parsed = Transaction.parse(tx)
        self.txs.pop(parsed.txid, None)
        self.outputs[parsed.inputs[0].prevout] = OutputState.UNSPENT

    async def funding_by_outpoint(self, outpoint: OutPoint, client_pubkey: PublicKey, exp_time: int,
                                  funding_address: Address) -> Funding | None:
        await self._enter("funding_by_outpoint", outpoint, client_pubkey, exp_time, funding_address)
        return self.fundings.get(outpoint)

    async def funding_by_address(self, client_pubkey: PublicKey, exp_time: int,
                                 funding_address: Address) -> list[Funding]:
        await self._enter("funding_by_address", client_pubkey, exp_time, funding_address)
        return list(self.by_address.get(funding_address.text, []))

    async def publish(self, tx: bytes) -> str:
        await self._enter("publish", tx)
        self.published.append(tx)
        parsed = Transaction.parse(tx)
        if self.accept_publish:
            self.txs.setdefault(parsed.txid, 0)
            self.outputs[parsed.inputs[0].prevout] = OutputState.SPENT_IN_MEMPOOL
        return self.answer_txid or parsed.txid

    async def fee_rate(self) -> int:
        await self._enter("fee_rate")
        return self.rate

    async def median_time(self) -> int | None:
        await self._enter("median_time")
        return self.mtp

    async def estimate_rate(self, conf_target: int) -> int | None:
        await self._enter("estimate_rate", conf_target)
        return self.estimate

    async def incremental_rate(self) -> int:
        await self._enter("incremental_rate")
        return 1

    async def tx_status(self, txid: str, tx: bytes = b"") -> TxStatus:
        await self._enter("tx_status", txid, tx)
        if txid in self.txs:
            return TxStatus(self.txs[txid], True)
        return TxStatus(0, False)

    async def output_state(self, outpoint: OutPoint) -> OutputState:
        await self._enter("output_state", outpoint)
        return self.outputs.get(outpoint, OutputState.UNSPENT)

    async def startup_check(self) -> None:
        await self._enter("startup_check")
        self.checked = True

    async def close(self) -> None:
        self.closed = True


class FakeSigner(Scripted):
    """The SigningService's answer without its checks: the settlement really signed with `key`."""

    def __init__(self, key: PrivateKey, destination: Address) -> None:
        super().__init__()
        self.key = key
        self.destination = destination
        self.signer_policy = SignerPolicy(max_fee=200_000, dust_limit=700)
        self.closed = False

    async def info(self, network: Network) -> tuple[PublicKey, Address]:
        await self._enter("info", network)
        return self.key.public_key, self.destination

    async def policy(self) -> SignerPolicy:
        await self._enter("policy")
        return self.signer_policy

    async def sign_settlement(self, s: SettlementInput, fee: int, dust_limit: int) -> SignedSettlement:
        await self._enter("sign_settlement", s, fee, dust_limit)
        tx = sign_settlement(s, unsigned_settlement(s, self.destination.script_pubkey, fee, dust_limit), self.key)
        return SignedSettlement(tx.serialize(), tx.txid, fee, s.funding_value - s.change_value - fee)

    async def close(self) -> None:
        self.closed = True


class FakeHooks(PaymentHooks):
    """Records what PayChanService reports; `paid` adds `application_data` to the result when set."""

    def __init__(self, application_data: str = "") -> None:
        self.application_data = application_data
        self.opened_calls: list[tuple[Family, int]] = []
        self.closed_calls: list[tuple[Family, int]] = []
        self.paid_calls: list[tuple[PaymentResult, StaticChannel, Payment]] = []

    def opened(self, family: Family, value_received: int) -> None:
        self.opened_calls.append((family, value_received))

    def closed(self, family: Family, value_received: int) -> None:
        self.closed_calls.append((family, value_received))

    async def paid(self, result: PaymentResult, st: StaticChannel, payment: Payment) -> PaymentResult:
        self.paid_calls.append((result, st, payment))
        if not self.application_data:
            return result
        return result.model_copy(update={"application_data": self.application_data})
