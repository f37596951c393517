"""PayChanService against fakes of its ports (spec 6, 7): funding info, open with every refusal, pay, close per
route family, the static-channel cache, and locate's equal-work 404."""

from __future__ import annotations

from dataclasses import replace
from hashlib import sha256
from typing import Any

import pytest

from chan_store.contract import ChannelExistsAt
from paychan_common.address import Address
from paychan_common.errors import (
    ChannelGone,
    ChannelNotFound,
    FundingError,
    InvalidInput,
    InvalidPayment,
    ServiceUnavailable,
)
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.rules import secret_matches
from paychan_common.settlement import FIXED_SETTLEMENT_SIZE
from paychan_common.sighash import NONE_ACP
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint
from paychan_server.config import ServerConfig
from paychan_server.domain import service as service_module
from paychan_server.domain.results import ExistingChannel, PaymentResult
from paychan_server.domain.service import PayChanService
from paychan_server.domain.settler import Settler
from tests.support.channels import Chan, make_chan
from tests.support.fakes import FakeBlockchain, FakeChannelStore, FakeClock, FakeHooks, FakeSigner

HOUR = 3600
NOW = 1_700_000_000
EXP = NOW + 7 * 24 * HOUR
SERVER = PrivateKey(sha256(b"service test server key").digest())
DESTINATION = Address.p2pkh(sha256(b"service destination").digest()[:20], Network.TEST)
PRICE = 100_000
FEE = FIXED_SETTLEMENT_SIZE * 10


