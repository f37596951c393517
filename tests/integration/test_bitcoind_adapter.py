"""The bitcoind adapter of the blockchain port against a real regtest node (no mocks)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from paychan_common.address import Address
from paychan_common.channel import ChannelParams
from paychan_common.errors import ServiceUnavailable
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.tx import OutPoint
from paychan_runtime.bitcoin_rpc import RpcError
from paychan_runtime.config import ConfigError
from paychan_runtime.http_errors import http_status
from paychan_server.adapters.bitcoind import BitcoindChain
from paychan_server.config import BitcoinConfig, SettlementConfig
from paychan_server.domain.ports import OutputState
from tests.support.ports import reserve_port
from tests.support.regtest import FUNDED_HEIGHT, RegtestNode, find_bitcoind

pytestmark = pytest.mark.regtest
COIN = 100_000_000
SETTLEMENT = SettlementConfig(fee_rate_sat_per_byte=3, max_fee_rate_sat_per_byte=50)


def config(node: RegtestNode, **overrides: object) -> BitcoinConfig:
    """Adapter config for the node (user/password auth)."""
    base: dict[str, object] = {"network": "regtest", "rpc_url": node.rpc_url, "rpc_user": node.rpc_user,
                               "rpc_password": node.rpc_password, "rpc_timeout_seconds": 10.0}
    base.update(overrides)
    return BitcoinConfig.model_validate(base)


@pytest.fixture
async def chain(regtest_node: RegtestNode) -> AsyncIterator[BitcoindChain]:
    """An adapter on the module's node."""
    adapter = BitcoindChain(config(regtest_node), SETTLEMENT)
    yield adapter
    await adapter.close()


def channel_address() -> Address:
    """A fresh channel's P2SH funding address (regtest)."""
    client = PrivateKey(secrets.token_bytes(32)).public_key
    server = PrivateKey(secrets.token_bytes(32)).public_key
    return ChannelParams(client, server, 1_800_000_000, Network.REGTEST).funding_address


def send(node: RegtestNode, address: str, sat: int) -> OutPoint:
    """Pay from the wallet; the outpoint paying address."""
    txid = node.rpc("sendtoaddress", address, Decimal(sat) / COIN)
    tx = node.rpc("getrawtransaction", txid, True)
    [vout] = [o["n"] for o in tx["vout"] if o["scriptPubKey"].get("address") == address]
    return OutPoint.from_display(txid, vout)


def signed_spend(node: RegtestNode, locktime: int = 0) -> str:
    """A signed, unpublished wallet transaction (non-final when locktime is a future height)."""
    utxo = next(u for u in node.rpc("listunspent", 1) if u["amount"] >= Decimal("0.1"))
    raw = node.rpc("createrawtransaction", [{"txid": utxo["txid"], "vout": utxo["vout"], "sequence": 0xFFFFFFFE}],
                   [{node.rpc("getnewaddress"): utxo["amount"] - Decimal("0.0001")}], locktime)
    signed = node.rpc("signrawtransactionwithwallet", raw)
    assert signed["complete"]
    hex_tx: str = signed["hex"]
    return hex_tx


async def test_funding_by_outpoint_reports_value_confirmations_and_script(
        regtest_node: RegtestNode, chain: BitcoindChain) -> None:
    node = regtest_node
    address = channel_address()
    op = send(node, address.text, 250_000)
    pk = PrivateKey(secrets.token_bytes(32)).public_key
    unconfirmed = await chain.funding_by_outpoint(op, pk, 1_800_000_000, address)
    assert unconfirmed is not None and unconfirmed.confirmations == 0 and unconfirmed.value == 250_000
    node.mine(3)
    funding = await chain.funding_by_outpoint(op, pk, 1_800_000_000, address)
    assert funding is not None
    assert (funding.outpoint, funding.value, funding.confirmations) == (op, 250_000, 3)
    assert funding.script_pubkey == address.script_pubkey
    unknown = OutPoint.from_display("00" * 32, 0)
    assert await chain.funding_by_outpoint(unknown, pk, 1_800_000_000, address) is None


