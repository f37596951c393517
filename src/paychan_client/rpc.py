"""A small bitcoind JSON-RPC client (httpx) for funding, confirmations and publishing."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx

from paychan_common.errors import PaychanError
from paychan_common.tx import OutPoint

from .errors import InvalidArgument, RpcError

COIN = 100_000_000


def sat_to_btc(sat: int) -> str:
    """Satoshis as an exact BTC decimal string (bitcoind accepts string amounts)."""
    if isinstance(sat, bool) or not isinstance(sat, int) or sat < 0:
        raise InvalidArgument("amount must be a non-negative integer of satoshis")
    return f"{sat // COIN}.{sat % COIN:08d}"


def btc_to_sat(value: object) -> int:
    """An RPC BTC amount (parsed as Decimal) to satoshis, refusing fractions of a satoshi."""
    try:
        sat = Decimal(str(value)) * COIN
    except InvalidOperation:
        raise RpcError(f"node returned a non-numeric amount {value!r}") from None
    if sat != sat.to_integral_value() or sat < 0:
        raise RpcError(f"node returned an invalid amount {value!r}")
    return int(sat)


def read_cookie(path: str) -> tuple[str, str]:
    """user and password from a bitcoind .cookie file (`__cookie__:<hex>`)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidArgument(f"cannot read RPC cookie file {path}: {exc.strerror or exc}") from None
    user, sep, password = text.partition(":")
    if not sep:
        raise InvalidArgument(f"RPC cookie file {path} is not user:password")
    return user, password


class BitcoinRpc:
    """JSON-RPC 1.0 over HTTP with basic auth (user/password or cookie file)."""

    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 cookie_file: str | None = None, http: httpx.Client | None = None, timeout: float = 30) -> None:
        if cookie_file is not None:
            user, password = read_cookie(cookie_file)
        self.url = url
        self._auth = httpx.BasicAuth(user, password or "") if user is not None else None
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def release(self) -> None:
        """Close the HTTP pool if this object created it."""
        if self._owns_http:
            self._http.close()

    def call(self, method: str, *params: Any) -> Any:
        """Call one RPC method; raise RpcError on transport, HTTP or RPC errors."""
        body = json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)})
        try:
            response = self._http.post(self.url, content=body.encode(),
                                       auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
                                       headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise RpcError(f"bitcoind {method}: {exc or type(exc).__name__}") from None
        if response.status_code == 401:
            raise RpcError(f"bitcoind {method}: authentication failed")
        try:
            reply = json.loads(response.content, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RpcError(f"bitcoind {method}: HTTP {response.status_code}, not a JSON-RPC reply") from None
        if not isinstance(reply, dict):
            raise RpcError(f"bitcoind {method}: malformed reply")
        error = reply.get("error")
        if error:
            msg = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            code = error.get("code") if isinstance(error, dict) else None
            raise RpcError(f"bitcoind {method}: {msg}", code if isinstance(code, int) else None)
        if response.status_code != 200:
            raise RpcError(f"bitcoind {method}: HTTP {response.status_code}")
        return reply.get("result")

    def send_raw_transaction(self, tx_hex: str) -> str:
        """Publish a transaction; returns its txid."""
        return str(self.call("sendrawtransaction", tx_hex))

    def send_to_address(self, address: str, amount_sat: int) -> str:
        """Pay from the node's wallet; returns the txid."""
        return str(self.call("sendtoaddress", address, sat_to_btc(amount_sat)))

    def find_output(self, txid: str, script_pubkey: bytes) -> tuple[OutPoint, int]:
        """The output of txid paying script_pubkey, and its value (getrawtransaction txid true)."""
        tx = self.call("getrawtransaction", txid, True)
        outputs = tx.get("vout") if isinstance(tx, dict) else None
        if not isinstance(outputs, list):
            raise RpcError(f"getrawtransaction {txid}: no outputs in reply")
        for out in outputs:
            spk = out.get("scriptPubKey", {}) if isinstance(out, dict) else {}
            if isinstance(spk, dict) and spk.get("hex") == script_pubkey.hex():
                return OutPoint.from_display(txid, int(out["n"])), btc_to_sat(out["value"])
        raise RpcError(f"transaction {txid} has no output paying the funding address")

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
            raise RpcError("getblockchaininfo: no mediantime in reply")
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
            raise RpcError("scantxoutset: no unspents in reply")
        try:
            return [(OutPoint.from_display(str(u["txid"]), int(u["vout"])), btc_to_sat(u["amount"]))
                    for u in unspents]
        except (KeyError, TypeError, ValueError, PaychanError) as exc:
            raise RpcError(f"scantxoutset: malformed reply ({exc})") from None

    def generate(self, blocks: int) -> list[str]:
        """Mine blocks to a fresh wallet address (regtest only)."""
        address = self.call("getnewaddress")
        hashes = self.call("generatetoaddress", blocks, address)
        return [str(h) for h in hashes] if isinstance(hashes, list) else []
