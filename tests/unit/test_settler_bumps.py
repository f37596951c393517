"""The Settler's replacements (spec 8.6) against fakes behind its ports: a version is stored before it is
published, the confirmation of an earlier version closes the channel, a foreign mempool spend (the refund)
is answered with the whole budget, and nothing is replaced while the newest version pays the target."""

from __future__ import annotations

from paychan_common.address import Address
from paychan_common.hashing import sha256d
from paychan_common.network import Network
from paychan_common.rules import ChannelPolicy
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import Transaction
from paychan_server.config import SettlementConfig
from paychan_server.domain.ports import OutputState, SignerPolicy
from paychan_server.domain.settler import Settler
from tests.support.channels import make_chan
from tests.support.fakes import FakeBlockchain, FakeChannelStore, FakeClock, FakeSigner

EXP = 1_900_000_000
CHAN = make_chan(b"\x11" * 32, b"\x22" * 32, EXP, Network.TEST, funding_value=1_000_000)
DEST = Address.parse("mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY", Network.TEST)
SIGNER = SignerPolicy(max_fee=200_000, dust_limit=700)
CFG = SettlementConfig(confirmations=1, bump_deadline_margin_seconds=1800, safety_margin_hours=1)
POLICY = ChannelPolicy(700, 100_000, 0, 1, 2)  # settlement period 1 h


def txid(tx: bytes) -> str:
    return sha256d(tx)[::-1].hex()


class Chain(FakeBlockchain):
    """tests/support's chain, recording at each publish whether the store already held the version."""

    def __init__(self, store: FakeChannelStore, mtp: int) -> None:
        super().__init__(mtp=mtp, fee_rate=2)
        self.store = store
        self.published_while_stored: list[bool] = []

    async def publish(self, tx: bytes) -> str:
        stored = {txid(v) for s in self.store.states.values() for v in s.settlement_versions}
        self.published_while_stored.append(txid(tx) in stored)
        for other in [t for t, conf in self.txs.items() if conf == 0]:
            del self.txs[other]  # the replaced version leaves the mempool
        return await super().publish(tx)

    def refund_replaces_ours(self) -> None:
        """A foreign transaction (the client's refund) now spends the funding in the mempool."""
        self.txs = {t: c for t, c in self.txs.items() if c > 0}


def closing_state() -> ChannelState:
    change = 900_000
    sig = CHAN.sign(change)
    return ChannelState(client_pubkey=CHAN.client.public_key.data, exp_time=EXP, outpoint=CHAN.outpoint,
                        funding_value=1_000_000, redeem_script=CHAN.redeem_script,
                        change_address=CHAN.funding_address.text, change_script=CHAN.funding_address.script_pubkey,
                        family=Family.V2_SEED, status=Status.CLOSING, change_value=change, signature=sig.der,
                        sighash=sig.sighash, secret=b"", payment_count=2, open_time=0, last_payment_time=0)


def settler(mtp: int, **cfg: object) -> tuple[Settler, ChannelState, Chain]:
    store = FakeChannelStore()
    state = store.put(closing_state())
    chain = Chain(store, mtp)
    signer = FakeSigner(CHAN.server, DEST)
    s = Settler(store, signer, chain, DEST.script_pubkey, POLICY, CFG.model_copy(update=cfg), FakeClock(),
                signer_policy=SIGNER)
    return s, state, chain


def fee(state: ChannelState, tx: bytes) -> int:
    return state.funding_value - sum(o.value for o in Transaction.parse(tx).outputs)


async def test_versions_are_stored_before_published_and_an_earlier_ones_confirmation_closes() -> None:
    deadline = EXP - 1800
    s, start, chain = settler(deadline - 2 * 3600)
    state = await s.finish(start)
    assert len(state.settlement_versions) == 1 and set(chain.txs) == {state.settlement_txid}
    assert await s.finish(state) == state, "no replacement while the newest pays the target"

    chain.mtp = deadline - 1800  # the ramp has moved: a replacement
    bumped = await s.finish(state)
    assert len(bumped.settlement_versions) == 2 and set(chain.txs) == {bumped.settlement_txid}
    assert fee(bumped, bumped.settlement_tx) >= fee(bumped, state.settlement_tx) + len(bumped.settlement_tx)
    assert chain.published_while_stored == [True, True]

    chain.txs = {state.settlement_txid: 1}  # the FIRST version is mined after all
    chain.outputs[CHAN.outpoint] = OutputState.SPENT
    closed = await s.finish(bumped)
    assert closed.status is Status.CLOSED and not closed.refunded
    assert closed.settlement_txid == state.settlement_txid and len(closed.settlement_versions) == 2


async def test_the_estimate_drives_replacements_far_from_the_deadline() -> None:
    s, start, chain = settler(EXP - 40 * 3600)
    state = await s.finish(start)
    chain.estimate = 30
    bumped = await s.finish(state)
    assert fee(bumped, bumped.settlement_tx) >= 30 * len(bumped.settlement_tx) - 2 * 30


async def test_a_foreign_spend_in_the_mempool_is_answered_with_the_whole_budget() -> None:
    s, start, chain = settler(EXP + 60)
    state = await s.finish(start)
    chain.refund_replaces_ours()
    outbid = await s.finish(state)
    assert len(outbid.settlement_versions) == 2
    assert fee(outbid, outbid.settlement_tx) == 100_000, "the whole share: the server output is dropped"
    assert chain.published_while_stored[-1] is True and set(chain.txs) == {outbid.settlement_txid}


async def test_no_replacement_with_bumping_disabled() -> None:
    s, start, _chain = settler(EXP - 1800, bump_enable=False)
    state = await s.finish(start)
    assert await s.finish(state) == state
