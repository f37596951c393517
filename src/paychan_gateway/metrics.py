"""paychan-gateway's Prometheus metrics: requests by route and outcome, satoshis charged and returned to
credit, request latency; served on their own loopback port (`[metrics]`), never on the public one."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter

from paychan_runtime.metrics import Metrics, metrics_handler

__all__ = ["GatewayMetrics", "metrics_app"]

OUTCOMES = ("served", "unserved", "payment_required")


class GatewayMetrics(Metrics):
    """The registry of one gateway process."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.requests = Counter("paychan_gateway_requests", "Priced requests by route and outcome (served, "
                                "unserved: not charged, payment_required: answered 402)", ["route", "outcome"],
                                registry=r)
        self.charged = Counter("paychan_gateway_charged_satoshis", "Satoshis charged for served requests", ["route"],
                               registry=r)
        self.returned = Counter("paychan_gateway_credit_returned_satoshis",
                                "Satoshis reserved for requests and returned to the channel's credit", ["route"],
                                registry=r)

    def settled(self, route: str, *, served: bool, charged: int, returned: int) -> None:
        """Count one paid request's end."""
        self.requests.labels(route, "served" if served else "unserved").inc()
        if charged:
            self.charged.labels(route).inc(charged)
        if returned:
            self.returned.labels(route).inc(returned)

    def refused(self, route: str) -> None:
        """Count one 402."""
        self.requests.labels(route, "payment_required").inc()


def metrics_app(metrics: GatewayMetrics) -> web.Application:
    """The loopback-only metrics site: GET /metrics."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(metrics))
    return app
