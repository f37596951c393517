"""Behind a TLS reverse proxy (deploy/nginx/): the channel URLs this server hands out (spec 6.2 Location,
`channel_uri`) must name the proxy's scheme and host, not the loopback hop. Trusted only from loopback peers,
and only when `listen.trust_forwarded_headers = true`."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Middleware

from paychan_runtime.config import is_loopback
from paychan_runtime.http import Handler

__all__ = ["forwarded_middleware"]

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")


def forwarded_middleware() -> Middleware:
    """Rewrite request.scheme / request.host from X-Forwarded-Proto / X-Forwarded-Host sent by a local proxy."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_loopback(request.remote or ""):
            return await handler(request)
        changes: dict[str, str] = {}
        proto = request.headers.get("X-Forwarded-Proto", "").lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        host = request.headers.get("X-Forwarded-Host", "")
        if host and _HOST.match(host):
            changes["host"] = host
        return await handler(request.clone(**changes) if changes else request)  # type: ignore[arg-type]

    return middleware
