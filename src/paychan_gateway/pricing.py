"""Which route a request belongs to, and what it costs: fixed, per KiB (metered) or the operator's callback."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from paychan_common.errors import InvalidInput, PaychanError, ServiceUnavailable

from .config import RouteConfig

__all__ = ["Quote", "Router", "quote"]

MAX_PRICE = 2_100_000_000_000_000


class NoRoute(PaychanError):
    """404: no configured route serves this path."""

    code = "no_route"


class MethodNotAllowed(PaychanError):
    """405: the route exists but not for this method."""

    code = "method_not_allowed"


class Router:
    """Routes in config order; the first whose prefix or pattern matches the path wins."""

    def __init__(self, routes: list[RouteConfig]) -> None:
        self.routes = routes
        self._patterns = {r.name: re.compile(r.pattern) for r in routes if r.pattern is not None}

    def match(self, method: str, path: str) -> RouteConfig:
        """The route for this request, else NoRoute / MethodNotAllowed."""
        for route in self.routes:
            hit = (path.startswith(route.prefix) if route.prefix is not None
                   else self._patterns[route.name].fullmatch(path) is not None)
            if hit:
                if method not in route.methods:
                    raise MethodNotAllowed(f"route {route.name} does not accept {method}")
                return route
        raise NoRoute("no such route")


@dataclass(frozen=True, slots=True)
class Quote:
    """What a request costs up front: the price of one request, or of one increment of a metered route."""

    route: RouteConfig
    price: int
    per_kib: int | None = None  # metered routes: the charge per KiB of response actually sent

    @property
    def mode(self) -> str:
        """per_request, per_kib or dynamic."""
        return self.route.price.mode

    def charge_for(self, sent_bytes: int) -> int:
        """Metered: what `sent_bytes` of response cost (whole KiB, rounded up)."""
        assert self.per_kib is not None
        return -(-sent_bytes // 1024) * self.per_kib

    def allowance(self, prepaid: int) -> int:
        """Metered: how many response bytes `prepaid` satoshis buy."""
        assert self.per_kib is not None
        return prepaid // self.per_kib * 1024


async def quote(route: RouteConfig, request: web.Request, http: aiohttp.ClientSession,
                channel: str | None) -> Quote:
    """The price of this request on its route; a dynamic route asks the operator's callback."""
    p = route.price
    if p.per_kib is not None:
        return Quote(route, p.per_kib * p.increment_kib, p.per_kib)
    if p.per_request is not None:
        return Quote(route, p.per_request)
    assert p.callback is not None
    ask = {"route": route.name, "method": request.method, "path": request.path, "query": request.query_string,
           "channel": channel}
    try:
        async with http.post(p.callback, json=ask, timeout=aiohttp.ClientTimeout(total=p.callback_timeout_seconds),
                             allow_redirects=False) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
    except (TimeoutError, aiohttp.ClientError, ValueError):
        body = None
    price = body.get("price") if isinstance(body, dict) else None
    if price is None or isinstance(price, bool) or not isinstance(price, int) or not 0 <= price <= MAX_PRICE:
        raise ServiceUnavailable("pricing is unavailable, try again", code="pricing_unavailable")
    return Quote(route, price)


def check_price(value: object) -> int:
    """A price from outside: a non-negative integer of satoshis."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRICE:
        raise InvalidInput("price must be a non-negative integer of satoshis")
    return value
