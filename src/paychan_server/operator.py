"""Wiring of the operator features into PayChanServer (called from app.py):

* `request_middlewares`: request-latency metrics and one access-log line per request (payment routes,
  /health and the docs at DEBUG, everything else at INFO);
* `OperatorFeatures.start`: the payment hooks (counters, value callback) and, in the worker that runs the
  background tasks, the management site on its own loopback port.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from paychan_runtime.config import load_or_create_secret
from paychan_runtime.logs import access_log_middleware, quiet_routes
from paychan_runtime.metrics import latency_middleware

from .blockchain import Blockchain
from .callback import ValueCallback
from .config import ServerConfig
from .hooks import PaymentHooks
from .management import ManagementDeps, create_management_app
from .server_metrics import METRICS, ServerMetrics
from .service import PayChanService
from .totals import TotalsCache, TotalsSource

__all__ = ["HOT_ROUTES", "OperatorFeatures", "request_middlewares"]

log = logging.getLogger("paychan.server")

# The payment hot path and polling endpoints: logged at DEBUG only.
HOT_ROUTES = (
    ("PUT", "/v1/channels/{txid}/{vout}"), ("PUT", "/v1/channels/{txid}/{vout}/pay"),
    ("PUT", "/v2/channels/{pk}/{exp}/{txid}/{vout}"), ("PUT", "/v2/channels/{txid}/{vout}"),
    ("*", "/health"), ("GET", "/openapi.json"), ("GET", "/docs"),
)


def request_middlewares(metrics: ServerMetrics) -> list[Middleware]:
    """Outermost middlewares of the public app: latency histogram, then the access log."""
    return [latency_middleware(metrics), access_log_middleware(quiet_routes(HOT_ROUTES))]


class OperatorFeatures:
    """The callback client and the management site of one PayChanServer process."""

    def __init__(self, callback: ValueCallback | None, runner: web.AppRunner | None) -> None:
        self.callback = callback
        self.runner = runner

    @classmethod
    async def start(cls, app: web.Application, cfg: ServerConfig, svc: PayChanService, store: TotalsSource,
                    chain: Blockchain, *, management: bool = True) -> OperatorFeatures:
        """Install the payment hooks; start the management site if enabled (and `management`)."""
        metrics = app[METRICS]
        callback = None
        if cfg.callback.enable:
            callback = ValueCallback(cfg.callback.url, cfg.callback.timeout_seconds, metrics)
        svc.hooks = PaymentHooks(metrics, callback)
        runner = None
        if management and cfg.management.enable:
            m = cfg.management
            token = load_or_create_secret(Path(m.token_file))
            scraper = load_or_create_secret(Path(m.metrics_token_file)) if m.metrics_token_file else None
            deps = ManagementDeps(cfg, svc, store, chain, metrics, TotalsCache(store, svc.clock.now))
            runner = web.AppRunner(create_management_app(deps, token, scraper), access_log=None, handle_signals=False)
            await runner.setup()
            try:
                await web.TCPSite(runner, m.host, m.port, reuse_address=True).start()
            except BaseException:
                await runner.cleanup()
                if callback is not None:
                    await callback.close()
                raise
            log.info("management API listening on %s:%d", m.host, m.port)
        return cls(callback, runner)

    async def close(self) -> None:
        """Stop the management site and close the callback's connections."""
        if self.runner is not None:
            await self.runner.cleanup()
        if self.callback is not None:
            await self.callback.close()
