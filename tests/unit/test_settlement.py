"""Settlement and refund transactions (spec 8): script verification by python-bitcoinlib, fee modes,
dust handling and output layout."""

from __future__ import annotations

import coincurve
import pytest
from bitcoin.core import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from paychan_common.address import Address
from paychan_common.channel import ClientSignature
from paychan_common.der import parse_der
from paychan_common.errors import InvalidInput
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.script import OP_0, OP_1, push_data
from paychan_common.settlement import (
    FIXED_SETTLEMENT_SIZE,
    REFUND_SEQUENCE,
    FeeMode,
    SettlementInput,
    build_refund,
    refund_fee_for_rate,
    settlement_fee,
    settlement_size,
    sign_settlement,
    unsigned_settlement,
)
from paychan_common.sighash import NONE_ACP, SIGHASH_ALL, SINGLE_ACP, legacy_sighash
from paychan_common.tx import Transaction, TxOut

from . import helpers as h
from .helpers import Chan, addresses, bitcoinlib_verify_p2sh, chans, fast, secrets

DUST = 700


def _single_input(chan: Chan, change: int, change_address: Address) -> SettlementInput:
    sig = chan.sign(change, change_address.script_pubkey, SINGLE_ACP)
    return SettlementInput(chan.outpoint, chan.funding.value, chan.redeem_script, change,
                           change_address.script_pubkey, sig)


def _none_input(chan: Chan) -> SettlementInput:
    sig = chan.sign(0, b"", NONE_ACP)
    return SettlementInput(chan.outpoint, chan.funding.value, chan.redeem_script, 0, b"", sig)


def _server_der(tx: Transaction) -> bytes:
    """The server's DER signature inside a signed settlement's scriptSig."""
    script_sig = tx.inputs[0].script_sig
    client_len = script_sig[0]
    server_push_len = script_sig[1 + client_len]
    server_push = script_sig[2 + client_len : 2 + client_len + server_push_len]
    assert server_push[-1] == SIGHASH_ALL
    return server_push[:-1]


def _check_script_sig(tx: Transaction, s: SettlementInput) -> None:
    """<client sig> <server sig> OP_1 <redeem script> (spec 8.2)."""
    server_push = _server_der(tx) + bytes([SIGHASH_ALL])
    expected = (push_data(s.client_signature.script_sig_push) + push_data(server_push) + bytes([OP_1])
                + push_data(s.redeem_script))
    assert tx.inputs[0].script_sig == expected


# ---------------------------------------------------------------------------------------------
# Script verification (python-bitcoinlib VerifyScript with SCRIPT_VERIFY_P2SH)
# ---------------------------------------------------------------------------------------------
@fast(25)
@given(chan=chans(min_funding=10**6), data=st.data(), mode=st.sampled_from(list(FeeMode)),
       rate=st.integers(0, 200))
def test_settlement_single_acp_verifies(chan: Chan, data: st.DataObject, mode: FeeMode, rate: int) -> None:
    change_address = data.draw(addresses(chan.params.network))
    change = data.draw(st.integers(DUST, chan.funding.value))
    destination = data.draw(addresses(chan.params.network)).script_pubkey
    s = _single_input(chan, change, change_address)
    fee = settlement_fee(s, destination, DUST, rate, mode)
    tx = unsigned_settlement(s, destination, fee, DUST)
    signed = sign_settlement(s, tx, chan.server)
    assert signed.outputs[0] == TxOut(change, change_address.script_pubkey)
    server_value = chan.funding.value - change - fee
    if server_value >= DUST:
        assert signed.outputs[1:] == (TxOut(server_value, destination),)
    else:
        assert len(signed.outputs) == 1
    assert signed.version == 1 and signed.locktime == 0 and signed.inputs[0].sequence == 0xFFFFFFFF
    _check_script_sig(signed, s)
    bitcoinlib_verify_p2sh(signed, chan.funding_address.script_pubkey)
    assert Transaction.parse(signed.serialize()) == signed


