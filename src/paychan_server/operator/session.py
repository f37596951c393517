"""How a management request proves it holds the token: the bearer header (tools, Prometheus), or the
dashboard's session cookie (HttpOnly, SameSite=Strict, set by `POST /login`; its value is the token).

A cookie-authenticated request that changes something must also carry the `X-Paychan-Dashboard` header: a
cross-site page cannot add a custom header without a CORS preflight, which the management API never answers.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["COOKIE", "CSRF_HEADER", "is_open", "presented", "wants_page"]

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
