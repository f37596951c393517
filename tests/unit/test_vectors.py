"""Spec section 13, byte for byte: vectors A, B, D, the lock-time pushes and the benchmark key."""

from __future__ import annotations

import base64
import json

import pytest

from paychan_common.address import Address
from paychan_common.channel import (
    DEBUG_FUNDING_VALUE,
    ChannelParams,
    ClientSignature,
    PaymentVerifier,
    debug_funding,
    payment_transaction,
    sign_payment,
)
from paychan_common.errors import InvalidPayment
from paychan_common.hashing import hash160, sha256, sha256d
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.rules import check_payment, open_state
from paychan_common.script import channel_redeem_script, push_data, script_num
from paychan_common.settlement import (
    FeeMode,
    SettlementInput,
    build_refund,
    settlement_fee,
    sign_settlement,
    unsigned_settlement,
)
from paychan_common.sighash import (
    NONE_ACP,
    SIGHASH_ALL,
    SINGLE_ACP,
    PaymentSighashTemplate,
    legacy_sighash,
)
from paychan_common.state import Family, Status
from paychan_common.tx import OutPoint, Transaction, TxIn, TxOut
from paychan_common.wire_v1 import decode_v1_bytes, encode_v1_payload, parse_v1_payload
from paychan_common.wire_v2 import parse_v2_payment, payment_to_json

from . import helpers as h
from .helpers import Chan, bitcoinlib_sighash, bitcoinlib_verify_p2sh


def _preimage(outpoint: OutPoint, redeem_script: bytes, change_value: int, change_script: bytes,
              sighash: int) -> bytes:
    """Legacy preimage of the 1-in/1-out payment tx, built from the tx model (spec 4.3)."""
    outputs = (TxOut(change_value, change_script),) if sighash == SINGLE_ACP else ()
    stripped = Transaction(1, (TxIn(outpoint, redeem_script, 0xFFFFFFFF),), outputs, 0)
    return stripped.serialize() + sighash.to_bytes(4, "little")


# ---------------------------------------------------------------------------------------------
# 13.1 Vector A -- real 2016 data
# ---------------------------------------------------------------------------------------------
class TestVectorA:
    server = PrivateKey(bytes.fromhex(h.A_SERVER_SECRET))
    client_pk = PublicKey.from_hex(h.A_CLIENT_PUBKEY)

    def params(self, network: Network = Network.TEST) -> ChannelParams:
        return ChannelParams(self.client_pk, self.server.public_key, h.A_EXP_TIME, network)

    def verifier(self) -> PaymentVerifier:
        funding = debug_funding(self.client_pk, h.A_EXP_TIME, self.params().funding_address.script_pubkey)
        return PaymentVerifier(self.client_pk, funding.outpoint, self.params().redeem_script)

    def test_server_pubkey_from_privkey(self) -> None:
        assert self.server.public_key.hex == h.A_SERVER_PUBKEY

    def test_redeem_script(self) -> None:
        script = self.params().redeem_script
        assert script.hex() == h.A_REDEEM_SCRIPT
        assert len(script) == 80
        assert script_num(h.A_EXP_TIME).hex() == h.A_EXP_NUM

    def test_p2sh_addresses(self) -> None:
        assert self.params(Network.LIVE).funding_address.text == h.A_P2SH_LIVE
        assert self.params(Network.TEST).funding_address.text == h.A_P2SH_TEST
        assert self.params(Network.REGTEST).funding_address.text == h.A_P2SH_TEST

    def test_debug_funding(self) -> None:
        assert sha256(self.client_pk.data).hex() == h.A_SHA256_PK
        funding = debug_funding(self.client_pk, h.A_EXP_TIME, self.params().funding_address.script_pubkey)
        assert funding.outpoint.txid.hex() == h.A_SHA256_PK
        assert funding.outpoint.display_txid == h.A_FUNDING_TXID
        assert funding.outpoint.vout == h.A_FUNDING_VOUT
        assert funding.value == h.A_FUNDING_VALUE == DEBUG_FUNDING_VALUE

    def test_payment_1_decodes(self) -> None:
        payment = parse_v1_payload(h.A_PAY1)
        assert payment.change_value == h.A_PAY1_CHANGE
        assert payment.signature.der.hex() == h.A_PAY1_DER
        assert payment.signature.sighash == SINGLE_ACP
        assert payment.outpoint is None and payment.redeem_script is None and payment.change_address is None
        # the swagger URL's payload is padded; the unpadded form decodes to the same payment
        assert parse_v1_payload(h.A_PAY1.rstrip("=")) == payment

    def test_payment_1_preimage_and_digest(self) -> None:
        verifier = self.verifier()
        change_script = Address.parse(h.A_CHANGE_ADDRESS, Network.TEST).script_pubkey
        preimage = _preimage(verifier.outpoint, verifier.redeem_script, h.A_PAY1_CHANGE, change_script, SINGLE_ACP)
        assert preimage.hex() == h.A_PAY1_PREIMAGE
        template = PaymentSighashTemplate.build(verifier.outpoint.serialize(), verifier.redeem_script)
        assert preimage.startswith(template.prefix)
        assert sha256d(preimage).hex() == h.A_PAY1_DIGEST
        assert template.digest_single(h.A_PAY1_CHANGE, change_script).hex() == h.A_PAY1_DIGEST
        assert verifier.digest(h.A_PAY1_CHANGE, change_script, SINGLE_ACP).hex() == h.A_PAY1_DIGEST
        tx = payment_transaction(verifier.outpoint, h.A_PAY1_CHANGE, change_script)
        assert legacy_sighash(tx, 0, verifier.redeem_script, SINGLE_ACP).hex() == h.A_PAY1_DIGEST
        assert bitcoinlib_sighash(tx, 0, verifier.redeem_script, SINGLE_ACP).hex() == h.A_PAY1_DIGEST

    @pytest.mark.parametrize(("payload", "change", "digest"), [
        (h.A_PAY1, h.A_PAY1_CHANGE, h.A_PAY1_DIGEST),
        (h.A_PAY2, h.A_PAY2_CHANGE, h.A_PAY2_DIGEST),
    ])
    def test_2016_signatures_verify(self, payload: str, change: int, digest: str) -> None:
        verifier = self.verifier()
        change_script = Address.parse(h.A_CHANGE_ADDRESS, Network.TEST).script_pubkey
        payment = parse_v1_payload(payload)
        assert payment.change_value == change
        assert verifier.digest(change, change_script, payment.signature.sighash).hex() == digest
        verifier.verify(payment.signature, change, change_script)  # must not raise
        # ... and the signature is bound to its value: one satoshi more or less fails
        for other in (change - 1, change + 1):
            with pytest.raises(InvalidPayment) as exc:
                verifier.verify(payment.signature, other, change_script)
            assert exc.value.code == "bad_signature"

    def test_payment_2_is_ten_satoshi(self) -> None:
        assert parse_v1_payload(h.A_PAY1).change_value - parse_v1_payload(h.A_PAY2).change_value == 10


