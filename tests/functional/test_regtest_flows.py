"""Real money paths on a real regtest node: fund, confirm, open, pay, close for every route family, driven by
the paychan_client library against the three services as subprocesses; funding checks at open."""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path

import pytest

from paychan_client import ClientChannel, PaychanClient, ServerRejected
from paychan_common.keys import PrivateKey
from paychan_common.settlement import settlement_size
from paychan_common.state import Status
from paychan_common.tx import OutPoint
from paychan_server.domain.settler import settlement_input
from tests.support.regtest import RegtestNode
from tests.support.regtest_stack import (
    HOUR,
    client,
    decoded,
    outputs_by_address,
    regtest_services,
    settlement_fee,
    stored_state,
    wait_state,
    wallet_rpc,
)
from tests.support.services import Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.regtest

FUNDING = 1_000_000
PAYMENT = 1_000
V23_CLOSING_FEE = 2_000
RATE = 3  # settlement.fee_rate_sat_per_byte: regtest has no fee estimate, so the configured rate applies


def fund(node: RegtestNode, address: str, script: bytes, amount: int = FUNDING) -> tuple[OutPoint, int]:
    """Pay `amount` to address from the node's wallet (through the client library); the funding output."""
    rpc = wallet_rpc(node)
    try:
        txid = rpc.send_to_address(address, amount)
        return rpc.find_output(txid, script)
    finally:
        rpc.close()


def open_funded(c: PaychanClient, node: RegtestNode, family: str, *, confirmations: int = 2,
                change_address: str | None = None, refund_address: str | None = None
                ) -> tuple[PrivateKey, ClientChannel]:
    """New key, funding info (address checked by the library), funding from the wallet, confirmations, open."""
    key = PrivateKey(secrets.token_bytes(32))
    exp = int(time.time()) + 4 * HOUR
    info = c.funding_info(key.public_key, exp, family)
    outpoint, value = fund(node, info.funding_address, info.params.funding_address.script_pubkey)
    node.mine(confirmations)
    update = c.open_channel(key, exp, outpoint, value, family, info=info, change_address=change_address,
                            refund_address=refund_address)
    assert update.result.channel_status == "open"
    return key, update.channel


@pytest.mark.parametrize("family", ["v1", "v2", "v2.3"])
def test_fund_open_pay_close_settles_on_chain(regtest_node: RegtestNode, node_services: Services,
                                              family: str) -> None:
    node = regtest_node
    dest = node_services.configs["signing"]["settlement"]["destination"]
    dest_before = node.rpc("getreceivedbyaddress", dest, 0)
    refund = node.rpc("getnewaddress", "", "legacy")
    with client(node_services) as c:
        log.info("%s: fund 1,000,000 sat from the node wallet, confirm, open", family)
        _key, ch = open_funded(c, node, family, change_address=refund if family == "v1" else None,
                               refund_address=refund)
        log.info("%s: 100 payments of %d sat", family, PAYMENT)
        for _ in range(100):
            update = c.pay(ch, PAYMENT)
            assert update.result.value_received == PAYMENT
            ch = update.channel
        log.info("%s: close", family)
        closing = c.close(ch, refund, fee=V23_CLOSING_FEE if family == "v2.3" else 0)
    txid = closing.settlement_txid
    assert txid is not None and closing.channel.status == "closed"
    state = stored_state(node_services, ch.funding_outpoint)
    assert state is not None and state.settlement_txid == txid
    log.info("the settlement was stored before publication and is in the mempool (the node accepted it)")
    assert state.status is Status.CLOSING
    assert txid in node.rpc("getrawmempool")
    [block] = node.mine(1)
    assert txid in node.rpc("getblock", block)["tx"]
    wait_state(node_services, ch.funding_outpoint, lambda s: s.status is Status.CLOSED, what="closed after 1 conf")

    tx = decoded(node, txid)
    paid = outputs_by_address(tx)
    fee = settlement_fee(state.settlement_tx.hex(), ch.funding_value)
    final_change = closing.channel.change_value
    value_paid = ch.funding_value - final_change
    log.info("outputs %s, fee %d, value paid %d", paid, fee, value_paid)
    assert paid[refund] == final_change, "the client's change address receives its change"
    assert paid[dest] == value_paid - fee, "the destination receives exactly the value paid minus the fee"
    assert (node.rpc("getreceivedbyaddress", dest, 0) - dest_before) * 10**8 == value_paid - fee
    if family == "v2.3":
        assert closing.result.value_received == V23_CLOSING_FEE
        assert fee == V23_CLOSING_FEE  # the closing payment's value is the fee (it exceeds rate x size)
    else:
        size = settlement_size(settlement_input(state), bytes.fromhex(tx["vout"][-1]["scriptPubKey"]["hex"]), 700)
        assert fee == RATE * size
    assert fee >= tx["vsize"]  # at least the 1 sat/vB relay fee
    expected_paid = (71_044 if family == "v1" else 100_000) + 100 * PAYMENT + (
        V23_CLOSING_FEE if family == "v2.3" else 0)
    assert value_paid == expected_paid


