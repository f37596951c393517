"""The settlement bump schedule (spec 8.6, BIP125): property tests of the pure function next_fee."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, given
from hypothesis import strategies as st

from paychan_common.feebump import (
    MAX_CONF_TARGET,
    BumpInputs,
    conf_target,
    min_replacement_fee,
    next_fee,
    ramp_fee,
    target_fee,
)


@st.composite
def bump_inputs(draw: st.DrawFn) -> BumpInputs:
    """Any plausible situation: sizes of real settlements, fees up to a large channel's share."""
    size = draw(st.integers(200, 400))
    first = draw(st.integers(size, 200 * size))
    last = draw(st.integers(first, first + 200_000))
    return BumpInputs(
        time_left=draw(st.integers(-10_000, 200_000)),
        window=draw(st.integers(0, 100_000)),
        estimate_fee=draw(st.integers(0, 500 * size)),
        first_fee=first,
        last_fee=last,
        size=size,
        incremental_rate=draw(st.integers(1, 10)),
        budget=draw(st.integers(0, 1_000_000)),
    )


def _paid(b: BumpInputs) -> int:
    """What the settlement pays after the decision (the old fee when there is no replacement)."""
    fee = next_fee(b)
    return b.last_fee if fee is None else fee


@given(bump_inputs())
def test_a_replacement_meets_bip125_and_the_budget(b: BumpInputs) -> None:
    fee = next_fee(b)
    if fee is None:
        return
    assert fee <= b.budget
    assert fee >= b.last_fee + b.incremental_rate * b.size  # rule 4: pays for its own relay
    assert fee * (b.size - 2) > b.last_fee * b.size  # higher fee rate, even if 2 bytes larger


@given(bump_inputs(), st.integers(0, 100_000))
def test_less_time_left_never_pays_less(b: BumpInputs, dt: int) -> None:
    later = replace(b, time_left=b.time_left - dt)
    assert _paid(later) >= _paid(b)


@given(bump_inputs(), st.integers(0, 100_000))
def test_a_higher_estimate_never_pays_less(b: BumpInputs, more: int) -> None:
    assert _paid(replace(b, estimate_fee=b.estimate_fee + more)) >= _paid(b)


@given(bump_inputs(), st.integers(0, 100_000))
def test_a_larger_budget_never_pays_less(b: BumpInputs, more: int) -> None:
    assert _paid(replace(b, budget=b.budget + more)) >= _paid(b)


@given(bump_inputs())
def test_at_the_deadline_the_whole_budget_goes_when_a_replacement_fits(b: BumpInputs) -> None:
    at = replace(b, time_left=min(b.time_left, 0))
    assume(min_replacement_fee(at.last_fee, at.size, at.incremental_rate) <= at.budget)
    assert next_fee(at) == at.budget


@given(bump_inputs())
def test_no_bump_while_the_newest_version_pays_the_target(b: BumpInputs) -> None:
    calm = replace(b, time_left=max(b.time_left, b.window, 1), estimate_fee=min(b.estimate_fee, b.last_fee))
    assert target_fee(calm) <= calm.last_fee
    assert next_fee(calm) is None


@given(bump_inputs())
def test_the_ramp_stays_between_first_fee_and_budget(b: BumpInputs) -> None:
    r = ramp_fee(b.time_left, b.window, b.first_fee, b.budget)
    assert min(b.first_fee, b.budget) <= r <= max(b.first_fee, b.budget)


def test_ramp_is_linear_inside_the_window() -> None:
    assert ramp_fee(1000, 1000, 100, 1100) == 100
    assert ramp_fee(500, 1000, 100, 1100) == 600
    assert ramp_fee(0, 1000, 100, 1100) == 1100
    assert ramp_fee(-5, 1000, 100, 1100) == 1100


def test_a_replacement_that_does_not_fit_the_budget_is_not_proposed() -> None:
    b = BumpInputs(time_left=0, window=3600, estimate_fee=10_000, first_fee=1000, last_fee=1000, size=300,
                   incremental_rate=1, budget=1299)
    assert next_fee(b) is None
    assert next_fee(replace(b, budget=1300)) == 1300


@given(st.integers(-10**6, 10**8))
def test_conf_target_shrinks_with_time_left(t: int) -> None:
    assert 1 <= conf_target(t) <= MAX_CONF_TARGET
    assert conf_target(t) <= conf_target(t + 600)
    assert conf_target(7200) == 6
