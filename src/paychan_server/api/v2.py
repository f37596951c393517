"""v2-seed (spec 6.3) and v2.3.0 (spec 6.4) handlers: JSON bodies, one core. Registered by the route table
(`routes.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from paychan_common.channel import ChannelParams
from paychan_common.errors import InvalidInput, InvalidPayment
from paychan_common.keys import PublicKey
from paychan_common.messages import ChannelLocation, PaymentResult, result_json
from paychan_common.payment import Payment
from paychan_common.rules import params_from_script
from paychan_common.state import Family
from paychan_common.tx import OutPoint
from paychan_common.wire_v2 import parse_v2_payment
from paychan_runtime.http import Handler, json_response, read_json

from ..domain.results import StaticChannel
from ..domain.service import PayChanService
from .keys import MAX_BODY, SERVICE
from .params import parse_exp_time, parse_outpoint, parse_pubkey, parse_secret
from .urls import channel_url

Located = tuple[PayChanService, OutPoint, Payment, StaticChannel]


def _answer(result: PaymentResult, status: int = 200, location: str | None = None) -> web.Response:
    headers = None if location is None else {"Location": location}
    return json_response(result_json(result), status=status, headers=headers)


def check_json_type(content_type: str) -> None:
    """415 unless the body is declared JSON (the media type, lower-case, without parameters)."""
    if content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be application/json")


async def _payment(request: web.Request, *, full: bool = False) -> Payment:
    check_json_type(request.content_type)
    return parse_v2_payment(await read_json(request, request.app[MAX_BODY]), require_full=full)


async def funding_info(request: web.Request) -> web.Response:
    """GET /v2/funding/{client_pubkey}/{exp_time}/info (seed, rbpcp-api) or /{exp_time}/{client_pubkey}/info."""
    svc = request.app[SERVICE]
    a, b = request.match_info["a"], request.match_info["b"]
    exp_first = a.isdigit() and not b.isdigit()
    pk = parse_pubkey(b if exp_first else a)
    exp = parse_exp_time(a if exp_first else b)
    return json_response(svc.funding_info(svc.params(pk, exp), with_script=not exp_first).wire())


async def begin_open(request: web.Request) -> web.Response:
    """GET /v2/funding/{client_pubkey}/{exp_time}/begin_open -> {"channel_uri": absolute URL}."""
    svc = request.app[SERVICE]
    pk = parse_pubkey(request.match_info["a"])
    exp = parse_exp_time(request.match_info["b"])
    outpoint = await svc.begin_open(svc.params(pk, exp))
    uri = channel_url(request, Family.V2_SEED, pk.data, exp, outpoint)
    return json_response(ChannelLocation(channel_uri=uri).model_dump())


async def _open(request: web.Request, family: Family, params: ChannelParams, payment: Payment,
                outpoint: OutPoint) -> web.Response:
    """Open at `outpoint`, funded to the channel's own address -> 201 + Location (spec 6.3 #3, 6.4 #2)."""
    opened = await request.app[SERVICE].open(family, params, payment, params.funding_address, outpoint)
    url = channel_url(request, family, params.client_pubkey.data, params.exp_time, outpoint)
    return _answer(opened.result, 201, url)


def _seed_path(svc: PayChanService, request: web.Request) -> tuple[PublicKey, int, OutPoint]:
    m = request.match_info
    return seed_path(svc, m["pk"], m["exp"], m["txid"], m["vout"])


def seed_path(svc: PayChanService, pk: str, exp: str, txid: str, vout: str) -> tuple[PublicKey, int, OutPoint]:
    """The v2-seed path's client key, expiry and funding outpoint (400 if malformed)."""
    return svc.client_key(pk), parse_exp_time(exp), parse_outpoint(txid, vout)


