"""aiohttp plumbing: JSON responses, bounded JSON bodies, error and bearer-token middlewares."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from paychan_common.errors import InvalidInput, PaychanError, Unauthorized

from .http_errors import http_status

log = logging.getLogger("paychan.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response serialized with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


async def read_json(request: web.Request, max_bytes: int = 65536) -> Any:
    """Read and parse a JSON body, bounded in size; InvalidInput on anything malformed."""
    return parse_json(await read_body(request, max_bytes))


def parse_json(body: bytes | bytearray) -> Any:
    """A request body as JSON; InvalidInput (bad_json) if it is not."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("request body is not valid JSON", code="bad_json") from None


async def read_body(request: web.Request, max_bytes: int = 65536) -> bytes:
    """Read the raw body, bounded in size (InvalidInput `body_too_large` beyond `max_bytes`)."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise InvalidInput(f"request body too large (limit {max_bytes} bytes)", code="body_too_large")
    body = bytearray()
    content = request.content
    if length and not content.at_eof():  # the usual case: one read, no async iteration
        try:
            first = await content.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            first = exc.partial  # not a Content-Length body (e.g. decompressed); the loop below decides
        if content.at_eof():
            return first
        body += first
    if not content.at_eof():  # chunked or Content-Encoding: the decoded body is not bounded by Content-Length
        async for chunk in content.iter_any():
            body += chunk
            if len(body) > max_bytes:
                raise InvalidInput(f"request body too large (limit {max_bytes} bytes)", code="body_too_large")
    return bytes(body)


def internal_error_body(err: PaychanError) -> dict[str, Any]:
    """Body of an internal-API error: the error class travels so the caller can re-raise it."""
    return {"error": {"class": type(err).__name__, "code": err.code, "message": err.message}}


def internal_error_answer(err: Exception, method: str, path: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of an internal service's answer to an error: a PaychanError travels typed; anything
    else is logged with its traceback and answered as a generic 500."""
    if isinstance(err, PaychanError):
        return http_status(err), internal_error_body(err)
    log.error("internal error on %s %s", method, path, exc_info=err)
    return 500, {"error": {"class": "InternalError", "code": "internal_error", "message": "internal error"}}


@web.middleware
async def internal_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map errors of internal services to status + JSON; never a traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as err:  # noqa: BLE001 - internal_error_answer logs what is not a PaychanError
        status, body = internal_error_answer(err, request.method, request.path)
        return json_response(body, status=status)


def bearer_auth_middleware(token: str, open_paths: frozenset[str] = frozenset()) -> Any:
    """Require `Authorization: Bearer <token>` (constant-time compare) except on open_paths."""
    expected = ("Bearer " + token).encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in open_paths:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                err = Unauthorized("missing or wrong bearer token")
                return json_response(internal_error_body(err), status=http_status(err))
        return await handler(request)

    return middleware


@web.middleware
async def http_error_json_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 4xx answers (unknown path, wrong method) as the internal JSON error body too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return json_response({"error": {"class": "InvalidInput", "code": code, "message": exc.reason}},
                             status=exc.status)