# ---------------------------------------------------------------------------------------------
# 13.2 Vector B -- synthetic v2-seed flow
# ---------------------------------------------------------------------------------------------
class TestVectorBChannel:
    def test_keys(self, chan_b: Chan) -> None:
        assert chan_b.client.public_key.hex == h.B_CLIENT_PUBKEY
        assert chan_b.server.public_key.hex == h.B_SERVER_PUBKEY

    def test_redeem_script_and_hash(self, chan_b: Chan) -> None:
        assert chan_b.redeem_script.hex() == h.B_REDEEM_SCRIPT
        assert len(chan_b.redeem_script) == 80
        assert script_num(h.B_EXP_TIME).hex() == h.B_EXP_NUM
        assert hash160(chan_b.redeem_script).hex() == h.B_HASH160
        assert channel_redeem_script(bytes.fromhex(h.B_SERVER_PUBKEY), bytes.fromhex(h.B_CLIENT_PUBKEY),
                                     h.B_EXP_TIME).hex() == h.B_REDEEM_SCRIPT

    @pytest.mark.parametrize(("network", "address"), [
        (Network.LIVE, h.B_P2SH_LIVE), (Network.TEST, h.B_P2SH_TEST), (Network.REGTEST, h.B_P2SH_TEST),
    ])
    def test_p2sh_addresses(self, chan_b: Chan, network: Network, address: str) -> None:
        params = ChannelParams(chan_b.params.client_pubkey, chan_b.params.server_pubkey, h.B_EXP_TIME, network)
        assert params.funding_address.text == address
        assert params.funding_address.script_pubkey.hex() == h.B_FUNDING_SPK
        assert Address.parse(address, network).script_pubkey.hex() == h.B_FUNDING_SPK

    def test_debug_funding(self, chan_b: Chan) -> None:
        assert sha256(chan_b.client.public_key.data).hex() == h.B_SHA256_PK
        assert chan_b.funding.outpoint.display_txid == h.B_FUNDING_TXID
        assert chan_b.funding.outpoint.vout == h.B_FUNDING_VOUT
        assert chan_b.funding.value == h.B_FUNDING_VALUE
        assert chan_b.funding.outpoint == OutPoint.from_display(h.B_FUNDING_TXID, h.B_FUNDING_VOUT)

    def test_client_refund_address(self, chan_b: Chan, client_address_b: Address) -> None:
        assert Address.p2pkh(chan_b.client.public_key.hash160(), Network.TEST).text == h.B_CLIENT_ADDRESS
        assert client_address_b.script_pubkey == Address.p2pkh(chan_b.client.public_key.hash160(),
                                                                Network.TEST).script_pubkey