async def seed_payment(svc: PayChanService, path: tuple[PublicKey, int, OutPoint], payment: Payment
                       ) -> PaymentResult:
    """A payment on the v2-seed channel of the path (spec 6.3 #4)."""
    pk, exp, outpoint = path
    return await svc.pay(outpoint, payment, await svc.locate(outpoint, Family.V2_SEED, locator=(pk.data, exp)))


async def v23_payment(svc: PayChanService, outpoint: OutPoint, secret: bytes, payment: Payment) -> PaymentResult:
    """A compact payment on the v2.3.0 channel of the path and secret (spec 6.4 #3)."""
    return await svc.pay(outpoint, payment, await svc.locate(outpoint, Family.V2_3, secret=secret))


async def seed_open(request: web.Request) -> web.Response:
    """POST /v2/channels/{pk}/{exp}/{txid}/{vout} with the opening payment -> 201 + Location."""
    svc = request.app[SERVICE]
    pk, exp, outpoint = _seed_path(svc, request)
    payment = await _payment(request, full=True)
    params = svc.params(pk, exp)
    if payment.redeem_script != params.redeem_script:
        raise InvalidPayment("unexpected redeem script", code="unexpected_redeem_script")
    return await _open(request, Family.V2_SEED, params, payment, outpoint)


async def _seed_channel(request: web.Request) -> Located:
    """The v2-seed channel of the path, and the request's payment."""
    svc = request.app[SERVICE]
    pk, exp, outpoint = _seed_path(svc, request)
    payment = await _payment(request)
    return svc, outpoint, payment, await svc.locate(outpoint, Family.V2_SEED, locator=(pk.data, exp))


def _v23_path(request: web.Request) -> tuple[OutPoint, bytes]:
    m = request.match_info
    return parse_outpoint(m["txid"], m["vout"]), parse_secret(request.query.get("secret"))


async def v23_open(request: web.Request) -> web.Response:
    """POST /v2/channels/{txid}/{vout}?secret= with a full PaymentData -> 201 + Location."""
    svc = request.app[SERVICE]
    outpoint, secret = _v23_path(request)
    payment = await _payment(request, full=True)
    if payment.application_data != "":
        raise InvalidInput("application_data must be empty in the opening payment")
    assert payment.redeem_script is not None
    params = params_from_script(payment.redeem_script, svc.server_pubkey.data, svc.network)
    if secret != payment.signature.secret():
        raise InvalidInput("secret does not match the opening payment's signature", code="bad_secret")
    return await _open(request, Family.V2_3, params, payment, outpoint)


async def _v23_channel(request: web.Request) -> Located:
    """The v2.3.0 channel of the path and secret, and the request's payment."""
    svc = request.app[SERVICE]
    outpoint, secret = _v23_path(request)
    payment = await _payment(request)
    return svc, outpoint, payment, await svc.locate(outpoint, Family.V2_3, secret=secret)


def _on_channel(locate: Callable[[web.Request], Awaitable[Located]]) -> Handler:
    """A PUT handler: the closing payment (spec 7.4) on the located channel."""

    async def handler(request: web.Request) -> web.Response:
        svc, outpoint, payment, st = await locate(request)
        return _answer(await svc.close_v2(outpoint, payment, st))

    return handler


async def seed_pay(request: web.Request) -> web.Response:
    """PUT /v2/channels/{pk}/{exp}/{txid}/{vout}: a payment (the fast front, `front.py`, serves it too)."""
    svc = request.app[SERVICE]
    path = _seed_path(svc, request)
    return _answer(await seed_payment(svc, path, await _payment(request)))


async def v23_pay(request: web.Request) -> web.Response:
    """PUT /v2/channels/{txid}/{vout}?secret=: a compact payment (the fast front serves it too)."""
    outpoint, secret = _v23_path(request)
    return _answer(await v23_payment(request.app[SERVICE], outpoint, secret, await _payment(request)))


seed_close = _on_channel(_seed_channel)  # PUT .../close: zero-value closing payment
v23_close = _on_channel(_v23_channel)  # PUT .../close?secret=: closing payment, its value the fee
