"""The meta handlers: GET /health, GET /openapi.json and GET /docs (the document is rendered once, at
start-up, into the app; see `openapi.publish_document`)."""

from __future__ import annotations

from aiohttp import web

from paychan_common.messages import Health

__all__ = ["DOCS_PAGE", "OPENAPI_BODY", "docs", "health", "openapi_json"]

OPENAPI_BODY: web.AppKey[bytes] = web.AppKey("openapi_body", bytes)
DOCS_PAGE: web.AppKey[bytes] = web.AppKey("docs_page", bytes)


async def health(request: web.Request) -> web.Response:
    """GET /health: liveness."""
    return web.json_response(Health(ok=True).model_dump())


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI document."""
    return web.Response(body=request.app[OPENAPI_BODY], content_type="application/json")


async def docs(request: web.Request) -> web.Response:
    """GET /docs: the document as one self-contained HTML page."""
    return web.Response(body=request.app[DOCS_PAGE], content_type="text/html", charset="utf-8")
