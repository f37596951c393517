"""The Settler's replacements (spec 8.6) against fakes behind its ports: a version is stored before it is
published, the confirmation of an earlier version closes the channel, a foreign mempool spend (the refund)
is answered with the whole budget, and nothing is replaced while the newest version pays the target."""

from __future__ import annotations

from dataclasses import dataclass, field

from paychan_common.errors import Conflict
from paychan_common.hashing import sha256d
from paychan_common.network import Network
from paychan_common.rules import ChannelPolicy
from paychan_common.settlement import SettlementInput, sign_settlement, unsigned_settlement
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint, Transaction
from paychan_server.config import SettlementConfig
from paychan_server.domain.clock import Clock
from paychan_server.domain.ports import OutputState, SignedSettlement, SignerPolicy, TxStatus
from paychan_server.domain.settler import Settler

from .helpers import make_chan

EXP = 1_900_000_000
CHAN = make_chan(b"\x11" * 32, b"\x22" * 32, EXP, Network.TEST, funding_value=1_000_000)
DEST = bytes.fromhex("76a914" + "33" * 20 + "88ac")
SIGNER = SignerPolicy(max_fee=200_000, dust_limit=700)
CFG = SettlementConfig(confirmations=1, bump_deadline_margin_seconds=1800, safety_margin_hours=1)
POLICY = ChannelPolicy(700, 100_000, 0, 1, 2)  # settlement period 1 h


def txid(tx: bytes) -> str:
    return sha256d(tx)[::-1].hex()


class FakeStore:
    """ChannelStorePort: compare-and-set on one channel."""

    def __init__(self, state: ChannelState) -> None:
        self.state = state

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        return self.state

    async def compare_and_set(self, old: ChannelState, new: ChannelState) -> ChannelState:
        if old != self.state:
            raise Conflict("changed")
        self.state = new
        return new


class FakeSigner:
    """SignerPort: really signs (the server key of CHAN), as the SigningService would."""

    async def sign_settlement(self, s: SettlementInput, fee: int, dust_limit: int) -> SignedSettlement:
        tx = sign_settlement(s, unsigned_settlement(s, DEST, fee, SIGNER.dust_limit), CHAN.server)
        raw = tx.serialize()
        real_fee = s.funding_value - sum(o.value for o in tx.outputs)
        return SignedSettlement(raw, txid(raw), real_fee, s.funding_value - s.change_value - real_fee)


@dataclass
class FakeChain:
    """Blockchain: a mempool and blocks of txids; publish records what the store held at that moment."""

    store: FakeStore
    mtp: int
    estimate: int | None = None
    mempool: set[str] = field(default_factory=set)
    mined: dict[str, int] = field(default_factory=dict)
    foreign_spend: bool = False
    published_while_stored: list[bool] = field(default_factory=list)

    async def publish(self, tx: bytes) -> str:
        stored = {txid(v) for v in self.store.state.settlement_versions}
        self.published_while_stored.append(txid(tx) in stored)
        self.mempool = {txid(tx)}
        self.foreign_spend = False
        return txid(tx)

    async def median_time(self) -> int | None:
        return self.mtp

    async def estimate_rate(self, conf_target: int) -> int | None:
        return self.estimate

    async def incremental_rate(self) -> int:
        return 1

    async def fee_rate(self) -> int:
        return 2

    async def tx_status(self, txid_: str, tx: bytes = b"") -> TxStatus:
        if txid_ in self.mined:
            return TxStatus(self.mined[txid_], True)
        return TxStatus(0, txid_ in self.mempool)

    async def output_state(self, outpoint: OutPoint) -> OutputState:
        if self.mined:
            return OutputState.SPENT
        return OutputState.SPENT_IN_MEMPOOL if self.mempool or self.foreign_spend else OutputState.UNSPENT


def closing_state() -> ChannelState:
    change = 900_000
    sig = CHAN.sign(change)
    return ChannelState(client_pubkey=CHAN.client.public_key.data, exp_time=EXP, outpoint=CHAN.outpoint,
                        funding_value=1_000_000, redeem_script=CHAN.redeem_script,
                        change_address=CHAN.funding_address.text, change_script=CHAN.funding_address.script_pubkey,
                        family=Family.V2_SEED, status=Status.CLOSING, change_value=change, signature=sig.der,
                        sighash=sig.sighash, secret=b"", payment_count=2, open_time=0, last_payment_time=0)


def settler(mtp: int, **cfg: object) -> tuple[Settler, FakeStore, FakeChain]:
    store = FakeStore(closing_state())
    chain = FakeChain(store, mtp)
    s = Settler(store, FakeSigner(), chain, DEST, POLICY, CFG.model_copy(update=cfg), Clock(0),
                signer_policy=SIGNER)
    return s, store, chain


def fee(state: ChannelState, tx: bytes) -> int:
    return state.funding_value - sum(o.value for o in Transaction.parse(tx).outputs)


async def test_versions_are_stored_before_published_and_an_earlier_ones_confirmation_closes() -> None:
    deadline = EXP - 1800
    s, store, chain = settler(deadline - 2 * 3600)
    state = await s.finish(store.state)
    assert len(state.settlement_versions) == 1 and chain.mempool == {state.settlement_txid}
    assert await s.finish(state) == state, "no replacement while the newest pays the target"

    chain.mtp = deadline - 1800  # the ramp has moved: a replacement
    bumped = await s.finish(state)
    assert len(bumped.settlement_versions) == 2 and chain.mempool == {bumped.settlement_txid}
    assert fee(bumped, bumped.settlement_tx) >= fee(bumped, state.settlement_tx) + len(bumped.settlement_tx)
    assert chain.published_while_stored == [True, True]

    chain.mined = {state.settlement_txid: 1}  # the FIRST version is mined after all
    chain.mempool = set()
    closed = await s.finish(bumped)
    assert closed.status is Status.CLOSED and not closed.refunded
    assert closed.settlement_txid == state.settlement_txid and len(closed.settlement_versions) == 2


async def test_the_estimate_drives_replacements_far_from_the_deadline() -> None:
    s, store, chain = settler(EXP - 40 * 3600)
    state = await s.finish(store.state)
    chain.estimate = 30
    bumped = await s.finish(state)
    assert fee(bumped, bumped.settlement_tx) >= 30 * len(bumped.settlement_tx) - 2 * 30


async def test_a_foreign_spend_in_the_mempool_is_answered_with_the_whole_budget() -> None:
    s, store, chain = settler(EXP + 60)
    state = await s.finish(store.state)
    chain.mempool, chain.foreign_spend = set(), True  # the client's refund replaced our settlement
    outbid = await s.finish(state)
    assert len(outbid.settlement_versions) == 2
    assert fee(outbid, outbid.settlement_tx) == 100_000, "the whole share: the server output is dropped"
    assert chain.published_while_stored[-1] is True and chain.mempool == {outbid.settlement_txid}


async def test_no_replacement_with_bumping_disabled() -> None:
    s, store, _chain = settler(EXP - 1800, bump_enable=False)
    state = await s.finish(store.state)
    assert await s.finish(state) == state