class TestVectorBPayments:
    def test_unsigned_opening_tx(self, chan_b: Chan) -> None:
        tx = payment_transaction(chan_b.outpoint, h.B_OPEN_CHANGE, chan_b.funding_address.script_pubkey)
        assert tx.serialize().hex() == h.B_OPEN_UNSIGNED_TX
        assert Transaction.parse(bytes.fromhex(h.B_OPEN_UNSIGNED_TX)) == tx

    def test_opening_preimage_digest_signature(self, chan_b: Chan) -> None:
        spk = chan_b.funding_address.script_pubkey
        preimage = _preimage(chan_b.outpoint, chan_b.redeem_script, h.B_OPEN_CHANGE, spk, SINGLE_ACP)
        assert preimage.hex() == h.B_OPEN_PREIMAGE
        digest = chan_b.verifier.digest(h.B_OPEN_CHANGE, spk, SINGLE_ACP)
        assert digest.hex() == h.B_OPEN_DIGEST == sha256d(preimage).hex()
        assert chan_b.client.sign_digest(digest).hex() == h.B_OPEN_SIG
        assert chan_b.sign(h.B_OPEN_CHANGE).der.hex() == h.B_OPEN_SIG

    def test_payment_2(self, chan_b: Chan) -> None:
        spk = chan_b.funding_address.script_pubkey
        digest = chan_b.verifier.digest(h.B_PAY2_CHANGE, spk, SINGLE_ACP)
        assert digest.hex() == h.B_PAY2_DIGEST
        assert chan_b.client.sign_digest(digest).hex() == h.B_PAY2_SIG
        chan_b.verifier.verify(ClientSignature.from_parts(bytes.fromhex(h.B_PAY2_SIG), SINGLE_ACP), h.B_PAY2_CHANGE,
                               spk)

    def test_none_acp_preimage_and_digest(self, chan_b: Chan, client_address_b: Address) -> None:
        preimage = _preimage(chan_b.outpoint, chan_b.redeem_script, 0, b"", NONE_ACP)
        assert preimage.hex() == h.B_NONE_PREIMAGE
        assert sha256d(preimage).hex() == h.B_NONE_DIGEST
        # any change output: outputs are not hashed
        for value, script in ((0, b""), (12345, client_address_b.script_pubkey), (h.B_OPEN_CHANGE, b"\x51")):
            assert chan_b.verifier.digest(value, script, NONE_ACP).hex() == h.B_NONE_DIGEST
            tx = payment_transaction(chan_b.outpoint, value, script)
            assert legacy_sighash(tx, 0, chan_b.redeem_script, NONE_ACP).hex() == h.B_NONE_DIGEST
            assert bitcoinlib_sighash(tx, 0, chan_b.redeem_script, NONE_ACP).hex() == h.B_NONE_DIGEST

    def test_closing_payment(self, chan_b: Chan, client_address_b: Address) -> None:
        spk = client_address_b.script_pubkey
        digest = chan_b.verifier.digest(h.B_CLOSE_CHANGE, spk, SINGLE_ACP)
        assert digest.hex() == h.B_CLOSE_DIGEST
        assert chan_b.client.sign_digest(digest).hex() == h.B_CLOSE_SIG
        assert chan_b.sign(h.B_CLOSE_CHANGE, spk).der.hex() == h.B_CLOSE_SIG

    def test_v2_seed_body_parses(self, chan_b: Chan) -> None:
        body = json.loads(h.B_OPEN_BODY)
        payment = parse_v2_payment(body, require_full=True)
        assert payment.change_value == h.B_OPEN_CHANGE
        assert payment.signature == ClientSignature(bytes.fromhex(h.B_OPEN_SIG), SINGLE_ACP)
        assert payment.outpoint == chan_b.outpoint
        assert payment.redeem_script == chan_b.redeem_script
        assert payment.change_address == h.B_P2SH_TEST
        assert payment.application_data == ""
        # and re-serialises to the same JSON (seed form)
        assert payment_to_json(payment) == body

    def test_v2_seed_open_accepted(self, chan_b: Chan) -> None:
        payment = parse_v2_payment(json.loads(h.B_OPEN_BODY))
        accepted = open_state(chan_b.params, chan_b.funding, payment, chan_b.verifier, chan_b.funding_address,
                              Family.V2_SEED, h.DEFAULT_POLICY, now=1_000)
        assert accepted.value_received == 100_000
        assert accepted.state.change_value == h.B_OPEN_CHANGE
        assert accepted.state.status is Status.OPEN
        assert accepted.state.secret.hex() == h.B_OPEN_SECRET

    def test_v2_3_secret(self) -> None:
        sig = ClientSignature.from_parts(bytes.fromhex(h.B_OPEN_SIG), SINGLE_ACP)
        assert sig.secret().hex() == h.B_OPEN_SECRET
        assert sha256(bytes.fromhex(h.B_OPEN_SIG) + b"\x83").hex() == h.B_OPEN_SECRET

    def test_payment_2_passes_rules(self, chan_b: Chan) -> None:
        check_payment(chan_b.payment(h.B_PAY2_CHANGE), chan_b.verifier, chan_b.funding_address, h.DEFAULT_POLICY)