async def test_funding_by_address_lists_confirmed_outputs_most_confirmed_first(
        regtest_node: RegtestNode, chain: BitcoindChain) -> None:
    node = regtest_node
    address = channel_address()
    pk = PrivateKey(secrets.token_bytes(32)).public_key
    first = send(node, address.text, 100_000)
    node.mine(2)
    second = send(node, address.text, 200_000)
    node.mine(1)
    send(node, address.text, 300_000)  # unconfirmed: not in the UTXO set yet
    found = await chain.funding_by_address(pk, 1_800_000_000, address)
    assert [(f.outpoint, f.value, f.confirmations) for f in found] == [(first, 100_000, 3), (second, 200_000, 1)]
    assert all(f.script_pubkey == address.script_pubkey for f in found)


async def test_publish_is_idempotent_and_reports_refusals(regtest_node: RegtestNode,
                                                          chain: BitcoindChain) -> None:
    node = regtest_node
    tx_hex = signed_spend(node)
    txid = await chain.publish(bytes.fromhex(tx_hex))
    assert txid == node.rpc("decoderawtransaction", tx_hex)["txid"]
    assert (await chain.tx_status(txid)).known
    assert await chain.publish(bytes.fromhex(tx_hex)) == txid  # already in the mempool
    node.mine(1)
    assert await chain.publish(bytes.fromhex(tx_hex)) == txid  # already mined
    status = await chain.tx_status(txid, bytes.fromhex(tx_hex))
    assert (status.known, status.confirmations) == (True, 1)
    future = signed_spend(node, locktime=node.rpc("getblockcount") + 100)
    with pytest.raises(RpcError) as err:
        await chain.publish(bytes.fromhex(future))
    assert "non-final" in err.value.message and http_status(err.value) == 502


async def test_fee_rate_floor_cap_and_median_time(regtest_node: RegtestNode) -> None:
    node = regtest_node
    adapter = BitcoindChain(config(node), SETTLEMENT)
    capped = BitcoindChain(config(node), SettlementConfig(fee_rate_sat_per_byte=3, max_fee_rate_sat_per_byte=2))
    try:
        assert node.rpc("estimatesmartfee", 6).get("feerate") is None  # regtest: no estimate
        assert await adapter.fee_rate() == 3  # the configured rate, above the 1 sat/byte relay fee
        assert await capped.fee_rate() == 2
        assert await adapter.median_time() == node.rpc("getblockchaininfo")["mediantime"]
    finally:
        await adapter.close()
        await capped.close()


async def test_estimate_rate_is_not_capped_and_incremental_rate_is_the_nodes(tmp_path: Path) -> None:
    """Spec 8.6: the bump schedule reads the node's estimate uncapped (to compare it with the ceiling)."""
    with RegtestNode(tmp_path / "node", find_bitcoind()) as node:
        node.create_wallet("w")
        node.mine(FUNDED_HEIGHT)
        adapter = BitcoindChain(config(node), SettlementConfig(fee_rate_sat_per_byte=3, max_fee_rate_sat_per_byte=2))
        try:
            assert await adapter.estimate_rate(6) is None  # no data yet
            assert await adapter.incremental_rate() == 1  # Knots' default incrementalrelayfee, 1 sat/vB
            sink = node.new_address()
            for _ in range(6):
                for _ in range(3):
                    node.rpc("sendtoaddress", sink, "0.01", "", "", False, True, None, "unset", None, 30)
                node.mine(1)
            rate = await adapter.estimate_rate(2)
            # the transactions paid 30 sat/vB; the node's estimator rounds its bucket up to 30 or 31
            assert rate is not None and 30 <= rate <= 31, f"{rate}: above the 2 sat/byte cap, not capped"
            assert await adapter.fee_rate() == 2, "the settlement's first rate stays capped"
        finally:
            await adapter.close()


