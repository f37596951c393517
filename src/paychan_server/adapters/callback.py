"""The value callback (spec 10.6, with its Recommended resolution): after a payment is STORED, POST its
details to `<callback.url>/value_received` within `callback.timeout_seconds`; the application's
`{"app_data": "..."}` becomes the payment's `application_data`.

A slow, unreachable or misbehaving application never fails or loses a payment: the client still gets 200
with `application_data: ""`, a WARNING is logged (at most one every `warn_interval` seconds, with the
number of failures in between) and `paychan_callback_calls_total{outcome}` counts it.
"""

from __future__ import annotations

import logging
import time

import aiohttp
import orjson
from yarl import URL

from ..operator.metrics import ServerMetrics

__all__ = ["MAX_ANSWER_BYTES", "MAX_APP_DATA", "CallbackFailed", "ValueCallback"]

log = logging.getLogger("paychan.callback")

MAX_ANSWER_BYTES = 64 * 1024
MAX_APP_DATA = 16 * 1024
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class CallbackFailed(Exception):
    """The application's answer was unusable; `outcome` is the metric label."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


def _safe_url(url: str) -> str:
    """The URL without user info (a password in it must not reach the logs)."""
    try:
        return str(URL(url).with_user(None))
    except ValueError:
        return "<invalid url>"


class ValueCallback:
    """Client of the application's `/value_received` endpoint (one keep-alive pool)."""

    def __init__(self, url: str, timeout: float, metrics: ServerMetrics | None = None,
                 warn_interval: float = 10.0, pool_size: int = 100) -> None:
        self.endpoint = url.rstrip("/") + "/value_received"
        self._shown = _safe_url(self.endpoint)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._metrics = metrics
        self._warn_interval = warn_interval
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._last_warning = -float("inf")
        self._suppressed = 0

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30), timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def call(self, body: dict[str, object]) -> str:
        """POST body; the application's app_data, or "" (and a rate-limited WARNING) on any failure."""
        start = time.perf_counter()
        try:
            data = await self._post(body)
        except CallbackFailed as exc:
            self._failed(exc.outcome, exc.detail)
            return ""
        except TimeoutError:
            self._failed("timeout", f"no answer within {self._timeout.total} s")
            return ""
        except (aiohttp.ClientError, OSError) as exc:
            self._failed("unreachable", type(exc).__name__)
            return ""
        finally:
            if self._metrics is not None:
                self._metrics.callback_latency.observe(time.perf_counter() - start)
        if self._metrics is not None:
            self._metrics.callback_calls.labels("ok").inc()
        return data

    async def _post(self, body: dict[str, object]) -> str:
        async with self._sess().post(self.endpoint, data=orjson.dumps(body), headers=_HEADERS) as resp:
            if resp.status != 200:
                raise CallbackFailed("http_error", f"status {resp.status}")
            if resp.content_length is not None and resp.content_length > MAX_ANSWER_BYTES:
                raise CallbackFailed("bad_answer", "answer too large")
            raw = bytearray()
            async for chunk in resp.content.iter_any():
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    raise CallbackFailed("bad_answer", "answer too large")
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise CallbackFailed("bad_answer", "answer is not JSON") from None
        app_data = answer.get("app_data") if isinstance(answer, dict) else None
        if not isinstance(app_data, str):
            raise CallbackFailed("bad_answer", 'answer has no string "app_data"')
        if len(app_data) > MAX_APP_DATA:
            raise CallbackFailed("bad_answer", f"app_data longer than {MAX_APP_DATA} characters")
        return app_data

    def _failed(self, outcome: str, detail: str) -> None:
        if self._metrics is not None:
            self._metrics.callback_calls.labels(outcome).inc()
        now = time.monotonic()
        if now - self._last_warning < self._warn_interval:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more failures since the last warning)" if self._suppressed else ""
        log.warning("value callback %s failed (%s: %s); payment stored, application_data left empty%s",
                    self._shown, outcome, detail, more)
        self._last_warning = now
        self._suppressed = 0
