"""The pure channel rules of spec section 7: open, pay and close, as functions of values.

The checks that depend only on a channel's static parameters (outpoint, script, address, dust,
sighash, signature, expiry) run in the stateless tier (`check_payment`); the one check that depends
on the latest state (the change may only go down) runs atomically where the state lives
(`apply_payment`)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .address import Address
from .channel import ChannelParams, Funding, PaymentVerifier
from .dust import change_dust_thresholds, dust_threshold
from .errors import ChannelGone, FundingError, InvalidInput, InvalidPayment
from .keys import PublicKey
from .network import Network
from .payment import Payment
from .script import parse_channel_script
from .sighash import NONE_ACP, SINGLE_ACP
from .state import ChannelState, Family, Status

HOUR = 3600
MAX_CHANGE_DUST = max(change_dust_thresholds().values())  # 546 (P2PKH): no change type's threshold is higher


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """The server's channel terms (spec 6.3 FundingInfo)."""

    dust_limit: int = 700
    open_price: int = 100_000
    funding_min_conf: int = 10
    settlement_period_hours: int = 12
    min_duration_hours: int = 48

    def __post_init__(self) -> None:
        for name in ("dust_limit", "open_price", "funding_min_conf", "settlement_period_hours",
                     "min_duration_hours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"policy {name} must be a non-negative integer")

    @property
    def settlement_period(self) -> int:
        """Settlement period in seconds."""
        return self.settlement_period_hours * HOUR


@dataclass(frozen=True, slots=True)
class Accepted:
    """Outcome of an accepted payment."""

    state: ChannelState
    value_received: int


def earliest_exp_time(now: int, policy: ChannelPolicy) -> int:
    """The earliest exp_time a channel opened at `now` may have: now + (min_duration + settlement_period) h
    (spec 6.5, 7.2 step 2); FundingInfo's `earliest_exp_time` (spec 6.3)."""
    return now + (policy.min_duration_hours + policy.settlement_period_hours) * HOUR


def check_open_expiry(exp_time: int, now: int, policy: ChannelPolicy) -> None:
    """exp_time >= now + (min_duration + settlement_period) hours (spec 6.5, 7.2 step 2)."""
    earliest = earliest_exp_time(now, policy)
    if exp_time < earliest:
        raise InvalidInput(f"channel expiration date too soon: exp_time must be at least {earliest}",
                           code="exp_time_too_soon")


def check_not_near_expiry(exp_time: int, now: int, policy: ChannelPolicy) -> None:
    """Payments stop settlement_period before expiry (spec 7.3 step 2)."""
    if now > exp_time - policy.settlement_period:
        raise InvalidPayment("channel too close to expiration date", code="near_expiry")


def check_funding(funding: Funding, params: ChannelParams, policy: ChannelPolicy, *, debug: bool) -> None:
    """The funding output pays the channel's P2SH and has enough confirmations (spec 7.2 step 3)."""
    if funding.script_pubkey != params.funding_address.script_pubkey:
        raise FundingError(f"funding output does not pay to {params.funding_address.text}",
                           code="funding_wrong_script")
    if not debug and funding.confirmations < policy.funding_min_conf:
        raise FundingError(
            f"Insufficient confirmation count for funding transaction: {funding.confirmations} "
            f"(need {policy.funding_min_conf})", code="insufficient_confirmations")


def check_payment(payment: Payment, verifier: PaymentVerifier, change_address: Address, policy: ChannelPolicy,
                  ) -> None:
    """Static payment checks, spec 7.3 steps 3-5, 7, 8 (no state needed)."""
    if payment.outpoint is not None and payment.outpoint != verifier.outpoint:
        raise InvalidPayment("unexpected outpoint", code="unexpected_outpoint")
    if payment.change_address is not None and not _same_address(payment.change_address, change_address):
        raise InvalidPayment("unexpected change address", code="unexpected_change_address")
    if payment.redeem_script is not None and payment.redeem_script != verifier.redeem_script:
        raise InvalidPayment("unexpected redeem script", code="unexpected_redeem_script")
    change = payment.change_value
    sighash = payment.signature.sighash
    if sighash == NONE_ACP:
        if change != 0:
            raise InvalidPayment("SIGHASH_NONE payment must give all value to the server (change 0)",
                                 code="bad_sighash")
    elif sighash == SINGLE_ACP and change < _dust_floor(change, change_address, policy):
        raise InvalidPayment(
            f"server dust limit of {_dust_floor(change, change_address, policy)} not respected by client change "
            "output", code="dust_limit")
    verifier.verify(payment.signature, change, change_address.script_pubkey)


def _dust_floor(change: int, change_address: Address, policy: ChannelPolicy) -> int:
    """The dust limit, raised to the change script's own relay dust threshold (spec 4.2; Core policy)."""
    if change >= MAX_CHANGE_DUST:  # the hot path: above every type's threshold, no script work
        return policy.dust_limit
    return max(policy.dust_limit, dust_threshold(change_address.script_pubkey))


def _same_address(text: str, expected: Address) -> bool:
    if text == expected.text:
        return True
    try:
        return Address.parse(text, expected.network).script_pubkey == expected.script_pubkey
    except InvalidInput:
        return False


def apply_payment(state: ChannelState, change_value: int, der: bytes, sighash: int, now: int) -> Accepted:
    """Stateful rule, applied atomically by the store: channel open, change not increasing (7.3 1, 6)."""
    if state.status is not Status.OPEN:
        raise ChannelGone(f"channel is {state.status.label}", code=f"channel_{state.status.label}")
    if change_value > state.change_value:
        raise InvalidPayment(
            f"out-of-order payment (assigns {change_value - state.change_value} less value to receiver)",
            code="out_of_order")
    received = state.change_value - change_value
    return Accepted(state.with_payment(change_value, der, sighash, now), received)


def open_state(params: ChannelParams, funding: Funding, payment: Payment, verifier: PaymentVerifier,
               change_address: Address, family: Family, policy: ChannelPolicy, now: int) -> Accepted:
    """Validate an opening payment and build the new channel's state (spec 7.2 steps 5-6)."""
    check_payment(payment, verifier, change_address, policy)
    if payment.change_value > funding.value:
        raise InvalidPayment(
            f"out-of-order payment (assigns {payment.change_value - funding.value} less value to receiver)",
            code="out_of_order")
    received = funding.value - payment.change_value
    if received < policy.open_price:
        raise InvalidPayment(f"Initial payment short: open price is {policy.open_price}, received {received}",
                             code="open_price_short")
    sig = payment.signature
    state = ChannelState(
        client_pubkey=params.client_pubkey.data, exp_time=params.exp_time, outpoint=funding.outpoint,
        funding_value=funding.value, redeem_script=verifier.redeem_script, change_address=change_address.text,
        change_script=change_address.script_pubkey, family=family, status=Status.OPEN,
        change_value=payment.change_value, signature=sig.der, sighash=sig.sighash, secret=sig.secret(),
        payment_count=1, open_time=now, last_payment_time=now,
    )
    return Accepted(state, received)


def params_from_script(redeem_script: bytes, server_pubkey: bytes, network: Network) -> ChannelParams:
    """Channel parameters from a client-supplied redeem script; it must hold our key (v2.3.0 open)."""
    server_pk, client_pk, exp_time = parse_channel_script(redeem_script)
    if server_pk != server_pubkey:
        raise InvalidPayment("unexpected redeem script: it does not hold the server key",
                             code="unexpected_redeem_script")
    return ChannelParams(PublicKey.from_bytes(client_pk), PublicKey.from_bytes(server_pk), exp_time, network)


def check_close_payment(state: ChannelState, payment: Payment, verifier: PaymentVerifier, new_address: Address,
                        policy: ChannelPolicy) -> ChannelState:
    """v2 closing payment (spec 7.4): new change address allowed; value 0 (seed) or >= 0 (v2.3.0)."""
    check_payment(payment, verifier, new_address, policy)
    if payment.change_value > state.change_value:
        raise InvalidPayment(
            f"out-of-order payment (assigns {payment.change_value - state.change_value} less value to receiver)",
            code="out_of_order")
    if state.family is not Family.V2_3 and payment.change_value != state.change_value:
        raise InvalidPayment("payment not of zero value. cannot receive value in closing payment.",
                             code="closing_value_nonzero")
    sig = payment.signature
    return state.with_payment(payment.change_value, sig.der, sig.sighash, state.last_payment_time,
                              change_address=new_address.text, change_script=new_address.script_pubkey)


def check_v1_close(state: ChannelState, payment: Payment) -> None:
    """v1 DELETE: the payment must be the latest stored one (normalised compare; spec 7.4)."""
    sig = payment.signature
    same = (payment.change_value == state.change_value and sig.sighash == state.sighash
            and hmac.compare_digest(sig.der, state.signature))
    if not same:
        raise InvalidPayment("Invalid payment. Please provide most recent channel payment.",
                             code="not_latest_payment")


def secret_matches(state_secret: bytes, given: bytes) -> bool:
    """Constant-time comparison of the v2.3.0 secret (spec 6.4)."""
    return hmac.compare_digest(state_secret, given)
