"""Shared pieces of the regtest tests: the three services configured for a real regtest node,
node restarts on the same ports, funding from the node's wallet, and reads of ChanStore's stored state."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

from chan_store.contract import outpoint_hex, parse_state
from paychan_client import NodeClient, PaychanClient
from paychan_common.network import Network
from paychan_common.state import ChannelState
from paychan_common.tx import OutPoint, Transaction
from tests.support import regtest as harness
from tests.support.regtest import RegtestNode, wait_for
from tests.support.services import Services, deep_merge

log = logging.getLogger("paychan.tests")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the narrative
HOUR = 3600
COIN = 100_000_000

#: Short durations and fast loops: channels open with exp_time >= now + 3 h; the scheduler settles them from
#: exp - 2 h (settlement period 1 h + safety margin 1 h); payments stop at exp - 1 h.
FAST_SERVER: dict[str, Any] = {
    "channel": {"dust_limit": 700, "open_price": 100_000, "funding_min_conf": 2, "settlement_period_hours": 1,
                "min_duration_hours": 2},
    "settlement": {"fee_mode": "rate", "fee_rate_sat_per_byte": 3, "max_fee_rate_sat_per_byte": 50,
                   "confirmations": 1, "retry_interval_seconds": 0.2, "retry_max_interval_seconds": 1.0,
                   "scheduler_interval_seconds": 0.5, "safety_margin_hours": 1},
}


def regtest_services(root: Path, node: RegtestNode, *, server: dict[str, Any] | None = None,
                     destination: str | None = None) -> Services:
    """The three services on the regtest network, PayChanServer talking to `node` (not started)."""
    bitcoin = {"network": "regtest", "rpc_url": node.rpc_url, "rpc_user": node.rpc_user,
               "rpc_password": node.rpc_password, "rpc_timeout_seconds": 5.0}
    cfg = deep_merge(FAST_SERVER, {"bitcoin": bitcoin})
    dest = destination or node.new_address()
    return Services(root, network="regtest", debug=False, server=deep_merge(cfg, server or {}),
                    signing={"settlement": {"destination": dest, "max_fee": 200_000},
                             "funding_check": {"mode": "node", "rpc_url": node.rpc_url, "rpc_user": node.rpc_user,
                                               "rpc_password": node.rpc_password}})


def wallet_rpc(node: RegtestNode) -> NodeClient:
    """The client library's RPC client on the node's wallet "w"."""
    return NodeClient(node.rpc_url + "/wallet/w", user=node.rpc_user, password=node.rpc_password)


def client(svc: Services) -> PaychanClient:
    """A paychan_client library client on the services' PayChanServer."""
    return PaychanClient(svc.url, Network.REGTEST, timeout=30)


def restart_node(node: RegtestNode, extra_args: Sequence[str] = ()) -> None:
    """Stop the node and start it again on the same ports (so running services find it), wallet loaded."""
    ports = [node.rpc_port, node.p2p_port]
    node.stop()
    node.extra_args = list(extra_args)
    with mock.patch.object(harness, "_reserve_ports", lambda count: ports):
        node.start()
    node.rpc("loadwallet", "w")


def stop_node(node: RegtestNode) -> None:
    """Stop the node (its ports stay reserved for restart_node)."""
    node.stop()


def stored_state(svc: Services, outpoint: OutPoint) -> ChannelState | None:
    """The channel's state as ChanStore holds it (its HTTP API, with the internal token)."""
    r = httpx.get(f"http://127.0.0.1:{svc.store_port}/channels/{outpoint_hex(outpoint)}",
                  headers={"Authorization": "Bearer " + svc.token}, timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return parse_state(r.json()["state"])


def wait_state(svc: Services, outpoint: OutPoint, predicate: Any, timeout: float = 60.0,
               what: str = "channel state") -> ChannelState:
    """Poll ChanStore until the channel's state satisfies predicate."""
    def check() -> ChannelState | None:
        state = stored_state(svc, outpoint)
        return state if state is not None and predicate(state) else None

    result = wait_for(check, timeout=timeout, description=what)
    assert result is not None  # wait_for returns only a truthy value
    return result


def in_mempool(node: RegtestNode, txid: str) -> bool:
    """True while the node's mempool holds txid."""
    return txid in node.rpc("getrawmempool")


def mempool_accepts(node: RegtestNode, tx_hex: str) -> dict[str, Any]:
    """testmempoolaccept's verdict for one transaction."""
    [verdict] = node.rpc("testmempoolaccept", [tx_hex])
    result: dict[str, Any] = verdict
    return result


def decoded(node: RegtestNode, txid: str) -> dict[str, Any]:
    """getrawtransaction verbose (txindex=1)."""
    result: dict[str, Any] = node.rpc("getrawtransaction", txid, True)
    return result


def outputs_by_address(tx: dict[str, Any]) -> dict[str, int]:
    """Satoshis paid to each address by a decoded transaction."""
    paid: dict[str, int] = {}
    for out in tx["vout"]:
        address = out["scriptPubKey"].get("address")
        if address is not None:
            paid[address] = paid.get(address, 0) + int(Decimal(out["value"]) * COIN)
    return paid


def spender_of(node: RegtestNode, outpoint: OutPoint, block_hashes: Iterator[str] | Sequence[str]) -> list[str]:
    """Txids in the given blocks that spend outpoint."""
    found = []
    for block_hash in block_hashes:
        for tx in node.rpc("getblock", block_hash, 2)["tx"]:
            for vin in tx["vin"]:
                if vin.get("txid") == outpoint.display_txid and vin.get("vout") == outpoint.vout:
                    found.append(tx["txid"])
    return found


def all_blocks(node: RegtestNode) -> list[str]:
    """Hashes of every block of the active chain (small regtest chains only)."""
    return [node.rpc("getblockhash", h) for h in range(node.rpc("getblockcount") + 1)]


def mtp(node: RegtestNode) -> int:
    """Median time past of the tip."""
    return int(node.rpc("getblockchaininfo")["mediantime"])


def advance_chain_time(node: RegtestNode, target: int) -> None:
    """Move the node's clock to target and mine until median time past >= target (BIP113)."""
    node.setmocktime(target)
    for _ in range(20):
        if mtp(node) >= target:
            return
        node.mine(1)
    raise AssertionError(f"median time past {mtp(node)} did not reach {target}")


def settlement_fee(tx_hex: str, funding_value: int) -> int:
    """funding value minus the outputs of a one-input settlement."""
    tx = Transaction.parse(bytes.fromhex(tx_hex))
    return funding_value - sum(o.value for o in tx.outputs)