class TestVectorBSettlement:
    def settlement_input(self, chan_b: Chan, client_address_b: Address) -> SettlementInput:
        sig = ClientSignature.from_parts(bytes.fromhex(h.B_CLOSE_SIG), SINGLE_ACP)
        return SettlementInput(chan_b.outpoint, chan_b.funding.value, chan_b.redeem_script, h.B_CLOSE_CHANGE,
                               client_address_b.script_pubkey, sig)

    def test_fee_fixed(self, chan_b: Chan, client_address_b: Address, destination_b: Address) -> None:
        s = self.settlement_input(chan_b, client_address_b)
        assert settlement_fee(s, destination_b.script_pubkey, 700, 40, FeeMode.FIXED) == h.B_SETTLE_FEE == 348 * 40

    def test_outputs_digest_signature_tx(self, chan_b: Chan, client_address_b: Address,
                                         destination_b: Address) -> None:
        s = self.settlement_input(chan_b, client_address_b)
        tx = unsigned_settlement(s, destination_b.script_pubkey, h.B_SETTLE_FEE, 700)
        assert tx.outputs == (TxOut(h.B_CLOSE_CHANGE, client_address_b.script_pubkey),
                              TxOut(h.B_SETTLE_SERVER_VALUE, destination_b.script_pubkey))
        assert h.B_SETTLE_SERVER_VALUE == h.B_FUNDING_VALUE - h.B_CLOSE_CHANGE - h.B_SETTLE_FEE
        digest = legacy_sighash(tx, 0, chan_b.redeem_script, SIGHASH_ALL)
        assert digest.hex() == h.B_SETTLE_DIGEST
        assert bitcoinlib_sighash(tx, 0, chan_b.redeem_script, SIGHASH_ALL).hex() == h.B_SETTLE_DIGEST
        assert chan_b.server.sign_digest(digest).hex() == h.B_SETTLE_SERVER_SIG
        signed = sign_settlement(s, tx, chan_b.server)
        raw = signed.serialize()
        assert raw.hex() == h.B_SETTLE_TX
        assert len(raw) == h.B_SETTLE_SIZE
        assert signed.txid == h.B_SETTLE_TXID
        assert Transaction.parse(raw) == signed
        bitcoinlib_verify_p2sh(signed, bytes.fromhex(h.B_FUNDING_SPK))

    def test_refund(self, chan_b: Chan, client_address_b: Address) -> None:
        refund = build_refund(chan_b.outpoint, chan_b.funding.value, chan_b.redeem_script, h.B_EXP_TIME,
                              client_address_b.script_pubkey, h.B_REFUND_FEE, chan_b.client)
        assert refund.serialize().hex() == h.B_REFUND_TX
        assert refund.txid == h.B_REFUND_TXID
        assert refund.outputs == (TxOut(h.B_REFUND_VALUE, client_address_b.script_pubkey),)
        assert refund.locktime == h.B_EXP_TIME
        assert refund.inputs[0].sequence == 0xFFFFFFFE
        unsigned = Transaction(1, (TxIn(chan_b.outpoint, b"", 0xFFFFFFFE),), refund.outputs, h.B_EXP_TIME)
        assert legacy_sighash(unsigned, 0, chan_b.redeem_script, SIGHASH_ALL).hex() == h.B_REFUND_DIGEST
        bitcoinlib_verify_p2sh(refund, bytes.fromhex(h.B_FUNDING_SPK))


