"""SigningService's Prometheus metrics: signatures made, requests refused by stable code, request latency."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter

from paychan_common.errors import InvalidInput, SigningRefused
from paychan_runtime.http import Handler
from paychan_runtime.logs import access_log_middleware, quiet_routes
from paychan_runtime.metrics import Metrics, latency_middleware

__all__ = ["QUIET_ROUTES", "SIGNING_METRICS", "SigningMetrics", "signing_middlewares"]

SIGN_PATH = "/sign_settlement"
QUIET_ROUTES = (("GET", "/health"), ("GET", "/metrics"), ("GET", "/pubkey"))


class SigningMetrics(Metrics):
    """The registry of the SigningService process."""

    def __init__(self) -> None:
        super().__init__()
        self.signed = Counter("paychan_signatures", "Settlement transactions signed", registry=self.registry)
        self.refused = Counter("paychan_signatures_refused", "Signing requests refused, by stable error code",
                               ["code"], registry=self.registry)


def outcome_middleware(metrics: SigningMetrics) -> Middleware:
    """Count each /sign_settlement outcome (innermost: it sees the typed error before it becomes JSON)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != SIGN_PATH:
            return await handler(request)
        try:
            response = await handler(request)
        except (SigningRefused, InvalidInput) as err:
            metrics.refused.labels(err.code).inc()
            raise
        if response.status == 200:
            metrics.signed.inc()
        return response

    return middleware


def signing_middlewares(metrics: SigningMetrics) -> tuple[list[Middleware], list[Middleware]]:
    """(outermost, innermost) middlewares: latency and access log first; the outcome counter last."""
    return [latency_middleware(metrics), access_log_middleware(quiet_routes(QUIET_ROUTES))], \
        [outcome_middleware(metrics)]


SIGNING_METRICS: web.AppKey[SigningMetrics] = web.AppKey("signing_metrics", SigningMetrics)
