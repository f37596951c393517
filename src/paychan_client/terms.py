"""What the server will enforce at open, checked before any coin is sent (spec 6.3, 6.5, 7.2, 4.2).

A channel funded with terms the server refuses locks the client's coins until exp_time. So before funding
the client applies the server's own rules to the FundingInfo it read: the exp_time window
(`min_duration_hours + settlement_period_hours` from now, or the server's `earliest_exp_time` when it sends
one, plus the time until the funding confirms), the network of every address, the open price against the
funding value, and the dust rule for the change the opening payment leaves."""

from __future__ import annotations

from dataclasses import dataclass

from paychan_common.dust import dust_threshold
from paychan_common.rules import HOUR
from paychan_common.state import Family

from .errors import InvalidArgument
from .models import FundingInfo
from .payments import parse_address

DEFAULT_MIN_DURATION_HOURS = 48  # v1 FundingInfo has no min_duration_hours: the original configs' value (spec 10.7)
BLOCK_SECONDS = 600  # expected time per block, for the confirmations the server asks for


class TermsRefused(InvalidArgument):
    """The server would refuse to open this channel: nothing is funded."""


@dataclass(frozen=True, slots=True)
class OpenPlan:
    """A channel as the client means to open it."""

    exp_time: int
    funding_value: int
    open_value: int | None = None  # default: the open price
    refund_address: str | None = None
    change_address: str | None = None  # v1 only


def confirmation_allowance(info: FundingInfo) -> int:
    """Seconds to allow for the funding's confirmations before the open: one block more than asked for."""
    return (info.funding_tx_min_conf + 1) * BLOCK_SECONDS


def earliest_exp_time(info: FundingInfo, now: int) -> int:
    """The earliest exp_time the server accepts at `now`: its `earliest_exp_time`, else the spec 7.2 rule."""
    if info.earliest_exp_time is not None:
        return info.earliest_exp_time
    hours = (info.min_duration_hours if info.min_duration_hours is not None else DEFAULT_MIN_DURATION_HOURS)
    return now + (hours + info.settlement_period_hours) * HOUR


def check_exp_time(info: FundingInfo, exp_time: int, now: int, allowance: int = 0) -> None:
    """Refuse an exp_time the server would refuse when the open comes `allowance` seconds from now."""
    earliest = earliest_exp_time(info, now) + allowance
    if exp_time < earliest:
        window = (f"min_duration_hours {info.min_duration_hours} + " if info.min_duration_hours is not None else "")
        extra = f", plus {allowance} s until the funding confirms" if allowance else ""
        raise TermsRefused(f"exp_time {exp_time} is too soon: the server opens channels expiring at or after "
                           f"{earliest} ({window}settlement_period_hours {info.settlement_period_hours} from now"
                           f"{extra}); {(earliest - exp_time + HOUR - 1) // HOUR} h more needed")


def check_open(info: FundingInfo, plan: OpenPlan, now: int, allowance: int = 0) -> None:
    """Every check of spec 7.2 the client can make before funding; TermsRefused names the first that fails."""
    check_exp_time(info, plan.exp_time, now, allowance)
    network = info.params.network
    try:
        for address in (plan.refund_address, plan.change_address):
            if address is not None:
                parse_address(address, network)
    except InvalidArgument as exc:
        raise TermsRefused(exc.message) from None
    if plan.change_address is not None and info.family is not Family.V1:
        raise TermsRefused("only v1 channels take a change address; v2 change goes to the funding address")
    value = info.open_price if plan.open_value is None else plan.open_value
    if value < info.open_price:
        raise TermsRefused(f"open value {value} is below the server's open price {info.open_price}")
    if plan.funding_value < value:
        raise TermsRefused(f"funding value {plan.funding_value} does not cover the opening payment {value}")
    change = plan.funding_value - value
    if info.family is not Family.V1:
        change_text: str | None = info.funding_address  # spec 4.1
    else:
        change_text = plan.change_address or plan.refund_address
    floor = info.dust_limit
    if change_text is not None:
        floor = max(floor, dust_threshold(parse_address(change_text, network).script_pubkey))
    if 0 < change < floor:
        raise TermsRefused(f"funding value {plan.funding_value} leaves {change} sat of change after the opening "
                           f"payment of {value}: below the dust limit {floor}, so the whole funding would go to the "
                           f"server; fund at least {value + floor} or exactly {value}")
