"""The operator's dashboard, served by the management API (same loopback port, same token; docs/OPERATOR.md).

  GET  /            -> /dashboard
  GET  /login       the sign-in page (open)            POST /login   token -> session cookie, 303 /dashboard
  POST /logout      clears the cookie                  GET  /dashboard   the page (static/dashboard.html)
  GET  /static/{f}  our own JS and CSS (open; package data, no external asset)

The page reads only the management API's JSON routes (/totals, /revenue, /channels, /settlements, /alerts,
one channel, manual close) and polls them; see session.py for the cookie and its CSRF rule.
"""

from __future__ import annotations

import hmac
import html
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from .session import COOKIE

__all__ = ["add_dashboard_routes"]

# Our own files only: no script or style from anywhere else, no inline script, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
MAX_LOGIN_BYTES = 4096

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paychan — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body class="login"><main>
<h1>paychan operator</h1>
<form method="post" action="/login">
<label for="token">Management token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<p class="hint">The content of <code>management.token_file</code> (server.toml).</p>
{error}<button type="submit">Sign in</button>
</form></main></body></html>
"""


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file of static/, read once."""

    body: bytes
    content_type: str


def _static_files() -> dict[str, StaticFile]:
    folder = resources.files("paychan_server.operator").joinpath("static")
    out = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            out[entry.name] = StaticFile(entry.read_bytes(), TYPES[suffix])
    return out


def _login_page(error: str = "", status: int = 200) -> web.Response:
    block = f'<p class="error" role="alert">{html.escape(error)}</p>\n' if error else ""
    return web.Response(text=LOGIN_PAGE.format(error=block), status=status, content_type="text/html",
                        headers=HEADERS)


def add_dashboard_routes(app: web.Application, token: str) -> None:
    """Register the sign-in, the page and its static files on the management app."""
    files = _static_files()
    expected = token.encode()

    async def index(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/dashboard")

    async def login_form(request: web.Request) -> web.Response:
        return _login_page()

    async def login(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_LOGIN_BYTES:
            return _login_page("request too large", status=413)
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.strip().encode(), expected):
            return _login_page("wrong token", status=401)
        resp = web.HTTPSeeOther("/dashboard", headers=HEADERS)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.secure)
        raise resp

    async def logout(request: web.Request) -> web.Response:
        resp = web.json_response({"signed_out": True}, headers=HEADERS)
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def page(request: web.Request) -> web.Response:
        f = files["dashboard.html"]
        return web.Response(body=f.body, content_type=f.content_type, headers=HEADERS)

    async def static(request: web.Request) -> web.Response:
        f = files.get(request.match_info["name"])
        if f is None:
            raise web.HTTPNotFound(reason="no such file")
        headers = {**HEADERS, "Cache-Control": "no-cache"}
        return web.Response(body=f.body, content_type=f.content_type, headers=headers)

    r = app.router
    r.add_get("/", index)
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/dashboard", page)
    r.add_get("/static/{name}", static)
