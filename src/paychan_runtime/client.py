"""Client of the internal services (ChanStore, SigningService): keep-alive pool, bearer token,
typed errors re-raised from the JSON error body."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from paychan_common.errors import PaychanError, ServiceUnavailable, error_from_json


class InternalClient:
    """JSON-over-HTTP client for one internal service (TCP URL or unix socket)."""

    def __init__(self, base_url: str, token: str, *, unix_path: str | None = None, pool_size: int = 100,
                 timeout: float = 30.0, name: str = "service") -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self._unix_path = unix_path
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._unix_path:
                connector = aiohttp.UnixConnector(path=self._unix_path, limit=self._pool_size)
            else:
                connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """Send a request; return the parsed JSON body or raise the typed error it carries."""
        data = orjson.dumps(body) if body is not None else None
        try:
            async with self._sess().request(method, self.base_url + path, data=data, params=params,
                                            headers=self._headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"{self.name} unreachable: {type(exc).__name__}") from None
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise ServiceUnavailable(f"{self.name} sent a non-JSON answer (status {status})") from None
        if status >= 400:
            err = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(err, dict):
                raise error_from_json(str(err.get("class")), str(err.get("code")), str(err.get("message")))
            raise PaychanError(f"{self.name} answered status {status}")
        return parsed
