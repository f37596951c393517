"""Settlement (spec 8, docs/ARCHITECTURE.md "Channel life"): every close moves a channel open -> closing by
compare-and-set; the settlement is signed and stored before it is published; it is then followed until it
has `settlement.confirmations` confirmations (rebroadcast whenever it is neither mined nor in the mempool)
and the channel becomes closed; closed with an empty settlement_txid (`ChannelState.refunded`) when
another transaction, the client's refund, spent the funding instead.

A background loop follows every closing channel (so unfinished closings resume after a crash, and
publication is retried with backoff) and settles every open channel once the chain's time reaches
exp_time - settlement_period - safety margin. Each transition is a compare-and-set, so several
PayChanServer instances never double-settle: the SigningService signs deterministically (RFC 6979) and only
the stored signed transaction is ever published.

While a settlement waits unconfirmed, the Bumper (spec 8.6) replaces it by higher-fee versions of the same
state as its deadline nears; every version is stored before it is published, the newest is followed, and
the confirmation of any version closes the channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from paychan_common.channel import ClientSignature
from paychan_common.errors import ChannelGone, Conflict, PaychanError, ServiceUnavailable
from paychan_common.hashing import sha256d
from paychan_common.rules import ChannelPolicy
from paychan_common.settlement import FeeMode, SettlementInput, settlement_fee
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

from ..config import SettlementConfig
from .bumper import Bumper, version_fee
from .clock import ClockPort
from .hooks import SettlementHooks
from .ports import Blockchain, ChannelStorePort, OutputState, SignerPolicy, SignerPort

log = logging.getLogger("paychan.settlement")
alert_log = logging.getLogger("paychan.alert")

PAGE = 500
ALERT_REPEAT_SECONDS = 600.0
QUICK_PUBLISH_ATTEMPTS = 3  # in a close request, for a node that is briefly unreachable


def settlement_input(state: ChannelState) -> SettlementInput:
    """The settlement's ingredients from a stored state."""
    return SettlementInput(state.outpoint, state.funding_value, state.redeem_script, state.change_value,
                           state.change_script, ClientSignature(state.signature, state.sighash))


@dataclass(frozen=True, slots=True)
class SettlementAlert:
    """An ALERT the settler logged and that still holds (until the channel closes)."""

    outpoint: OutPoint
    kind: str  # "late", "refused" or "conflict"
    message: str
    since: int  # wall-clock seconds of the first ALERT line


@dataclass(slots=True)
class _Retry:
    delay: float
    next_at: float


