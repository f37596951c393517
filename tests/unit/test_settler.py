"""The Settler against fakes of its ports (spec 8; DESIGN.md "Channel life"): sign, store, publish, follow to depth;
what happens when the funding is spent elsewhere, the settlement leaves the mempool, the node or the signer is
down or refuses; resumption by a fresh instance; the scheduler's time; two instances racing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from hashlib import sha256

import pytest

from paychan_common.address import Address
from paychan_common.errors import ChannelGone, Conflict, InvalidInput, ServiceUnavailable, SigningRefused
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.rules import ChannelPolicy
from paychan_common.settlement import FIXED_SETTLEMENT_SIZE, FeeMode, settlement_fee
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import Transaction
from paychan_server.config import SettlementConfig
from paychan_server.domain import settler as settler_module
from paychan_server.domain.ports import OutputState
from paychan_server.domain.settler import Settler, settlement_input
from tests.support.channels import Chan, make_chan
from tests.support.fakes import FakeBlockchain, FakeChannelStore, FakeClock, FakeSigner

HOUR = 3600
NOW = 1_700_000_000
EXP = NOW + 10 * 24 * HOUR
SERVER = PrivateKey(sha256(b"settler test server key").digest())
DESTINATION = Address.p2pkh(sha256(b"destination").digest()[:20], Network.TEST)
POLICY = ChannelPolicy()  # settlement period 12 h, dust 700
CFG = SettlementConfig(fee_mode="fixed", fee_rate_sat_per_byte=10, max_fee_rate_sat_per_byte=500, confirmations=3,
                       retry_interval_seconds=10, retry_max_interval_seconds=40, scheduler_interval_seconds=30,
                       safety_margin_hours=1)
FEE = FIXED_SETTLEMENT_SIZE * 10


def chan(n: int, exp_time: int = EXP) -> Chan:
    """Client number n's channel with the test server key."""
    return make_chan(sha256(b"settler client %d" % n).digest(), SERVER.secret, exp_time, Network.TEST)


class World:
    """One Settler (or more, sharing the store, chain and signer) over fresh fakes."""

    def __init__(self, cfg: SettlementConfig = CFG) -> None:
        self.store = FakeChannelStore()
        self.chain = FakeBlockchain()
        self.signer = FakeSigner(SERVER, DESTINATION)
        self.clock = FakeClock(NOW)
        self.cfg = cfg
        self.settler = self.another()

    def another(self) -> Settler:
        """A further Settler instance (another PayChanServer, or this one after a restart)."""
        return Settler(self.store, self.signer, self.chain, DESTINATION.script_pubkey, POLICY, self.cfg, self.clock)

    def open(self, n: int = 1, *, exp_time: int = EXP, paid: int = 150_000) -> ChannelState:
        """Store an open channel the client paid `paid` into."""
        c = chan(n, exp_time)
        return self.store.put(c.opened(c.funding.value - paid, now=NOW))

    def closing(self, n: int = 1, **kw: int) -> ChannelState:
        """Store a channel moved to closing, nothing signed yet (a crash right after the transition)."""
        return self.store.put(replace(self.open(n, **kw), status=Status.CLOSING))

    def stored(self, state: ChannelState) -> ChannelState:
        return self.store.states[state.outpoint]


@pytest.fixture
def w() -> World:
    return World()


def alerts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "paychan.alert"]


# ------------------------------------------------------------------------------------------ closing


async def test_settle_signs_and_stores_before_publishing_then_closes_at_depth(w: World) -> None:
    state = w.open()
    seen_at_publish: list[ChannelState] = []
    w.chain.before("publish", lambda tx: seen_at_publish.append(w.stored(state)))

    closing = await w.settler.settle(state, state)

    assert closing.status is Status.CLOSING
    [(si, fee, dust)] = w.signer.called("sign_settlement")
    assert (si, fee, dust) == (settlement_input(replace(state, status=Status.CLOSING)), FEE, POLICY.dust_limit)
    tx = Transaction.parse(closing.settlement_tx)
    assert closing.settlement_txid == tx.txid and closing.settlement_fee == FEE
    assert tx.outputs[-1].script_pubkey == DESTINATION.script_pubkey
    assert tx.outputs[-1].value == state.value_received - FEE
    assert w.chain.published == [closing.settlement_tx]
    assert seen_at_publish[0].settlement_tx == closing.settlement_tx  # stored before it was published
    assert w.stored(state) == closing

    w.chain.mine(closing.settlement_txid, CFG.confirmations - 1)
    assert (await w.settler.finish(closing)).status is Status.CLOSING
    w.chain.mine(closing.settlement_txid, CFG.confirmations)
    closed = await w.settler.finish(closing)
    assert closed == replace(closing, status=Status.CLOSED) == w.stored(state)
    assert w.chain.published == [closing.settlement_tx]  # never broadcast again once known


