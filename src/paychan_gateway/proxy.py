"""The reverse proxy: headers in and out (the gateway's own set, the client's forgeries stripped), request and
response bodies streamed both ways, metered responses cut cleanly where the prepaid amount runs out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .answers import UpstreamError
from .cashier import Admission, Cashier
from .config import RouteConfig
from .header import has_payment

__all__ = ["GATEWAY_PREFIX", "forward"]

GATEWAY_PREFIX = "paychan-"  # headers the gateway sets: never taken from a client, never passed on from one
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host"})
CHUNK = 64 * 1024
_DISCONNECTED = (ConnectionError, aiohttp.ClientConnectionResetError)


def _dropped(connection: str | None) -> frozenset[str]:
    """Hop-by-hop headers, plus any the Connection header names (RFC 9110 7.6.1)."""
    named = {h.strip().lower() for h in (connection or "").split(",") if h.strip()}
    return HOP_BY_HOP | named


def upstream_headers(request: web.Request, route: RouteConfig, adm: Admission | None) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop, Paychan-* and the payment; plus the gateway's own."""
    drop = _dropped(request.headers.get("Connection"))
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        if low in drop or low.startswith((GATEWAY_PREFIX, "x-forwarded-")):
            continue
        if low == "authorization" and has_payment(value):
            continue
        out.add(name, value)
    out["X-Forwarded-For"] = request.remote or ""
    out["X-Forwarded-Proto"] = request.scheme
    out["X-Forwarded-Host"] = request.host
    out["Paychan-Route"] = route.name
    if adm is not None:
        out["Paychan-Channel"] = adm.header.channel
        out["Paychan-Amount-Paid"] = str(adm.reserved)
        out["Paychan-Pricing"] = adm.quote.mode
    return out


def upstream_url(request: web.Request, route: RouteConfig) -> str:
    """The upstream URL of this request (prefix stripped if configured)."""
    path = request.rel_url.raw_path
    if route.strip_prefix and route.prefix is not None:
        path = "/" + path[len(route.prefix):].lstrip("/")
    query = request.rel_url.raw_query_string
    return route.upstream.rstrip("/") + path + (f"?{query}" if query else "")


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


def _response_headers(up: aiohttp.ClientResponse) -> CIMultiDict[str]:
    drop = _dropped(up.headers.get("Connection")) | {"content-length"}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in up.headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


def _cut(up: aiohttp.ClientResponse, headers: CIMultiDict[str], allowance: int) -> tuple[int, int | None]:
    """Status and Content-Length of a metered answer: a 206 upstream range is narrowed to what is paid for."""
    length = up.content_length
    if length is None or length <= allowance:
        return up.status, length
    if up.status == 206 and "Content-Range" in headers:
        unit, _, rest = headers["Content-Range"].partition(" ")
        span, _, total = rest.partition("/")
        start = span.split("-")[0]
        if unit == "bytes" and start.isdigit():
            headers["Content-Range"] = f"bytes {start}-{int(start) + allowance - 1}/{total}"
            return 206, allowance
    return up.status, None  # no Content-Length: the body ends (cleanly, chunked) where the prepaid amount does


async def forward(request: web.Request, route: RouteConfig, http: aiohttp.ClientSession, cashier: Cashier,
                  adm: Admission | None) -> web.StreamResponse:
    """Proxy one request; settle its admission once it is known whether the answer was delivered."""
    body = _body(request) if request.body_exists else None
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=route.timeout_seconds, sock_read=route.timeout_seconds)
    try:
        up = await http.request(request.method, upstream_url(request, route), headers=upstream_headers(
            request, route, adm), data=body, allow_redirects=False, auto_decompress=False, timeout=timeout)
    except TimeoutError:
        raise UpstreamError("the upstream did not answer in time; nothing was charged",
                            code="upstream_timeout") from None
    except aiohttp.ClientError:
        raise UpstreamError("the upstream is unreachable; nothing was charged") from None
    async with up:
        headers = _response_headers(up)
        metered = adm is not None and adm.quote.per_kib is not None
        allowance = adm.quote.allowance(adm.reserved) if adm is not None and metered else -1
        status, length = _cut(up, headers, allowance) if metered else (up.status, up.content_length)
        resp = web.StreamResponse(status=status, reason=up.reason if status == up.status else None)
        resp.headers.extend(headers)
        if length is not None:
            resp.content_length = length
        if adm is not None:
            if metered:
                resp.headers["Paychan-Prepaid-Bytes"] = str(allowance)
                if up.content_length is not None and up.content_length > allowance and length is None:
                    resp.headers["Paychan-Content-Length"] = str(up.content_length)  # cut short: the whole size
            else:
                resp.headers["Paychan-Charged"] = str(adm.reserved if up.status < 500 else 0)
                resp.headers["Paychan-Credit"] = str(cashier.credit(adm.header) + (0 if up.status < 500 else
                                                                                   adm.reserved))
        sent, delivered = await _relay(request, resp, up, allowance if metered else None)
        if adm is not None:
            await cashier.settle(adm, upstream_ok=up.status < 500, delivered=delivered, sent_bytes=sent)
        return resp


async def _relay(request: web.Request, resp: web.StreamResponse, up: aiohttp.ClientResponse,
                 allowance: int | None) -> tuple[int, bool]:
    """Stream the upstream body to the client; (bytes sent, whether the whole answer was delivered)."""
    sent = 0
    try:
        await resp.prepare(request)
        if allowance is None or allowance > 0:
            async for chunk in up.content.iter_chunked(CHUNK):
                if allowance is not None:
                    chunk = chunk[:allowance - sent]
                await resp.write(chunk)
                sent += len(chunk)
                if allowance is not None and sent >= allowance:
                    break
        await resp.write_eof()
    except _DISCONNECTED:
        return sent, False
    except (TimeoutError, aiohttp.ClientError):  # the upstream broke off mid-answer: do not end it cleanly
        if request.transport is not None:
            request.transport.close()
        return sent, False
    return sent, True
