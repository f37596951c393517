"""v1 routes (spec 6.2): query-string API, base64url payment payload; byte-compatible with the JS client."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from paychan_common.address import Address
from paychan_common.errors import ChannelExists
from paychan_common.state import Family, Status
from paychan_common.tx import OutPoint
from paychan_common.wire_v1 import parse_v1_payload
from paychan_runtime.http import Handler, json_response

from ..domain.results import ExistingChannel, PaymentResult
from .keys import SERVICE
from .params import parse_exp_time, parse_outpoint, parse_pubkey, required


def _result_json(r: PaymentResult) -> dict[str, object]:
    return {"channel_status": r.status, "channel_value_left": r.value_left, "value_received": r.value_received,
            "settlement_txid": r.settlement_txid}


def channel_url(request: web.Request, outpoint: OutPoint) -> str:
    """Absolute URL of a v1 channel resource."""
    return f"{request.scheme}://{request.host}/v1/channels/{outpoint.display_txid}/{outpoint.vout}"


async def funding_info(request: web.Request) -> web.Response:
    """GET /v1/fundingInfo?client_pubkey=&exp_time="""
    svc = request.app[SERVICE]
    q = request.query
    pk = parse_pubkey(required(q, "client_pubkey"))
    exp = parse_exp_time(required(q, "exp_time"))
    params = svc.params(pk, exp)
    location = (f"{request.scheme}://{request.host}/v1/channels/new?"
                + urlencode({"client_pubkey": pk.hex, "exp_time": exp}))
    return json_response(svc.funding_info(params, v1=True), headers={"Location": location})


async def open_channel(request: web.Request) -> web.Response:
    """POST /v1/channels/new?client_pubkey&exp_time&change_address&payment (`test` ignored)."""
    svc = request.app[SERVICE]
    q = request.query
    pk = parse_pubkey(required(q, "client_pubkey"))
    exp = parse_exp_time(required(q, "exp_time"))
    change = Address.parse(required(q, "change_address"), svc.network)
    payment = parse_v1_payload(required(q, "payment"))
    try:
        result = await svc.open(Family.V1, svc.params(pk, exp), payment, change, None)
    except ChannelExists as exc:
        if isinstance(exc, ExistingChannel) and exc.existing.status is Status.OPEN:
            exc.headers = {"Location": channel_url(request, exc.existing.outpoint)}
        raise
    headers = {} if result.status == "closed" else {"Location": channel_url(request, result.outpoint)}
    return json_response(_result_json(result), status=201, headers=headers)


async def pay(request: web.Request) -> web.Response:
    """PUT /v1/channels/{txid}/{vout}?payment= (also .../pay)."""
    svc = request.app[SERVICE]
    outpoint = parse_outpoint(request.match_info["txid"], request.match_info["vout"])
    payment = parse_v1_payload(required(request.query, "payment"))
    st = await svc.locate(outpoint, Family.V1)
    result = await svc.pay(outpoint, payment, st)
    return json_response(_result_json(result))


async def close(request: web.Request) -> web.Response:
    """DELETE /v1/channels/{txid}/{vout}?payment=<latest payment> -> 202 (spec 6.2)."""
    svc = request.app[SERVICE]
    outpoint = parse_outpoint(request.match_info["txid"], request.match_info["vout"])
    payment = parse_v1_payload(required(request.query, "payment"))
    await svc.locate(outpoint, Family.V1)
    result = await svc.close_v1(outpoint, payment)
    return json_response(_result_json(result), status=202)


def add_routes(app: web.Application, options: Handler | None = None) -> None:
    """Register the v1 routes."""
    app.router.add_get("/v1/fundingInfo", funding_info)
    app.router.add_post("/v1/channels/new", open_channel)
    for path in ("/v1/channels/{txid}/{vout}", "/v1/channels/{txid}/{vout}/pay"):
        app.router.add_put(path, pay)
    app.router.add_delete("/v1/channels/{txid}/{vout}", close)
    if options is not None:
        for path in ("/v1/channels/new", "/v1/channels/{txid}/{vout}", "/v1/channels/{txid}/{vout}/pay"):
            app.router.add_route("OPTIONS", path, options)
