"""Tests of the regtest harness against a real bitcoind (no mocks)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import bitcoin
import pytest
from bitcoin.core.script import OP_TRUE, CScript
from bitcoin.wallet import P2SHBitcoinAddress

from tests.support.regtest import FUNDED_HEIGHT, RegtestNode, RpcError, find_bitcoind, wait_for

pytestmark = pytest.mark.regtest


def op_true_p2sh_address() -> str:
    """Regtest P2SH address (version 0xc4) of the redeem script ``OP_TRUE``."""
    bitcoin.SelectParams("regtest")
    return str(P2SHBitcoinAddress.from_redeemScript(CScript([OP_TRUE])))


def test_funded_node(regtest_node: RegtestNode) -> None:
    info = regtest_node.rpc("getblockchaininfo")
    assert info["chain"] == "regtest"
    assert info["blocks"] >= FUNDED_HEIGHT
    # 200 blocks: the first 100 coinbases (50 BTC each) are mature, the other 100 are not
    assert regtest_node.rpc("getbalance") >= Decimal("50")
    assert regtest_node.rpc_url.startswith("http://127.0.0.1:")
    assert regtest_node.rpc_user and regtest_node.rpc_password


def test_fresh_node_balance_is_its_100_mature_coinbases(regtest_node_fresh: RegtestNode) -> None:
    node = regtest_node_fresh
    assert node.rpc("getblockcount") == FUNDED_HEIGHT
    assert node.rpc("getbalance") == Decimal("5000.00000000")
    balances = node.rpc("getbalances")["mine"]
    assert balances["immature"] == Decimal("3725.00000000")  # 101-149 at 50, 150-200 at 25: regtest halves at 150


def test_send_to_op_true_p2sh(regtest_node: RegtestNode) -> None:
    node = regtest_node
    address = op_true_p2sh_address()
    assert address.startswith("2")
    # cross-check python-bitcoinlib against the node
    assert node.rpc("decodescript", "51")["p2sh"] == address
    assert node.rpc("validateaddress", address)["isvalid"] is True

    txid = node.rpc("sendtoaddress", address, Decimal("1"))
    assert txid in node.rpc("getrawmempool")
    [block_hash] = node.mine(1)
    assert txid in node.rpc("getblock", block_hash)["tx"]

    tx = node.rpc("getrawtransaction", txid, True)  # needs txindex=1
    [vout] = [o["n"] for o in tx["vout"] if o["scriptPubKey"].get("address") == address]
    txout = node.rpc("gettxout", txid, vout)
    assert txout is not None
    assert txout["value"] == Decimal("1.00000000")
    assert txout["confirmations"] == 1
    assert txout["scriptPubKey"]["type"] == "scripthash"
    assert txout["scriptPubKey"]["address"] == address

    node.mine(2)
    assert node.rpc("gettxout", txid, vout)["confirmations"] == 3


def test_setmocktime_moves_mediantime(regtest_node_fresh: RegtestNode) -> None:
    # own node: blocks a month ahead would make later mining on a shared node
    # fail with "time-too-new" once the mock time is reset
    node = regtest_node_fresh
    before = node.rpc("getblockchaininfo")
    target = int(before["time"]) + 30 * 24 * 3600  # a month after the tip
    node.setmocktime(target)
    try:
        node.mine(11)  # median of the last 11 blocks is then the mock time
        after = node.rpc("getblockchaininfo")
        assert after["mediantime"] >= target > before["mediantime"]
        # block time is max(mocktime, median-time-past + 1)
        assert target <= node.rpc("getblockheader", after["bestblockhash"])["time"] <= target + 11
    finally:
        node.setmocktime(0)


def test_non_final_tx_rejected(regtest_node: RegtestNode) -> None:
    node = regtest_node
    height = node.rpc("getblockcount")
    utxo = next(u for u in node.rpc("listunspent", 1) if u["amount"] >= Decimal("1"))
    dest = node.rpc("getnewaddress")
    raw = node.rpc(
        "createrawtransaction",
        [{"txid": utxo["txid"], "vout": utxo["vout"], "sequence": 0xFFFFFFFE}],
        [{dest: utxo["amount"] - Decimal("0.001")}],
        height + 1000,  # nLockTime (block height) far in the future
    )
    assert node.rpc("decoderawtransaction", raw)["locktime"] == height + 1000
    signed = node.rpc("signrawtransactionwithwallet", raw)
    assert signed["complete"] is True
    [result] = node.rpc("testmempoolaccept", [signed["hex"]])
    assert result["allowed"] is False
    assert result["reject-reason"] == "non-final"
    with pytest.raises(RpcError) as excinfo:
        node.rpc("sendrawtransaction", signed["hex"])
    assert "non-final" in excinfo.value.rpc_message


def test_rpc_error_and_lifecycle(tmp_path: Path) -> None:
    node = RegtestNode(tmp_path / "node", find_bitcoind())
    with node:
        assert node.running
        with pytest.raises(RpcError) as excinfo:
            node.rpc("no_such_method")
        assert excinfo.value.rpc_code == -32601  # RPC_METHOD_NOT_FOUND
        with pytest.raises(RpcError):
            node.mine(1, address="not-an-address")
        assert wait_for(lambda: node.rpc("getblockcount") == 0, timeout=5, description="height 0")
    assert not node.running
    assert node.process is not None and node.process.returncode == 0
    assert "regtest=1" in node.conf_file.read_text()