@fast(25)
@given(chan=chans(min_funding=10**6), data=st.data(), rate=st.integers(0, 200))
def test_settlement_none_acp_verifies(chan: Chan, data: st.DataObject, rate: int) -> None:
    """Exhausted channel (client 0x82, change 0): only the server output, still a valid spend."""
    destination = data.draw(addresses(chan.params.network)).script_pubkey
    s = _none_input(chan)
    fee = settlement_fee(s, destination, DUST, rate, FeeMode.RATE)
    signed = sign_settlement(s, unsigned_settlement(s, destination, fee, DUST), chan.server)
    assert signed.outputs == (TxOut(chan.funding.value - fee, destination),)
    script_sig = signed.inputs[0].script_sig
    assert script_sig[script_sig[0]] == NONE_ACP  # last byte of the client push
    _check_script_sig(signed, s)
    bitcoinlib_verify_p2sh(signed, chan.funding_address.script_pubkey)


@fast(15)
@given(chan=chans(min_funding=10**6), tweak=st.sampled_from(["server_value", "client_value", "dest", "server_key"]))
def test_tampered_settlement_fails_verification(chan: Chan, tweak: str) -> None:
    """The verifier oracle is not vacuous: changing what either signature covers breaks the spend."""
    change_address = Address.p2pkh(bytes(20), chan.params.network)
    destination = Address.p2pkh(b"\x01" * 20, chan.params.network).script_pubkey
    s = _single_input(chan, DUST, change_address)
    tx = unsigned_settlement(s, destination, 1000, DUST)
    signed = sign_settlement(s, tx, chan.server)
    bitcoinlib_verify_p2sh(signed, chan.funding_address.script_pubkey)
    outs = list(signed.outputs)
    if tweak == "server_value":  # covered by the server's SIGHASH_ALL only
        outs[1] = TxOut(outs[1].value - 1, outs[1].script_pubkey)
    elif tweak == "client_value":  # covered by both signatures
        outs[0] = TxOut(outs[0].value + 1, outs[0].script_pubkey)
    elif tweak == "dest":
        outs[1] = TxOut(outs[1].value, change_address.script_pubkey)
    else:  # signed by a key that is not in the redeem script
        other = PrivateKey(b"\x07" * 32)
        if other.public_key == chan.server.public_key:
            other = PrivateKey(b"\x08" * 32)
        signed = sign_settlement(s, tx, other)
    bad = Transaction(signed.version, signed.inputs, tuple(outs), signed.locktime)
    with pytest.raises(ValidationError):
        bitcoinlib_verify_p2sh(bad, chan.funding_address.script_pubkey)


@fast(25)
@given(chan=chans(min_funding=10**5), data=st.data())
def test_refund_verifies(chan: Chan, data: st.DataObject) -> None:
    refund_address = data.draw(addresses(chan.params.network))
    fee = data.draw(st.integers(0, chan.funding.value - 1))
    refund = build_refund(chan.outpoint, chan.funding.value, chan.redeem_script, chan.params.exp_time,
                          refund_address.script_pubkey, fee, chan.client)
    assert refund.locktime == chan.params.exp_time
    assert refund.inputs[0].sequence == REFUND_SEQUENCE == 0xFFFFFFFE
    assert refund.outputs == (TxOut(chan.funding.value - fee, refund_address.script_pubkey),)
    script_sig = refund.inputs[0].script_sig
    sig_push = script_sig[1 : 1 + script_sig[0]]
    assert sig_push[-1] == SIGHASH_ALL
    parse_der(sig_push[:-1])
    assert script_sig[1 + script_sig[0] :] == bytes([OP_0]) + push_data(chan.redeem_script)
    bitcoinlib_verify_p2sh(refund, chan.funding_address.script_pubkey)