async def test_output_state_and_tx_status(regtest_node: RegtestNode, chain: BitcoindChain) -> None:
    node = regtest_node
    unknown = "ab" * 32
    assert (await chain.tx_status(unknown)).known is False
    op = send(node, node.rpc("getnewaddress"), 1_000_000)
    assert (await chain.tx_status(op.display_txid)).confirmations == 0
    node.mine(1)
    assert await chain.output_state(op) is OutputState.UNSPENT
    raw = node.rpc("createrawtransaction", [{"txid": op.display_txid, "vout": op.vout}],
                   [{node.rpc("getnewaddress"): Decimal("0.0099")}])
    spend = node.rpc("signrawtransactionwithwallet", raw)["hex"]
    node.rpc("sendrawtransaction", spend)
    assert await chain.output_state(op) is OutputState.SPENT_IN_MEMPOOL
    node.mine(2)
    assert await chain.output_state(op) is OutputState.SPENT
    assert (await chain.tx_status(op.display_txid)).confirmations == 3


async def test_tx_status_without_txindex_uses_the_outputs_and_fee_floor(tmp_path: Path) -> None:
    with RegtestNode(tmp_path / "node", find_bitcoind(), extra_args=["-txindex=0", "-minrelaytxfee=0.00005"]) as node:
        node.create_wallet("w")
        node.mine(FUNDED_HEIGHT)
        adapter = BitcoindChain(config(node), SETTLEMENT)
        try:
            await adapter.startup_check()
            assert adapter.txindex is False
            assert await adapter.fee_rate() == 5  # floored at the node's relay fee (5 sat/byte > configured 3)
            tx_hex = signed_spend(node)
            txid = await adapter.publish(bytes.fromhex(tx_hex))
            node.mine(2)
            with pytest.raises(RpcError):
                await adapter.rpc("getrawtransaction", txid, True)  # no index: the chain cannot be searched
            status = await adapter.tx_status(txid, bytes.fromhex(tx_hex))
            assert (status.known, status.confirmations) == (True, 2)
            assert (await adapter.tx_status(txid)).known is False  # without the transaction: unknown
        finally:
            await adapter.close()


async def test_wrong_chain_unreachable_node_and_credentials(regtest_node: RegtestNode, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    node = regtest_node
    address = channel_address()
    pk = PrivateKey(secrets.token_bytes(32)).public_key
    op = OutPoint.from_display("00" * 32, 0)

    wrong = BitcoindChain(config(node, network="test"), SETTLEMENT)
    with pytest.raises(ConfigError, match="node is on chain 'regtest'"):
        await wrong.startup_check()
    with pytest.raises(ServiceUnavailable) as err:
        await wrong.funding_by_outpoint(op, pk, 1_800_000_000, address)
    assert err.value.code == "node_wrong_chain" and http_status(err.value) == 503
    await wrong.close()

    down = BitcoindChain(config(node, rpc_url=f"http://127.0.0.1:{reserve_port()}"), SETTLEMENT)
    with caplog.at_level(logging.WARNING, logger="paychan.bitcoind"):
        await down.startup_check()  # not fatal: the server starts and answers 503 until the node is back
    assert "not available at start-up" in caplog.text
    with pytest.raises(ServiceUnavailable) as err:
        await down.publish(b"\x00")
    assert err.value.code == "node_unreachable" and "bitcoin node unreachable" in err.value.message
    await down.close()

    refused = BitcoindChain(config(node, rpc_password="wrong"), SETTLEMENT)
    with pytest.raises(ServiceUnavailable) as err:
        await refused.median_time()
    assert err.value.code == "node_auth"
    await refused.close()

    cookie = tmp_path / ".cookie"
    cookie.write_text(f"{node.rpc_user}:{node.rpc_password}\n")
    by_cookie = BitcoindChain(config(node, rpc_user="", rpc_password="", rpc_cookie_file=str(cookie)), SETTLEMENT)
    assert await by_cookie.median_time() == node.rpc("getblockchaininfo")["mediantime"]
    cookie.unlink()
    with pytest.raises(ServiceUnavailable, match="cookie file"):
        await by_cookie.median_time()
    await by_cookie.close()
