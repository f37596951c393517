"""bitcoind JSON-RPC client (cookie or user/password auth, timeouts, bounded connections), shared by
PayChanServer's blockchain adapter and the SigningService's funding check."""

from __future__ import annotations

import base64
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from paychan_common.errors import PaychanError, ServiceUnavailable

COIN = 100_000_000
RPC_IN_WARMUP = -28
MAX_CONNECTIONS = 4  # bitcoind serves 4 RPC threads by default (rpcthreads); more only queue there


class RpcError(PaychanError):
    """bitcoind answered with an error (for a transaction: the node's reason for refusing it)."""

    status = 502
    code = "bitcoind_error"

    def __init__(self, rpc_code: int, message: str) -> None:
        super().__init__(f"bitcoind error {rpc_code}: {message}")
        self.rpc_code = rpc_code
        self.rpc_message = message


def to_sat(btc: Decimal | int | float | str) -> int:
    """BTC amount (as bitcoind prints it) to satoshis, exactly."""
    value = Decimal(str(btc)) * COIN
    if value != value.to_integral_value():
        raise PaychanError(f"amount {btc} has sub-satoshi precision")
    return int(value)


def rate_sat_per_byte(btc_per_kvb: Decimal | int | float | str) -> int:
    """A fee rate in BTC/kvB (bitcoind's unit) as whole sat/byte, rounded up."""
    return math.ceil(Decimal(str(btc_per_kvb)) * COIN / 1000)


class BitcoinRpc:
    """One node's JSON-RPC endpoint."""

    def __init__(self, url: str, *, user: str = "", password: str = "", cookie_file: str = "",
                 timeout: float = 10.0) -> None:
        self.url = url
        self.user = user
        self.password = password
        self.cookie_file = cookie_file
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._id = 0

    def _auth(self) -> str:
        if self.cookie_file:
            try:
                cookie = Path(self.cookie_file).expanduser().read_text().strip()  # new at each node start
            except OSError as exc:
                raise ServiceUnavailable(f"cannot read bitcoind cookie file {self.cookie_file}: "
                                         f"{exc.strerror}", code="node_auth") from None
        else:
            cookie = f"{self.user}:{self.password}"
        return "Basic " + base64.b64encode(cookie.encode()).decode()

    async def call(self, method: str, *params: Any, call_timeout: float | None = None) -> Any:
        """One JSON-RPC call; ServiceUnavailable when the node cannot be reached or is not ready."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS))
        self._id += 1
        body = json.dumps({"jsonrpc": "1.0", "id": self._id, "method": method, "params": list(params)})
        headers = {"Authorization": self._auth(), "Content-Type": "application/json"}
        total = self.timeout if call_timeout is None else call_timeout
        try:
            async with self._session.post(self.url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=total)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"bitcoin node unreachable at {self.url} ({type(exc).__name__})",
                                     code="node_unreachable") from None
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
            code = int(err.get("code", 0)) if isinstance(err, dict) else 0
            message = str(err.get("message", "")) if isinstance(err, dict) else str(err)
            if code == RPC_IN_WARMUP:
                raise ServiceUnavailable(f"bitcoin node is starting: {message}", code="node_warmup")
            raise RpcError(code, message)
        return data.get("result")

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
