"""What the gateway answers on its own: 402 Payment Required (body and WWW-Authenticate), and errors in the
same JSON shape as PayChanServer's ({type, code, message}, spec 6.1)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from paychan_common.errors import PaychanError
from paychan_common.messages import ErrorBody
from paychan_runtime.http import Handler, json_response
from paychan_runtime.http_errors import http_status, public_error

from .cashier import PaymentRequired
from .header import SCHEME

__all__ = ["FAMILY", "GATEWAY_STATUS", "UpstreamError", "error_middleware", "gateway_status", "payment_required_body",
           "www_authenticate"]

log = logging.getLogger("paychan.gateway")
FAMILY = "v2.3"  # the route family a client opens its channel with: payments travel as v2.3.0 compact payments


class UpstreamError(PaychanError):
    """502/504: the upstream could not be reached or did not answer in time; nothing was charged."""

    code = "upstream_unavailable"


# The gateway's own codes at its edge (the shared table gives every other code its status).
GATEWAY_STATUS: dict[str, int] = {
    "payment_required": 402, "payment_already_used": 402, "no_route": 404, "method_not_allowed": 405,
    "upstream_unavailable": 502, "upstream_timeout": 504,
}


def gateway_status(err: PaychanError) -> int:
    """The status of an error at the gateway's edge: its own code first, then its class's, then the table."""
    for code in (err.code, *(vars(k).get("code") for k in type(err).__mro__)):
        if isinstance(code, str) and code in GATEWAY_STATUS:
            return GATEWAY_STATUS[code]
    return http_status(err)


def _error(err: PaychanError, status: int) -> web.Response:
    return json_response(ErrorBody(type=err.kind, code=err.code, message=err.message).model_dump(), status=status)


def funding_info_url(server_url: str) -> str:
    """The funding-info URL template a client fills with its key and expiry (spec 6.4 #1)."""
    return server_url.rstrip("/") + "/v2/funding/{client_pubkey}/{exp_time}/info"


def payment_required_body(err: PaymentRequired, server_url: str) -> dict[str, object]:
    """The machine-readable 402 body: the error shape plus the price and where to open a channel."""
    q = err.quote
    body: dict[str, object] = ErrorBody(type=err.kind, code=err.code, message=err.message).model_dump()
    body.update({
        "route": q.route.name, "pricing": q.mode, "price": q.price, "per_kib": q.per_kib,
        "increment_kib": q.route.price.increment_kib if q.per_kib is not None else None,
        "credit": err.credit, "amount_due": max(q.price - err.credit, 1),
        "family": FAMILY, "server_url": server_url.rstrip("/"), "funding_info": funding_info_url(server_url),
        "header": f"Authorization: {SCHEME} <funding_txid>:<funding_vout>:<secret> <change_value>:<signature_data>",
    })
    return body


def www_authenticate(err: PaymentRequired, server_url: str) -> str:
    """`Paychan price=..., route=..., family=..., funding_info=...` (RFC 9110 11.6.1 challenge)."""
    q = err.quote
    parts = [f'price="{q.price}"', f'route="{q.route.name}"', f'pricing="{q.mode}"', f'family="{FAMILY}"',
             f'funding_info="{funding_info_url(server_url)}"']
    if q.per_kib is not None:
        parts.append(f'per_kib="{q.per_kib}"')
    return f"{SCHEME} " + ", ".join(parts)


def error_middleware(server_url: str, on_402: Callable[[str], None] | None = None) -> Middleware:
    """402 with its body and challenge; every other error as PayChanServer words it (internal failures
    generically, spec 7.5); never a traceback."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except PaymentRequired as err:
            if on_402 is not None:
                on_402(err.quote.route.name)
            headers = {"WWW-Authenticate": www_authenticate(err, server_url), "Paychan-Price": str(err.quote.price),
                       "Paychan-Route": err.quote.route.name}
            return json_response(payment_required_body(err, server_url), status=402, headers=headers)
        except PaychanError as err:
            status = gateway_status(err)
            # The gateway's own errors (402, 404, 405, its upstream 502/504) keep their fixed texts; any
            # other internal failure is answered generically (spec 7.5), its detail logged.
            public, status = (err, status) if err.code in GATEWAY_STATUS else public_error(err, status)
            if public is not err:  # the detail (service names, exception classes, caps) goes to the log only
                log.warning("%s %s -> %d %s: %s", request.method, request.path, status, err.code, err.message)
            elif status >= 500:
                log.warning("%s %s -> %d %s", request.method, request.path, status, err.message)
            return _error(public, status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(PaychanError(exc.reason or "error", code=f"http_{exc.status}"), exc.status)
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return _error(PaychanError("internal server error"), 500)

    return middleware