def test_refund_with_server_key_fails_verification(chan_b: Chan, client_address_b: Address) -> None:
    """The ELSE branch checks the *client* key: a refund signed by the server is rejected."""
    refund = build_refund(chan_b.outpoint, chan_b.funding.value, chan_b.redeem_script, h.B_EXP_TIME,
                          client_address_b.script_pubkey, 1000, chan_b.server)
    with pytest.raises(ValidationError):
        bitcoinlib_verify_p2sh(refund, chan_b.funding_address.script_pubkey)


@pytest.mark.parametrize("fee", [-1, h.B_FUNDING_VALUE, h.B_FUNDING_VALUE + 1])
def test_refund_fee_out_of_range(chan_b: Chan, client_address_b: Address, fee: int) -> None:
    with pytest.raises(InvalidInput):
        build_refund(chan_b.outpoint, chan_b.funding.value, chan_b.redeem_script, h.B_EXP_TIME,
                     client_address_b.script_pubkey, fee, chan_b.client)


@pytest.mark.parametrize("rate", [0, 1, 7, 40])
def test_refund_fee_for_rate(chan_b: Chan, client_address_b: Address, rate: int) -> None:
    """Spec 8.5 (JS helper): fee = rate x size of the refund built with fee 0 (the core adds <= 1 byte)."""
    args = (chan_b.outpoint, chan_b.funding.value, chan_b.redeem_script, h.B_EXP_TIME,
            client_address_b.script_pubkey)
    probe_size = len(build_refund(*args, 0, chan_b.client).serialize())
    fee = refund_fee_for_rate(*args, rate, chan_b.client)
    assert rate * probe_size <= fee <= rate * (probe_size + 1)


# ---------------------------------------------------------------------------------------------
# Fees and edge cases (spec 8.1, 8.3)
# ---------------------------------------------------------------------------------------------
def test_server_output_below_dust_is_dropped(chan_b: Chan, client_address_b: Address,
                                             destination_b: Address) -> None:
    """funding - change - fee < dust: no server output, its value goes to the fee."""
    fee = 1000
    change = chan_b.funding.value - fee - (DUST - 1)
    s = _single_input(chan_b, change, client_address_b)
    tx = unsigned_settlement(s, destination_b.script_pubkey, fee, DUST)
    assert tx.outputs == (TxOut(change, client_address_b.script_pubkey),)
    assert chan_b.funding.value - sum(o.value for o in tx.outputs) == fee + DUST - 1
    signed = sign_settlement(s, tx, chan_b.server)
    bitcoinlib_verify_p2sh(signed, chan_b.funding_address.script_pubkey)
    # the size bound still counts the dropped 34-byte P2PKH output
    slack = 71 - len(_server_der(signed))
    assert settlement_size(s, destination_b.script_pubkey, DUST) - len(signed.serialize()) == 34 + slack
    # exactly at the dust limit the output stays
    s2 = _single_input(chan_b, change - 1, client_address_b)
    tx2 = unsigned_settlement(s2, destination_b.script_pubkey, fee, DUST)
    assert tx2.outputs[1] == TxOut(DUST, destination_b.script_pubkey)


def test_server_output_never_negative(chan_b: Chan, client_address_b: Address, destination_b: Address) -> None:
    change = chan_b.funding.value - 10
    s = _single_input(chan_b, change, client_address_b)
    tx = unsigned_settlement(s, destination_b.script_pubkey, 13_920, DUST)
    assert tx.outputs == (TxOut(change, client_address_b.script_pubkey),)
    assert all(o.value >= 0 for o in tx.outputs)


def test_zero_dust_limit_keeps_one_satoshi_output(chan_b: Chan, client_address_b: Address,
                                                  destination_b: Address) -> None:
    change = chan_b.funding.value - 1001
    s = _single_input(chan_b, change, client_address_b)
    tx = unsigned_settlement(s, destination_b.script_pubkey, 1000, 0)
    assert tx.outputs[1] == TxOut(1, destination_b.script_pubkey)
    tx0 = unsigned_settlement(s, destination_b.script_pubkey, 1001, 0)
    assert len(tx0.outputs) == 1  # a zero-value server output is never produced


