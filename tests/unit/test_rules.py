"""Every validation rule of spec 7 (7.2 open, 7.3 pay, 7.4 close) with its error code and status (7.5)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paychan_common import rules
from paychan_common.address import Address
from paychan_common.channel import ClientSignature, Funding, sign_payment
from paychan_common.der import CURVE_ORDER, encode_der, parse_der
from paychan_common.errors import (
    ChannelExists,
    ChannelGone,
    ChannelNotFound,
    FundingError,
    InternalError,
    InvalidInput,
    InvalidPayment,
    PaychanError,
    ServiceUnavailable,
    SigningRefused,
    Unauthorized,
    error_from_json,
)
from paychan_common.messages import ErrorBody
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import HOUR, Accepted, ChannelPolicy
from paychan_common.script import channel_redeem_script
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint
from paychan_common.wire_v1 import encode_v1_payload, parse_v1_payload
from paychan_runtime.http_errors import http_status

from . import helpers as h
from .helpers import DEFAULT_POLICY, Chan, assert_error, fast, make_chan

NOW = 1_400_000_000
FUNDING = h.B_FUNDING_VALUE
OPEN_CHANGE = FUNDING - DEFAULT_POLICY.open_price
V1_POLICY = ChannelPolicy(open_price=70_000 + 13_920)  # v1: basePrice + settlement fee (spec 6.2, 13.4)


def _open(chan: Chan, family: Family = Family.V2_SEED, change: int = OPEN_CHANGE,
          address: Address | None = None) -> Accepted:
    addr = chan.funding_address if address is None else address
    policy = V1_POLICY if family is Family.V1 else DEFAULT_POLICY
    return rules.open_state(chan.params, chan.funding, chan.payment(change, address=addr), chan.verifier, addr, family,
                      policy, NOW)


def _pay(chan: Chan, state: ChannelState, payment: Payment, address: Address | None = None,
         policy: ChannelPolicy = DEFAULT_POLICY) -> Accepted:
    """What the server does for a pay request: static checks, then the atomic stateful rule."""
    addr = chan.funding_address if address is None else address
    rules.check_payment(payment, chan.verifier, addr, policy)
    sig = payment.signature
    return rules.apply_payment(state, payment.change_value, sig.der, sig.sighash, NOW + 1)


@pytest.fixture(scope="module")
def opened(chan_b: Chan) -> ChannelState:
    return _open(chan_b).state


# ---------------------------------------------------------------------------------------------
# 7.2 open
# ---------------------------------------------------------------------------------------------
class TestOpen:
    def test_accepted(self, chan_b: Chan) -> None:
        acc = _open(chan_b)
        assert acc.value_received == DEFAULT_POLICY.open_price
        st_ = acc.state
        assert st_.status is Status.OPEN and st_.family is Family.V2_SEED
        assert st_.change_value == OPEN_CHANGE and st_.funding_value == FUNDING
        assert st_.outpoint == chan_b.outpoint and st_.redeem_script == chan_b.redeem_script
        assert st_.change_address == chan_b.funding_address.text
        assert st_.change_script == chan_b.funding_address.script_pubkey
        assert st_.payment_count == 1 and st_.open_time == NOW == st_.last_payment_time
        assert st_.client_pubkey == chan_b.client.public_key.data
        assert st_.sighash == SINGLE_ACP
        assert st_.secret == ClientSignature(st_.signature, SINGLE_ACP).secret()
        assert st_.value_received == DEFAULT_POLICY.open_price

    def test_more_than_open_price_accepted(self, chan_b: Chan) -> None:
        assert _open(chan_b, change=OPEN_CHANGE - 5).value_received == DEFAULT_POLICY.open_price + 5

    @pytest.mark.parametrize("short_by", [1, 50_000, DEFAULT_POLICY.open_price])
    def test_open_price_short(self, chan_b: Chan, short_by: int) -> None:
        with pytest.raises(InvalidPayment) as exc:
            _open(chan_b, change=OPEN_CHANGE + short_by)
        assert_error(exc.value, InvalidPayment, "open_price_short", 400)
        assert f"open price is {DEFAULT_POLICY.open_price}" in exc.value.message
        assert f"received {DEFAULT_POLICY.open_price - short_by}" in exc.value.message

    def test_change_above_funding_is_out_of_order(self, chan_b: Chan) -> None:
        with pytest.raises(InvalidPayment) as exc:
            _open(chan_b, change=FUNDING + 1)
        assert_error(exc.value, InvalidPayment, "out_of_order", 400)

    def test_open_runs_payment_checks(self, chan_b: Chan) -> None:
        """Open applies 7.3 steps 3-8 too (here: a bad signature)."""
        good = chan_b.payment(OPEN_CHANGE)
        forged = replace(good, change_value=OPEN_CHANGE - 1)
        with pytest.raises(InvalidPayment) as exc:
            rules.open_state(chan_b.params, chan_b.funding, forged, chan_b.verifier, chan_b.funding_address,
                       Family.V2_SEED, DEFAULT_POLICY, NOW)
        assert_error(exc.value, InvalidPayment, "bad_signature", 400)

    def test_v1_open_with_client_change_address(self, chan_b: Chan, client_address_b: Address) -> None:
        acc = _open(chan_b, Family.V1, change=h.D_OPEN_CHANGE, address=client_address_b)
        assert acc.value_received == h.D_OPEN_VALUE
        assert acc.state.change_address == h.B_CLIENT_ADDRESS


class TestOpenExpiry:
    """7.2 step 2: exp_time >= now + (min_duration + settlement_period) hours."""

    def test_boundary(self) -> None:
        earliest = NOW + (48 + 12) * HOUR
        rules.check_open_expiry(earliest, NOW, DEFAULT_POLICY)
        rules.check_open_expiry(earliest + 1, NOW, DEFAULT_POLICY)
        with pytest.raises(InvalidInput) as exc:
            rules.check_open_expiry(earliest - 1, NOW, DEFAULT_POLICY)
        assert_error(exc.value, InvalidInput, "exp_time_too_soon", 400)

    @fast(100)
    @given(now=st.integers(0, 2**32), offset=st.integers(-(10**6), 10**6),
           hours=st.tuples(st.integers(0, 1000), st.integers(0, 1000)))
    def test_property(self, now: int, offset: int, hours: tuple[int, int]) -> None:
        policy = ChannelPolicy(min_duration_hours=hours[0], settlement_period_hours=hours[1])
        exp = now + (hours[0] + hours[1]) * HOUR + offset
        if offset >= 0:
            rules.check_open_expiry(exp, now, policy)
        else:
            with pytest.raises(InvalidInput):
                rules.check_open_expiry(exp, now, policy)


class TestFunding:
    """7.2 step 3: the funding output pays the channel's P2SH, with enough confirmations."""

    def funding(self, chan: Chan, conf: int, script: bytes | None = None) -> Funding:
        spk = chan.funding_address.script_pubkey if script is None else script
        return Funding(chan.outpoint, FUNDING, conf, spk)

    def test_script_mismatch(self, chan_b: Chan, client_address_b: Address) -> None:
        for debug in (False, True):
            with pytest.raises(FundingError) as exc:
                rules.check_funding(self.funding(chan_b, 100, client_address_b.script_pubkey), chan_b.params,
                              DEFAULT_POLICY, debug=debug)
            assert_error(exc.value, FundingError, "funding_wrong_script", 409)

    def test_too_few_confirmations(self, chan_b: Chan) -> None:
        with pytest.raises(FundingError) as exc:
            rules.check_funding(self.funding(chan_b, 9), chan_b.params, DEFAULT_POLICY, debug=False)
        assert_error(exc.value, FundingError, "insufficient_confirmations", 409)
        assert "9 (need 10)" in exc.value.message

    def test_enough_confirmations(self, chan_b: Chan) -> None:
        rules.check_funding(self.funding(chan_b, 10), chan_b.params, DEFAULT_POLICY, debug=False)
        rules.check_funding(self.funding(chan_b, 1000), chan_b.params, DEFAULT_POLICY, debug=False)

    def test_debug_skips_confirmations(self, chan_b: Chan) -> None:
        rules.check_funding(chan_b.funding, chan_b.params, DEFAULT_POLICY, debug=True)
        assert chan_b.funding.confirmations == 0


