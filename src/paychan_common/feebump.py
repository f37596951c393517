"""Deadline-aware replace-by-fee for settlements (spec 8.6, BIP125): the pure bump schedule.

A settlement must confirm before its deadline (exp_time minus a safety margin, judged by the chain's
median time past): from exp_time on the client's refund is valid and, with full replace-by-fee, a refund
paying more replaces an unconfirmed settlement. While the settlement waits, its fee follows the larger of
the node's estimate and a linear ramp that starts at the first version's fee `window` seconds before the
deadline and reaches the whole budget at the deadline (LND's sweeper works the same way). Each replacement
meets BIP125: a higher absolute fee by at least the incremental relay fee times its size, and a higher fee
rate. Nothing here reads a clock or the network: inputs in, fee out.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_SECONDS = 600
MAX_CONF_TARGET = 1008  # estimatesmartfee's largest confirmation target
SIZE_SLACK = 2  # bytes a signed version's size may differ by (DER length), for the fee-rate rule


@dataclass(frozen=True, slots=True)
class BumpInputs:
    """What the schedule decides from; every amount in satoshis, every size in (virtual) bytes."""

    time_left: int  # seconds from chain time (median time past) to the deadline; <= 0: at or past it
    window: int  # seconds before the deadline over which the fee ramps up to the budget
    estimate_fee: int  # the node's fee-rate estimate (for a target shrinking with time_left) x size
    first_fee: int  # fee of the first signed version: where the ramp starts
    last_fee: int  # fee of the newest version, the one being replaced
    size: int  # upper bound of the settlement's size (every version has at most this size)
    incremental_rate: int  # the node's incremental relay fee rate, sat/byte (BIP125 rule 4)
    budget: int  # the most this settlement may pay (server share, operator ceiling, signer cap)


def conf_target(time_left: int) -> int:
    """Confirmation target for estimatesmartfee: half the blocks expected before the deadline, 1..1008."""
    return max(1, min(MAX_CONF_TARGET, time_left // BLOCK_SECONDS // 2))


def min_replacement_fee(last_fee: int, size: int, incremental_rate: int) -> int:
    """The smallest fee a replacement may pay (BIP125 rule 4, and a strictly higher fee rate even when the
    replacement is SIZE_SLACK bytes larger than the version it replaces)."""
    by_increment = last_fee + incremental_rate * size
    by_rate = last_fee * size // max(size - SIZE_SLACK, 1) + 1
    return max(by_increment, by_rate)


def ramp_fee(time_left: int, window: int, first_fee: int, budget: int) -> int:
    """The time-driven part of the schedule: first_fee until the window opens, budget at the deadline."""
    if budget <= first_fee:
        return first_fee
    if time_left <= 0:
        return budget
    if time_left >= window:
        return first_fee
    elapsed = window - time_left
    return first_fee + -(-(budget - first_fee) * elapsed // window)  # ceiling division


def target_fee(b: BumpInputs) -> int:
    """The fee the settlement should pay now: max(estimate, ramp), never above the budget."""
    return min(max(b.estimate_fee, ramp_fee(b.time_left, b.window, b.first_fee, b.budget)), b.budget)


def next_fee(b: BumpInputs) -> int | None:
    """The replacement's fee, or None when the newest version is good enough or no replacement fits
    the budget (spec 8.6)."""
    target = target_fee(b)
    if target <= b.last_fee:
        return None
    floor = min_replacement_fee(b.last_fee, b.size, b.incremental_rate)
    if floor > b.budget:
        return None
    return min(max(target, floor), b.budget)


def budget_reaches(b: BumpInputs) -> bool:
    """False when the budget is below the node's estimate: the settlement may not confirm in time."""
    return b.budget >= b.estimate_fee