def test_none_acp_settlement_has_only_server_output(chan_b: Chan, destination_b: Address) -> None:
    s = _none_input(chan_b)
    tx = unsigned_settlement(s, destination_b.script_pubkey, h.B_SETTLE_FEE, DUST)
    assert tx.outputs == (TxOut(chan_b.funding.value - h.B_SETTLE_FEE, destination_b.script_pubkey),)
    signed = sign_settlement(s, tx, chan_b.server)
    bitcoinlib_verify_p2sh(signed, chan_b.funding_address.script_pubkey)


def test_settlement_with_no_output_raises(destination_b: Address) -> None:
    chan = h.make_chan(b"\x21" * 32, bytes.fromhex(h.B_SERVER_SECRET), h.B_EXP_TIME, Network.TEST,
                       funding_value=10_000)
    s = _none_input(chan)
    with pytest.raises(InvalidInput) as exc:
        unsigned_settlement(s, destination_b.script_pubkey, 10_000 - DUST + 1, DUST)
    h.assert_error(exc.value, InvalidInput, "no_output", 400)
    # fee larger than the whole channel: same
    with pytest.raises(InvalidInput):
        unsigned_settlement(s, destination_b.script_pubkey, 20_000, DUST)


def test_fixed_fee_is_348_times_rate(chan_b: Chan, client_address_b: Address, destination_b: Address) -> None:
    s = _single_input(chan_b, h.B_CLOSE_CHANGE, client_address_b)
    for rate in (0, 1, 40, 1000):
        assert settlement_fee(s, destination_b.script_pubkey, DUST, rate, FeeMode.FIXED) \
            == FIXED_SETTLEMENT_SIZE * rate
    # min_fee (v2.3.0 closing payment value) wins when larger
    assert settlement_fee(s, destination_b.script_pubkey, DUST, 40, FeeMode.FIXED, min_fee=20_000) == 20_000
    assert settlement_fee(s, destination_b.script_pubkey, DUST, 40, FeeMode.FIXED, min_fee=100) == 13_920


@fast(40)
@given(chan=chans(min_funding=10**7), data=st.data(), rate=st.integers(1, 500),
       client_sighash=st.sampled_from([SINGLE_ACP, NONE_ACP]))
