"""The node calls the client makes (funding, confirmations, publishing) over the shared JSON-RPC client."""

from __future__ import annotations

from paychan_common.errors import PaychanError
from paychan_common.tx import OutPoint
from paychan_runtime.bitcoin_rpc import RpcError, SyncBitcoinRpc, btc_to_sat, sat_to_btc

from .errors import InvalidArgument

__all__ = ["NodeClient", "btc_to_sat", "sat_to_btc"]


def _malformed(method: str, what: str) -> RpcError:
    return RpcError(0, f"malformed reply: {what}", method)


class NodeClient(SyncBitcoinRpc):
    """bitcoind JSON-RPC for the client: the shared client plus the few calls the CLI needs."""

    def send_raw_transaction(self, tx_hex: str) -> str:
        """Publish a transaction; returns its txid."""
        return str(self.call("sendrawtransaction", tx_hex))

    def send_to_address(self, address: str, amount_sat: int) -> str:
        """Pay from the node's wallet; returns the txid."""
        if isinstance(amount_sat, bool) or not isinstance(amount_sat, int) or amount_sat < 0:
            raise InvalidArgument("amount must be a non-negative integer of satoshis")
        return str(self.call("sendtoaddress", address, sat_to_btc(amount_sat)))

    def find_output(self, txid: str, script_pubkey: bytes) -> tuple[OutPoint, int]:
        """The output of txid paying script_pubkey, and its value (getrawtransaction txid true)."""
        tx = self.call("getrawtransaction", txid, True)
        outputs = tx.get("vout") if isinstance(tx, dict) else None
        if not isinstance(outputs, list):
            raise _malformed("getrawtransaction", f"no outputs for {txid}")
        for out in outputs:
            spk = out.get("scriptPubKey", {}) if isinstance(out, dict) else {}
            if isinstance(spk, dict) and spk.get("hex") == script_pubkey.hex():
                return OutPoint.from_display(txid, int(out["n"])), btc_to_sat(out["value"])
        raise RpcError(0, f"transaction {txid} has no output paying the funding address", "getrawtransaction")

    def confirmations(self, outpoint: OutPoint) -> int | None:
        """Confirmations of an unspent output (0 in the mempool), None if unknown or spent (gettxout)."""
        out = self.call("gettxout", outpoint.display_txid, outpoint.vout, True)
        if not isinstance(out, dict):
            return None
        conf = out.get("confirmations", 0)
        return conf if isinstance(conf, int) else 0

    def median_time_past(self) -> int:
        """The tip's median time past (getblockchaininfo), the clock the refund's lock time is judged by."""
        info = self.call("getblockchaininfo")
        if not isinstance(info, dict) or not isinstance(info.get("mediantime"), int):
            raise _malformed("getblockchaininfo", "no mediantime in reply")
        return int(info["mediantime"])

    def spent_in_block(self, outpoint: OutPoint) -> bool:
        """True when the output is gone from the chain's UTXO set (spent by a confirmed transaction), even
        though the node knows the transaction that created it."""
        if self.call("gettxout", outpoint.display_txid, outpoint.vout, False) is not None:
            return False
        try:
            self.call("getrawtransaction", outpoint.display_txid, False)
        except RpcError:
            return False  # unknown here (no txindex, or never existed): not evidence of a confirmed spend
        return True

    def unspent_outputs(self, address: str) -> list[tuple[OutPoint, int]]:
        """Confirmed unspent outputs paying address, from the node's UTXO set (scantxoutset)."""
        res = self.call("scantxoutset", "start", [f"addr({address})"])
        unspents = res.get("unspents") if isinstance(res, dict) else None
        if not isinstance(unspents, list):
            raise _malformed("scantxoutset", "no unspents")
        try:
            return [(OutPoint.from_display(str(u["txid"]), int(u["vout"])), btc_to_sat(u["amount"]))
                    for u in unspents]
        except (KeyError, TypeError, ValueError, PaychanError) as exc:
            raise _malformed("scantxoutset", str(exc)) from None

    def generate(self, blocks: int) -> list[str]:
        """Mine blocks to a fresh wallet address (regtest only)."""
        address = self.call("getnewaddress")
        hashes = self.call("generatetoaddress", blocks, address)
        return [str(h) for h in hashes] if isinstance(hashes, list) else []
