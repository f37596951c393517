"""The fast front of the public port: payments served without the web framework, everything else by aiohttp.

A `paychan_runtime.front` front (its module docstring tells the framing, the pipelining and the hand-over).
A request that is plainly a payment (`PUT` on the v1, v2-seed or v2.3.0 payment route, HTTP/1.1
keep-alive, for v2 a JSON body with a Content-Length within `listen.max_body_bytes`, no Transfer-Encoding,
Expect, Upgrade, Content-Encoding, no percent-escape or '+' in the target) is answered here through the same
functions as the aiohttp handlers (`v1.v1_payment`, `v2.seed_path`, `v2.seed_payment`, `v2.v23_payment`),
the same error edge (`middleware.error_answer`), the same CORS headers, latency histogram and access log;
anything else goes to aiohttp. An answer is written only once its payment is durably stored, as in the
aiohttp handler; a connection that goes away while its payment is being stored does not cancel it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from aiohttp import web

from paychan_common.errors import PaychanError
from paychan_common.messages import PaymentResult, result_json, result_json_v1
from paychan_common.state import Family
from paychan_common.wire_v2 import parse_v2_payment
from paychan_runtime.front import FrontConnection, FrontContext, read_head
from paychan_runtime.http import parse_json

from ..domain.service import PayChanService
from ..operator.metrics import METRICS
from .keys import MAX_BODY, SERVICE
from .middleware import CORS_HEADERS, error_answer, http_exception_answer, unexpected_answer
from .params import parse_outpoint, parse_secret, required
from .routes import SEED, V1_CHANNEL, V23
from .v1 import v1_payment
from .v2 import check_json_type, seed_path, seed_payment, v23_payment

__all__ = ["FastFront", "PaymentFront", "front"]


class PaymentFront(FrontContext):
    """What every connection of one worker shares: the app (its service, once ready), metrics, the log."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        super().__init__(server, app[METRICS], dict(CORS_HEADERS))
        self.app = app
        self.max_body = app[MAX_BODY]

    @property
    def service(self) -> PayChanService | None:
        """The payment service once the app's resources are up."""
        return self.app.get(SERVICE)

    def protocol(self) -> FastFront:
        """A new connection's protocol (the listening server's factory)."""
        return FastFront(self)


Route = tuple[str, list[str], str]  # (route template, path segments, query)
V1_PAY = V1_CHANNEL + "/pay"
_V1_ROUTES = (V1_CHANNEL, V1_PAY)
_FAMILY = {V1_CHANNEL: Family.V1, V1_PAY: Family.V1, SEED: Family.V2_SEED, V23: Family.V2_3}
Taken = tuple[Route, str]  # (route, media type of the body)


def _payment_route(url: bytes) -> Route | None:
    """The payment route a request target names exactly (no escapes), with its segments and query."""
    if b"%" in url or b"#" in url or b"+" in url or not url.startswith((b"/v2/channels/", b"/v1/channels/")):
        return None
    try:
        text = url.decode("ascii")
    except UnicodeDecodeError:
        return None
    path, _, query = text.partition("?")
    parts = path.split("/")
    if any(not part for part in parts[1:]):
        return None
    if parts[1] == "v1":
        if len(parts) == 5 and parts[3] != "new":
            return V1_CHANNEL, parts, query
        if len(parts) == 6 and parts[5] == "pay":
            return V1_PAY, parts, query
        return None
    if len(parts) == 7:
        return SEED, parts, query
    if len(parts) == 5:
        return V23, parts, query
    return None


def _query_value(query: str, wanted: str) -> str | None:
    """The first value of `wanted` in a query without escapes or '+' (as aiohttp's `request.query.get`)."""
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if name == wanted:
            return value if eq else ""
    return None


class FastFront(FrontConnection[Taken]):
    """One public connection (see the module docstring)."""

    def __init__(self, ctx: PaymentFront) -> None:
        super().__init__(ctx)
        self._ctx = ctx

    def take(self, head: bytes) -> tuple[Taken, int] | None:
        """(route and media type, content length) of a plain payment request; None for anything else."""
        fields = read_head(head, b"PUT")
        if fields is None:
            return None
        route = _payment_route(fields.url)
        if route is None or self._ctx.service is None:
            return None
        if route[0] in _V1_ROUTES:
            if fields.content_length is None:
                return (route, ""), 0  # a v1 payment travels in the query; it has no body
            length = fields.length(self._ctx.max_body)
            return None if length is None else ((route, ""), length)  # the v1 handler never reads a body
        length = fields.length(self._ctx.max_body)
        if length is None:
            return None
        raw_type = fields.content_type
        media = raw_type.split(b";", 1)[0].strip() if raw_type is not None else b""
        if media != b"application/json":
            return None  # aiohttp answers 415, or reads a media type spelled otherwise
        return (route, media.decode("ascii")), length

    async def respond(self, taken: Taken, body: bytes) -> bytes:
        """The payment's answer, or its error answer as the aiohttp edge gives it; latency and access log."""
        start = time.perf_counter()
        route, content_type = taken
        template, parts, query = route
        family = _FAMILY[template]
        path = route_path(parts)
        ctx = self._ctx
        try:
            result = await self._pay(template, parts, query, content_type, body)
            encoded = result_json_v1(result) if family is Family.V1 else result_json(result)
            answer = ctx.answer(200, "OK", orjson.dumps(encoded))
            status = 200
        except PaychanError as err:
            status, reason, err_body = error_answer(err, family, "PUT", path)[0]
            answer = ctx.answer(status, reason, orjson.dumps(err_body))
        except web.HTTPException as exc:
            status, reason, err_body = http_exception_answer(exc)
            answer = ctx.answer(status, reason, orjson.dumps(err_body))
        except Exception:  # noqa: BLE001 - logged with its traceback, answered generically as aiohttp's edge does
            status, reason, err_body = unexpected_answer(family, "PUT", path)
            answer = ctx.answer(status, reason, orjson.dumps(err_body))
        ctx.served("PUT", template, path, status, start, self.peer)
        return answer

    async def _pay(self, template: str, parts: list[str], query: str, content_type: str,
                   body: bytes) -> PaymentResult:
        """The same steps, in the same order, as `v1.pay`, `v2.seed_pay` and `v2.v23_pay`."""
        svc = self._ctx.service
        assert svc is not None  # checked before the request was taken
        if template in _V1_ROUTES:
            payload = _query_value(query, "payment")
            return await v1_payment(svc, parts[3], parts[4], required({} if payload is None else {"payment": payload},
                                                                     "payment"))
        if template == SEED:
            where = seed_path(svc, parts[3], parts[4], parts[5], parts[6])
            check_json_type(content_type)
            return await seed_payment(svc, where, parse_v2_payment(parse_json(body)))
        outpoint, secret = parse_outpoint(parts[3], parts[4]), parse_secret(_query_value(query, "secret"))
        check_json_type(content_type)
        return await v23_payment(svc, outpoint, secret, parse_v2_payment(parse_json(body)))

def route_path(parts: list[str]) -> str:
    """The request's path (for the log lines), rebuilt from its segments."""
    return "/".join(parts)


def front(app: web.Application) -> Callable[[web.Server], PaymentFront]:
    """What `paychan_runtime.serve.serve_app(front=…)` takes: given aiohttp's server, the front."""
    return lambda server: PaymentFront(app, server)