async def test_finish_leaves_an_open_or_closed_channel_alone(w: World) -> None:
    state = w.open()
    assert await w.settler.finish(state) is state
    assert w.chain.calls == [] and w.signer.calls == []


async def test_settle_of_a_channel_another_instance_closed_answers_its_state(w: World) -> None:
    state = w.open()
    done = w.store.put(replace(state, status=Status.CLOSED, settlement_txid="ab" * 32))
    assert await w.settler.settle(state, state) == done
    assert w.signer.calls == []


async def test_settle_of_a_channel_being_settled_is_gone(w: World) -> None:
    state = w.open()
    w.store.put(replace(state, status=Status.CLOSING))
    with pytest.raises(ChannelGone) as exc:
        await w.settler.settle(state, state)
    assert exc.value.code == "channel_closing"


async def test_settle_of_a_channel_paid_meanwhile_is_a_conflict(w: World) -> None:
    state = w.open()
    w.store.put(replace(state, change_value=state.change_value - 1, payment_count=2))
    with pytest.raises(Conflict):
        await w.settler.settle(state, state)
    assert w.stored(state).status is Status.OPEN and w.signer.calls == []


async def test_rate_mode_asks_the_node_and_a_large_v23_closing_payment_is_capped(w: World) -> None:
    w.cfg = CFG.model_copy(update={"fee_mode": "rate", "max_fee_rate_sat_per_byte": 20})
    settler = w.another()
    w.chain.rate = 7
    state = w.open(paid=3_000_000)
    other = w.open(2, paid=3_000_000)
    dest, dust = DESTINATION.script_pubkey, POLICY.dust_limit
    by_rate = settlement_fee(settlement_input(state), dest, dust, 7, FeeMode.RATE)
    cap = settlement_fee(settlement_input(other), dest, dust, 20, FeeMode.RATE)

    low = await settler.settle(state, state, min_fee=by_rate - 1)
    assert low.settlement_fee == by_rate

    high = await settler.settle(other, other, min_fee=cap + 50_000)
    assert high.settlement_fee == cap  # the rest of the closing payment goes to the destination
    assert [args[1] for args in w.signer.called("sign_settlement")] == [by_rate, cap]
    assert len(w.chain.called("fee_rate")) == 2


@pytest.mark.parametrize("status", [Status.CLOSING, Status.CLOSED])
async def test_another_instance_storing_its_signature_first_wins(w: World, status: Status) -> None:
    closing = w.closing()
    theirs = replace(closing, status=status, settlement_tx=b"\x01" * 10, settlement_txid="cd" * 32)
    w.store.before("compare_and_set", lambda old, new: w.store.put(theirs))
    w.chain.mine(theirs.settlement_txid, 0)
    assert await w.settler.finish(closing) == theirs
    assert w.chain.published == []
    assert len(w.chain.called("tx_status")) == (1 if status is Status.CLOSING else 0)


async def test_a_change_other_than_a_stored_signature_while_signing_is_a_conflict(w: World) -> None:
    closing = w.closing()
    w.store.before("compare_and_set", lambda old, new: w.store.put(replace(closing, payment_count=9)))
    with pytest.raises(Conflict):
        await w.settler.finish(closing)
    assert w.chain.published == []


async def test_concurrent_finishes_of_one_channel_share_one_run(w: World) -> None:
    closing = w.closing()
    first, second = await asyncio.gather(w.settler.finish(closing), w.settler.finish(closing))
    assert first == second and first.settlement_tx
    assert len(w.signer.called("sign_settlement")) == 1 and len(w.chain.published) == 1


async def test_a_shared_run_that_fails_fails_for_every_caller(w: World) -> None:
    closing = w.closing()
    w.signer.fail("sign_settlement", ServiceUnavailable("signer down"))
    results = await asyncio.gather(w.settler.finish(closing), w.settler.finish(closing), return_exceptions=True)
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert len(w.signer.called("sign_settlement")) == 1
    assert (await w.settler.finish(closing)).settlement_tx  # nothing left behind: the next call runs again