def test_rate_fee_bounds_the_real_signed_size(chan: Chan, data: st.DataObject, rate: int,
                                              client_sighash: int) -> None:
    """FeeMode.RATE: fee = rate x settlement_size; settlement_size reserves a 71-byte server DER, so
    it exceeds the real signed size by exactly 71 - len(real server DER) bytes (0 for a high-R signature,
    1 for the usual low-R one), provided the server output survives."""
    destination = data.draw(addresses(chan.params.network)).script_pubkey
    if client_sighash == SINGLE_ACP:
        change_address = data.draw(addresses(chan.params.network))
        s = _single_input(chan, data.draw(st.integers(DUST, chan.funding.value // 2)), change_address)
    else:
        s = _none_input(chan)
    bound = settlement_size(s, destination, DUST)
    fee = settlement_fee(s, destination, DUST, rate, FeeMode.RATE)
    assert fee == rate * bound
    signed = sign_settlement(s, unsigned_settlement(s, destination, fee, DUST), chan.server)
    real = len(signed.serialize())
    server_der = _server_der(signed)
    assert bound - real == 71 - len(server_der)
    assert bound - real >= 0
    assert fee >= rate * real
    bitcoinlib_verify_p2sh(signed, chan.funding_address.script_pubkey)


@pytest.mark.parametrize(("change_offset", "slack"), [(2, 0), (0, 1), (495, 2)])
def test_rate_fee_slack_examples(chan_b: Chan, client_address_b: Address, destination_b: Address,
                                 change_offset: int, slack: int) -> None:
    """Deterministic (RFC 6979) examples of the bound's slack: 0 with a 71-byte server DER, 1 with 70 bytes,
    and 2 with a 69-byte one (short R, about 1 in 100 signatures): the bound is not always within 1 byte."""
    change = h.B_CLOSE_CHANGE - change_offset
    s = _single_input(chan_b, change, client_address_b)
    dest = destination_b.script_pubkey
    fee = settlement_fee(s, dest, DUST, 10, FeeMode.RATE)
    signed = sign_settlement(s, unsigned_settlement(s, dest, fee, DUST), chan_b.server)
    assert len(_server_der(signed)) == 71 - slack
    assert settlement_size(s, dest, DUST) - len(signed.serialize()) == slack
    assert fee == 10 * (len(signed.serialize()) + slack)
    bitcoinlib_verify_p2sh(signed, chan_b.funding_address.script_pubkey)


def test_rate_fee_on_vector_b(chan_b: Chan, client_address_b: Address, destination_b: Address) -> None:
    """Vector B's 347-byte settlement: the server DER is 71 bytes, so the bound is exact."""
    sig = ClientSignature.from_parts(bytes.fromhex(h.B_CLOSE_SIG), SINGLE_ACP)
    s = SettlementInput(chan_b.outpoint, chan_b.funding.value, chan_b.redeem_script, h.B_CLOSE_CHANGE,
                        client_address_b.script_pubkey, sig)
    assert settlement_size(s, destination_b.script_pubkey, DUST) == h.B_SETTLE_SIZE
    assert settlement_fee(s, destination_b.script_pubkey, DUST, 40, FeeMode.RATE) == 40 * h.B_SETTLE_SIZE


@fast(30)
@given(min_fee=st.integers(0, 10**6), rate=st.integers(0, 100), mode=st.sampled_from(list(FeeMode)))
def test_v2_3_min_fee(min_fee: int, rate: int, mode: FeeMode) -> None:
    """v2.3.0: fee = max(closing payment value, rate x size)."""
    chan = h.vector_b_chan()
    dest = Address.parse(h.B_DESTINATION, Network.TEST).script_pubkey
    s = _single_input(chan, h.B_CLOSE_CHANGE, Address.parse(h.B_CLIENT_ADDRESS, Network.TEST))
    base = rate * (FIXED_SETTLEMENT_SIZE if mode is FeeMode.FIXED else settlement_size(s, dest, DUST))
    fee = settlement_fee(s, dest, DUST, rate, mode, min_fee=min_fee)
    assert fee == max(base, min_fee)
    assert fee >= min_fee and fee >= base


def test_server_signature_is_sighash_all_over_all_outputs(chan_b: Chan, client_address_b: Address,
                                                          destination_b: Address) -> None:
    s = _single_input(chan_b, h.B_CLOSE_CHANGE, client_address_b)
    tx = unsigned_settlement(s, destination_b.script_pubkey, h.B_SETTLE_FEE, DUST)
    signed = sign_settlement(s, tx, chan_b.server)
    digest = legacy_sighash(tx, 0, chan_b.redeem_script, SIGHASH_ALL)
    assert coincurve.PublicKey(chan_b.server.public_key.data).verify(_server_der(signed), digest, hasher=None)


@fast(20)
@given(secret=secrets())
def test_settlement_size_is_independent_of_dust_limit(secret: bytes) -> None:
    chan = h.make_chan(secret, bytes.fromhex(h.B_SERVER_SECRET), h.B_EXP_TIME, Network.TEST)
    dest = Address.parse(h.B_DESTINATION, Network.TEST).script_pubkey
    s = _single_input(chan, h.B_CLOSE_CHANGE, chan.funding_address)
    sizes = {settlement_size(s, dest, d) for d in (0, 1, DUST, 10_000)}
    assert len(sizes) == 1