class Settler:
    """Closes channels: sign, store, publish, follow to depth; resumes, retries and schedules."""

    def __init__(self, store: ChannelStorePort, signer: SignerPort, chain: Blockchain, destination: bytes,
                 policy: ChannelPolicy, cfg: SettlementConfig, clock: ClockPort, *,
                 signer_policy: SignerPolicy | None = None, hooks: SettlementHooks | None = None,
                 crash: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.signer = signer
        self.chain = chain
        self.destination = destination
        self.policy = policy
        self.cfg = cfg
        self.clock = clock
        self._inflight: dict[bytes, asyncio.Future[ChannelState]] = {}
        self._retry: dict[bytes, _Retry] = {}
        self._alerted: dict[tuple[bytes, str], float] = {}
        self._alerts: dict[tuple[bytes, str], SettlementAlert] = {}
        self._published: set[bytes] = set()  # channels whose settlement this process saw accepted
        self._no_mtp = False
        self.signer_policy = signer_policy
        self.hooks = hooks if hooks is not None else SettlementHooks()
        self.bumper = Bumper(store, signer, chain, destination, policy.settlement_period, cfg, signer_policy,
                             self.hooks, self._alert, settlement_input)
        self._crash = crash  # fault-injection tests only (paychan_runtime.faults); None: no crash points

    # -- closing ------------------------------------------------------------------------------------
    async def settle(self, current: ChannelState, closing_src: ChannelState, min_fee: int = 0) -> ChannelState:
        """Move `current` (open) to closing with closing_src's payment, then sign, store and publish."""
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
        log.info("channel %s closing (change %d, fee at least %d)", closing.outpoint, closing.change_value, min_fee)
        return await self.finish(closing, quick_retries=QUICK_PUBLISH_ATTEMPTS)

    async def finish(self, closing: ChannelState, *, quick_retries: int = 1) -> ChannelState:
        """One step of a closing channel (sign and store if not yet, publish if the chain lacks it, mark
        closed once deep enough); concurrent calls for one channel share one run."""
        key = closing.outpoint.serialize()
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        fut: asyncio.Future[ChannelState] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await self._step(closing, quick_retries)
            fut.set_result(result)
            return result
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[key]

    async def _step(self, state: ChannelState, quick_retries: int) -> ChannelState:
        if state.status is not Status.CLOSING:
            return state
        if not state.settlement_tx:
            if await self.chain.output_state(state.outpoint) is OutputState.SPENT:
                return await self._spent_elsewhere(state)  # the signer would rightly refuse: no funding left
            state = await self._sign_and_store(state)
            if state.status is not Status.CLOSING:
                return state
        status = await self.chain.tx_status(state.settlement_txid, state.settlement_tx)
        if status.known and status.confirmations == 0:
            return await self.bumper.step(state)
        if status.known:
            return await self._on_depth(state, status.confirmations)
        earlier, earlier_conf = await self._earlier_version(state)
        if earlier is not None and earlier_conf > 0:
            return await self._on_depth(await self._adopt(state, earlier), earlier_conf)
        funding = await self.chain.output_state(state.outpoint)
        key = state.outpoint.serialize()
        if funding is OutputState.UNSPENT:
            if key in self._published:
                log.warning("settlement %s of channel %s is neither mined nor in the mempool: rebroadcasting",
                            state.settlement_txid, state.outpoint)
            await self._publish(state, quick_retries)
            status = await self.chain.tx_status(state.settlement_txid, state.settlement_tx)
            return await self._on_depth(state, status.confirmations) if status.known else state
        if funding is OutputState.SPENT_IN_MEMPOOL and earlier is not None:
            log.info("channel %s: an earlier version of the settlement is in the mempool; publishing its "
                     "replacement %s", state.outpoint, state.settlement_txid)
            await self._publish(state, 1)
            return state
        if funding is OutputState.SPENT_IN_MEMPOOL:
            self._alert(key, "conflict", "ALERT channel %s: a mempool transaction that is not our settlement %s "
                        "spends the funding output (the client's refund?); trying to publish ours anyway",
                        state.outpoint, state.settlement_txid)
            outbid = await self.bumper.outbid(state)
            if outbid is not state:
                return outbid  # signed at the whole budget, stored, published (or the node's refusal logged)
            await self._publish(state, 1)
            return state
        return await self._spent_elsewhere(state)

    async def _earlier_version(self, state: ChannelState) -> tuple[bytes | None, int]:
        """An earlier signed version the chain knows (mined first, else in the mempool), with its depth."""
        found: tuple[bytes | None, int] = (None, 0)
        for tx in reversed(state.earlier_settlements):
            status = await self.chain.tx_status(sha256d(tx)[::-1].hex(), tx)
            if status.known and status.confirmations > 0:
                return tx, status.confirmations
            if status.known and found[0] is None:
                found = (tx, 0)
        return found

    async def _adopt(self, state: ChannelState, tx: bytes) -> ChannelState:
        """An earlier version was mined: it becomes the followed settlement (the others stay stored)."""
        others = tuple(v for v in state.settlement_versions if v != tx)
        txid = sha256d(tx)[::-1].hex()
        log.info("channel %s: earlier settlement version %s was mined (not the newest, %s)", state.outpoint, txid,
                 state.settlement_txid)
        fee = version_fee(state, tx)
        return await self._transition(state, replace(state, settlement_tx=tx, settlement_txid=txid,
                                                     settlement_fee=fee, earlier_settlements=others))

    async def _sign_and_store(self, closing: ChannelState) -> ChannelState:
        """Have the settlement signed and store it (before any publication)."""
        si = settlement_input(closing)
        mode = FeeMode(self.cfg.fee_mode)
        rate = self.cfg.fee_rate_sat_per_byte if mode is FeeMode.FIXED else await self.chain.fee_rate()
        dust = self.signer_policy.dust_limit if self.signer_policy is not None else self.policy.dust_limit
        min_fee = closing.settlement_fee
        cap = settlement_fee(si, self.destination, dust, self.cfg.max_fee_rate_sat_per_byte, mode)
        if self.signer_policy is not None:
            cap = min(cap, self.signer_policy.max_fee)  # every fee clamped to the signer's cap (spec 8.6)
        if min_fee > cap:  # a v2.3.0 closing payment larger than the highest fee we pay: the rest is ours
            log.info("channel %s: closing payment %d above the fee cap %d; the rest goes to the destination",
                     closing.outpoint, min_fee, cap)
            min_fee = cap
        fee = min(settlement_fee(si, self.destination, dust, rate, mode, min_fee), cap)
        signed = await self.signer.sign_settlement(si, fee, dust)
        if self._crash is not None:
            self._crash("settler.after_sign")
        stored = replace(closing, settlement_tx=signed.tx, settlement_txid=signed.txid, settlement_fee=signed.fee)
        try:
            stored = await self.store.compare_and_set(closing, stored)
        except Conflict:
            current = await self.store.get(closing.outpoint)
            if current is not None and (current.status is Status.CLOSED or current.settlement_tx):
                return current  # another instance stored its (identical, RFC 6979) signature first
            raise
        log.info("channel %s: settlement %s signed and stored (fee %d sat, %d to the destination)",
                 stored.outpoint, signed.txid, signed.fee, signed.server_value)
        if self._crash is not None:
            self._crash("settler.after_store")  # stored, not yet published: a restart must publish it
        return stored

    async def _publish(self, state: ChannelState, attempts: int) -> None:
        """Broadcast the stored settlement; a briefly unreachable node is retried `attempts` times."""
        delay = 0.2
        for attempt in range(attempts):
            try:
                txid = await self.chain.publish(state.settlement_tx)
                break
            except ServiceUnavailable:
                if attempt + 1 >= attempts:
                    raise
                await self.clock.sleep(delay)
                delay *= 2
        if txid != state.settlement_txid:
            log.error("channel %s: node accepted %s but the stored settlement is %s", state.outpoint, txid,
                      state.settlement_txid)
        self._published.add(state.outpoint.serialize())
        log.info("channel %s: settlement %s published", state.outpoint, txid)
        if self._crash is not None:
            self._crash("settler.after_publish")

    async def _on_depth(self, state: ChannelState, confirmations: int) -> ChannelState:
        """Closed once the settlement has the configured confirmations."""
        if confirmations < self.cfg.confirmations:
            return state
        closed = await self._transition(state, replace(state, status=Status.CLOSED))
        if closed.status is Status.CLOSED:
            self.hooks.confirmed(state.bumps)
            log.info("channel %s closed: settlement %s has %d confirmations (%d replacements)", state.outpoint,
                     state.settlement_txid, confirmations, state.bumps)
        return closed

    async def _spent_elsewhere(self, state: ChannelState) -> ChannelState:
        """The funding output is spent on chain, by a transaction the node does not show as our settlement."""
        mtp = await self.chain.median_time()
        if state.settlement_tx and (mtp is None or mtp <= state.exp_time):
            # A refund is final only once median time past passes exp_time (BIP65/113), so the spender holds our
            # signature: our settlement, mined and its outputs spent, on a node that cannot show it (no txindex).
            log.warning("channel %s: funding spent on chain before expiry and settlement %s not visible "
                        "(node without txindex?): taking it as our settlement", state.outpoint,
                        state.settlement_txid)
            target = replace(state, status=Status.CLOSED)
        else:
            alert_log.error("ALERT channel %s: the funding output was spent by another transaction, presumably "
                            "the client's refund after exp_time %d; settlement %s never confirmed (%d sat lost)",
                            state.outpoint, state.exp_time, state.settlement_txid or "(none signed)",
                            state.value_received)
            target = replace(state, status=Status.CLOSED, settlement_txid="")  # ChannelState.refunded
        return await self._transition(state, target)

    async def _transition(self, state: ChannelState, target: ChannelState) -> ChannelState:
        """Compare-and-set state -> target; when another instance got there first, its state is the answer."""
        try:
            done = await self.store.compare_and_set(state, target)
        except Conflict:
            current = await self.store.get(state.outpoint)
            if current is None:
                raise
            done = current
        if done.status is Status.CLOSED:
            self._forget(state.outpoint)
        return done

    # -- time, scheduling, follow-up ------------------------------------------------------------------
    async def chain_now(self) -> int:
        """max(wall clock, median time past): a clock running late cannot delay auto-close."""
        try:
            mtp = await self.chain.median_time()
            if self._no_mtp:
                log.info("median time past available again")
            self._no_mtp = False
        except PaychanError as exc:
            if not self._no_mtp:
                log.warning("no median time past from the node (%s): using the wall clock", exc.message)
            self._no_mtp = True
            mtp = None
        now = self.clock.now()
        return max(now, mtp) if mtp is not None else now

    async def follow_closings(self) -> int:
        """One follow-up step for every closing channel whose retry is due; returns how many are closing."""
        now = await self.chain_now()
        seen = near_count = near_value = 0
        near = now + int(self.cfg.alert_hours_before_deadline * 3600) + self.cfg.bump_deadline_margin_seconds
        after: OutPoint | None = None
        while True:
            page = await self.store.list(status=Status.CLOSING, after=after, limit=PAGE)
            for state in page:
                seen += 1
                key = state.outpoint.serialize()
                retry = self._retry.get(key)
                if retry is not None and retry.next_at > self.clock.monotonic():
                    continue
                try:
                    state = await self.finish(state)
                    self._retry.pop(key, None)
                except PaychanError as exc:
                    self._backoff(state, exc)
                if state.status is Status.CLOSING:
                    self._check_late(state, now)
                    if state.exp_time < near:
                        near_count += 1
                        near_value += state.value_received
            if len(page) < PAGE:
                self.hooks.near_deadline(near_count, near_value)
                return seen
            after = page[-1].outpoint

    def _check_late(self, state: ChannelState, now: int) -> None:
        if state.exp_time - now < self.policy.settlement_period:
            self._alert(state.outpoint.serialize(), "late",
                        "ALERT channel %s: settlement %s not confirmed %d s before expiry (inside the settlement "
                        "period): the client's refund becomes valid at %d", state.outpoint,
                        state.settlement_txid or "(unsigned)", state.exp_time - now, state.exp_time)

    def _backoff(self, state: ChannelState, exc: PaychanError) -> None:
        key = state.outpoint.serialize()
        old = self._retry.get(key)
        cap = self.cfg.retry_max_interval_seconds
        delay = self.cfg.retry_interval_seconds if old is None else min(old.delay * 2, cap)
        self._retry[key] = _Retry(delay, self.clock.monotonic() + delay)
        log.warning("settlement of channel %s not finished (%s); next attempt in %.1f s", state.outpoint,
                    exc.message, delay)
        if not isinstance(exc, ServiceUnavailable | Conflict | ChannelGone):  # refused by the signer or the node
            self._alert(key, "refused", "ALERT channel %s: settlement refused: %s", state.outpoint, exc.message)

    def _alert(self, key: bytes, kind: str, message: str, *args: object) -> None:
        """An ALERT log line, repeated at most every ALERT_REPEAT_SECONDS per channel and kind."""
        loop_time = self.clock.monotonic()
        last = self._alerted.get((key, kind))
        if last is not None and loop_time - last < ALERT_REPEAT_SECONDS:
            return
        self._alerted[(key, kind)] = loop_time
        alert_log.error(message, *args)
        if (key, kind) not in self._alerts:
            self._alerts[(key, kind)] = SettlementAlert(OutPoint.parse(key), kind, message % args, self.clock.now())

    def active_alerts(self) -> list[SettlementAlert]:
        """The ALERTs still holding, oldest first (the management API's `GET /alerts`)."""
        return sorted(self._alerts.values(), key=lambda a: a.since)

    def _forget(self, outpoint: OutPoint) -> None:
        key = outpoint.serialize()
        self._retry.pop(key, None)
        self._published.discard(key)
        for kind in ("late", "refused", "conflict", "ceiling"):
            self._alerted.pop((key, kind), None)
            self._alerts.pop((key, kind), None)

    async def settle_expiring(self) -> int:
        """Settle every open channel whose exp_time - settlement_period - margin has passed (chain time)."""
        now = await self.chain_now()
        horizon = now + self.policy.settlement_period + self.cfg.safety_margin_hours * 3600
        count = 0
        after: OutPoint | None = None
        while True:
            page = await self.store.list(status=Status.OPEN, expiring_before=horizon, after=after, limit=PAGE)
            for state in page:
                if state.exp_time - now < self.policy.settlement_period:
                    alert_log.error("ALERT channel %s is still open %d s before expiry, inside the settlement "
                                    "period: settling it now", state.outpoint, state.exp_time - now)
                if await self._auto_close(state):
                    count += 1
            if len(page) < PAGE:
                return count
            after = page[-1].outpoint

    async def _auto_close(self, state: ChannelState) -> bool:
        for _ in range(3):  # a payment may land between the listing and the compare-and-set
            try:
                log.info("auto-close of channel %s (exp_time %d)", state.outpoint, state.exp_time)
                await self.settle(state, state)
                return True
            except ChannelGone:
                return False  # another instance (or a client close) is settling it
            except Conflict:
                fresh = await self.store.get(state.outpoint)
                if fresh is None or fresh.status is not Status.OPEN:
                    return False
                state = fresh
            except PaychanError as exc:
                log.warning("auto-close of %s: %s (the follow-up loop retries)", state.outpoint, exc.message)
                return True
        return False

    async def run(self) -> None:
        """Background loop: follow closing channels every retry interval, settle expiring ones periodically."""
        next_schedule = self.clock.monotonic()
        while True:
            try:
                await self.follow_closings()
                if self.clock.monotonic() >= next_schedule:
                    next_schedule = self.clock.monotonic() + self.cfg.scheduler_interval_seconds
                    await self.settle_expiring()
            except PaychanError as exc:
                log.warning("settlement loop: %s", exc.message)
            except Exception:
                log.exception("settlement loop error")
            await self.clock.sleep(self.cfg.retry_interval_seconds)
