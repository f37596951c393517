"""Settlement: every close moves a channel open -> closing (signed tx stored before broadcast) ->
closed, each step a compare-and-set; unfinished closings resume; a scheduler settles channels
before their expiry (spec 8.4, DESIGN.md "Channel life")."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from paychan_common.channel import ClientSignature
from paychan_common.errors import ChannelGone, Conflict, PaychanError
from paychan_common.rules import ChannelPolicy
from paychan_common.settlement import FeeMode, SettlementInput, settlement_fee
from paychan_common.state import ChannelState, Status

from .blockchain import Blockchain
from .clock import Clock
from .config import SettlementConfig
from .ports import ChannelStorePort
from .signer_client import SignerClient

log = logging.getLogger("paychan.settlement")


def settlement_input(state: ChannelState) -> SettlementInput:
    """The settlement's ingredients from a stored state."""
    return SettlementInput(state.outpoint, state.funding_value, state.redeem_script, state.change_value,
                           state.change_script, ClientSignature(state.signature, state.sighash))


class Settler:
    """Closes channels: sign, store, publish, mark closed; resumes and schedules."""

    def __init__(self, store: ChannelStorePort, signer: SignerClient, chain: Blockchain, destination: bytes,
                 policy: ChannelPolicy, cfg: SettlementConfig, clock: Clock) -> None:
        self.store = store
        self.signer = signer
        self.chain = chain
        self.destination = destination
        self.policy = policy
        self.cfg = cfg
        self.clock = clock
        self._inflight: dict[bytes, asyncio.Future[ChannelState]] = {}

    async def settle(self, current: ChannelState, closing_src: ChannelState, min_fee: int = 0) -> ChannelState:
        """Move `current` (open) to closing with closing_src's payment, then finish the settlement."""
        closing = replace(closing_src, status=Status.CLOSING, settlement_fee=min_fee)
        try:
            closing = await self.store.compare_and_set(current, closing)
        except Conflict:
            now_state = await self.store.get(current.outpoint)
            if now_state is not None and now_state.status is Status.CLOSED:
                return now_state
            if now_state is not None and now_state.status is Status.CLOSING:
                raise ChannelGone("settlement in progress", code="channel_closing") from None
            raise Conflict("channel changed while closing; retry the close") from None
        log.info("channel %s closing", closing.outpoint)
        return await self.finish(closing)

    async def finish(self, closing: ChannelState) -> ChannelState:
        """Sign (if not yet), store, publish and mark closed; concurrent calls share one run."""
        key = closing.outpoint.serialize()
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        fut: asyncio.Future[ChannelState] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await self._finish(closing)
            fut.set_result(result)
            return result
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[key]

    async def _finish(self, closing: ChannelState) -> ChannelState:
        if not closing.settlement_tx:
            si = settlement_input(closing)
            rate = await self.chain.fee_rate()
            mode = FeeMode(self.cfg.fee_mode)
            fee = settlement_fee(si, self.destination, self.policy.dust_limit, rate, mode, closing.settlement_fee)
            signed = await self.signer.sign_settlement(si, fee, self.policy.dust_limit)
            stored = replace(closing, settlement_tx=signed.tx, settlement_txid=signed.txid, settlement_fee=signed.fee)
            closing = await self.store.compare_and_set(closing, stored)
            log.info("channel %s settlement %s signed and stored (fee %d)", closing.outpoint, signed.txid, signed.fee)
        txid = await self.chain.publish(closing.settlement_tx)
        closed = replace(closing, status=Status.CLOSED, settlement_txid=txid)
        closed = await self.store.compare_and_set(closing, closed)
        log.info("channel %s closed by %s", closed.outpoint, txid)
        return closed

    async def resume_closings(self) -> int:
        """Finish every channel left in `closing` (after a crash or an outage); returns how many."""
        done = 0
        for state in await self.store.list(status=Status.CLOSING, limit=1000):
            try:
                await self.finish(state)
                done += 1
            except PaychanError as exc:
                log.warning("closing of %s not finished yet: %s", state.outpoint, exc.message)
        return done

    async def chain_now(self) -> int:
        """max(wall clock, median time past): a clock running late cannot delay auto-close."""
        mtp = await self.chain.median_time()
        now = self.clock.now()
        return max(now, mtp) if mtp is not None else now

    async def settle_expiring(self) -> int:
        """Settle every open channel whose exp_time - settlement_period - margin has passed."""
        now = await self.chain_now()
        horizon = now + self.policy.settlement_period + self.cfg.safety_margin_hours * 3600
        count = 0
        for state in await self.store.list(status=Status.OPEN, expiring_before=horizon, limit=1000):
            if state.exp_time - now < self.policy.settlement_period:
                log.warning("ALERT channel %s is %d s from expiry, inside the settlement period",
                            state.outpoint, state.exp_time - now)
            try:
                await self.settle(state, state)
                count += 1
            except PaychanError as exc:
                log.warning("auto-close of %s failed: %s", state.outpoint, exc.message)
        return count

    async def run(self) -> None:
        """Background loop: resume closings often, settle expiring channels periodically."""
        since_schedule = self.cfg.scheduler_interval_seconds
        while True:
            try:
                await self.resume_closings()
                if since_schedule >= self.cfg.scheduler_interval_seconds:
                    since_schedule = 0.0
                    await self.settle_expiring()
            except PaychanError as exc:
                log.warning("settlement loop: %s", exc.message)
            except Exception:
                log.exception("settlement loop error")
            await asyncio.sleep(self.cfg.retry_interval_seconds)
            since_schedule += self.cfg.retry_interval_seconds
