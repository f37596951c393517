"""The bump budget (spec 8.6): up to the server's whole share, the server output dropped rather than left as
dust, capped by the operator's ceilings and the SigningService's max_fee."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint
from paychan_server.config import SettlementConfig
from paychan_server.domain.bumper import bump_budget
from paychan_server.domain.ports import SignerPolicy

STATE = ChannelState(client_pubkey=b"\x02" * 33, exp_time=1_800_000_000, outpoint=OutPoint(b"\x01" * 32, 0),
                     funding_value=1_000_000, redeem_script=b"", change_address="", change_script=b"",
                     family=Family.V2_SEED, status=Status.CLOSING, change_value=900_000, signature=b"",
                     sighash=0x83, secret=b"", payment_count=3, open_time=0, last_payment_time=0)
SIGNER = SignerPolicy(max_fee=200_000, dust_limit=700)


def test_the_whole_share_when_nothing_caps_it() -> None:
    assert bump_budget(STATE, SettlementConfig(), SIGNER) == 100_000


def test_the_signers_max_fee_and_the_operators_ceilings_cap_it() -> None:
    assert bump_budget(STATE, SettlementConfig(), SignerPolicy(30_000, 700)) == 30_000
    assert bump_budget(STATE, SettlementConfig(bump_max_fee=20_000), SIGNER) == 20_000
    assert bump_budget(STATE, SettlementConfig(bump_max_share_percent=50), SIGNER) == 50_000


def test_a_fee_that_would_leave_dust_is_not_proposed() -> None:
    """99,500 would leave a 500-sat output, below the signer's dust limit: keep 700 instead."""
    assert bump_budget(STATE, SettlementConfig(bump_max_fee=99_500), SIGNER) == 100_000 - 700


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 100), st.integers(0, 10**6),
       st.integers(546, 10**5))
def test_never_above_any_cap_and_never_leaves_dust(change: int, ceiling: int, pct: int, max_fee: int,
                                                    dust: int) -> None:
    state = replace(STATE, funding_value=10**7, change_value=change)
    share = 10**7 - change
    budget = bump_budget(state, SettlementConfig(bump_max_fee=ceiling, bump_max_share_percent=pct),
                         SignerPolicy(max_fee, dust))
    assert 0 <= budget <= min(share * pct // 100, max_fee, ceiling or max_fee)
    assert budget == share or share - budget >= dust or budget == 0
