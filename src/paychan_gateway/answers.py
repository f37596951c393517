"""What the gateway answers on its own: 402 Payment Required (body and WWW-Authenticate), and errors in the
same JSON shape as PayChanServer's ({type, code, message}, spec 6.1)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from paychan_common.errors import PaychanError
from paychan_runtime.http import Handler, json_response
from paychan_server.api.middleware import error_response

from .cashier import PaymentRequired
from .header import SCHEME

__all__ = ["FAMILY", "UpstreamError", "error_middleware", "payment_required_body", "www_authenticate"]

log = logging.getLogger("paychan.gateway")
FAMILY = "v2.3"  # the route family a client opens its channel with: payments travel as v2.3.0 compact payments


class UpstreamError(PaychanError):
    """502/504: the upstream could not be reached or did not answer in time; nothing was charged."""

    status = 502
    code = "upstream_unavailable"




def funding_info_url(server_url: str) -> str:
    """The funding-info URL template a client fills with its key and expiry (spec 6.4 #1)."""
    return server_url.rstrip("/") + "/v2/funding/{client_pubkey}/{exp_time}/info"


def payment_required_body(err: PaymentRequired, server_url: str) -> dict[str, object]:
    """The machine-readable 402 body: the error shape plus the price and where to open a channel."""
    q = err.quote
    body: dict[str, object] = dict(err.to_json())
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
    """402 with its body and challenge; every other error as PayChanServer words it; never a traceback."""

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
            if err.status >= 500:
                log.warning("%s %s -> %d %s", request.method, request.path, err.status, err.message)
            return error_response(err, v1=False, headers=err.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            kind = PaychanError(exc.reason or "error", code=f"http_{exc.status}")
            kind.status = exc.status
            return error_response(kind, v1=False)
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return error_response(PaychanError("internal server error"), v1=False)

    return middleware
