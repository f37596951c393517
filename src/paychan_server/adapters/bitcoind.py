"""The bitcoind adapter of the blockchain port: async JSON-RPC (cookie or user/password auth, timeouts).

Everything a dependency failure can cause is a ServiceUnavailable (503) naming the cause: node
unreachable, credentials refused, node still loading, node on another chain. A transaction the node
refuses is an RpcError (502) carrying the node's reason."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from paychan_common.address import Address
from paychan_common.channel import Funding
from paychan_common.errors import InvalidInput, ServiceUnavailable
from paychan_common.hashing import sha256d
from paychan_common.keys import PublicKey
from paychan_common.tx import OutPoint, Transaction
from paychan_runtime.bitcoin_rpc import BitcoinRpc, RpcError, btc_to_sat, rate_sat_per_byte
from paychan_runtime.config import ConfigError

from ..config import BitcoinConfig, SettlementConfig
from ..domain.ports import OutputState, TxStatus

log = logging.getLogger("paychan.bitcoind")

RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
SCAN_TIMEOUT_SECONDS = 300.0  # scantxoutset reads the whole UTXO set (minutes on mainnet)
FEE_TARGET_BLOCKS = 6
_ALREADY_KNOWN = ("txn-already-in-mempool", "txn-already-known", "already in block chain",
                  "outputs already in utxo set")

#: bitcoind's getblockchaininfo "chain" values accepted for each configured network (spec 2.2 and the
#: project decisions: testnet3, testnet4 and signet all use the testnet version bytes).
CHAINS = {"live": frozenset({"main"}), "test": frozenset({"test", "testnet4", "signet"}),
          "regtest": frozenset({"regtest"})}


class BitcoindChain:
    """Funding lookups, publishing, fee rates and chain time from a bitcoind node."""

    debug = False

    def __init__(self, cfg: BitcoinConfig, settlement: SettlementConfig) -> None:
        self.cfg = cfg
        self.settlement = settlement
        url = cfg.rpc_url.rstrip("/")
        self.url = url + (f"/wallet/{cfg.wallet}" if cfg.wallet else "")
        self._rpc = BitcoinRpc(self.url, user=cfg.rpc_user, password=cfg.rpc_password,
                               cookie_file=cfg.rpc_cookie_file, timeout=cfg.rpc_timeout_seconds)
        self._chain_ok = False
        self._scan_lock = asyncio.Lock()
        self.txindex: bool | None = None  # None until the node was asked

    async def rpc(self, method: str, *params: Any, call_timeout: float | None = None) -> Any:
        """One JSON-RPC call; ServiceUnavailable when the node cannot be reached or is not ready."""
        return await self._rpc.call(method, *params, call_timeout=call_timeout)

    async def _checked(self, method: str, *params: Any, call_timeout: float | None = None) -> Any:
        """rpc() once the node's chain is known to match bitcoin.network."""
        if not self._chain_ok:
            await self._verify_chain()
        return await self.rpc(method, *params, call_timeout=call_timeout)

    async def _verify_chain(self) -> None:
        info = await self.rpc("getblockchaininfo")
        chain = str(info.get("chain"))
        if chain not in CHAINS[self.cfg.network]:
            log.critical("bitcoin node is on chain %r but bitcoin.network is %r: refusing to use it",
                         chain, self.cfg.network)
            raise ServiceUnavailable(f"bitcoin node is on chain {chain!r}, not on the configured network "
                                     f"{self.cfg.network!r}", code="node_wrong_chain")
        self._chain_ok = True

    async def startup_check(self) -> None:
        """Start-up self-test (spec 10.4): the node's chain must match; warn without a transaction index."""
        try:
            await self._verify_chain()
        except ServiceUnavailable as exc:
            if exc.code == "node_wrong_chain":
                raise ConfigError(f"bitcoin.rpc_url: {exc.message}") from None
            log.warning("bitcoin node not available at start-up (%s): opens answer 503 and settlements wait "
                        "until it is back", exc.message)
            return
        try:
            indexes = await self.rpc("getindexinfo")
            self.txindex = isinstance(indexes, dict) and "txindex" in indexes
        except RpcError:
            self.txindex = False
        if not self.txindex:
            log.warning("bitcoin node runs without txindex=1: settlements are followed through their outputs")
        log.info("bitcoin node reachable: chain matches %r", self.cfg.network)

    # -- funding ------------------------------------------------------------------------------------
    async def funding_by_outpoint(self, outpoint: OutPoint, client_pubkey: PublicKey, exp_time: int,
                                  funding_address: Address) -> Funding | None:
        """gettxout (mempool included, so an unconfirmed funding shows 0 confirmations)."""
        out = await self._checked("gettxout", outpoint.display_txid, outpoint.vout, True)
        if not out:
            return None
        spk = bytes.fromhex(out["scriptPubKey"]["hex"])
        return Funding(outpoint, btc_to_sat(out["value"]), int(out.get("confirmations", 0)), spk)

    async def funding_by_address(self, client_pubkey: PublicKey, exp_time: int,
                                 funding_address: Address) -> list[Funding]:
        """scantxoutset over the UTXO set (confirmed outputs only), most confirmed first."""
        async with self._scan_lock:  # the node runs one scan at a time
            try:
                res = await self._checked("scantxoutset", "start", [f"addr({funding_address.text})"],
                                          call_timeout=max(SCAN_TIMEOUT_SECONDS, self.cfg.rpc_timeout_seconds))
            except RpcError as exc:
                if exc.rpc_code == RPC_INVALID_PARAMETER and "in progress" in exc.rpc_message:
                    raise ServiceUnavailable("bitcoin node is busy with another UTXO scan; retry",
                                             code="node_busy") from None
                raise
        height = int(res.get("height", 0))
        found = []
        for u in res.get("unspents", []):
            op = OutPoint.from_display(u["txid"], int(u["vout"]))
            conf = height - int(u["height"]) + 1 if u.get("height") else 0
            found.append(Funding(op, btc_to_sat(u["amount"]), conf, bytes.fromhex(u["scriptPubKey"])))
        found.sort(key=lambda f: -f.confirmations)
        return found

    # -- publishing and fees -------------------------------------------------------------------------
    async def publish(self, tx: bytes) -> str:
        """sendrawtransaction; a transaction already in the mempool or mined counts as published."""
        txid = sha256d(tx)[::-1].hex()
        try:
            sent = str(await self._checked("sendrawtransaction", tx.hex()))
        except RpcError as exc:
            text = exc.rpc_message.lower()
            if exc.rpc_code == RPC_VERIFY_ALREADY_IN_CHAIN or any(k in text for k in _ALREADY_KNOWN):
                return txid
            raise
        if sent != txid:
            log.error("node reports txid %s for our transaction %s", sent, txid)
        return txid

    async def fee_rate(self) -> int:
        """estimatesmartfee in sat/byte (rounded up), floored at the node's relay and mempool minimum fees,
        capped by settlement.max_fee_rate_sat_per_byte; settlement.fee_rate_sat_per_byte without an estimate."""
        floor = 1
        try:
            info = await self._checked("getmempoolinfo")
            floor = max(1, rate_sat_per_byte(info.get("minrelaytxfee", 0)),
                        rate_sat_per_byte(info.get("mempoolminfee", 0)))
        except RpcError as exc:
            log.warning("getmempoolinfo failed (%s): relay fee floor 1 sat/byte", exc.message)
        rate = self.settlement.fee_rate_sat_per_byte
        try:
            est = await self._checked("estimatesmartfee", FEE_TARGET_BLOCKS)
            if isinstance(est, dict) and est.get("feerate") is not None:
                rate = rate_sat_per_byte(est["feerate"])
        except RpcError as exc:
            log.warning("estimatesmartfee failed (%s): using the configured rate", exc.message)
        cap = self.settlement.max_fee_rate_sat_per_byte
        if floor > cap:
            log.warning("node's minimum fee rate %d sat/byte is above the cap %d: the settlement may be refused",
                        floor, cap)
        return min(max(rate, floor), cap)

    async def estimate_rate(self, conf_target: int) -> int | None:
        """estimatesmartfee for conf_target blocks (sat/byte, rounded up), floored at the node's mempool
        minimum, NOT capped: the settler compares it with its ceiling (spec 8.6); None without an estimate."""
        try:
            est = await self._checked("estimatesmartfee", max(1, min(conf_target, 1008)))
        except RpcError as exc:
            log.warning("estimatesmartfee failed (%s)", exc.message)
            return None
        if not isinstance(est, dict) or est.get("feerate") is None:
            return None
        rate = rate_sat_per_byte(est["feerate"])
        try:
            info = await self._checked("getmempoolinfo")
            rate = max(rate, rate_sat_per_byte(info.get("mempoolminfee", 0)))
        except RpcError as exc:
            log.warning("getmempoolinfo failed (%s)", exc.message)
        return rate

    async def incremental_rate(self) -> int:
        """getnetworkinfo's incrementalfee in sat/byte (at least 1): BIP125 rule 4's unit."""
        try:
            info = await self._checked("getnetworkinfo")
            return max(1, rate_sat_per_byte(info.get("incrementalfee", 0)))
        except RpcError as exc:
            log.warning("getnetworkinfo failed (%s): incremental relay fee taken as 1 sat/byte", exc.message)
            return 1

    # -- chain time and follow-up --------------------------------------------------------------------
    async def median_time(self) -> int | None:
        """Median time past of the tip (BIP113)."""
        info = await self._checked("getblockchaininfo")
        return int(info["mediantime"])

    async def tx_status(self, txid: str, tx: bytes = b"") -> TxStatus:
        """Confirmations of a transaction: mempool, then the chain (txindex), then its unspent outputs."""
        try:
            await self._checked("getmempoolentry", txid)
            return TxStatus(0, True)
        except RpcError as exc:
            if exc.rpc_code != RPC_INVALID_ADDRESS_OR_KEY:
                raise
        try:
            found = await self._checked("getrawtransaction", txid, True)
            if isinstance(found, dict) and found.get("blockhash"):
                return TxStatus(int(found.get("confirmations", 0)), True)
        except RpcError as exc:
            if exc.rpc_code != RPC_INVALID_ADDRESS_OR_KEY:
                raise
        for vout in range(_output_count(tx)):  # without txindex: any unspent output shows the depth
            out = await self._checked("gettxout", txid, vout, False)
            if out:
                return TxStatus(int(out.get("confirmations", 0)), True)
        return TxStatus(0, False)

    async def output_state(self, outpoint: OutPoint) -> OutputState:
        """gettxout with and without the mempool."""
        if await self._checked("gettxout", outpoint.display_txid, outpoint.vout, True):
            return OutputState.UNSPENT
        if await self._checked("gettxout", outpoint.display_txid, outpoint.vout, False):
            return OutputState.SPENT_IN_MEMPOOL
        return OutputState.SPENT

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._rpc.close()


def _output_count(tx: bytes) -> int:
    if not tx:
        return 0
    try:
        return len(Transaction.parse(tx).outputs)
    except InvalidInput:
        return 0