# ---------------------------------------------------------------------------------------------
# 13.3 lock-time pushes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("exp_time", "push"), h.LOCKTIME_PUSHES)
def test_locktime_push(exp_time: int, push: str) -> None:
    assert push_data(script_num(exp_time)).hex() == push
    script = channel_redeem_script(bytes.fromhex(h.B_SERVER_PUBKEY), bytes.fromhex(h.B_CLIENT_PUBKEY), exp_time)
    assert script[37 : 37 + len(push) // 2].hex() == push
    assert len(script) == (80 if len(push) == 10 else 81)
    assert script[-35:] == b"\x21" + bytes.fromhex(h.B_CLIENT_PUBKEY) + b"\xac"


# ---------------------------------------------------------------------------------------------
# 13.4 Vector D -- v1 payloads
# ---------------------------------------------------------------------------------------------
class TestVectorD:
    def test_opening_payload(self, chan_b: Chan, client_address_b: Address) -> None:
        spk = client_address_b.script_pubkey
        assert h.B_FUNDING_VALUE - h.D_OPEN_CHANGE == h.D_OPEN_VALUE == 70_000 + 13_920
        assert chan_b.verifier.digest(h.D_OPEN_CHANGE, spk, SINGLE_ACP).hex() == h.D_OPEN_DIGEST
        sig = sign_payment(chan_b.client.secret, chan_b.outpoint, chan_b.redeem_script, h.D_OPEN_CHANGE, spk)
        text = encode_v1_payload(h.D_OPEN_CHANGE, sig.der, sig.sighash)
        assert text == h.D_OPEN_PAYLOAD
        assert decode_v1_bytes(text).hex() == h.D_OPEN_PAYLOAD_HEX
        assert base64.urlsafe_b64decode(encode_v1_payload(h.D_OPEN_CHANGE, sig.der, sig.sighash, padded=True)) \
            == bytes.fromhex(h.D_OPEN_PAYLOAD_HEX)
        payment = parse_v1_payload(text)
        assert payment.change_value == h.D_OPEN_CHANGE
        assert payment.signature == sig
        chan_b.verifier.verify(payment.signature, payment.change_value, spk)

    def test_exhausting_payload(self, chan_b: Chan, client_address_b: Address) -> None:
        spk = client_address_b.script_pubkey
        assert chan_b.verifier.digest(0, spk, NONE_ACP).hex() == h.D_EXHAUST_DIGEST == h.B_NONE_DIGEST
        sig = sign_payment(chan_b.client.secret, chan_b.outpoint, chan_b.redeem_script, 0, spk, NONE_ACP)
        text = encode_v1_payload(0, sig.der, NONE_ACP)
        assert text == h.D_EXHAUST_PAYLOAD
        payment = parse_v1_payload(text)
        assert payment.change_value == 0
        assert payment.signature == sig
        assert payment.signature.sighash == NONE_ACP
        chan_b.verifier.verify(payment.signature, 0, spk)


# ---------------------------------------------------------------------------------------------
# 13.5 benchmark key
# ---------------------------------------------------------------------------------------------
class TestBenchmarkKey:
    def params(self, network: Network) -> ChannelParams:
        server = PrivateKey(bytes.fromhex(h.B_SERVER_SECRET)).public_key
        return ChannelParams(PublicKey.from_hex(h.BENCH_CLIENT_PUBKEY), server, 1_500_000_000, network)

    def test_redeem_script(self) -> None:
        expected = ("6321" + h.B_SERVER_PUBKEY + "ad6704002f6859b1756821" + h.BENCH_CLIENT_PUBKEY + "ac")
        script = self.params(Network.TEST).redeem_script.hex()
        assert script == expected
        assert script.startswith("63210225b3") and script.endswith("0405ac")

    def test_addresses(self) -> None:
        assert self.params(Network.TEST).funding_address.text == h.BENCH_P2SH_TEST
        assert self.params(Network.LIVE).funding_address.text == h.BENCH_P2SH_LIVE
        assert self.params(Network.TEST).funding_address.text != h.BENCH_SWAGGER_EXAMPLE_ADDRESS

    def test_debug_funding(self) -> None:
        params = self.params(Network.TEST)
        funding = debug_funding(params.client_pubkey, params.exp_time, params.funding_address.script_pubkey)
        assert funding.outpoint.display_txid == h.BENCH_FUNDING_TXID
        assert funding.outpoint.vout == h.BENCH_FUNDING_VOUT
