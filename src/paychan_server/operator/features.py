"""Wiring of the operator features into PayChanServer (called from app.py):

* `request_middlewares`: request-latency metrics and one access-log line per request (payment routes,
  /health and the docs at DEBUG, everything else at INFO);
* `OperatorFeatures`: the payment hooks (counters, value callback) handed to PayChanService at construction,
  and, in the worker that runs the background tasks, the management site on its own loopback port.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from paychan_runtime.config import load_or_create_secret
from paychan_runtime.logs import access_log_middleware, quiet_routes
from paychan_runtime.metrics import latency_middleware

from ..adapters.callback import ValueCallback
from ..config import ServerConfig
from ..domain.ports import Blockchain
from ..domain.service import PayChanService
from .dashboard import add_dashboard_routes
from .hooks import OperatorHooks
from .insights import add_insight_routes
from .management import ManagementDeps, create_management_app
from .metrics import ServerMetrics
from .totals import TotalsCache, TotalsSource

__all__ = ["OperatorFeatures", "request_middlewares"]

log = logging.getLogger("paychan.server")

def request_middlewares(metrics: ServerMetrics, quiet: Iterable[tuple[str, str]]) -> list[Middleware]:
    """Outermost middlewares of the public app: latency histogram, then the access log (`quiet` routes, as
    (method, template), at DEBUG)."""
    return [latency_middleware(metrics), access_log_middleware(quiet_routes(quiet))]


class OperatorFeatures:
    """The callback client and the management site of one PayChanServer process."""

    def __init__(self, metrics: ServerMetrics, callback: ValueCallback | None) -> None:
        self.metrics = metrics
        self.callback = callback
        self.runner: web.AppRunner | None = None

    @classmethod
    def create(cls, cfg: ServerConfig, metrics: ServerMetrics) -> OperatorFeatures:
        """The callback client (if enabled); the hooks are built from it before the service exists."""
        callback = None
        if cfg.callback.enable:
            callback = ValueCallback(cfg.callback.url, cfg.callback.timeout_seconds, metrics)
        return cls(metrics, callback)

    @property
    def hooks(self) -> OperatorHooks:
        """The payment hooks to hand to PayChanService: counters and the value callback."""
        return OperatorHooks(self.metrics, self.callback)

    async def start_management(self, cfg: ServerConfig, svc: PayChanService, store: TotalsSource,
                               chain: Blockchain) -> None:
        """Start the management site on its own loopback port, if enabled."""
        if not cfg.management.enable:
            return
        m = cfg.management
        token = load_or_create_secret(Path(m.token_file))
        scraper = load_or_create_secret(Path(m.metrics_token_file)) if m.metrics_token_file else None
        deps = ManagementDeps(cfg, svc, store, chain, self.metrics, TotalsCache(store, svc.clock))
        app = create_management_app(deps, token, scraper)
        add_insight_routes(app)
        add_dashboard_routes(app, token)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, m.host, m.port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.runner = runner
        log.info("management API listening on %s:%d", m.host, m.port)

    async def close(self) -> None:
        """Stop the management site and close the callback's connections."""
        if self.runner is not None:
            await self.runner.cleanup()
        if self.callback is not None:
            await self.callback.close()
