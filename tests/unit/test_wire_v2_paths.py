"""The v2 parser's plain-dict fast path must decide exactly as the pydantic models do, on any body."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paychan_common import wire_v2
from paychan_common.errors import PaychanError
from paychan_common.payment import Payment

GOOD_DER = ("3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226ee555d9edd"
            "8b9b3f879a79feb1d6da21641e18aa579576f70619")
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**64), st.floats(allow_nan=False),
                    st.text(max_size=8), st.sampled_from(["83", "82", GOOD_DER, GOOD_DER + "83", "ab" * 150,
                                                          "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb"
                                                          "3926b5b", "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W"]))
VALID: dict[str, Any] = {
    "change_value": 12345678800000, "signature_data": GOOD_DER, "sighash_flag": "83",
    "funding_txid": "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b", "funding_vout": 2,
    "redeem_script": "63210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821"
                     "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaac",
    "change_address": "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W"}
KEYS = [*VALID, "other"]


@st.composite
def payment_data(draw: st.DrawFn) -> dict[str, Any]:
    """A valid PaymentData with a few fields dropped or replaced by arbitrary values."""
    pd = dict(VALID)
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3, unique=True)):
        if draw(st.booleans()):
            pd.pop(key, None)
        else:
            pd[key] = draw(scalars | st.integers(0, 21 * 10**14))
    return pd


bodies = st.one_of(payment_data(), st.fixed_dictionaries({"payment_data": payment_data() | scalars},
                                                         optional={"application_data": scalars}))

def outcome(body: Any, require_full: bool) -> Payment | tuple[type, str]:
    """The parsed payment, or the error's class and code."""
    try:
        return wire_v2.parse_v2_payment(body, require_full=require_full)
    except PaychanError as exc:
        return (type(exc), exc.code)


@settings(max_examples=1500, deadline=None)
@given(body=bodies, require_full=st.booleans())
def test_fast_path_agrees_with_the_models(body: dict[str, Any], require_full: bool) -> None:
    fast = outcome(body, require_full)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wire_v2, "_plain_fields", lambda _body: None)
        slow = outcome(body, require_full)
    assert fast == slow


def test_the_generated_bodies_include_accepted_payments() -> None:
    """Guard for the property above: it must see bodies both paths accept, not only errors."""
    accepted = 0

    @settings(max_examples=300, deadline=None, database=None)
    @given(body=bodies)
    def count(body: dict[str, Any]) -> None:
        nonlocal accepted
        accepted += isinstance(outcome(body, False), Payment)

    count()
    assert accepted >= 15, accepted
