"""Valid inputs for the harnesses' seed corpora, built from the pure core (debug server key, testnet)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from chan_store.contract import (
    PaymentApplied,
    PaymentItem,
    PaymentResult,
    encode_payment_results,
    encode_payments_request,
)
from paychan_common.address import Address
from paychan_common.channel import ChannelParams, PaymentVerifier, debug_funding, sign_payment
from paychan_common.errors import InvalidPayment
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import ChannelPolicy, open_state
from paychan_common.state import ChannelState, Family, Status
from tests.support.channels import CLIENT_REFUND, DEBUG_SERVER_PK, TestChannel

ROOT = Path(__file__).resolve().parents[2]
EXP_TIME = 2_000_000_000
DESTINATION = "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY"  # the functional tests' settlement destination
POLICY = ChannelPolicy()


def _key(n: int) -> PrivateKey:
    return PrivateKey(hashlib.sha256(b"fuzz seed client %d" % n).digest())


def test_channel(n: int = 0) -> TestChannel:
    """A debug-mode channel with a fixed key (seeds are reproducible)."""
    return TestChannel(exp_time=EXP_TIME, key=_key(n))


def sample_states() -> list[ChannelState]:
    """An open state of each family, and closing/closed forms with a settlement."""
    out = []
    for n, family in enumerate(Family):
        key = _key(n)
        params = ChannelParams(key.public_key, DEBUG_SERVER_PK, EXP_TIME, Network.TEST)
        funding = debug_funding(key.public_key, EXP_TIME, params.funding_address.script_pubkey)
        change = Address.parse(CLIENT_REFUND, Network.TEST)
        first = funding.value - POLICY.open_price
        sig = sign_payment(key.secret, funding.outpoint, params.redeem_script, first, change.script_pubkey)
        verifier = PaymentVerifier(key.public_key, funding.outpoint, params.redeem_script)
        state = open_state(params, funding, Payment(first, sig), verifier, change, family, POLICY, 1_700_000_000).state
        out.append(state)
    out.append(dataclasses.replace(out[0], status=Status.CLOSING, settlement_tx=bytes(60), settlement_txid="ab" * 32))
    out.append(dataclasses.replace(out[1], status=Status.CLOSED, settlement_txid=""))
    return out


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def v2_bodies() -> list[bytes]:
    """v2-seed opening, later and closing payments, wrapped and bare."""
    ch = test_channel()
    change = ch.funding_value - 100_000
    return [_json(ch.v2_body(change)), _json(ch.v2_body(change - 1)["payment_data"]),
            _json(ch.v2_body(change - 1, CLIENT_REFUND)), b"{}", b"[]"]


def v23_bodies() -> list[bytes]:
    """v2.3.0 full opening and compact later payments."""
    ch = test_channel(1)
    change = ch.funding_value - 100_000
    return [_json(ch.v23_full(change)), _json(ch.v23_compact(change - 5)),
            _json(ch.v23_full(change - 9, CLIENT_REFUND))]


def config_texts() -> list[bytes]:
    """Every shipped config file."""
    return [path.read_bytes() for path in sorted((ROOT / "config").glob("*/*.toml"))]


def chanstore_bodies() -> list[bytes]:
    """ChanStore request bodies: payments, create, compare-and-set."""
    ch = test_channel()
    state = sample_states()[0]
    sig = ch.sign(state.change_value - 1)
    item = {"outpoint": ch.op.serialize().hex(), "change_value": state.change_value - 1,
            "signature": sig.der.hex(), "sighash": sig.sighash}
    return [_json({"now": 1_700_000_100, "payments": [item, dict(item, now=5)]}),
            _json({"state": state.serialize().hex()}),
            _json({"expected": hashlib.sha256(state.serialize()).hexdigest(), "state": state.serialize().hex()})]


def chanstore_binary_bodies() -> list[bytes]:
    """ChanStore's binary payment batches (one valid for the first sample state, one with a payment's own
    time) and a binary answer with an applied payment and an error."""
    ch = test_channel()
    state = sample_states()[0]
    sig = ch.sign(state.change_value - 1)
    items = [PaymentItem(ch.op, state.change_value - 1, sig.der, sig.sighash),
             PaymentItem(ch.op, state.change_value - 2, sig.der, sig.sighash, 5)]
    answer: list[PaymentResult] = [PaymentApplied(1, state.change_value - 1, Status.OPEN),
              InvalidPayment("out of order", code="out_of_order")]
    return [encode_payments_request(items, 1_700_000_100), encode_payments_request([], 1),
            encode_payment_results(answer)]


def signer_bodies() -> list[bytes]:
    """A SigningService POST /sign_settlement body that passes every check (debug key, test destination)."""
    state = sample_states()[0]
    return [_json({
        "redeem_script": state.redeem_script.hex(), "funding_txid": state.outpoint.display_txid,
        "funding_vout": state.outpoint.vout, "funding_value": state.funding_value,
        "change_value": state.change_value, "change_script": state.change_script.hex(),
        "client_signature": state.signature.hex(), "client_sighash": state.sighash, "fee": 10_000,
        "dust_limit": 700, "destination": DESTINATION})]
