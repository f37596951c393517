"""Client of the internal services (ChanStore, SigningService): keep-alive pool over `http1`, bearer
token, typed errors re-raised from the JSON error body."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from paychan_common.errors import PaychanError, ServiceUnavailable, error_from_json

from .http1 import Http1Connection, build_request, open_connection

__all__ = ["InternalClient", "decode_answer"]


def decode_answer(status: int, raw: bytes, name: str) -> Any:
    """The parsed JSON body of an answer, or the typed error its `{"error": {...}}` body carries."""
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ServiceUnavailable(f"{name} sent a non-JSON answer (status {status})") from None
    if status >= 400:
        err = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(err, dict):
            raise error_from_json(str(err.get("class")), str(err.get("code")), str(err.get("message")))
        raise PaychanError(f"{name} answered status {status}")
    return parsed


class InternalClient:
    """JSON-over-HTTP client for one internal service (TCP URL or unix socket), at most `pool_size`
    exchanges at once."""

    def __init__(self, base_url: str, token: str, *, unix_path: str | None = None, pool_size: int = 100,
                 timeout: float = 30.0, name: str = "service") -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"{name} URL must be http://host[:port]: {base_url!r}")
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._host, self._port, self._unix_path = url.hostname, url.port or 80, unix_path
        self._netloc, self._prefix = url.netloc, url.path.rstrip("/")
        self._headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self._typed_headers: dict[str, dict[str, str]] = {}
        self._timeout = timeout
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[Http1Connection] = []

    async def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().close()

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                      *, encoded: bytes | None = None) -> Any:
        """Send a request (JSON `body`, or an already `encoded` one); return the parsed JSON answer or
        raise the typed error it carries."""
        data = encoded if encoded is not None else (orjson.dumps(body) if body is not None else None)
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        status, raw = await self._exchange(build_request(method, target, self._netloc, data, self._headers))
        return decode_answer(status, raw, self.name)

    async def request_bytes(self, method: str, path: str, body: bytes, content_type: str) -> bytes:
        """Send a raw `body` of `content_type`; return the raw body of a 200 answer, or raise the typed error
        of an error answer (those are JSON)."""
        headers = self._typed_headers.get(content_type)
        if headers is None:
            headers = self._typed_headers[content_type] = {**self._headers, "Content-Type": content_type}
        status, raw = await self._exchange(build_request(method, self._prefix + path, self._netloc, body, headers))
        if status != 200:
            decode_answer(status, raw, self.name)  # raises the error it carries
            raise ServiceUnavailable(f"{self.name} answered status {status}")
        return raw

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        conn: Http1Connection | None = None
        try:
            if not self._slots.locked() and (conn := self._take_idle()) is not None:
                # The usual case: a free slot (taken without waiting) and an idle connection, whose own timer
                # bounds the exchange; `asyncio.timeout` costs several event-loop lookups per exchange.
                async with self._slots:
                    answer = await conn.exchange(request, self._timeout)
            else:
                async with asyncio.timeout(self._timeout), self._slots:
                    conn = self._take_idle() or await open_connection(self._host, self._port, self._unix_path)
                    answer = await conn.exchange(request)
        except (OSError, ConnectionError, TimeoutError) as exc:
            if conn is not None:
                conn.close()
            raise ServiceUnavailable(f"{self.name} unreachable: {type(exc).__name__}") from None
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            if conn is not None:
                conn.close()
            raise
        if conn.reusable:
            self._idle.append(conn)
        return answer

    def _take_idle(self) -> Http1Connection | None:
        """The most recently used idle connection that is still reusable (broken ones are dropped), or None."""
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
        return None