def config(**sections: dict[str, Any]) -> ServerConfig:
    """A server config for the test network (fixed fee 10 sat/byte); sections override keys."""
    base: dict[str, Any] = {
        "bitcoin": {"network": "test", "rpc_url": "http://127.0.0.1:1"}, "auth": {"token_file": "unused"},
        "settlement": {"fee_mode": "fixed", "fee_rate_sat_per_byte": 10, "confirmations": 1},
        "v1": {"base_price": 70_000, "price_add_settlement_fee": True},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return ServerConfig.model_validate(base)


def chan(n: int, *, confirmations: int = 10, vout: int | None = None, exp_time: int = EXP) -> Chan:
    """Client number n's channel (funded with `confirmations`), optionally at another vout of its funding."""
    c = make_chan(sha256(b"service client %d" % n).digest(), SERVER.secret, exp_time, Network.TEST,
                  confirmations=confirmations)
    if vout is None:
        return c
    return make_chan(c.client.secret, SERVER.secret, exp_time, Network.TEST,
                     outpoint=OutPoint(c.outpoint.txid, vout), confirmations=confirmations)


def refund(c: Chan) -> Address:
    """The client's change address: P2PKH of its key."""
    return Address.p2pkh(c.client.public_key.hash160(), Network.TEST)



def result_of(status: str, left: int, received: int, txid: str | None, app: str = "") -> PaymentResult:
    """The PaymentResult wire message, positionally."""
    return PaymentResult(channel_status=status, channel_value_left=left, value_received=received,
                         settlement_txid=txid, application_data=app)

class World:
    """A PayChanService and its Settler over fresh fakes."""

    def __init__(self, cfg: ServerConfig | None = None, cache_size: int = 100_000) -> None:
        self.cfg = cfg or config()
        self.store = FakeChannelStore()
        self.chain = FakeBlockchain()
        self.signer = FakeSigner(SERVER, DESTINATION)
        self.clock = FakeClock(NOW)
        self.hooks = FakeHooks()
        policy = self.cfg.channel.policy()
        self.settler = Settler(self.store, self.signer, self.chain, DESTINATION.script_pubkey, policy,
                               self.cfg.settlement, self.clock)
        self.svc = PayChanService(self.cfg, self.store, self.chain, self.settler, SERVER.public_key, self.clock,
                                  hooks=self.hooks, cache_size=cache_size)

    def fund(self, c: Chan) -> Chan:
        self.chain.fund(c.funding, c.funding_address)
        return c

    async def open(self, c: Chan, family: Family = Family.V2_SEED, price: int = PRICE, *,
                   by_outpoint: bool = True) -> PaymentResult:
        change = c.funding.value - price
        payment = c.payment(change, address=refund(c))
        opened = await self.svc.open(family, c.params, payment, refund(c), c.outpoint if by_outpoint else None)
        assert opened.outpoint == c.outpoint
        return opened.result

    def stored(self, c: Chan) -> ChannelState:
        return self.store.states[c.outpoint]


@pytest.fixture
def w() -> World:
    return World()


# ------------------------------------------------------------------------------------ funding info


def test_funding_info_of_each_family(w: World) -> None:
    c = chan(1)
    params = w.svc.params(c.client.public_key, EXP)
    assert params == c.params
    v2 = w.svc.funding_info(params, with_script=True).wire()
    assert v2 == {"server_pubkey": SERVER.public_key.hex, "dust_limit": 700,
                  "funding_address_copy": c.funding_address.text, "redeem_script_copy": c.redeem_script.hex(),
                  "open_price": PRICE, "funding_tx_min_conf": 10, "settlement_period_hours": 12,
                  "min_duration_hours": 48, "earliest_exp_time": NOW + (48 + 12) * 3600}  # extra field (spec 6.3)
    v23 = w.svc.funding_info(params, with_script=False).wire()
    assert v23 == {k: v for k, v in v2.items() if k != "redeem_script_copy"}
    assert w.svc.funding_info_v1(params).model_dump() == {
        "server_pubkey": SERVER.public_key.hex, "funding_address_copy": c.funding_address.text,
        "open_price": 70_000 + FEE, "funding_tx_min_conf": 10, "settlement_period_hours": 12,
        "earliest_exp_time": NOW + (48 + 12) * 3600}


def test_v1_open_price_adds_the_settlement_fee_only_when_configured() -> None:
    assert World().svc.v1_open_price() == 70_000 + FEE
    assert World(config(v1={"price_add_settlement_fee": False})).svc.v1_open_price() == 70_000


async def test_begin_open_finds_the_confirmed_funding(w: World) -> None:
    c = chan(1)
    with pytest.raises(FundingError) as exc:
        await w.svc.begin_open(c.params)
    assert exc.value.code == "funding_not_found" and c.funding_address.text in exc.value.message
    w.fund(c)
    assert await w.svc.begin_open(c.params) == c.outpoint


async def test_begin_open_refuses_a_funding_short_of_confirmations(w: World) -> None:
    c = w.fund(chan(1, confirmations=9))
    with pytest.raises(FundingError) as exc:
        await w.svc.begin_open(c.params)
    assert exc.value.code == "insufficient_confirmations"


# ------------------------------------------------------------------------------------------- open


@pytest.mark.parametrize("by_outpoint", [True, False], ids=["v2-path-outpoint", "v1-by-address"])
async def test_open_stores_the_channel_and_reports_it(w: World, by_outpoint: bool) -> None:
    c = w.fund(chan(1))
    result = await w.open(c, by_outpoint=by_outpoint)
    assert result == result_of("open", c.funding.value - PRICE, PRICE, None)
    state = w.stored(c)
    assert (state.status, state.change_value, state.family, state.open_time) == (
        Status.OPEN, c.funding.value - PRICE, Family.V2_SEED, NOW)
    assert state.change_address == refund(c).text
    assert w.hooks.opened_calls == [(Family.V2_SEED, PRICE)]
    assert (await w.svc.static(c.outpoint)).funding_value == c.funding.value  # remembered, no store read
    assert len(w.store.called("get")) == 1  # only the existence check


async def test_v1_open_charges_the_v1_price(w: World) -> None:
    v1_price = 70_000 + FEE
    with pytest.raises(InvalidPayment) as exc:
        await w.open(w.fund(chan(1)), Family.V1, price=v1_price - 1)
    assert exc.value.code == "open_price_short"
    result = await w.open(w.fund(chan(2)), Family.V1, price=v1_price)
    assert result.value_received == v1_price
    with pytest.raises(InvalidPayment):  # below the v2 open price
        await w.open(w.fund(chan(3)), Family.V2_SEED, price=v1_price)


async def test_open_refuses_an_expiry_too_soon(w: World) -> None:
    c = w.fund(chan(1, exp_time=NOW + 59 * HOUR))
    with pytest.raises(InvalidInput) as exc:
        await w.open(c)
    assert exc.value.code == "exp_time_too_soon" and w.chain.calls == []


@pytest.mark.parametrize("by_outpoint", [True, False])
async def test_open_without_funding(w: World, by_outpoint: bool) -> None:
    with pytest.raises(FundingError) as exc:
        await w.open(chan(1), by_outpoint=by_outpoint)
    assert exc.value.code == "funding_not_found"


async def test_open_refuses_a_payment_naming_another_outpoint_than_the_path(w: World) -> None:
    c = w.fund(chan(1))
    payment = c.payment(c.funding.value - PRICE, address=refund(c))
    other = OutPoint(b"\x01" * 32, 0)
    with pytest.raises(InvalidPayment) as exc:
        await w.svc.open(Family.V2_SEED, c.params, payment, refund(c), other)
    assert exc.value.code == "unexpected_outpoint" and w.store.calls == []


async def test_open_of_an_existing_channel_is_409_with_it(w: World) -> None:
    c = w.fund(chan(1))
    await w.open(c)
    with pytest.raises(ExistingChannel) as exc:
        await w.open(c)
    assert exc.value.existing == w.stored(c) and exc.value.code == "channel_exists"
    assert w.hooks.opened_calls == [(Family.V2_SEED, PRICE)]


async def test_open_when_the_key_has_an_open_channel_elsewhere_names_that_one(w: World) -> None:
    first, second = w.fund(chan(1)), w.fund(chan(1, vout=7))
    await w.open(first)
    with pytest.raises(ExistingChannel) as exc:
        await w.open(second)
    assert exc.value.existing.outpoint == first.outpoint
    assert second.outpoint not in w.store.states


async def test_open_losing_a_race_to_a_vanished_channel_reraises_the_store_error(w: World) -> None:
    c = w.fund(chan(1))
    w.store.fail("create", ChannelExistsAt("channel exists", None, code="open_channel_exists"))
    with pytest.raises(ChannelExistsAt):
        await w.open(c)


async def test_open_refuses_a_funding_short_of_confirmations(w: World) -> None:
    c = w.fund(chan(1, confirmations=3))
    with pytest.raises(FundingError) as exc:
        await w.open(c)
    assert exc.value.code == "insufficient_confirmations" and c.outpoint not in w.store.states


async def test_open_refuses_a_short_payment(w: World) -> None:
    c = w.fund(chan(1))
    with pytest.raises(InvalidPayment) as exc:
        await w.open(c, price=PRICE - 1)
    assert exc.value.code == "open_price_short" and w.hooks.opened_calls == []


async def test_open_by_address_uses_the_funding_the_payment_signs(w: World) -> None:
    signed = chan(1, vout=2)
    decoy = chan(1, vout=1)
    w.chain.fund(decoy.funding, decoy.funding_address)  # found first, but the payment does not sign it
    w.chain.fund(signed.funding, signed.funding_address)
    change = signed.funding.value - PRICE
    payment = signed.payment(change, address=refund(signed), full=False)
    result = await w.svc.open(Family.V1, signed.params, payment, refund(signed), None)
    assert result.outpoint == signed.outpoint and decoy.outpoint not in w.store.states


async def test_open_by_address_reports_the_first_refusal(w: World) -> None:
    a, b = chan(1, vout=1), chan(1, vout=2)
    for c in (a, b):
        w.chain.fund(c.funding, c.funding_address)
    payment = chan(1, vout=3).payment(a.funding.value - PRICE, address=refund(a), full=False)
    with pytest.raises(InvalidPayment) as exc:
        await w.svc.open(Family.V1, a.params, payment, refund(a), None)
    assert exc.value.code == "bad_signature" and w.store.called("create") == []


async def test_an_exhausting_open_settles_at_once(w: World) -> None:
    c = w.fund(chan(1))
    payment = c.payment(0, sighash=NONE_ACP, address=refund(c))
    opened = await w.svc.open(Family.V2_3, c.params, payment, refund(c), c.outpoint)
    assert opened.outpoint == c.outpoint
    result = opened.result
    state = w.stored(c)
    assert state.status is Status.CLOSING and state.settlement_tx and w.chain.published == [state.settlement_tx]
    assert result == result_of("closed", 0, c.funding.value, state.settlement_txid)


# -------------------------------------------------------------------------------------------- pay


async def opened(w: World, n: int = 1, family: Family = Family.V2_SEED) -> tuple[Chan, int]:
    c = w.fund(chan(n))
    await w.open(c, family)
    return c, c.funding.value - PRICE


async def test_pay_applies_the_payment_and_tells_the_hooks(w: World) -> None:
    w.hooks.application_data = "thanks"
    c, change = await opened(w)
    st = await w.svc.static(c.outpoint)
    payment = c.payment(change - 1_000, address=refund(c), full=False)
    result = await w.svc.pay(c.outpoint, payment, st)
    assert result == result_of("open", change - 1_000, 1_000, None, "thanks")
    assert w.stored(c).change_value == change - 1_000 and w.stored(c).payment_count == 2
    [(told, told_st, told_payment)] = w.hooks.paid_calls
    assert told.application_data == "" and told_st is st and told_payment is payment


async def test_value_left_may_be_reported_minus_dust() -> None:
    w = World(config(channel={"report_value_left_minus_dust": True}))
    c, change = await opened(w)
    result = await w.svc.pay(c.outpoint, c.payment(change - 10, address=refund(c), full=False),
                             await w.svc.static(c.outpoint))
    assert result.channel_value_left == change - 10 - 700


async def test_pay_stops_a_settlement_period_before_expiry(w: World) -> None:
    c, change = await opened(w)
    w.clock.advance(EXP - NOW - 12 * HOUR + 1)
    with pytest.raises(InvalidPayment) as exc:
        await w.svc.pay(c.outpoint, c.payment(change - 1, address=refund(c), full=False),
                        await w.svc.static(c.outpoint))
    assert exc.value.code == "near_expiry" and w.store.called("apply_payment") == []


async def test_a_bad_payment_on_a_closed_channel_says_it_is_gone_and_forgets_it(w: World) -> None:
    c, change = await opened(w)
    st = await w.svc.static(c.outpoint)
    w.store.put(replace(w.stored(c), status=Status.CLOSED))
    bad = c.payment(change - 1, address=c.funding_address, full=False)  # signs another change address
    with pytest.raises(ChannelGone) as exc:
        await w.svc.pay(c.outpoint, bad, st)
    assert exc.value.code == "channel_closed"
    gets = len(w.store.called("get"))
    await w.svc.static(c.outpoint)
    assert len(w.store.called("get")) == gets + 1  # evicted from the cache


async def test_a_bad_payment_on_an_open_channel_is_the_payment_error(w: World) -> None:
    c, change = await opened(w)
    with pytest.raises(InvalidPayment):
        await w.svc.pay(c.outpoint, c.payment(change - 1, address=c.funding_address, full=False),
                        await w.svc.static(c.outpoint))


async def test_an_exhausting_payment_settles_the_channel(w: World) -> None:
    c, change = await opened(w)
    payment = c.payment(0, sighash=NONE_ACP, address=refund(c), full=False)
    result = await w.svc.pay(c.outpoint, payment, await w.svc.static(c.outpoint))
    state = w.stored(c)
    assert state.status is Status.CLOSING and w.chain.published == [state.settlement_tx]
    assert result == result_of("closed", 0, change, state.settlement_txid)
    assert len(w.hooks.paid_calls) == 1


async def test_an_exhausted_channel_whose_settlement_must_wait_still_counts_the_payment(
        w: World, caplog: pytest.LogCaptureFixture) -> None:
    c, change = await opened(w)
    w.signer.fail("sign_settlement", ServiceUnavailable("signer down"))
    result = await w.svc.pay(c.outpoint, c.payment(0, sighash=NONE_ACP, address=refund(c), full=False),
                             await w.svc.static(c.outpoint))
    assert result == result_of("closed", 0, change, None)
    assert w.stored(c).status is Status.CLOSING and not w.stored(c).settlement_tx
    assert any("settlement pending: signer down" in r.getMessage() for r in caplog.records)


async def test_an_exhausting_payment_racing_another_close_leaves_the_settling_to_it(w: World) -> None:
    c, change = await opened(w)
    w.store.before("get", lambda op: w.store.put(replace(w.stored(c), status=Status.CLOSING)))
    result = await w.svc.pay(c.outpoint, c.payment(0, sighash=NONE_ACP, address=refund(c), full=False),
                             await w.svc.static(c.outpoint))
    # The payment is stored and counted; the request that moved the channel to closing settles it.
    assert result == result_of("open", 0, change, None)
    assert w.signer.calls == [] and w.chain.published == []


# -------------------------------------------------------------------------------- cache and locate


async def test_static_reads_the_store_once_and_refuses_an_unknown_channel(w: World) -> None:
    c = chan(1)
    w.store.put(c.opened(c.funding.value - PRICE))
    first = await w.svc.static(c.outpoint)
    assert await w.svc.static(c.outpoint) is first and len(w.store.called("get")) == 1
    with pytest.raises(ChannelNotFound):
        await w.svc.static(chan(2).outpoint)


async def test_the_cache_holds_open_channels_only_and_evicts_the_oldest() -> None:
    w = World(cache_size=2)
    chans = [chan(n) for n in range(3)]
    for c in chans:
        w.store.put(c.opened(c.funding.value - PRICE))
    closed = chan(9)
    w.store.put(replace(closed.opened(closed.funding.value - PRICE), status=Status.CLOSED))
    for c in [*chans, closed]:
        await w.svc.static(c.outpoint)
    reads = len(w.store.called("get"))
    await w.svc.static(chans[2].outpoint)
    await w.svc.static(chans[1].outpoint)
    assert len(w.store.called("get")) == reads
    await w.svc.static(chans[0].outpoint)  # evicted
    await w.svc.static(closed.outpoint)  # never cached
    assert len(w.store.called("get")) == reads + 2


def test_client_keys_are_checked_once_and_the_oldest_forgotten() -> None:
    w = World(cache_size=2)
    keys = [chan(n).client.public_key.hex for n in range(3)]
    first = w.svc.client_key(keys[0])
    assert w.svc.client_key(keys[0]) is first
    w.svc.client_key(keys[1])
    w.svc.client_key(keys[2])
    assert w.svc.client_key(keys[0]) is not first and w.svc.client_key(keys[0]) == first
    with pytest.raises(InvalidInput):
        w.svc.client_key("02" + "00" * 32)


async def test_locate_matches_family_locator_and_secret(w: World) -> None:
    c, _ = await opened(w, family=Family.V2_3)
    state = w.stored(c)
    st = await w.svc.locate(c.outpoint, Family.V2_3, secret=state.secret,
                            locator=(state.client_pubkey, state.exp_time))
    assert st.secret == state.secret and st.family is Family.V2_3


@pytest.mark.parametrize("wrong", ["family", "secret", "locator", "absent"])
@pytest.mark.parametrize("cached", [True, False])
async def test_locate_refuses_with_one_store_read_either_way(w: World, wrong: str, cached: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    c, _ = await opened(w, family=Family.V2_3)
    state = w.stored(c)
    if not cached:
        w.svc._cache.clear()
    compared: list[tuple[bytes, bytes]] = []

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return secret_matches(given, expected)

    monkeypatch.setattr(service_module, "secret_matches", spy)
    outpoint = chan(5).outpoint if wrong == "absent" else c.outpoint
    family = Family.V2_SEED if wrong == "family" else Family.V2_3
    secret = b"\x00" * 32 if wrong == "secret" else state.secret
    locator = (state.client_pubkey, state.exp_time + (1 if wrong == "locator" else 0))
    reads = len(w.store.called("get"))
    with pytest.raises(ChannelNotFound):
        await w.svc.locate(outpoint, family, secret=secret, locator=locator)
    assert len(w.store.called("get")) == reads + 1  # found or not, cached or not: one read
    [pair] = compared  # one secret comparison, even for a channel that does not exist
    assert secret in pair


# ------------------------------------------------------------------------------------------ close


async def test_close_v1_settles_with_the_latest_payment(w: World) -> None:
    c, change = await opened(w, family=Family.V1)
    latest = c.payment(change, address=refund(c), full=False)
    result = await w.svc.close_v1(c.outpoint, latest)
    state = w.stored(c)
    assert state.status is Status.CLOSING and w.chain.published == [state.settlement_tx]
    assert result == result_of("closed", change, 0, state.settlement_txid)
    assert w.hooks.closed_calls == [(Family.V1, 0)]
    w.chain.mine(state.settlement_txid, 1)
    again = await w.svc.close_v1(c.outpoint, latest)  # closing: finishes, without a second close count
    assert again.channel_status == "closed" and w.stored(c).status is Status.CLOSED
    assert w.hooks.closed_calls == [(Family.V1, 0)]
    assert (await w.svc.close_v1(c.outpoint, latest)) == again  # closed: the same answer


async def test_close_v1_refuses_an_older_payment_and_an_unknown_channel(w: World) -> None:
    c, change = await opened(w, family=Family.V1)
    with pytest.raises(InvalidPayment) as exc:
        await w.svc.close_v1(c.outpoint, c.payment(change + 1, address=refund(c), full=False))
    assert exc.value.code == "not_latest_payment"
    with pytest.raises(ChannelNotFound):
        await w.svc.close_v1(chan(4).outpoint, c.payment(change, address=refund(c), full=False))


async def test_close_v2_seed_signs_a_zero_value_closing_payment_to_a_new_address(w: World) -> None:
    c, change = await opened(w)
    new = Address.p2pkh(sha256(b"new change").digest()[:20], Network.TEST)
    st = await w.svc.static(c.outpoint)
    result = await w.svc.close_v2(c.outpoint, c.payment(change, address=new), st)
    state = w.stored(c)
    assert state.change_address == new.text and state.change_script == new.script_pubkey
    assert result == result_of("closed", change, 0, state.settlement_txid)
    assert w.hooks.closed_calls == [(Family.V2_SEED, 0)]
    [(_, fee, _)] = w.signer.called("sign_settlement")
    assert fee == FEE


async def test_close_v2_seed_refuses_value_in_the_closing_payment(w: World) -> None:
    c, change = await opened(w)
    with pytest.raises(InvalidPayment) as exc:
        await w.svc.close_v2(c.outpoint, c.payment(change - 5_000, address=refund(c), full=False),
                             await w.svc.static(c.outpoint))
    assert exc.value.code == "closing_value_nonzero"


async def test_close_v23_pays_the_closing_value_as_the_fee_floor(w: World) -> None:
    c, change = await opened(w, family=Family.V2_3)
    st = await w.svc.static(c.outpoint)
    result = await w.svc.close_v2(c.outpoint, c.payment(change - 5_000, address=refund(c), full=False), st)
    [(_, fee, _)] = w.signer.called("sign_settlement")
    assert fee == 5_000 and result.value_received == 5_000
    assert w.hooks.closed_calls == [(Family.V2_3, 5_000)]


async def test_close_v2_repeated_while_closing_finishes_with_the_stored_payment(w: World) -> None:
    c, change = await opened(w)
    st = await w.svc.static(c.outpoint)
    closing = c.payment(change, address=refund(c), full=False)
    w.chain.fail("publish", *(ServiceUnavailable("node down") for _ in range(3)))
    with pytest.raises(ServiceUnavailable):
        await w.svc.close_v2(c.outpoint, closing, st)
    result = await w.svc.close_v2(c.outpoint, closing, st)  # the client retries after the 503
    assert result.channel_status == "closed" and result.settlement_txid == w.stored(c).settlement_txid
    assert w.chain.published == [w.stored(c).settlement_tx]
    with pytest.raises(ChannelGone) as exc:  # another payment while closing
        await w.svc.close_v2(c.outpoint, c.payment(change - 1, address=refund(c), full=False), st)
    assert exc.value.code == "channel_closing"


async def test_close_v2_of_a_closed_channel_checks_the_signature_and_answers_closed(w: World) -> None:
    c, change = await opened(w)
    st = await w.svc.static(c.outpoint)
    done = w.store.put(replace(w.stored(c), status=Status.CLOSED, settlement_txid="ab" * 32))
    result = await w.svc.close_v2(c.outpoint, c.payment(change, address=refund(c), full=False), st)
    assert result == result_of("closed", done.change_value, 0, "ab" * 32)
    forged = chan(8).payment(change, address=refund(c), full=False)
    with pytest.raises(InvalidPayment):
        await w.svc.close_v2(c.outpoint, forged, st)


async def test_close_v2_of_a_refunded_channel_has_no_settlement_txid(w: World) -> None:
    c, change = await opened(w)
    st = await w.svc.static(c.outpoint)
    w.store.put(replace(w.stored(c), status=Status.CLOSED, settlement_txid=""))
    result = await w.svc.close_v2(c.outpoint, c.payment(change, address=refund(c), full=False), st)
    assert result.channel_status == "closed" and result.settlement_txid is None
