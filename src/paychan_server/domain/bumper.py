"""Fee bumping of unconfirmed settlements against their deadline (spec 8.6), for the Settler.

For a closing channel whose newest settlement waits in the mempool, `Bumper.step` asks the pure schedule
(`paychan_common.feebump.next_fee`) for a replacement fee from the chain's median time past, the node's
estimate for a target shrinking with the time left, and the budget (the server's share, the operator's
ceilings, the SigningService's max_fee). A replacement is signed by the SigningService for the same client
state, stored (the replaced version kept in `earlier_settlements`) by compare-and-set, and only then
published. It also raises the ALERT when the budget cannot reach the node's estimate within
`alert_hours_before_deadline` of the deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from paychan_common.errors import Conflict, InvalidInput, PaychanError
from paychan_common.feebump import BumpInputs, budget_reaches, conf_target, next_fee
from paychan_common.settlement import SettlementInput, settlement_size
from paychan_common.state import MAX_SETTLEMENT_VERSIONS, ChannelState
from paychan_common.tx import Transaction

from ..config import SettlementConfig
from .hooks import SettlementHooks
from .ports import Blockchain, ChannelStorePort, SignerPolicy, SignerPort

log = logging.getLogger("paychan.settlement")

Alert = Callable[..., None]  # (key, kind, message, *args): the Settler's rate-limited ALERT


def version_fee(state: ChannelState, tx: bytes) -> int:
    """Fee of one signed version: funding value minus its outputs."""
    try:
        return state.funding_value - sum(o.value for o in Transaction.parse(tx).outputs)
    except InvalidInput:
        return state.settlement_fee


def bump_budget(state: ChannelState, cfg: SettlementConfig, signer: SignerPolicy | None) -> int:
    """The most this settlement may pay (spec 8.6): the server's share (the server output dropped when what
    is left would be dust), capped by bump_max_share_percent, bump_max_fee and the signer's max_fee."""
    share = max(state.funding_value - state.change_value, 0)
    dust = signer.dust_limit if signer is not None else 0
    caps = [share * cfg.bump_max_share_percent // 100]
    if cfg.bump_max_fee:
        caps.append(cfg.bump_max_fee)
    if signer is not None:
        caps.append(signer.max_fee)
    budget = min(caps)
    if share - dust < budget < share:
        budget = max(share - dust, 0)  # a fee in between would drop the output and pay the whole share
    return budget


@dataclass(frozen=True, slots=True)
class BumpView:
    """What the schedule saw for one channel (for the ALERT, the metrics and tests)."""

    inputs: BumpInputs
    estimate_rate: int | None
    proposed: int | None


@dataclass(slots=True, eq=False)  # one per Settler, compared by identity
class Bumper:
    """Replaces a channel's unconfirmed settlement at a higher fee when the schedule says so."""

    store: ChannelStorePort
    signer: SignerPort
    chain: Blockchain
    destination: bytes
    settlement_period: int
    cfg: SettlementConfig
    signer_policy: SignerPolicy | None
    hooks: SettlementHooks
    alert: Alert
    settlement_input: Callable[[ChannelState], SettlementInput]
    window: int = field(init=False)  # the ramp's length: from the scheduled close to the deadline (spec 8.6)

    def __post_init__(self) -> None:
        margin = self.cfg.safety_margin_hours * 3600 - self.cfg.bump_deadline_margin_seconds
        self.window = max(self.settlement_period + margin, 0)

    def deadline(self, state: ChannelState) -> int:
        """exp_time minus the margin, on the median-time-past clock (spec 8.6)."""
        return state.exp_time - self.cfg.bump_deadline_margin_seconds

    async def view(self, state: ChannelState, *, all_in: bool = False) -> BumpView | None:
        """The schedule's inputs and proposal for this channel now (all_in: as at the deadline); None without
        a chain clock."""
        mtp = await self.chain.median_time()
        if mtp is None or not state.settlement_tx:
            return None
        time_left = min(self.deadline(state) - mtp, 0) if all_in else self.deadline(state) - mtp
        si = self.settlement_input(state)
        dust = self.signer_policy.dust_limit if self.signer_policy is not None else 0
        size = settlement_size(si, self.destination, dust)
        rate = await self.chain.estimate_rate(conf_target(time_left))
        versions = state.settlement_versions
        inputs = BumpInputs(time_left=time_left, window=self.window, estimate_fee=(rate or 0) * size,
                            first_fee=version_fee(state, versions[0]), last_fee=version_fee(state, versions[-1]),
                            size=size, incremental_rate=await self.chain.incremental_rate(),
                            budget=bump_budget(state, self.cfg, self.signer_policy))
        return BumpView(inputs, rate, next_fee(inputs))

    async def step(self, state: ChannelState) -> ChannelState:
        """One look at an unconfirmed settlement: alert if the ceiling is too low, replace it if due."""
        view = await self.view(state)
        if view is None:
            return state
        b = view.inputs
        key = state.outpoint.serialize()
        if (view.estimate_rate is not None and not budget_reaches(b)
                and b.time_left < self.cfg.alert_hours_before_deadline * 3600):
            self.alert(key, "ceiling", "ALERT channel %s: the fee ceiling %d sat cannot reach the node's estimate "
                       "of %d sat/byte (%d sat) for settlement %s, %.1f h before its deadline: raise "
                       "settlement.bump_max_fee / bump_max_share_percent or the signer's max_fee",
                       state.outpoint, b.budget, view.estimate_rate, b.estimate_fee, state.settlement_txid,
                       b.time_left / 3600)
        if view.proposed is None or not self.cfg.bump_enable:
            return state
        if len(state.settlement_versions) >= MAX_SETTLEMENT_VERSIONS:
            log.warning("channel %s: %d settlement versions signed; no more replacements", state.outpoint,
                        len(state.settlement_versions))
            return state
        return await self._replace(state, view.proposed, b)

    async def outbid(self, state: ChannelState) -> ChannelState:
        """Another transaction (the client's refund, after exp_time) replaced ours in the mempool: answer with
        the whole budget at once, which may still win (spec 8.6); the state unchanged when nothing fits."""
        view = await self.view(state, all_in=True)
        if view is None or view.proposed is None or not self.cfg.bump_enable:
            return state
        if len(state.settlement_versions) >= MAX_SETTLEMENT_VERSIONS:
            return state
        log.warning("channel %s: a foreign transaction spends the funding in the mempool; replacing it with "
                    "the whole budget, %d sat", state.outpoint, view.proposed)
        return await self._replace(state, view.proposed, view.inputs)

    async def _replace(self, state: ChannelState, fee: int, b: BumpInputs) -> ChannelState:
        dust = self.signer_policy.dust_limit if self.signer_policy is not None else 0
        signed = await self.signer.sign_settlement(self.settlement_input(state), fee, dust)
        if signed.txid == state.settlement_txid:
            return state
        stored = replace(state, settlement_tx=signed.tx, settlement_txid=signed.txid, settlement_fee=signed.fee,
                         earlier_settlements=(*state.earlier_settlements, state.settlement_tx))
        try:
            stored = await self.store.compare_and_set(state, stored)
        except Conflict:
            current = await self.store.get(state.outpoint)
            return current if current is not None else state  # another instance stored its version first
        self.hooks.bumped()
        log.info("channel %s: settlement replaced by %s (fee %d -> %d sat, %.1f h to the deadline, version %d) "
                 "signed and stored", state.outpoint, signed.txid, b.last_fee, signed.fee, b.time_left / 3600,
                 len(stored.settlement_versions))
        try:
            txid = await self.chain.publish(stored.settlement_tx)
            log.info("channel %s: replacement %s published", state.outpoint, txid)
        except PaychanError as exc:  # e.g. a node without full replace-by-fee: the older version stays
            log.warning("channel %s: replacement %s not accepted by the node (%s); the follow-up retries",
                        state.outpoint, signed.txid, exc.message)
        return stored
