"""The bitcoind JSON-RPC client (httpx; cookie or user/password auth, timeouts, bounded connections):
`BitcoinRpc` (async) for PayChanServer's blockchain adapter and the SigningService's funding check,
`SyncBitcoinRpc` for the client library and the regtest test harness. One error tree for all:

    PaychanError
     ├── RpcError               bitcoind answered with a JSON-RPC error (rpc_code, rpc_message)
     └── ServiceUnavailable     the node cannot be reached (node_unreachable), refused our credentials
                                (node_auth) or is still starting (node_warmup)

Imports neither aiohttp nor any server package: the client library depends on it alone.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx

from paychan_common.errors import PaychanError, ServiceUnavailable

__all__ = ["COIN", "RPC_IN_WARMUP", "BitcoinRpc", "RpcError", "SyncBitcoinRpc", "btc_to_sat", "rate_sat_per_byte",
           "sat_to_btc"]

COIN = 100_000_000
RPC_IN_WARMUP = -28
MAX_CONNECTIONS = 4  # bitcoind serves 4 RPC threads by default (rpcthreads); more only queue there


class RpcError(PaychanError):
    """bitcoind answered with an error (for a transaction: the node's reason for refusing it)."""

    code = "bitcoind_error"

    def __init__(self, rpc_code: int, message: str, method: str = "") -> None:
        super().__init__(f"bitcoind {method or 'call'}: {message} (code {rpc_code})")
        self.rpc_code = rpc_code
        self.rpc_message = message
        self.method = method


def btc_to_sat(btc: object) -> int:
    """A BTC amount as bitcoind prints it (parsed as Decimal) to satoshis, exactly; RpcError otherwise."""
    try:
        value = Decimal(str(btc)) * COIN
    except InvalidOperation:
        raise RpcError(0, f"node returned a non-numeric amount {btc!r}") from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise RpcError(0, f"node returned an invalid amount {btc!r}")
    return int(value)


def sat_to_btc(sat: int) -> str:
    """Satoshis as an exact BTC decimal string (bitcoind accepts string amounts)."""
    if isinstance(sat, bool) or not isinstance(sat, int) or sat < 0:
        raise ValueError("amount must be a non-negative integer of satoshis")
    return f"{sat // COIN}.{sat % COIN:08d}"


def rate_sat_per_byte(btc_per_kvb: Decimal | int | float | str) -> int:
    """A fee rate in BTC/kvB (bitcoind's unit) as whole sat/byte, rounded up."""
    return math.ceil(Decimal(str(btc_per_kvb)) * COIN / 1000)


def _json_default(obj: object) -> object:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class _Endpoint:
    """What both clients share: the URL, the credentials, and the JSON-RPC 1.0 encoding and decoding."""

    def __init__(self, url: str, *, user: str = "", password: str = "", cookie_file: str = "",
                 timeout: float = 10.0) -> None:
        self.url = url
        self.user = user
        self.password = password
        self.cookie_file = cookie_file
        self.timeout = timeout
        self._ids = itertools.count(1)

    def _headers(self) -> dict[str, str]:
        if self.cookie_file:
            try:
                cookie = Path(self.cookie_file).expanduser().read_text().strip()  # new at each node start
            except OSError as exc:
                raise ServiceUnavailable(f"cannot read bitcoind cookie file {self.cookie_file}: "
                                         f"{exc.strerror}", code="node_auth") from None
        else:
            cookie = f"{self.user}:{self.password}"
        return {"Authorization": "Basic " + base64.b64encode(cookie.encode()).decode(),
                "Content-Type": "application/json"}

    def _target(self, wallet: str | None) -> str:
        return self.url if wallet is None else self.url.rstrip("/") + f"/wallet/{wallet}"

    def _body(self, method: str, params: tuple[Any, ...]) -> bytes:
        return json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)},
                          default=_json_default).encode()

    def _unreachable(self, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(f"bitcoin node unreachable at {self.url} ({type(exc).__name__})",
                                  code="node_unreachable")

    @staticmethod
    def _result(method: str, status: int, raw: bytes) -> Any:
        if status in (401, 403):
            raise ServiceUnavailable("bitcoin node refused our RPC credentials", code="node_auth")
        try:
            data = json.loads(raw, parse_float=Decimal)
        except ValueError:
            raise ServiceUnavailable(f"bitcoin node sent a non-JSON answer (HTTP {status})",
                                     code="node_unreachable") from None
        if not isinstance(data, dict):
            raise ServiceUnavailable("bitcoin node sent a malformed JSON-RPC answer", code="node_unreachable")
        err = data.get("error")
        if err:
            code = err.get("code", 0) if isinstance(err, dict) else 0
            message = str(err.get("message", "")) if isinstance(err, dict) else str(err)
            if code == RPC_IN_WARMUP:
                raise ServiceUnavailable(f"bitcoin node is starting: {message}", code="node_warmup")
            raise RpcError(code if isinstance(code, int) else 0, message, method)
        return data.get("result")


class BitcoinRpc(_Endpoint):
    """One node's JSON-RPC endpoint, async."""

    _client: httpx.AsyncClient | None = None

    async def call(self, method: str, *params: Any, call_timeout: float | None = None,
                   wallet: str | None = None) -> Any:
        """One JSON-RPC call; RpcError for the node's error, ServiceUnavailable when it cannot answer."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout,
                                             limits=httpx.Limits(max_connections=MAX_CONNECTIONS))
        try:
            resp = await self._client.post(self._target(wallet), content=self._body(method, params),
                                           headers=self._headers(),
                                           timeout=self.timeout if call_timeout is None else call_timeout)
        except (httpx.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from None
        return self._result(method, resp.status_code, resp.content)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class SyncBitcoinRpc(_Endpoint):
    """One node's JSON-RPC endpoint, blocking (the client library, test harnesses); `http` is a pool to
    borrow (left open by `close`)."""

    def __init__(self, url: str, *, user: str = "", password: str = "", cookie_file: str = "",
                 timeout: float = 10.0, http: httpx.Client | None = None) -> None:
        super().__init__(url, user=user, password=password, cookie_file=cookie_file, timeout=timeout)
        self._client: httpx.Client | None = http
        self._owns_client = http is None

    def call(self, method: str, *params: Any, call_timeout: float | None = None, wallet: str | None = None) -> Any:
        """One JSON-RPC call; RpcError for the node's error, ServiceUnavailable when it cannot answer."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, limits=httpx.Limits(max_connections=MAX_CONNECTIONS))
        try:
            resp = self._client.post(self._target(wallet), content=self._body(method, params),
                                     headers=self._headers(),
                                     timeout=self.timeout if call_timeout is None else call_timeout)
        except (httpx.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from None
        return self._result(method, resp.status_code, resp.content)

    def close(self) -> None:
        """Close the connection pool (unless borrowed)."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
