"""PayChanServer application factory: resources in cleanup_ctx, routes, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from .api.forwarded import forwarded_middleware
from .api.keys import MAX_BODY, SERVICE
from .api.middleware import add_cors, error_middleware, options_handler
from .api.openapi import publish_document
from .api.openapi_doc import build_document
from .api.routes import HOT_ROUTES, add_routes
from .config import ServerConfig
from .operator.features import OperatorFeatures, request_middlewares
from .operator.hooks import SettlementCounters
from .operator.metrics import METRICS, ServerMetrics
from .wiring import service_stack

log = logging.getLogger("paychan.server")

BACKGROUND: web.AppKey[bool] = web.AppKey("background", bool)


def create_app(cfg: ServerConfig, *, background: bool = True) -> web.Application:
    """Build the PayChanServer app; resources are opened and closed by cleanup_ctx."""
    metrics = ServerMetrics()  # served by the management API's /metrics
    forwarded = [forwarded_middleware()] if cfg.listen.trust_forwarded_headers else []
    app = web.Application(middlewares=[*request_middlewares(metrics, HOT_ROUTES), *forwarded, error_middleware],
                          client_max_size=cfg.listen.max_body_bytes)
    app[METRICS] = metrics
    app[MAX_BODY] = cfg.listen.max_body_bytes
    app[BACKGROUND] = background
    app.on_response_prepare.append(add_cors)
    add_routes(app, options_handler)
    publish_document(app, build_document())
    app.cleanup_ctx.append(_resources(cfg))
    return app


def _resources(cfg: ServerConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        features = OperatorFeatures.create(cfg, app[METRICS])
        try:
            async with service_stack(cfg, features.hooks, SettlementCounters(app[METRICS])) as stack:
                svc = stack.service
                app[SERVICE] = svc
                if app[BACKGROUND]:
                    await features.start_management(cfg, svc, stack.store, stack.chain)
                task = asyncio.create_task(stack.settler.run()) if app[BACKGROUND] else None
                if cfg.debug.enable:
                    log.warning("DEBUG MODE: fake funding derived from client keys; settlements are not broadcast")
                log.info("PayChanServer ready: server key %s, network %s", stack.server_pubkey.hex,
                         cfg.bitcoin.network)
                try:
                    yield
                finally:
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        finally:
            await features.close()

    return ctx
