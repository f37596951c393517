"""The public API's error edge (spec 6.1, 7.5) and CORS headers.

Statuses come from the shared table (`paychan_runtime.http_errors`) plus this edge's data: the status a
route family gives a code (`FAMILY_STATUS`) and the headers a code carries (`HEADERS_BY_CODE`). Nothing
here changes an error; a route never decorates one after raising it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from paychan_common.errors import PaychanError
from paychan_common.messages import ErrorBody
from paychan_common.state import Family, Status
from paychan_runtime.http import Handler, json_response
from paychan_runtime.http_errors import http_status, public_error
from paychan_runtime.metrics import route_template

from ..domain.results import ExistingChannel
from .routes import family_of_path
from .urls import channel_url

log = logging.getLogger("paychan.server")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
    "Access-Control-Allow-Headers": "Origin,Accept,Content-Type",
    "Access-Control-Expose-Headers": "Location",
}

# v1: a settled channel is "no such channel" (spec 6.2, 7.3).
FAMILY_STATUS: Mapping[Family, Mapping[str, int]] = {Family.V1: {"channel_closed": 404}}

HeaderRule = Callable[[web.Request, Family | None, PaychanError], dict[str, str]]


def _existing_location(request: web.Request, family: Family | None, err: PaychanError) -> dict[str, str]:
    """409 + Location of the existing channel, when it is open (spec 6.2, 6.3, 6.5)."""
    if family is None or not isinstance(err, ExistingChannel) or err.existing.status is not Status.OPEN:
        return {}
    st = err.existing
    return {"Location": channel_url(request, family, st.client_pubkey, st.exp_time, st.outpoint)}


HEADERS_BY_CODE: Mapping[str, HeaderRule] = {"channel_exists": _existing_location}


def _reason(message: str) -> str:
    """A reason phrase: one line of printable latin-1."""
    text = " ".join(message.split())[:200]
    return text.encode("latin-1", "replace").decode("latin-1") or "Error"


ErrorAnswer = tuple[int, str, dict[str, object]]
"""(status, reason phrase, JSON body) of an error answer."""


def error_answer(err: PaychanError, family: Family | None, method: str, path: str) -> tuple[ErrorAnswer, PaychanError]:
    """The status, reason and body answering `err` on a route of `family`, and the error made public;
    internal failures are answered generically (spec 7.5), their detail logged."""
    status = http_status(err, FAMILY_STATUS.get(family) if family is not None else None)
    public, status = public_error(err, status)
    if public is not err:  # the detail (service names, exception classes, caps) goes to the log only
        log.warning("%s %s -> %d %s: %s", method, path, status, err.code, err.message)
    body = ErrorBody(type=public.kind, code=public.code, message=public.message)
    return (status, _reason(body.message), body.model_dump()), public


def http_exception_answer(exc: web.HTTPException) -> ErrorAnswer:
    """aiohttp's own 4xx (a 415 a handler raised, an unknown path) as an error answer."""
    reason = exc.reason or "error"
    body = ErrorBody(type="application_error", code=f"http_{exc.status}", message=reason)
    return exc.status, _reason(reason), body.model_dump()


def unexpected_answer(family: Family | None, method: str, path: str) -> ErrorAnswer:
    """An exception no layer expected: logged with its traceback, answered as a generic 500."""
    log.exception("internal error on %s %s", method, path)
    return error_answer(PaychanError("internal server error"), family, method, path)[0]


def _answer(answer: ErrorAnswer, headers: dict[str, str] | None = None) -> web.Response:
    """Status + reason phrase = message (v1 clients read it) + the JSON body {type, code, message}."""
    status, reason, body = answer
    resp = json_response(body, status=status, headers=headers)
    resp.set_status(status, reason)
    return resp


def error_response(err: PaychanError, request: web.Request) -> web.Response:
    """The answer to `err` raised by the route `request` matched."""
    family = family_of_path(route_template(request))
    answer, public = error_answer(err, family, request.method, request.path)
    rule = HEADERS_BY_CODE.get(public.code)
    headers = rule(request, family, public) if rule is not None else None
    return _answer(answer, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a status and a JSON body; internal errors are logged, answered generically."""
    try:
        return await handler(request)
    except PaychanError as err:
        return error_response(err, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _answer(http_exception_answer(exc))
    except Exception:  # noqa: BLE001 - logged with its traceback by unexpected_answer
        return _answer(unexpected_answer(family_of_path(route_template(request)), request.method, request.path))


async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: CORS on every answer."""
    response.headers.update(CORS_HEADERS)


async def options_handler(request: web.Request) -> web.Response:
    """Answer CORS preflight requests."""
    return web.Response(status=200)
