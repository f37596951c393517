"""One error middleware for the public API (spec 6.1, 7.5) and CORS headers."""

from __future__ import annotations

import logging

from aiohttp import web

from paychan_common.errors import ChannelGone, PaychanError
from paychan_runtime.http import Handler, json_response

log = logging.getLogger("paychan.server")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
    "Access-Control-Allow-Headers": "Origin,Accept,Content-Type",
    "Access-Control-Expose-Headers": "Location",
}


def _reason(message: str) -> str:
    """A reason phrase: one line of printable latin-1."""
    text = " ".join(message.split())[:200]
    return text.encode("latin-1", "replace").decode("latin-1") or "Error"


def error_response(err: PaychanError, *, v1: bool, headers: dict[str, str] | None = None) -> web.Response:
    """Status + reason phrase = message (v1 clients read it) + JSON body {type, code, message}."""
    status = err.status
    if v1 and isinstance(err, ChannelGone) and err.code == "channel_closed":
        status = 404  # v1: a settled channel is "no such channel" (spec 6.2, 7.3)
    resp = json_response(err.to_json(), status=status, headers=headers)
    resp.set_status(status, _reason(err.message))
    return resp


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a status and a JSON body; internal errors are logged, answered generically."""
    v1 = request.path.startswith("/v1/")
    try:
        return await handler(request)
    except PaychanError as err:
        if err.status >= 500:
            log.warning("%s %s -> %d %s", request.method, request.path, err.status, err.message)
        return error_response(err, v1=v1, headers=err.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = PaychanError(exc.reason or "error", code=f"http_{exc.status}")
        kind.status = exc.status
        kind.kind = "application_error"
        resp = json_response(kind.to_json(), status=exc.status)
        resp.set_status(exc.status, _reason(exc.reason or "error"))
        return resp
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(PaychanError("internal server error"), v1=v1)


async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: CORS on every answer."""
    response.headers.update(CORS_HEADERS)


async def options_handler(request: web.Request) -> web.Response:
    """Answer CORS preflight requests."""
    return web.Response(status=200)