# ---------------------------------------------------------------------------------------------
# 7.3 pay
# ---------------------------------------------------------------------------------------------
class TestPay:
    def test_accepted(self, chan_b: Chan, opened: ChannelState) -> None:
        acc = _pay(chan_b, opened, chan_b.payment(OPEN_CHANGE - 1))
        assert acc.value_received == 1
        assert acc.state.change_value == OPEN_CHANGE - 1
        assert acc.state.payment_count == 2 and acc.state.last_payment_time == NOW + 1
        assert acc.state.open_time == NOW and acc.state.secret == opened.secret
        assert opened.change_value == OPEN_CHANGE  # immutable: the old state is unchanged

    def test_compact_payment_accepted(self, chan_b: Chan, opened: ChannelState) -> None:
        """Compact/v1 payments carry no outpoint/script/address: steps 3-5 are implicit."""
        assert _pay(chan_b, opened, chan_b.payment(OPEN_CHANGE - 7, full=False)).value_received == 7

    def test_zero_value_payment_accepted(self, chan_b: Chan, opened: ChannelState) -> None:
        assert _pay(chan_b, opened, chan_b.payment(OPEN_CHANGE)).value_received == 0

    def test_unexpected_outpoint(self, chan_b: Chan, opened: ChannelState) -> None:
        for other in (OutPoint(chan_b.outpoint.txid, chan_b.outpoint.vout + 1),
                      OutPoint(bytes(32), chan_b.outpoint.vout)):
            payment = replace(chan_b.payment(OPEN_CHANGE - 1), outpoint=other)
            with pytest.raises(InvalidPayment) as exc:
                _pay(chan_b, opened, payment)
            assert_error(exc.value, InvalidPayment, "unexpected_outpoint", 400)

    @pytest.mark.parametrize("address", [h.B_CLIENT_ADDRESS, h.B_P2SH_LIVE, "garbage", "",
                                         "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7X"])
    def test_unexpected_change_address(self, chan_b: Chan, opened: ChannelState, address: str) -> None:
        payment = replace(chan_b.payment(OPEN_CHANGE - 1), change_address=address)
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, payment)
        assert_error(exc.value, InvalidPayment, "unexpected_change_address", 400)

    def test_change_address_compared_by_script(self) -> None:
        """A segwit change address spelled in upper case is the same address."""
        chan = make_chan(b"\x05" * 32, bytes.fromhex(h.B_SERVER_SECRET), h.B_EXP_TIME, Network.TEST)
        segwit = Address.segwit(0, b"\x42" * 20, Network.TEST)
        state = _open(chan, Family.V1, address=segwit).state
        payment = chan.payment(OPEN_CHANGE - 3, address=segwit)
        upper = replace(payment, change_address=segwit.text.upper())
        assert _pay(chan, state, upper, address=segwit).value_received == 3

    def test_unexpected_redeem_script(self, chan_b: Chan, opened: ChannelState) -> None:
        others = (
            channel_redeem_script(chan_b.server.public_key.data, chan_b.client.public_key.data, h.B_EXP_TIME + 1),
            channel_redeem_script(chan_b.client.public_key.data, chan_b.server.public_key.data, h.B_EXP_TIME),
            chan_b.redeem_script + b"\x00",
            b"",
        )
        for script in others:
            payment = replace(chan_b.payment(OPEN_CHANGE - 1), redeem_script=script)
            with pytest.raises(InvalidPayment) as exc:
                _pay(chan_b, opened, payment)
            assert_error(exc.value, InvalidPayment, "unexpected_redeem_script", 400)

    def test_out_of_order(self, chan_b: Chan, opened: ChannelState) -> None:
        later = _pay(chan_b, opened, chan_b.payment(OPEN_CHANGE - 10)).state
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, later, chan_b.payment(OPEN_CHANGE - 4))  # valid signature, but an older value
        assert_error(exc.value, InvalidPayment, "out_of_order", 400)
        assert "assigns 6 less value to receiver" in exc.value.message

    @pytest.mark.parametrize("change", [1, 2, 350, 699])
    def test_dust_limit(self, chan_b: Chan, opened: ChannelState, change: int) -> None:
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, chan_b.payment(change))
        assert_error(exc.value, InvalidPayment, "dust_limit", 400)
        assert "dust limit of 700" in exc.value.message

    def test_dust_limit_boundary_accepted(self, chan_b: Chan, opened: ChannelState) -> None:
        assert _pay(chan_b, opened, chan_b.payment(700)).state.change_value == 700

    def test_single_acp_with_zero_change_is_dust(self, chan_b: Chan, opened: ChannelState) -> None:
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, chan_b.payment(0))
        assert_error(exc.value, InvalidPayment, "dust_limit", 400)

    @pytest.mark.parametrize(("change", "ok"), [(0, False), (539, False), (540, True)])
    def test_change_below_its_relay_dust_threshold_refused_whatever_the_policy(
            self, chan_b: Chan, opened: ChannelState, change: int, ok: bool) -> None:
        policy = ChannelPolicy(dust_limit=0)  # P2SH change (the funding address): Core's threshold is 540
        if ok:
            assert _pay(chan_b, opened, chan_b.payment(change), policy=policy).state.change_value == change
            return
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, chan_b.payment(change), policy=policy)
        assert_error(exc.value, InvalidPayment, "dust_limit", 400)
        assert "540" in exc.value.message

    @pytest.mark.parametrize("change", [1, 699, 700, OPEN_CHANGE - 1])
    def test_none_acp_with_nonzero_change(self, chan_b: Chan, opened: ChannelState, change: int) -> None:
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, chan_b.payment(change, sighash=NONE_ACP))
        assert_error(exc.value, InvalidPayment, "bad_sighash", 400)

    def test_none_acp_exhausts(self, chan_b: Chan, opened: ChannelState) -> None:
        acc = _pay(chan_b, opened, chan_b.payment(0, sighash=NONE_ACP))
        assert acc.value_received == OPEN_CHANGE
        assert acc.state.exhausted and acc.state.sighash == NONE_ACP
        assert acc.state.value_received == FUNDING

    def test_signature_of_another_value(self, chan_b: Chan, opened: ChannelState) -> None:
        signed_for = chan_b.payment(OPEN_CHANGE - 100)
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, replace(signed_for, change_value=OPEN_CHANGE - 1))
        assert_error(exc.value, InvalidPayment, "bad_signature", 400)
        assert exc.value.message == "signature verification failed"

    def test_signature_for_another_address(self, chan_b: Chan, opened: ChannelState,
                                           client_address_b: Address) -> None:
        """Signed to pay the client's address, presented as paying the funding address."""
        sig = chan_b.sign(OPEN_CHANGE - 1, client_address_b.script_pubkey)
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, Payment(OPEN_CHANGE - 1, sig))
        assert_error(exc.value, InvalidPayment, "bad_signature", 400)

    def test_signature_from_another_key(self, chan_b: Chan, opened: ChannelState) -> None:
        mallory = make_chan(b"\x66" * 32, bytes.fromhex(h.B_SERVER_SECRET), h.B_EXP_TIME, Network.TEST,
                            outpoint=chan_b.outpoint, funding_value=FUNDING)
        # mallory signs exactly the same digest with her key
        sig = sign_payment(mallory.client.secret, chan_b.outpoint, chan_b.redeem_script, OPEN_CHANGE - 1,
                           chan_b.funding_address.script_pubkey)
        with pytest.raises(InvalidPayment) as exc:
            _pay(chan_b, opened, Payment(OPEN_CHANGE - 1, sig))
        assert_error(exc.value, InvalidPayment, "bad_signature", 400)

    def test_high_s_signature_accepted_and_stored_low(self, chan_b: Chan, opened: ChannelState) -> None:
        low = chan_b.sign(OPEN_CHANGE - 2)
        r, s = parse_der(low.der)
        high = ClientSignature.from_parts(encode_der(r, CURVE_ORDER - s), SINGLE_ACP)
        assert high == low  # normalised on parsing
        acc = _pay(chan_b, opened, Payment(OPEN_CHANGE - 2, high))
        assert acc.state.signature == low.der

    @pytest.mark.parametrize("status", [Status.CLOSING, Status.CLOSED])
    def test_channel_not_open(self, chan_b: Chan, opened: ChannelState, status: Status) -> None:
        gone = replace(opened, status=status)
        payment = chan_b.payment(OPEN_CHANGE - 1)
        rules.check_payment(payment, chan_b.verifier, chan_b.funding_address, DEFAULT_POLICY)  # static part is fine
        with pytest.raises(ChannelGone) as exc:
            rules.apply_payment(gone, payment.change_value, payment.signature.der, payment.signature.sighash, NOW)
        assert_error(exc.value, ChannelGone, f"channel_{status.label}", 410)


