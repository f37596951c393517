"""The bitcoind adapter of the blockchain port: async JSON-RPC (cookie or user/password auth)."""

from __future__ import annotations

import base64
import json
import logging
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from paychan_common.address import Address
from paychan_common.channel import Funding
from paychan_common.errors import PaychanError, ServiceUnavailable
from paychan_common.hashing import sha256d
from paychan_common.keys import PublicKey
from paychan_common.tx import OutPoint

from .blockchain import TxStatus
from .config import BitcoinConfig, SettlementConfig

log = logging.getLogger("paychan.bitcoind")

COIN = 100_000_000
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_VERIFY_ALREADY_IN_CHAIN = -27


class RpcError(PaychanError):
    """bitcoind answered with an error."""

    status = 502
    code = "bitcoind_error"

    def __init__(self, rpc_code: int, message: str) -> None:
        super().__init__(f"bitcoind error {rpc_code}: {message}")
        self.rpc_code = rpc_code


def to_sat(btc: Decimal | int | float | str) -> int:
    """BTC amount (as bitcoind prints it) to satoshis, exactly."""
    value = Decimal(str(btc)) * COIN
    if value != value.to_integral_value():
        raise PaychanError(f"amount {btc} has sub-satoshi precision")
    return int(value)


class BitcoindChain:
    """Funding lookups, publishing, fee rates and chain time from a bitcoind node."""

    debug = False

    def __init__(self, cfg: BitcoinConfig, settlement: SettlementConfig) -> None:
        self.cfg = cfg
        self.settlement = settlement
        url = cfg.rpc_url.rstrip("/")
        self.url = url + (f"/wallet/{cfg.wallet}" if cfg.wallet else "")
        self._session: aiohttp.ClientSession | None = None
        self._id = 0

    def _auth(self) -> str:
        if self.cfg.rpc_cookie_file:
            try:
                cookie = Path(self.cfg.rpc_cookie_file).read_text().strip()
            except OSError as exc:
                raise ServiceUnavailable(f"cannot read bitcoind cookie file: {exc.strerror}") from None
        else:
            cookie = f"{self.cfg.rpc_user}:{self.cfg.rpc_password}"
        return "Basic " + base64.b64encode(cookie.encode()).decode()

    async def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; ServiceUnavailable when the node cannot be reached."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.rpc_timeout_seconds))
        self._id += 1
        body = json.dumps({"jsonrpc": "1.0", "id": self._id, "method": method, "params": list(params)})
        try:
            async with self._session.post(self.url, data=body, headers={
                    "Authorization": self._auth(), "Content-Type": "application/json"}) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"bitcoin node unreachable ({type(exc).__name__})",
                                     code="node_unreachable") from None
        if status == 401:
            raise ServiceUnavailable("bitcoin node refused our RPC credentials", code="node_auth")
        try:
            data = json.loads(raw, parse_float=Decimal)
        except ValueError:
            raise ServiceUnavailable(f"bitcoin node sent a non-JSON answer (HTTP {status})") from None
        err = data.get("error")
        if err:
            raise RpcError(int(err.get("code", 0)), str(err.get("message", "")))
        return data.get("result")

    async def funding_by_outpoint(self, outpoint: OutPoint, client_pubkey: PublicKey, exp_time: int,
                                  funding_address: Address) -> Funding | None:
        """gettxout (mempool excluded): value, confirmations, scriptPubKey."""
        out = await self.rpc("gettxout", outpoint.display_txid, outpoint.vout, False)
        if not out:
            return None
        spk = bytes.fromhex(out["scriptPubKey"]["hex"])
        return Funding(outpoint, to_sat(out["value"]), int(out.get("confirmations", 0)), spk)

    async def funding_by_address(self, client_pubkey: PublicKey, exp_time: int,
                                 funding_address: Address) -> list[Funding]:
        """scantxoutset over the UTXO set (confirmed outputs only), oldest first."""
        res = await self.rpc("scantxoutset", "start", [f"addr({funding_address.text})"])
        height = int(res.get("height", 0))
        found = []
        for u in res.get("unspents", []):
            op = OutPoint.from_display(u["txid"], int(u["vout"]))
            conf = height - int(u["height"]) + 1 if u.get("height") else 0
            found.append(Funding(op, to_sat(u["amount"]), conf, bytes.fromhex(u["scriptPubKey"])))
        found.sort(key=lambda f: -f.confirmations)
        return found

    async def publish(self, tx: bytes) -> str:
        """sendrawtransaction; a transaction already known or mined counts as published."""
        txid = sha256d(tx)[::-1].hex()
        try:
            return str(await self.rpc("sendrawtransaction", tx.hex()))
        except RpcError as exc:
            text = exc.message.lower()
            if exc.rpc_code == RPC_VERIFY_ALREADY_IN_CHAIN or "already" in text or "txn-already-known" in text:
                return txid
            raise

    async def fee_rate(self) -> int:
        """estimatesmartfee (sat/byte, rounded up), floored at the relay fee, capped by config."""
        floor = 1
        try:
            info = await self.rpc("getmempoolinfo")
            floor = max(1, math.ceil(to_sat(info.get("minrelaytxfee", Decimal("0.00001"))) / 1000))
        except RpcError:
            pass
        rate = self.settlement.fee_rate_sat_per_byte
        try:
            est = await self.rpc("estimatesmartfee", 6)
            if est.get("feerate") is not None:
                rate = math.ceil(to_sat(est["feerate"]) / 1000)
        except RpcError:
            pass
        return min(max(rate, floor), self.settlement.max_fee_rate_sat_per_byte)

    async def median_time(self) -> int | None:
        """Median time past of the tip (BIP113)."""
        info = await self.rpc("getblockchaininfo")
        return int(info["mediantime"])

    async def tx_status(self, txid: str) -> TxStatus:
        """Confirmations of a transaction (mempool, then the chain)."""
        try:
            await self.rpc("getmempoolentry", txid)
            return TxStatus(0, True)
        except RpcError:
            pass
        try:
            tx = await self.rpc("getrawtransaction", txid, True)
        except RpcError as exc:
            if exc.rpc_code == RPC_INVALID_ADDRESS_OR_KEY:
                return TxStatus(0, False)
            raise
        return TxStatus(int(tx.get("confirmations", 0)), True)

    async def outpoint_spent(self, outpoint: OutPoint) -> bool:
        """True when the funding output is no longer in the UTXO set (mempool included)."""
        return not await self.rpc("gettxout", outpoint.display_txid, outpoint.vout, True)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
