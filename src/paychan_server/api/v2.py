"""v2-seed (spec 6.3) and v2.3.0 (spec 6.4) routes: JSON bodies, one core."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from paychan_common.errors import ChannelExists, InvalidInput, InvalidPayment
from paychan_common.keys import PublicKey
from paychan_common.payment import Payment
from paychan_common.rules import params_from_script
from paychan_common.state import Family, Status
from paychan_common.tx import OutPoint
from paychan_common.wire_v2 import parse_v2_payment
from paychan_runtime.http import Handler, json_response, read_json

from ..domain.results import ExistingChannel, PaymentResult
from .keys import MAX_BODY, SERVICE
from .params import parse_exp_time, parse_outpoint, parse_pubkey, parse_secret


def _result_json(r: PaymentResult) -> dict[str, object]:
    return {"channel_status": r.status, "channel_value_left": r.value_left, "value_received": r.value_received,
            "settlement_txid": r.settlement_txid, "application_data": r.application_data}


def seed_url(request: web.Request, pk: bytes, exp: int, outpoint: OutPoint) -> str:
    """Absolute URL of a v2-seed channel."""
    return (f"{request.scheme}://{request.host}/v2/channels/{pk.hex()}/{exp}/"
            f"{outpoint.display_txid}/{outpoint.vout}")


def v23_url(request: web.Request, outpoint: OutPoint) -> str:
    """Absolute URL of a v2.3.0 channel (the secret is the client's to add)."""
    return f"{request.scheme}://{request.host}/v2/channels/{outpoint.display_txid}/{outpoint.vout}"


async def _payment(request: web.Request, *, full: bool = False) -> Payment:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be application/json")
    return parse_v2_payment(await read_json(request, request.app[MAX_BODY]), require_full=full)


def _seed_path(request: web.Request) -> tuple[PublicKey, int, OutPoint]:
    m = request.match_info
    return request.app[SERVICE].client_key(m["pk"]), parse_exp_time(m["exp"]), parse_outpoint(m["txid"], m["vout"])


async def funding_info(request: web.Request) -> web.Response:
    """GET /v2/funding/{client_pubkey}/{exp_time}/info (seed, rbpcp-api) or /{exp_time}/{client_pubkey}/info."""
    svc = request.app[SERVICE]
    a, b = request.match_info["a"], request.match_info["b"]
    exp_first = a.isdigit() and not b.isdigit()
    pk = parse_pubkey(b if exp_first else a)
    exp = parse_exp_time(a if exp_first else b)
    return json_response(svc.funding_info(svc.params(pk, exp), with_script=not exp_first))


async def begin_open(request: web.Request) -> web.Response:
    """GET /v2/funding/{client_pubkey}/{exp_time}/begin_open -> {"channel_uri": absolute URL}."""
    svc = request.app[SERVICE]
    pk = parse_pubkey(request.match_info["a"])
    exp = parse_exp_time(request.match_info["b"])
    outpoint = await svc.begin_open(svc.params(pk, exp))
    return json_response({"channel_uri": seed_url(request, pk.data, exp, outpoint)})


def _with_location(exc: ChannelExists, url: Callable[[OutPoint], str]) -> ChannelExists:
    """Point a 409 at the existing channel when it is open (spec 6.2, 6.3: 409 + Location)."""
    if isinstance(exc, ExistingChannel) and exc.existing.status is Status.OPEN:
        exc.headers = {"Location": url(exc.existing.outpoint)}
    return exc


async def seed_open(request: web.Request) -> web.Response:
    """POST /v2/channels/{pk}/{exp}/{txid}/{vout} with the opening payment -> 201."""
    svc = request.app[SERVICE]
    pk, exp, outpoint = _seed_path(request)
    payment = await _payment(request, full=True)
    params = svc.params(pk, exp)
    if payment.redeem_script != params.redeem_script:
        raise InvalidPayment("unexpected redeem script", code="unexpected_redeem_script")
    try:
        result = await svc.open(Family.V2_SEED, params, payment, params.funding_address, outpoint)
    except ChannelExists as exc:
        raise _with_location(exc, lambda op: seed_url(request, pk.data, exp, op)) from None
    url = seed_url(request, pk.data, exp, outpoint)
    return json_response(_result_json(result), status=201, headers={"Location": url})


async def seed_pay(request: web.Request) -> web.Response:
    """PUT /v2/channels/{pk}/{exp}/{txid}/{vout}: a payment."""
    svc = request.app[SERVICE]
    pk, exp, outpoint = _seed_path(request)
    payment = await _payment(request)
    st = await svc.locate(outpoint, Family.V2_SEED, locator=(pk.data, exp))
    return json_response(_result_json(await svc.pay(outpoint, payment, st)))


async def seed_close(request: web.Request) -> web.Response:
    """PUT /v2/channels/{pk}/{exp}/{txid}/{vout}/close: zero-value closing payment."""
    svc = request.app[SERVICE]
    pk, exp, outpoint = _seed_path(request)
    payment = await _payment(request)
    st = await svc.locate(outpoint, Family.V2_SEED, locator=(pk.data, exp))
    return json_response(_result_json(await svc.close_v2(outpoint, payment, st)))


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
    try:
        result = await svc.open(Family.V2_3, params, payment, params.funding_address, outpoint)
    except ChannelExists as exc:
        raise _with_location(exc, lambda op: v23_url(request, op)) from None
    return json_response(_result_json(result), status=201, headers={"Location": v23_url(request, outpoint)})


async def v23_pay(request: web.Request) -> web.Response:
    """PUT /v2/channels/{txid}/{vout}?secret= with a CompactPaymentData (or full)."""
    svc = request.app[SERVICE]
    outpoint, secret = _v23_path(request)
    payment = await _payment(request)
    st = await svc.locate(outpoint, Family.V2_3, secret=secret)
    return json_response(_result_json(await svc.pay(outpoint, payment, st)))


async def v23_close(request: web.Request) -> web.Response:
    """PUT /v2/channels/{txid}/{vout}/close?secret=: closing payment whose value is the fee."""
    svc = request.app[SERVICE]
    outpoint, secret = _v23_path(request)
    payment = await _payment(request)
    st = await svc.locate(outpoint, Family.V2_3, secret=secret)
    return json_response(_result_json(await svc.close_v2(outpoint, payment, st)))


def add_routes(app: web.Application, options: Handler | None = None) -> None:
    """Register the v2-seed and v2.3.0 routes."""
    r = app.router
    r.add_get("/v2/funding/{a}/{b}/info", funding_info)
    r.add_get("/v2/funding/{a}/{b}/begin_open", begin_open)
    seed = "/v2/channels/{pk}/{exp}/{txid}/{vout}"
    r.add_post(seed, seed_open)
    r.add_put(seed, seed_pay)
    r.add_put(seed + "/close", seed_close)
    v23 = "/v2/channels/{txid}/{vout}"
    r.add_post(v23, v23_open)
    r.add_put(v23, v23_pay)
    r.add_put(v23 + "/close", v23_close)
    if options is not None:
        for path in (seed, seed + "/close", v23, v23 + "/close"):
            r.add_route("OPTIONS", path, options)
