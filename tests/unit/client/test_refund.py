"""The refund transaction (spec 8.5, vector B's refund)."""

from __future__ import annotations

import pytest

from paychan_client import InvalidArgument, PaychanClient, build_refund_tx
from paychan_common.keys import PrivateKey
from paychan_common.tx import Transaction

from .vectors import REFUND_TX, REFUND_TXID, VALUE, opened_v23_channel


def test_refund_with_fee_1000_is_the_spec_vector(client: PaychanClient) -> None:
    tx_hex = client.refund_transaction(opened_v23_channel(), fee=1000)
    assert tx_hex == REFUND_TX
    assert Transaction.parse(bytes.fromhex(tx_hex)).txid == REFUND_TXID


def test_refund_by_fee_rate(client: PaychanClient) -> None:
    tx = Transaction.parse(bytes.fromhex(client.refund_transaction(opened_v23_channel(), fee_rate=2)))
    size = len(bytes.fromhex(REFUND_TX))
    assert VALUE - tx.outputs[0].value in (2 * size, 2 * (size + 1), 2 * (size - 1))
    assert tx.locktime == 1_500_000_000 and tx.inputs[0].sequence == 0xFFFFFFFE


def test_refund_needs_exactly_one_fee_setting(client: PaychanClient) -> None:
    with pytest.raises(InvalidArgument):
        client.refund_transaction(opened_v23_channel())
    with pytest.raises(InvalidArgument):
        client.refund_transaction(opened_v23_channel(), fee=1, fee_rate=1)
    with pytest.raises(InvalidArgument):
        client.refund_transaction(opened_v23_channel(), fee=VALUE)


def test_refund_with_a_foreign_key_is_refused() -> None:
    ch = opened_v23_channel()
    with pytest.raises(InvalidArgument, match="client key"):
        build_refund_tx(ch.params, PrivateKey(bytes.fromhex("22" * 32)), ch.funding_outpoint, VALUE,
                        ch.refund_address, fee=1000)
