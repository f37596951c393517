"""The protocol core of PayChanServer: funding info, open, pay, close, shared by all route families."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace

from chan_store.contract import ChannelExistsAt
from paychan_common.address import Address
from paychan_common.channel import ChannelParams, Funding, PaymentVerifier
from paychan_common.errors import (
    ChannelGone,
    ChannelNotFound,
    FundingError,
    InvalidPayment,
    PaychanError,
)
from paychan_common.keys import PublicKey
from paychan_common.messages import FundingInfo, FundingInfoV1, PaymentResult
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import (
    Accepted,
    ChannelPolicy,
    check_close_payment,
    check_funding,
    check_not_near_expiry,
    check_open_expiry,
    check_payment,
    check_v1_close,
    earliest_exp_time,
    open_state,
    secret_matches,
)
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint

from ..config import ServerConfig, v1_open_price
from .clock import ClockPort
from .hooks import PaymentHooks
from .ports import Blockchain, ChannelStorePort
from .results import ExistingChannel, Opened, StaticChannel
from .settler import Settler


class PayChanService:
    """Open, pay and close over ChanStore, the SigningService (via Settler) and the blockchain port."""

    def __init__(self, cfg: ServerConfig, store: ChannelStorePort, chain: Blockchain, settler: Settler,
                 server_pubkey: PublicKey, clock: ClockPort, hooks: PaymentHooks | None = None,
                 cache_size: int = 100_000) -> None:
        self.cfg = cfg
        self.network: Network = cfg.bitcoin.net
        self.store = store
        self.chain = chain
        self.settler = settler
        self.server_pubkey = server_pubkey
        self.clock = clock
        self.policy: ChannelPolicy = cfg.channel.policy()
        self._cache: OrderedDict[OutPoint, StaticChannel] = OrderedDict()
        self._cache_size = cache_size
        self._keys: dict[str, PublicKey] = {}  # path key text -> validated key (hot path: no curve check)
        self.hooks = hooks if hooks is not None else PaymentHooks()  # metrics and the value callback

    # -- funding info -------------------------------------------------------------------------------
    def params(self, client_pubkey: PublicKey, exp_time: int) -> ChannelParams:
        """Channel parameters for a client key and expiry with our key."""
        return ChannelParams(client_pubkey, self.server_pubkey, exp_time, self.network)

    def v1_open_price(self) -> int:
        """v1 open price: base price plus the fixed settlement fee estimate if configured (spec 6.2)."""
        return v1_open_price(self.cfg)

    def funding_info_v1(self, params: ChannelParams) -> FundingInfoV1:
        """v1 FundingInfo (spec 6.2)."""
        p = self.policy
        return FundingInfoV1(server_pubkey=self.server_pubkey.hex, funding_address_copy=params.funding_address.text,
                             open_price=self.v1_open_price(), funding_tx_min_conf=p.funding_min_conf,
                             settlement_period_hours=p.settlement_period_hours,
                             earliest_exp_time=earliest_exp_time(self.clock.now(), p))

    def funding_info(self, params: ChannelParams, *, with_script: bool) -> FundingInfo:
        """v2 FundingInfo: v2-seed with `redeem_script_copy`, v2.3.0 without (spec 6.3 #1, 6.4 #1)."""
        p = self.policy
        return FundingInfo(server_pubkey=self.server_pubkey.hex, dust_limit=p.dust_limit,
                           funding_address_copy=params.funding_address.text,
                           redeem_script_copy=params.redeem_script.hex() if with_script else None,
                           open_price=p.open_price, funding_tx_min_conf=p.funding_min_conf,
                           settlement_period_hours=p.settlement_period_hours, min_duration_hours=p.min_duration_hours,
                           earliest_exp_time=earliest_exp_time(self.clock.now(), p))

    async def begin_open(self, params: ChannelParams) -> OutPoint:
        """v2-seed begin_open: the confirmed funding output of this channel (409 if none yet)."""
        fundings = await self.chain.funding_by_address(params.client_pubkey, params.exp_time, params.funding_address)
        if not fundings:
            raise FundingError(f"No transactions paying to {params.funding_address.text}", code="funding_not_found")
        for f in fundings:
            check_funding(f, params, self.policy, debug=self.chain.debug)
        return fundings[0].outpoint

    # -- open ---------------------------------------------------------------------------------------
    async def open(self, family: Family, params: ChannelParams, payment: Payment, change_address: Address,
                   outpoint: OutPoint | None) -> Opened:
        """Open a channel with its first payment (spec 7.2)."""
        now = self.clock.now()
        check_open_expiry(params.exp_time, now, self.policy)
        fundings = await self._fundings(params, payment, outpoint)
        for f in fundings:
            existing = await self.store.get(f.outpoint)
            if existing is not None:
                raise ExistingChannel(existing)
        policy = replace(self.policy, open_price=self.v1_open_price()) if family is Family.V1 else self.policy
        accepted: Accepted | None = None
        first_error: InvalidPayment | None = None
        for f in fundings:
            check_funding(f, params, self.policy, debug=self.chain.debug)
            verifier = PaymentVerifier(params.client_pubkey, f.outpoint, params.redeem_script)
            try:
                accepted = open_state(params, f, payment, verifier, change_address, family, policy, now)
                break
            except InvalidPayment as exc:
                first_error = first_error or exc
        if accepted is None:
            assert first_error is not None
            raise first_error
        try:
            state = await self.store.create(accepted.state)
        except ChannelExistsAt as exc:  # lost a race, or an open channel of this key elsewhere
            existing = await self.store.get(exc.existing_outpoint) if exc.existing_outpoint else None
            raise (ExistingChannel(existing) if existing is not None else exc) from None
        self.hooks.opened(family, accepted.value_received)
        self._remember(state)
        if state.exhausted:
            state = await self._settle_exhausted(state)
        return Opened(state.outpoint, self._result(state, accepted.value_received))

    async def _fundings(self, params: ChannelParams, payment: Payment, outpoint: OutPoint | None) -> list[Funding]:
        addr = params.funding_address
        if outpoint is None:
            fundings = await self.chain.funding_by_address(params.client_pubkey, params.exp_time, addr)
        else:
            if payment.outpoint is not None and payment.outpoint != outpoint:
                raise InvalidPayment("unexpected outpoint: payment and path disagree", code="unexpected_outpoint")
            found = await self.chain.funding_by_outpoint(outpoint, params.client_pubkey, params.exp_time, addr)
            fundings = [] if found is None else [found]
        if not fundings:
            raise FundingError(f"No transactions paying to {addr.text}", code="funding_not_found")
        return fundings

    # -- pay ----------------------------------------------------------------------------------------
    async def static(self, outpoint: OutPoint) -> StaticChannel:
        """The cached static parameters of a channel (loaded from ChanStore once)."""
        st = self._cache.get(outpoint)
        if st is not None:
            return st
        state = await self.store.get(outpoint)
        if state is None:
            raise ChannelNotFound("no such channel")
        return self._remember(state)

    def _remember(self, state: ChannelState) -> StaticChannel:
        st = StaticChannel(
            state.client_pubkey, state.exp_time, state.family, state.secret,
            PaymentVerifier(PublicKey(state.client_pubkey), state.outpoint, state.redeem_script),
            Address(state.change_address, self.network, state.change_script), state.funding_value,
        )
        if state.status is Status.OPEN:
            self._cache[state.outpoint] = st
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return st

    def client_key(self, text: str) -> PublicKey:
        """PublicKey.from_hex(text), remembered: a path's key is checked on the curve once, not on every payment."""
        pk = self._keys.get(text)
        if pk is None:
            pk = PublicKey.from_hex(text)  # raises InvalidInput; failures are not remembered
            if len(self._keys) >= self._cache_size:
                del self._keys[next(iter(self._keys))]
            self._keys[text] = pk
        return pk

    async def locate(self, outpoint: OutPoint, family: Family, *, locator: tuple[bytes, int] | None = None,
                     secret: bytes | None = None) -> StaticChannel:
        """The channel at outpoint if it was opened on this route family and the path's (key, exp) or the
        v2.3.0 secret match; else 404. Every 404 costs one ChanStore read, found or not, so the answer's
        timing tells nothing about a channel whose secret the caller lacks (spec 6.4)."""
        st = self._cache.get(outpoint)
        read = st is None
        if st is None:
            state = await self.store.get(outpoint)
            if state is None:
                if secret is not None:
                    secret_matches(secret, bytes(32))  # the same work as a real comparison
                raise ChannelNotFound("no such channel")
            st = self._remember(state)
        ok = st.family is family
        if secret is not None:
            ok = secret_matches(st.secret, secret) and ok
        if locator is not None:
            ok = ok and (st.client_pubkey, st.exp_time) == locator
        if not ok:
            if not read:
                await self.store.get(outpoint)
            raise ChannelNotFound("no such channel")
        return st

    async def pay(self, outpoint: OutPoint, payment: Payment, st: StaticChannel) -> PaymentResult:
        """Apply one payment: static checks here, the atomic state update in ChanStore (spec 7.3)."""
        now = self.clock.now()
        try:
            check_not_near_expiry(st.exp_time, now, self.policy)
            check_payment(payment, st.verifier, st.change_address, self.policy)
        except InvalidPayment:
            await self._raise_if_gone(outpoint)
            raise
        sig = payment.signature
        applied = await self.store.apply_payment(outpoint, payment.change_value, sig.der, sig.sighash, now)
        if applied.change_value == 0 and sig.sighash == 0x82:
            state = await self.store.get(outpoint)
            if state is not None and state.status is Status.OPEN:
                closed = await self._settle_exhausted(state)
                return await self.hooks.paid(self._result(closed, applied.value_received), st, payment)
        left = self.cfg.channel.value_left(applied.change_value)
        result = PaymentResult(channel_status="open", channel_value_left=left,
                               value_received=applied.value_received, settlement_txid=None)
        return await self.hooks.paid(result, st, payment)

    async def _settle_exhausted(self, state: ChannelState) -> ChannelState:
        """Settle a channel a payment exhausted (spec 7.3 step 12); the payment counted even if settling
        must wait (signer or node down): the background settler finishes it then."""
        try:
            return await self.settler.settle(state, state)
        except PaychanError as exc:
            logging.getLogger("paychan.settlement").warning(
                "channel %s exhausted; settlement pending: %s", state.outpoint, exc.message)
            return await self.store.get(state.outpoint) or state

    async def _raise_if_gone(self, outpoint: OutPoint) -> None:
        state = await self.store.get(outpoint)
        if state is not None and state.status is not Status.OPEN:
            self._cache.pop(outpoint, None)
            raise ChannelGone(f"channel is {state.status.label}", code=f"channel_{state.status.label}")

    # -- close --------------------------------------------------------------------------------------
    async def _state(self, outpoint: OutPoint) -> ChannelState:
        state = await self.store.get(outpoint)
        if state is None:
            raise ChannelNotFound("no such channel")
        return state

    async def close_v1(self, outpoint: OutPoint, payment: Payment) -> PaymentResult:
        """v1 DELETE: the latest payment authenticates; settle with the stored state (spec 7.4)."""
        state = await self._state(outpoint)
        check_v1_close(state, payment)
        if state.status is Status.CLOSING:
            state = await self.settler.finish(state)
        elif state.status is Status.OPEN:
            state = await self.settler.settle(state, state)
            self.hooks.closed(state.family, 0)
        self._cache.pop(outpoint, None)
        return self._result(state, 0)

    async def close_v2(self, outpoint: OutPoint, payment: Payment, st: StaticChannel) -> PaymentResult:
        """v2-seed / v2.3.0 close with a closing payment that may name a new change address (spec 7.4)."""
        state = await self._state(outpoint)
        new_addr = (Address.parse(payment.change_address, self.network) if payment.change_address is not None
                    else st.change_address)
        if state.status is Status.CLOSED:
            st.verifier.verify(payment.signature, payment.change_value, new_addr.script_pubkey)
            return self._result(state, 0)
        if state.status is Status.CLOSING:
            # A repeated close (e.g. after a 503) with the stored closing payment finishes the settlement.
            try:
                st.verifier.verify(payment.signature, state.change_value, state.change_script)
            except InvalidPayment:
                raise ChannelGone("settlement in progress", code="channel_closing") from None
            return self._result(await self.settler.finish(state), 0)
        closing = check_close_payment(state, payment, st.verifier, new_addr, self.policy)
        received = state.change_value - closing.change_value
        min_fee = received if state.family is Family.V2_3 else 0
        closed = await self.settler.settle(state, closing, min_fee)
        self._cache.pop(outpoint, None)
        self.hooks.closed(state.family, received)
        return self._result(closed, received)

    # -- results ------------------------------------------------------------------------------------
    def _result(self, state: ChannelState, received: int) -> PaymentResult:
        closed = state.status is not Status.OPEN
        return PaymentResult(channel_status="closed" if closed else "open",
                             channel_value_left=self.cfg.channel.value_left(state.change_value),
                             value_received=received,
                             settlement_txid=state.settlement_txid or None if closed else None)

