"""How a management request proves it holds the token: the bearer header (tools, Prometheus), or the
dashboard's session cookie (HttpOnly, SameSite=Strict, set by `POST /login`; its value is the token); and
the management app's middleware that asks for it (`auth_middleware`).

A cookie-authenticated request that changes something must also carry the `X-Paychan-Dashboard` header: a
cross-site page cannot add a custom header without a CORS preflight, which the management API never answers.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware

from paychan_common.errors import Unauthorized
from paychan_runtime.http import Handler, internal_error_body, json_response
from paychan_runtime.http_errors import http_status

__all__ = ["COOKIE", "CSRF_HEADER", "auth_middleware", "is_open", "presented", "wants_page"]

COOKIE = "paychan_mgmt"
CSRF_HEADER = "X-Paychan-Dashboard"
_OPEN = {("GET", "/login"), ("HEAD", "/login"), ("POST", "/login")}
_PAGES = {"/", "/dashboard"}
_SAFE = {"GET", "HEAD"}


def is_open(request: web.Request) -> bool:
    """True for the sign-in page and the dashboard's own static files (no secret in either)."""
    return (request.method, request.path) in _OPEN or (
        request.method in _SAFE and request.path.startswith("/static/"))


def wants_page(request: web.Request) -> bool:
    """True for the dashboard's HTML pages: an unauthenticated visit is sent to the sign-in page."""
    return request.method in _SAFE and request.path in _PAGES


def presented(request: web.Request) -> list[bytes]:
    """The credentials a request presents, each as `Bearer <token>` (header first, then the cookie)."""
    out = []
    header = request.headers.get("Authorization")
    if header is not None:
        out.append(header.encode("utf-8", "replace"))
    cookie = request.cookies.get(COOKIE)
    if cookie and (request.method in _SAFE or request.headers.get(CSRF_HEADER) == "1"):
        out.append(b"Bearer " + cookie.encode("utf-8", "replace"))
    return out


def auth_middleware(token: str, metrics_token: str | None = None) -> Middleware:
    """Bearer token (header, or the dashboard's cookie: `presented`) on every route but the sign-in page and
    static files (401 JSON otherwise; the dashboard's pages redirect to /login); the metrics token opens
    GET /metrics only."""
    expected = ("Bearer " + token).encode()
    scraper = None if not metrics_token else ("Bearer " + metrics_token).encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_open(request):
            return await handler(request)
        given = presented(request) or [b""]
        ok = any(hmac.compare_digest(g, expected) for g in given)
        if scraper is not None and request.path == "/metrics" and request.method in ("GET", "HEAD"):
            ok = any(hmac.compare_digest(g, scraper) for g in given) or ok
        if not ok:
            if wants_page(request):
                raise web.HTTPSeeOther("/login")
            err = Unauthorized("missing or wrong bearer token")
            return json_response(internal_error_body(err), status=http_status(err),
                                 headers={"WWW-Authenticate": 'Bearer realm="paychan-management"'})
        return await handler(request)

    return middleware