# ------------------------------------------------------------------------------ the node's answers


async def test_publish_retries_a_briefly_unreachable_node_with_backoff(w: World) -> None:
    state = w.open()
    w.chain.fail("publish", ServiceUnavailable("node down"), ServiceUnavailable("node down"))
    closing = await w.settler.settle(state, state)
    assert w.clock.sleeps == [0.2, 0.4]
    assert len(w.chain.called("publish")) == 3 and w.chain.published == [closing.settlement_tx]


async def test_publish_gives_up_after_three_attempts_with_the_settlement_stored(w: World) -> None:
    state = w.open()
    w.chain.fail("publish", *(ServiceUnavailable("node down") for _ in range(3)))
    with pytest.raises(ServiceUnavailable):
        await w.settler.settle(state, state)
    assert w.clock.sleeps == [0.2, 0.4]
    stored = w.stored(state)
    assert stored.status is Status.CLOSING and stored.settlement_tx  # the follow-up loop publishes it later


async def test_a_node_that_names_another_txid_is_logged(w: World, caplog: pytest.LogCaptureFixture) -> None:
    state = w.open()
    w.chain.answer_txid = "ee" * 32
    closing = await w.settler.settle(state, state)
    assert any("node accepted " + "ee" * 32 in r.getMessage() and closing.settlement_txid in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


async def test_a_published_settlement_the_node_does_not_show_stays_closing(w: World) -> None:
    state = w.open()
    w.chain.accept_publish = False
    closing = await w.settler.settle(state, state)
    assert closing.status is Status.CLOSING and w.chain.published == [closing.settlement_tx]


async def test_evicted_from_the_mempool_it_is_rebroadcast(w: World, caplog: pytest.LogCaptureFixture) -> None:
    state = w.open()
    closing = await w.settler.settle(state, state)
    w.chain.evict(closing.settlement_tx)
    again = await w.settler.finish(closing)
    assert again.status is Status.CLOSING
    assert w.chain.published == [closing.settlement_tx, closing.settlement_tx]
    assert any("rebroadcasting" in r.getMessage() for r in caplog.records)
    w.chain.mine(closing.settlement_txid, 3)
    assert (await w.settler.finish(again)).status is Status.CLOSED


async def test_another_mempool_spend_raises_an_alert_once_and_ours_is_still_offered(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    closing = await w.settler.finish(w.closing())
    w.chain.txs.clear()  # ours is gone; a conflicting mempool transaction spends the funding
    w.chain.outputs[closing.outpoint] = OutputState.SPENT_IN_MEMPOOL
    w.chain.accept_publish = False
    for _ in range(2):
        assert (await w.settler.finish(closing)).status is Status.CLOSING
    assert len(w.chain.published) == 3
    assert len([a for a in alerts(caplog) if "mempool transaction that is not our settlement" in a]) == 1
    w.clock.advance(settler_module.ALERT_REPEAT_SECONDS)
    await w.settler.finish(closing)
    assert len([a for a in alerts(caplog) if "mempool transaction" in a]) == 2


async def test_confirmation_depth_is_the_configured_one(w: World) -> None:
    w.cfg = CFG.model_copy(update={"confirmations": 1})
    settler = w.another()
    state = w.open()
    closing = await settler.settle(state, state)
    w.chain.mine(closing.settlement_txid, 1)
    assert (await settler.finish(closing)).status is Status.CLOSED


# ---------------------------------------------------------------------------- spent elsewhere


async def test_funding_spent_before_signing_is_a_refund_and_the_signer_is_not_asked(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    closing = w.closing()
    w.chain.outputs[closing.outpoint] = OutputState.SPENT
    done = await w.settler.finish(closing)
    assert done.status is Status.CLOSED and done.refunded and done == w.stored(closing)
    assert w.signer.calls == [] and w.chain.published == []
    assert any("(none signed)" in a and str(closing.value_received) in a for a in alerts(caplog))


async def test_refund_detected_after_expiry_closes_the_channel_refunded(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    state = w.open()
    closing = await w.settler.settle(state, state)
    w.chain.txs.clear()
    w.chain.outputs[closing.outpoint] = OutputState.SPENT
    w.chain.mtp = EXP + 1  # the refund is final only after exp_time (BIP65/113)
    done = await w.settler.finish(closing)
    assert done.refunded and done.settlement_tx == closing.settlement_tx  # the unconfirmed settlement is kept
    assert any(closing.settlement_txid in a and "never confirmed" in a for a in alerts(caplog))


@pytest.mark.parametrize("mtp", [None, EXP], ids=["no-mtp", "mtp-at-expiry"])
async def test_funding_spent_before_expiry_is_our_settlement_unseen(w: World, mtp: int | None) -> None:
    state = w.open()
    closing = await w.settler.settle(state, state)
    w.chain.txs.clear()  # mined and its outputs spent, on a node without txindex
    w.chain.outputs[closing.outpoint] = OutputState.SPENT
    w.chain.mtp = mtp
    done = await w.settler.finish(closing)
    assert done == replace(closing, status=Status.CLOSED) and not done.refunded


async def test_a_vanished_channel_while_closing_raises_the_conflict(w: World) -> None:
    state = w.open()
    closing = await w.settler.settle(state, state)
    w.chain.mine(closing.settlement_txid, 3)
    w.store.fail("compare_and_set", Conflict("gone"))
    w.store.before("get", lambda op: w.store.states.pop(op))
    with pytest.raises(Conflict):
        await w.settler.finish(closing)


# --------------------------------------------------------------- the follow-up loop: retries, resumption


async def test_signer_refusal_backs_off_doubling_to_the_cap_and_alerts(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    closing = w.closing()
    attempts: list[float] = []
    for _ in range(8):
        w.signer.fail("sign_settlement", SigningRefused("fee above cap", code="fee_above_cap"))
    for _ in range(130):  # 130 s in 1 s steps
        before = len(w.signer.called("sign_settlement"))
        assert await w.settler.follow_closings() == 1
        if len(w.signer.called("sign_settlement")) > before:
            attempts.append(w.clock.monotonic() - 1_000.0)
        w.clock.advance(1)
    assert attempts == [0, 10, 30, 70, 110]  # delays 10, 20, 40, then the 40 s cap
    assert w.stored(closing).status is Status.CLOSING and not w.stored(closing).settlement_tx
    refused = [a for a in alerts(caplog) if "settlement refused: fee above cap" in a]
    assert len(refused) == 1  # repeated at most every ALERT_REPEAT_SECONDS


async def test_signer_down_backs_off_without_an_alert_then_succeeds(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    closing = w.closing()
    w.signer.fail("sign_settlement", ServiceUnavailable("signer down"))
    await w.settler.follow_closings()
    assert not w.stored(closing).settlement_tx and alerts(caplog) == []
    await w.settler.follow_closings()  # not due yet
    assert len(w.signer.called("sign_settlement")) == 1
    w.clock.advance(CFG.retry_interval_seconds)
    await w.settler.follow_closings()
    assert w.stored(closing).settlement_tx and w.chain.published == [w.stored(closing).settlement_tx]


async def test_a_fresh_instance_resumes_unfinished_closings(w: World) -> None:
    unsigned = w.closing(1)  # crashed after the transition
    signed = await w.settler.finish(w.closing(2))  # crashed after storing, and the node lost its mempool
    w.chain.txs.clear()
    w.chain.outputs.clear()
    published_before = len(w.chain.published)

    restarted = w.another()
    assert await restarted.follow_closings() == 2
    assert w.stored(unsigned).settlement_tx and w.stored(signed) == signed
    assert sorted(w.chain.published[published_before:]) == sorted([signed.settlement_tx,
                                                                   w.stored(unsigned).settlement_tx])
    for state in (unsigned, signed):
        w.chain.mine(w.stored(state).settlement_txid, 3)
    assert await restarted.follow_closings() == 2  # closed only now, in this step
    assert await restarted.follow_closings() == 0
    assert {w.stored(s).status for s in (unsigned, signed)} == {Status.CLOSED}


async def test_follow_closings_pages_through_every_closing_channel(w: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settler_module, "PAGE", 2)
    states = [w.closing(n) for n in range(5)]
    assert await w.settler.follow_closings() == 5
    assert all(w.stored(s).settlement_tx for s in states)


async def test_a_closing_channel_inside_the_settlement_period_alerts(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    closing = w.closing(exp_time=NOW + POLICY.settlement_period - 60)
    await w.settler.follow_closings()
    [late] = [a for a in alerts(caplog) if "not confirmed" in a]
    assert str(closing.outpoint) in late and str(closing.exp_time) in late


# ------------------------------------------------------------------------------ time and the scheduler


async def test_chain_now_is_the_later_of_wall_clock_and_median_time_past(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    w.chain.mtp = NOW - 100
    assert await w.settler.chain_now() == NOW
    w.chain.mtp = NOW + 100
    assert await w.settler.chain_now() == NOW + 100
    w.chain.mtp = None
    assert await w.settler.chain_now() == NOW
    w.chain.fail("median_time", ServiceUnavailable("node down"), ServiceUnavailable("node down"))
    assert await w.settler.chain_now() == NOW
    assert await w.settler.chain_now() == NOW
    assert len([r for r in caplog.records if "no median time past" in r.getMessage()]) == 1  # said once
    w.chain.mtp = NOW + 5
    assert await w.settler.chain_now() == NOW + 5
    assert any("median time past available again" in r.getMessage() for r in caplog.records)


async def test_settle_expiring_closes_only_channels_past_the_horizon(w: World) -> None:
    horizon = NOW + POLICY.settlement_period + CFG.safety_margin_hours * HOUR
    due = w.open(1, exp_time=horizon - 1)
    not_due = w.open(2, exp_time=horizon + 1)
    assert await w.settler.settle_expiring() == 1
    assert w.stored(due).status is Status.CLOSING and w.stored(due).settlement_tx
    assert w.stored(not_due).status is Status.OPEN
    assert await w.settler.settle_expiring() == 0


async def test_the_scheduler_follows_median_time_past_when_it_is_ahead(w: World) -> None:
    exp = NOW + 2 * 24 * HOUR
    state = w.open(exp_time=exp)
    assert await w.settler.settle_expiring() == 0
    w.chain.mtp = exp - POLICY.settlement_period - CFG.safety_margin_hours * HOUR + 1  # the node's clock is ahead
    assert await w.settler.settle_expiring() == 1
    assert w.stored(state).status is Status.CLOSING


async def test_the_scheduler_follows_the_wall_clock_when_median_time_lags(w: World) -> None:
    exp = NOW + 2 * 24 * HOUR
    state = w.open(exp_time=exp)
    w.chain.mtp = NOW - 7 * 24 * HOUR
    w.clock.advance(exp - NOW - POLICY.settlement_period - CFG.safety_margin_hours * HOUR + 1)
    assert await w.settler.settle_expiring() == 1
    assert w.stored(state).status is Status.CLOSING


async def test_an_open_channel_inside_the_settlement_period_alerts_and_settles(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    state = w.open(exp_time=NOW + HOUR)
    assert await w.settler.settle_expiring() == 1
    assert any("still open" in a and str(state.outpoint) in a for a in alerts(caplog))


async def test_settle_expiring_pages(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settler_module, "PAGE", 2)
    for n in range(5):
        w.open(n, exp_time=NOW + 2 * HOUR)
    assert await w.settler.settle_expiring() == 5


async def test_auto_close_retries_with_a_payment_that_landed_meanwhile(w: World) -> None:
    state = w.open(exp_time=NOW + 2 * HOUR)
    c = chan(1, NOW + 2 * HOUR)
    later = c.sign(state.change_value - 1_000)
    paid = replace(state, change_value=state.change_value - 1_000, signature=later.der, payment_count=2)
    w.store.before("compare_and_set", lambda old, new: w.store.put(paid))
    assert await w.settler.settle_expiring() == 1
    closing = w.stored(state)
    assert closing.status is Status.CLOSING and closing.change_value == paid.change_value  # the latest payment


@pytest.mark.parametrize("what", ["closed-meanwhile", "settled-elsewhere", "always-changing"])
async def test_auto_close_gives_up_when_it_is_not_ours_to_do(w: World, what: str) -> None:
    state = w.open(exp_time=NOW + 2 * HOUR)

    def paid_meanwhile(old: ChannelState, new: ChannelState) -> None:
        current = w.store.states[state.outpoint]
        w.store.put(replace(current, payment_count=current.payment_count + 1))
        if what == "always-changing":
            w.store.before("compare_and_set", paid_meanwhile)

    if what == "settled-elsewhere":  # a client's close won the compare-and-set
        w.store.before("compare_and_set", lambda old, new: w.store.put(replace(state, status=Status.CLOSING)))
    else:
        w.store.before("compare_and_set", paid_meanwhile)
    if what == "closed-meanwhile":  # ... and the channel is closed by the time the auto-close reads it again
        w.store.before("get", lambda op: None)
        w.store.before("get", lambda op: w.store.put(replace(state, status=Status.CLOSED, settlement_txid="ab" * 32)))
    assert await w.settler.settle_expiring() == 0
    assert w.signer.calls == []
    expected_cas = 3 if what == "always-changing" else 1
    assert len(w.store.called("compare_and_set")) == expected_cas


async def test_auto_close_of_a_channel_closed_meanwhile_counts_its_closed_state(w: World) -> None:
    state = w.open(exp_time=NOW + 2 * HOUR)
    done = replace(state, status=Status.CLOSED, settlement_txid="ab" * 32)
    w.store.before("compare_and_set", lambda old, new: w.store.put(done))
    assert await w.settler.settle_expiring() == 1
    assert w.stored(state) == done and w.signer.calls == []


async def test_auto_close_counts_a_closing_left_to_the_follow_up(w: World) -> None:
    state = w.open(exp_time=NOW + 2 * HOUR)
    w.signer.fail("sign_settlement", ServiceUnavailable("signer down"))
    assert await w.settler.settle_expiring() == 1
    assert w.stored(state).status is Status.CLOSING and not w.stored(state).settlement_tx


class Stop(BaseException):
    """Ends Settler.run() from the fake clock's sleep."""


async def test_run_follows_every_retry_interval_and_schedules_every_scheduler_interval(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    w.store.fail("list", InvalidInput("odd answer"), ValueError("a bug"))  # t=0 and t=10: logged, the loop goes on
    original = w.clock.sleep

    async def sleep(seconds: float) -> None:
        if len(w.clock.sleeps) == 6:
            raise Stop
        await original(seconds)

    w.clock.sleep = sleep  # type: ignore[method-assign]
    with pytest.raises(Stop):
        await w.settler.run()
    assert w.clock.sleeps == [CFG.retry_interval_seconds] * 6
    margin = POLICY.settlement_period + CFG.safety_margin_hours * HOUR
    closing_scans = [args for args in w.store.called("list") if args[0] is Status.CLOSING]
    open_scans = [args[2] - margin - NOW for args in w.store.called("list") if args[0] is Status.OPEN]
    assert len(closing_scans) == 7  # every retry interval, t = 0 .. 60
    assert open_scans == [20, 50]  # first due at 0 but the loop failed until 20; then every 30 s
    assert any(r.getMessage() == "settlement loop: odd answer" for r in caplog.records)
    assert any(r.getMessage() == "settlement loop error" and r.exc_info for r in caplog.records)


# --------------------------------------------------------------------------------- two instances


async def test_two_settlers_racing_settle_once(w: World) -> None:
    a, b = w.settler, w.another()
    states = [w.open(n, exp_time=NOW + 2 * HOUR) for n in range(3)]
    counts = await asyncio.gather(a.settle_expiring(), b.settle_expiring())
    assert sum(counts) == 3
    await asyncio.gather(a.follow_closings(), b.follow_closings())
    stored = [w.stored(s) for s in states]
    assert all(s.status is Status.CLOSING and s.settlement_tx for s in stored)
    assert set(w.chain.published) == {s.settlement_tx for s in stored}  # only stored settlements are published

    for s in stored:
        w.chain.mine(s.settlement_txid, 3)
    await asyncio.gather(a.follow_closings(), b.follow_closings())
    assert [w.stored(s) for s in states] == [replace(s, status=Status.CLOSED) for s in stored]


async def test_two_settlers_closing_one_channel_both_answer_closed(w: World) -> None:
    a, b = w.settler, w.another()
    state = w.open()
    closing = await a.settle(state, state)
    w.chain.mine(closing.settlement_txid, 3)
    first, second = await asyncio.gather(a.finish(closing), b.finish(closing))
    assert first == second == replace(closing, status=Status.CLOSED)
    assert len(w.store.called("compare_and_set")) == 4  # open->closing, signed, and both closing->closed


def test_families_do_not_change_settlement() -> None:
    """A v2.3.0 channel settles like the others (only its min_fee differs): the input is the stored state."""
    c = chan(7)
    seed, v23 = c.opened(c.funding.value - 150_000), c.opened(c.funding.value - 150_000, family=Family.V2_3)
    assert settlement_input(seed) == settlement_input(v23)
