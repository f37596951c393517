"""The client's refund transaction after exp_time (spec 8.5), built by the core; when it becomes valid
(by the chain's median time past, BIP113), and the rule never to refund a funding output a confirmed
settlement spent (spec 8.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paychan_common.channel import ChannelParams
from paychan_common.errors import PaychanError
from paychan_common.keys import PrivateKey
from paychan_common.rules import HOUR
from paychan_common.settlement import build_refund, refund_fee_for_rate
from paychan_common.tx import OutPoint, Transaction

from .errors import ChannelStateError, InvalidArgument
from .payments import parse_address


def build_refund_tx(params: ChannelParams, key: PrivateKey, outpoint: OutPoint, funding_value: int,
                    refund_address: str, *, fee: int | None = None, fee_rate: int | None = None) -> Transaction:
    """Signed refund: nLockTime = exp_time, nSequence 0xfffffffe, fee given or rate x size (spec 8.5)."""
    if (fee is None) == (fee_rate is None):
        raise InvalidArgument("give exactly one of fee and fee_rate")
    if key.public_key != params.client_pubkey:
        raise InvalidArgument("the key is not the channel's client key")
    script = parse_address(refund_address, params.network).script_pubkey
    redeem = params.redeem_script
    try:
        if fee is None:
            assert fee_rate is not None
            if fee_rate < 0:
                raise InvalidArgument("fee_rate must not be negative")
            fee = refund_fee_for_rate(outpoint, funding_value, redeem, params.exp_time, script, fee_rate, key)
            # The signature of the final transaction may be longer than the probe's (DER is 70-72 bytes):
            # raise the fee until it covers rate x the real size, or the node refuses "min relay fee not met".
            for _ in range(4):
                tx = build_refund(outpoint, funding_value, redeem, params.exp_time, script, fee, key)
                needed = fee_rate * len(tx.serialize())
                if fee >= needed:
                    return tx
                fee = needed + fee_rate
        return build_refund(outpoint, funding_value, redeem, params.exp_time, script, fee, key)
    except PaychanError as exc:
        raise InvalidArgument(exc.message) from None


@dataclass(frozen=True, slots=True)
class RefundValidity:
    """When the refund becomes valid: once the chain's median time past passes exp_time (spec 8.5, BIP113)."""

    exp_time: int
    median_time_past: int | None  # None: no node asked

    @property
    def valid(self) -> bool | None:
        """True once a block can include the refund; None without a node."""
        return None if self.median_time_past is None else self.median_time_past > self.exp_time

    def to_json(self) -> dict[str, Any]:
        """For the CLI's JSON lines."""
        out: dict[str, Any] = {"refund_valid_after_median_time_past": self.exp_time}
        if self.median_time_past is not None:
            out.update(median_time_past=self.median_time_past, refund_valid_now=self.valid,
                       refund_valid_in_seconds=max(self.exp_time + 1 - self.median_time_past, 0))
        return out

    def too_early(self) -> ChannelStateError:
        """The CLI's refusal while the refund is not final yet: how long is left, in hours rounded up."""
        mtp = self.median_time_past
        left = "unknown" if mtp is None else f"about {max(1, -(-(self.exp_time + 1 - mtp) // HOUR))} h to go"
        return ChannelStateError(f"too early: median time past {mtp}, exp_time {self.exp_time}, {left}")


class SettlementConfirmed(ChannelStateError):
    """The funding output is spent by a confirmed transaction: no refund of it is published (spec 8.6)."""
