"""The SigningService confirms the funding value itself: a legacy signature does not commit to it, so a
caller lying about `funding_value` must not get a settlement signed (debug derivation, real node)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from paychan_common.address import Address
from paychan_common.channel import ChannelParams, debug_funding, sign_payment
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.tx import OutPoint
from signing_service.app import create_app
from signing_service.config import SigningConfig
from signing_service.keystore import load_server_key
from tests.support.ports import reserve_port
from tests.support.regtest import RegtestNode

DEBUG_KEY = PrivateKey(bytes.fromhex("9b4b4cf8f8796ca8a3a8a3da5c73deeb7c558a89e3752b896349ec58c010879d"))
DEST_TEST = "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY"


def signing_config(tmp_path: Path, network: str, destination: str, funding_check: dict[str, Any],
                   debug_seed: bool) -> SigningConfig:
    """A config with files under tmp_path."""
    return SigningConfig.model_validate({
        "network": network, "listen": {"host": "127.0.0.1", "port": 1},
        "auth": {"token_file": str(tmp_path / "token")},
        "key": {"file": str(tmp_path / "server.key"), "debug_seed": debug_seed},
        "settlement": {"destination": destination, "max_fee": 200_000}, "funding_check": funding_check})


def settlement_body(client: PrivateKey, server: PrivateKey, exp_time: int, network: Network, outpoint: OutPoint,
                    funding_value: int, paid: int = 100_000) -> dict[str, Any]:
    """A well-formed /sign_settlement request for a channel whose client has paid `paid`."""
    params = ChannelParams(client.public_key, server.public_key, exp_time, network)
    refund = Address.p2pkh(client.public_key.hash160(), network)
    change = funding_value - paid
    sig = sign_payment(client.secret, outpoint, params.redeem_script, change, refund.script_pubkey)
    return {"redeem_script": params.redeem_script.hex(), "funding_txid": outpoint.display_txid,
            "funding_vout": outpoint.vout, "funding_value": funding_value, "change_value": change,
            "change_script": refund.script_pubkey.hex(), "client_signature": sig.der.hex(),
            "client_sighash": sig.sighash, "fee": 5_000, "dust_limit": 700}


async def post(client: TestClient[web.Request, web.Application], token: str,
               body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /sign_settlement with the token."""
    resp = await client.post("/sign_settlement", json=body, headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json()


async def test_debug_mode_signs_only_the_derived_funding(tmp_path: Path, aiohttp_client: Any) -> None:
    cfg = signing_config(tmp_path, "test", DEST_TEST, {"mode": "debug"}, debug_seed=True)
    client = await aiohttp_client(create_app(cfg, load_server_key(cfg.key, cfg.net)))
    token = (tmp_path / "token").read_text().strip()
    ckey = PrivateKey(secrets.token_bytes(32))
    exp = 2_000_000_000
    params = ChannelParams(ckey.public_key, DEBUG_KEY.public_key, exp, Network.TEST)
    fake = debug_funding(ckey.public_key, exp, params.funding_address.script_pubkey)
    status, _ = await post(client, token, settlement_body(ckey, DEBUG_KEY, exp, Network.TEST, fake.outpoint,
                                                          fake.value))
    assert status == 200
    lie = settlement_body(ckey, DEBUG_KEY, exp, Network.TEST, fake.outpoint, fake.value - 10_000_000)
    status, body = await post(client, token, lie)
    assert status == 403 and body["error"]["code"] == "funding_mismatch"


@pytest.mark.regtest
async def test_node_mode_checks_value_script_and_spentness(tmp_path: Path, aiohttp_client: Any,
                                                           regtest_node: RegtestNode) -> None:
    node = regtest_node
    dest = node.new_address()
    check = {"mode": "node", "rpc_url": node.rpc_url, "rpc_user": node.rpc_user, "rpc_password": node.rpc_password}
    cfg = signing_config(tmp_path, "regtest", dest, check, debug_seed=False)
    server_key = load_server_key(cfg.key, cfg.net)
    client = await aiohttp_client(create_app(cfg, server_key))
    token = (tmp_path / "token").read_text().strip()
    ckey = PrivateKey(secrets.token_bytes(32))
    exp = 2_000_000_000
    params = ChannelParams(ckey.public_key, server_key.public_key, exp, Network.REGTEST)
    txid = node.rpc("sendtoaddress", params.funding_address.text, Decimal("0.01"))
    node.mine(1)
    tx = node.rpc("getrawtransaction", txid, True)
    vout = next(o["n"] for o in tx["vout"] if o["scriptPubKey"].get("address") == params.funding_address.text)
    outpoint = OutPoint.from_display(txid, vout)

    status, body = await post(client, token, settlement_body(ckey, server_key, exp, Network.REGTEST, outpoint,
                                                             1_000_000))
    assert status == 200, body
    accepted = node.rpc("testmempoolaccept", [body["tx"]])[0]
    assert accepted["allowed"], accepted

    status, body = await post(client, token, settlement_body(ckey, server_key, exp, Network.REGTEST, outpoint,
                                                             900_000))
    assert status == 403 and body["error"]["code"] == "funding_mismatch"
    assert "differs from the node" in body["error"]["message"]

    unknown = OutPoint(secrets.token_bytes(32), 0)
    status, body = await post(client, token, settlement_body(ckey, server_key, exp, Network.REGTEST, unknown,
                                                             1_000_000))
    assert status == 403 and "unknown or already spent" in body["error"]["message"]


async def test_node_unreachable_is_503_not_a_signature(tmp_path: Path, aiohttp_client: Any) -> None:
    check = {"mode": "node", "rpc_url": f"http://127.0.0.1:{reserve_port()}", "rpc_user": "u", "rpc_password": "p",
             "rpc_timeout_seconds": 2.0}
    cfg = signing_config(tmp_path, "test", DEST_TEST, check, debug_seed=True)
    client = await aiohttp_client(create_app(cfg, load_server_key(cfg.key, cfg.net)))
    token = (tmp_path / "token").read_text().strip()
    ckey = PrivateKey(secrets.token_bytes(32))
    status, body = await post(client, token, settlement_body(ckey, DEBUG_KEY, 2_000_000_000, Network.TEST,
                                                             OutPoint(bytes(32), 1), 1_000_000))
    assert status == 503 and "tx" not in body