class TestNearExpiry:
    """7.3 step 2: payments stop settlement_period before exp_time."""

    def test_boundary(self) -> None:
        exp = h.B_EXP_TIME
        rules.check_not_near_expiry(exp, exp - 12 * HOUR, DEFAULT_POLICY)
        rules.check_not_near_expiry(exp, 0, DEFAULT_POLICY)
        for now in (exp - 12 * HOUR + 1, exp, exp + 10**6):
            with pytest.raises(InvalidPayment) as exc:
                rules.check_not_near_expiry(exp, now, DEFAULT_POLICY)
            assert_error(exc.value, InvalidPayment, "near_expiry", 400)
            assert exc.value.message == "channel too close to expiration date"


# ---------------------------------------------------------------------------------------------
# 7.4 close
# ---------------------------------------------------------------------------------------------
class TestClose:
    def test_seed_zero_value_close_with_new_address(self, chan_b: Chan, opened: ChannelState,
                                                    client_address_b: Address) -> None:
        payment = chan_b.payment(OPEN_CHANGE, address=client_address_b)
        closed = rules.check_close_payment(opened, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert closed.change_address == h.B_CLIENT_ADDRESS
        assert closed.change_script == client_address_b.script_pubkey
        assert closed.change_value == OPEN_CHANGE
        assert closed.signature == payment.signature.der
        assert closed.payment_count == opened.payment_count + 1

    def test_seed_close_with_value(self, chan_b: Chan, opened: ChannelState, client_address_b: Address) -> None:
        payment = chan_b.payment(OPEN_CHANGE - 1, address=client_address_b)
        with pytest.raises(InvalidPayment) as exc:
            rules.check_close_payment(opened, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert_error(exc.value, InvalidPayment, "closing_value_nonzero", 400)
        assert "payment not of zero value" in exc.value.message

    def test_v1_family_close_with_value_refused_too(self, chan_b: Chan, client_address_b: Address) -> None:
        state = _open(chan_b, Family.V1, address=client_address_b).state
        payment = chan_b.payment(OPEN_CHANGE - 1, address=client_address_b)
        with pytest.raises(InvalidPayment) as exc:
            rules.check_close_payment(state, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert_error(exc.value, InvalidPayment, "closing_value_nonzero", 400)

    def test_v2_3_close_pays_the_fee(self, chan_b: Chan, client_address_b: Address) -> None:
        state = _open(chan_b, Family.V2_3).state
        fee = 13_920
        payment = chan_b.payment(OPEN_CHANGE - fee, address=client_address_b)
        closed = rules.check_close_payment(state, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert closed.change_value == OPEN_CHANGE - fee
        assert state.change_value - closed.change_value == fee
        assert closed.change_address == h.B_CLIENT_ADDRESS

    @pytest.mark.parametrize("family", [Family.V2_SEED, Family.V2_3])
    def test_close_out_of_order(self, chan_b: Chan, client_address_b: Address, family: Family) -> None:
        state = _open(chan_b, family).state
        payment = chan_b.payment(OPEN_CHANGE + 1, address=client_address_b)
        with pytest.raises(InvalidPayment) as exc:
            rules.check_close_payment(state, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert_error(exc.value, InvalidPayment, "out_of_order", 400)

    def test_close_signature_must_cover_new_address(self, chan_b: Chan, opened: ChannelState,
                                                    client_address_b: Address) -> None:
        signed_to_funding = chan_b.sign(OPEN_CHANGE)
        payment = Payment(OPEN_CHANGE, signed_to_funding, chan_b.outpoint, chan_b.redeem_script, h.B_CLIENT_ADDRESS)
        with pytest.raises(InvalidPayment) as exc:
            rules.check_close_payment(opened, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert_error(exc.value, InvalidPayment, "bad_signature", 400)

    def test_close_runs_static_checks(self, chan_b: Chan, opened: ChannelState, client_address_b: Address) -> None:
        payment = replace(chan_b.payment(OPEN_CHANGE, address=client_address_b), outpoint=OutPoint(bytes(32), 0))
        with pytest.raises(InvalidPayment) as exc:
            rules.check_close_payment(opened, payment, chan_b.verifier, client_address_b, DEFAULT_POLICY)
        assert_error(exc.value, InvalidPayment, "unexpected_outpoint", 400)


class TestV1Close:
    def latest(self, chan: Chan, client_address: Address) -> tuple[ChannelState, Payment]:
        state = _open(chan, Family.V1, change=h.D_OPEN_CHANGE, address=client_address).state
        payment = chan.payment(h.D_OPEN_CHANGE - 500, address=client_address, full=False)
        state = _pay(chan, state, payment, address=client_address).state
        return state, payment

    def test_latest_payment_accepted(self, chan_b: Chan, client_address_b: Address) -> None:
        state, payment = self.latest(chan_b, client_address_b)
        rules.check_v1_close(state, payment)
        # as it arrives over the wire
        text = encode_v1_payload(payment.change_value, payment.signature.der, payment.signature.sighash)
        rules.check_v1_close(state, parse_v1_payload(text))

    def test_high_s_form_of_latest_accepted(self, chan_b: Chan, client_address_b: Address) -> None:
        state, payment = self.latest(chan_b, client_address_b)
        r, s = parse_der(payment.signature.der)
        text = encode_v1_payload(payment.change_value, encode_der(r, CURVE_ORDER - s), SINGLE_ACP)
        rules.check_v1_close(state, parse_v1_payload(text))

    def test_older_payment_refused(self, chan_b: Chan, client_address_b: Address) -> None:
        state, _ = self.latest(chan_b, client_address_b)
        older = chan_b.payment(h.D_OPEN_CHANGE, address=client_address_b, full=False)
        with pytest.raises(InvalidPayment) as exc:
            rules.check_v1_close(state, older)
        assert_error(exc.value, InvalidPayment, "not_latest_payment", 400)
        assert exc.value.message == "Invalid payment. Please provide most recent channel payment."

    def test_same_value_other_signature_refused(self, chan_b: Chan, client_address_b: Address) -> None:
        state, payment = self.latest(chan_b, client_address_b)
        other_sig = chan_b.sign(payment.change_value, chan_b.funding_address.script_pubkey)
        with pytest.raises(InvalidPayment) as exc:
            rules.check_v1_close(state, Payment(payment.change_value, other_sig))
        assert_error(exc.value, InvalidPayment, "not_latest_payment", 400)

    def test_same_signature_other_value_refused(self, chan_b: Chan, client_address_b: Address) -> None:
        state, payment = self.latest(chan_b, client_address_b)
        with pytest.raises(InvalidPayment):
            rules.check_v1_close(state, replace(payment, change_value=payment.change_value + 1))


# ---------------------------------------------------------------------------------------------
# v2.3.0 open from a client-supplied redeem script
# ---------------------------------------------------------------------------------------------
class TestParamsFromScript:
    def test_holds_server_key(self, chan_b: Chan) -> None:
        params = rules.params_from_script(chan_b.redeem_script, chan_b.server.public_key.data, Network.TEST)
        assert params == chan_b.params

    def test_without_server_key(self, chan_b: Chan) -> None:
        other_server = make_chan(b"\x01" * 32, b"\x02" * 32, h.B_EXP_TIME, Network.TEST).params.server_pubkey
        with pytest.raises(InvalidPayment) as exc:
            rules.params_from_script(chan_b.redeem_script, other_server.data, Network.TEST)
        assert_error(exc.value, InvalidPayment, "unexpected_redeem_script", 400)

    def test_keys_swapped(self, chan_b: Chan) -> None:
        swapped = channel_redeem_script(chan_b.client.public_key.data, chan_b.server.public_key.data, h.B_EXP_TIME)
        with pytest.raises(InvalidPayment) as exc:
            rules.params_from_script(swapped, chan_b.server.public_key.data, Network.TEST)
        assert_error(exc.value, InvalidPayment, "unexpected_redeem_script", 400)

    @pytest.mark.parametrize("script", [b"", b"\x51", bytes(80), bytes.fromhex(h.B_REDEEM_SCRIPT)[:-1]])
    def test_not_a_channel_script(self, chan_b: Chan, script: bytes) -> None:
        with pytest.raises(InvalidInput) as exc:
            rules.params_from_script(script, chan_b.server.public_key.data, Network.TEST)
        assert_error(exc.value, InvalidInput, "invalid_input", 400)

    def test_off_curve_client_key(self, chan_b: Chan) -> None:
        bad_client = b"\x02" + b"\xff" * 32  # x >= p: not a point
        script = channel_redeem_script(chan_b.server.public_key.data, bad_client, h.B_EXP_TIME)
        with pytest.raises(InvalidInput):
            rules.params_from_script(script, chan_b.server.public_key.data, Network.TEST)


# ---------------------------------------------------------------------------------------------
# Policy, secret, error tree
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["dust_limit", "open_price", "funding_min_conf", "settlement_period_hours",
                                   "min_duration_hours"])
@pytest.mark.parametrize("value", [-1, True, 1.5, "7", None])
def test_policy_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(InvalidInput):
        ChannelPolicy(**{field: value})  # type: ignore[arg-type]


def test_policy_defaults_match_the_original_configs() -> None:
    p = ChannelPolicy()
    assert (p.dust_limit, p.open_price, p.funding_min_conf, p.settlement_period_hours, p.min_duration_hours) == \
        (700, 100_000, 10, 12, 48)
    assert p.settlement_period == 12 * 3600


def test_secret_matches(opened: ChannelState) -> None:
    assert rules.secret_matches(opened.secret, bytes(opened.secret))
    assert not rules.secret_matches(opened.secret, bytes(32))
    assert not rules.secret_matches(opened.secret, opened.secret[:-1])
    assert rules.secret_matches(opened.secret, bytes.fromhex(h.B_OPEN_SECRET))


@pytest.mark.parametrize(("cls", "status"), [
    (InvalidInput, 400), (InvalidPayment, 400), (FundingError, 409), (ChannelExists, 409),
    (ChannelNotFound, 404), (ChannelGone, 410), (ServiceUnavailable, 503), (SigningRefused, 403),
    (Unauthorized, 401), (InternalError, 500),
])
def test_error_tree_statuses(cls: type[PaychanError], status: int) -> None:
    """Spec 7.5 status table (at the HTTP edge, by code); every error is a PaychanError, survives the internal
    JSON round trip, and a raise site's finer code keeps its class's status."""
    err = cls("boom")
    assert isinstance(err, PaychanError) and http_status(err) == status
    assert http_status(cls("boom", code="some_finer_code")) == status
    again = error_from_json(cls.__name__, err.code, err.message)
    assert type(again) is cls and again.code == err.code and again.message == "boom"
    assert ErrorBody(type=err.kind, code=err.code, message=err.message).model_dump() == {
        "type": err.kind, "code": err.code, "message": "boom"}


def test_invalid_payment_is_a_payment_error() -> None:
    assert issubclass(InvalidPayment, InvalidInput)
    assert InvalidPayment("x").kind == "payment_error"
    assert InvalidInput("x").kind == "application_error"
    assert type(error_from_json("NoSuchClass", "c", "m")) is InternalError


# ---------------------------------------------------------------------------------------------
# A model-based run: random payment sequences against a tiny reference model of 7.3
# ---------------------------------------------------------------------------------------------
@fast(40)
@given(steps=st.lists(st.tuples(st.integers(-300, 3000), st.sampled_from([SINGLE_ACP, NONE_ACP]), st.booleans()),
                      min_size=1, max_size=8))
def test_payment_sequence_against_model(steps: list[tuple[int, int, bool]]) -> None:
    funding = 200_000
    chan = make_chan(b"\x09" * 32, bytes.fromhex(h.B_SERVER_SECRET), h.B_EXP_TIME, Network.TEST,
                     funding_value=funding)
    state = _open(chan, change=funding - DEFAULT_POLICY.open_price).state
    received = DEFAULT_POLICY.open_price
    for delta, sighash, to_zero in steps:
        new = 0 if (to_zero and sighash == NONE_ACP) else max(state.change_value - delta, 0)
        valid = new <= state.change_value and (
            (sighash == SINGLE_ACP and new >= DEFAULT_POLICY.dust_limit) or (sighash == NONE_ACP and new == 0))
        payment = chan.payment(new, sighash=sighash)
        try:
            acc = _pay(chan, state, payment)
        except InvalidPayment:
            assert not valid
            continue
        assert valid
        assert acc.value_received == state.change_value - new
        received += acc.value_received
        state = acc.state
    assert state.value_received == received == funding - state.change_value