@pytest.mark.parametrize("family", ["v1", "v2", "v2.3"])
def test_open_needs_enough_confirmations(regtest_node: RegtestNode, node_services: Services, family: str) -> None:
    node = regtest_node
    key = PrivateKey(secrets.token_bytes(32))
    exp = int(time.time()) + 4 * HOUR
    with client(node_services) as c:
        info = c.funding_info(key.public_key, exp, family)
        assert info.funding_tx_min_conf == 2
        outpoint, value = fund(node, info.funding_address, info.params.funding_address.script_pubkey)
        if family != "v1":  # v1 finds fundings by address in the UTXO set: confirmed outputs only
            log.info("%s: unconfirmed funding -> 409, 0 confirmations", family)
            with pytest.raises(ServerRejected) as err:
                c.open_channel(key, exp, outpoint, value, family, info=info)
            assert err.value.status == 409 and err.value.code == "insufficient_confirmations"
            assert "0 (need 2)" in err.value.server_message
        node.mine(1)
        log.info("%s: one confirmation of two -> 409 with the spec's message", family)
        with pytest.raises(ServerRejected) as err:
            c.open_channel(key, exp, outpoint, value, family, info=info)
        assert err.value.status == 409 and err.value.code == "insufficient_confirmations"
        assert err.value.server_message == "Insufficient confirmation count for funding transaction: 1 (need 2)"
        node.mine(1)
        assert c.open_channel(key, exp, outpoint, value, family, info=info).result.channel_status == "open"


@pytest.mark.parametrize("family", ["v2", "v2.3"])
def test_open_refuses_an_outpoint_of_another_script(regtest_node: RegtestNode, node_services: Services,
                                                    family: str) -> None:
    node = regtest_node
    key = PrivateKey(secrets.token_bytes(32))
    exp = int(time.time()) + 4 * HOUR
    with client(node_services) as c:
        info = c.funding_info(key.public_key, exp, family)
        other = c.funding_info(key.public_key, exp + 1, family)  # another channel's address
        outpoint, value = fund(node, other.funding_address, other.params.funding_address.script_pubkey)
        node.mine(2)
        with pytest.raises(ServerRejected) as err:
            c.open_channel(key, exp, outpoint, value, family, info=info)
    assert err.value.status == 409 and err.value.code == "funding_wrong_script"
    assert info.funding_address in err.value.server_message


def test_v1_open_picks_the_output_the_payment_signs(regtest_node: RegtestNode, node_services: Services) -> None:
    node = regtest_node
    key = PrivateKey(secrets.token_bytes(32))
    exp = int(time.time()) + 4 * HOUR
    with client(node_services) as c:
        info = c.funding_info(key.public_key, exp, "v1")
        script = info.params.funding_address.script_pubkey
        first, _ = fund(node, info.funding_address, script, 500_000)
        node.mine(1)
        second, value = fund(node, info.funding_address, script, 700_000)
        node.mine(2)
        log.info("two outputs pay the v1 funding address; the opening payment signs the second one")
        update = c.open_channel(key, exp, second, value, "v1", info=info)
    assert update.channel.funding_outpoint == second != first
    assert update.channel.channel_url.endswith(f"/v1/channels/{second.display_txid}/{second.vout}")
    state = stored_state(node_services, second)
    assert state is not None and state.funding_value == 700_000
    assert stored_state(node_services, first) is None


def test_node_on_another_chain_is_refused(regtest_node: RegtestNode, tmp_path: Path) -> None:
    svc = regtest_services(tmp_path / "svc", regtest_node, server={"bitcoin": {"network": "test"}})
    svc.start_store()
    svc.signer.start()
    try:
        svc.server.start()
        assert svc.server.proc is not None
        code = svc.server.proc.wait(timeout=60)
        assert code != 0
        assert "node is on chain 'regtest', not on the configured network 'test'" in svc.server.tail(80)
    finally:
        svc.stop()
