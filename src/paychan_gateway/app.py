"""paychan-gateway application factory: the payment stack (shared with PayChanServer), the ledger, the proxy."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from chan_store.leveldb_storage import LevelDBStorage
from paychan_runtime.http import json_response
from paychan_runtime.logs import access_log_middleware
from paychan_runtime.metrics import latency_middleware
from paychan_server.config import ServerConfig
from paychan_server.wiring import service_stack

from .answers import FAMILY, error_middleware, funding_info_url
from .cashier import Cashier, PaymentRequired
from .config import GatewayConfig
from .header import has_payment, parse_payment_header, request_key
from .ledger import Ledger
from .metrics import GatewayMetrics, metrics_app
from .pricing import Router, quote
from .proxy import forward

__all__ = ["create_app"]

log = logging.getLogger("paychan.gateway")

CASHIER: web.AppKey[Cashier] = web.AppKey("cashier", Cashier)
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
ROUTER: web.AppKey[Router] = web.AppKey("router", Router)
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("gateway_metrics", GatewayMetrics)


async def handle(request: web.Request) -> web.StreamResponse:
    """Price the request, take its payment (or answer 402), then proxy it to the route's upstream."""
    route = request.app[ROUTER].match(request.method, request.path)
    http, cashier = request.app[HTTP], request.app[CASHIER]
    auth = request.headers.get("Authorization")
    header = parse_payment_header(auth) if auth is not None and has_payment(auth) else None
    q = await quote(route, request, http, header.channel if header is not None else None)
    if q.price == 0 and q.per_kib is None:
        return await forward(request, route, http, cashier, None)  # free right now (dynamic price 0)
    if header is None:
        raise PaymentRequired(f"this request costs {q.price} sat", q)
    key = request_key(request.method, request.rel_url.raw_path_qs, request.headers.get("Idempotency-Key"))
    adm = await cashier.admit(header, key, q)
    try:
        return await forward(request, route, http, cashier, adm)
    finally:
        if not adm.settled:  # the upstream was unreachable, or the request failed before an answer
            await cashier.settle(adm, upstream_ok=False, delivered=False)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _price_list(cfg: GatewayConfig) -> dict[str, object]:
    """What every route costs and where to open a channel: GET /.well-known/paychan/routes."""
    routes = [{"name": r.name, "prefix": r.prefix, "pattern": r.pattern, "methods": list(r.methods),
               "pricing": r.price.mode, "per_request": r.price.per_request, "per_kib": r.price.per_kib,
               "increment_kib": r.price.increment_kib if r.price.per_kib is not None else None}
              for r in cfg.routes]
    return {"family": FAMILY, "server_url": cfg.public_server_url.rstrip("/"),
            "funding_info": funding_info_url(cfg.public_server_url), "routes": routes}


def create_app(cfg: GatewayConfig, server_cfg: ServerConfig) -> web.Application:
    """Build the gateway app; resources are opened and closed by cleanup_ctx."""
    metrics = GatewayMetrics()
    access = access_log_middleware(lambda request: True)  # every request is the hot path: logged at DEBUG
    app = web.Application(middlewares=[latency_middleware(metrics), access,
                                       error_middleware(cfg.public_server_url, metrics.refused)],
                          client_max_size=1 << 40)
    app[METRICS] = metrics
    app[ROUTER] = Router(cfg.routes)
    app.router.add_get("/.well-known/paychan/health", _health)
    prices = _price_list(cfg)

    async def price_list(request: web.Request) -> web.Response:
        return json_response(prices)

    app.router.add_get("/.well-known/paychan/routes", price_list)
    app.router.add_route("*", "/{tail:.*}", handle)
    app.cleanup_ctx.append(_resources(cfg, server_cfg))
    return app


async def _start_metrics(cfg: GatewayConfig, metrics: GatewayMetrics) -> web.AppRunner | None:
    """The loopback metrics site, if enabled."""
    if not cfg.metrics.enable:
        return None
    runner = web.AppRunner(metrics_app(metrics), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, cfg.metrics.host, cfg.metrics.port, reuse_address=True).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _resources(cfg: GatewayConfig, server_cfg: ServerConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        storage = LevelDBStorage(Path(cfg.ledger.path), sync=cfg.ledger.sync)
        ledger = Ledger(storage)
        try:
            async with service_stack(server_cfg) as stack, aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0), auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                    skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type")) as http:
                app[CASHIER] = Cashier(stack.service, ledger, app[METRICS])
                app[HTTP] = http
                runner = await _start_metrics(cfg, app[METRICS])
                log.info("paychan-gateway ready: %d routes, server key %s", len(cfg.routes), stack.server_pubkey.hex)
                try:
                    yield
                finally:
                    if runner is not None:
                        await runner.cleanup()
        finally:
            await ledger.close()

    return ctx
