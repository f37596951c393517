"""v1 handlers (spec 6.2): query-string API, base64url payment payload; byte-compatible with the JS client.
Registered by the route table (`routes.py`)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from paychan_common.address import Address
from paychan_common.messages import PaymentResult, result_json_v1
from paychan_common.state import Family
from paychan_common.wire_v1 import parse_v1_payload
from paychan_runtime.http import json_response

from ..domain.service import PayChanService
from .keys import SERVICE
from .params import parse_exp_time, parse_outpoint, parse_pubkey, required
from .urls import channel_url


async def funding_info(request: web.Request) -> web.Response:
    """GET /v1/fundingInfo?client_pubkey=&exp_time= (Location: the open URL)."""
    svc = request.app[SERVICE]
    q = request.query
    pk = parse_pubkey(required(q, "client_pubkey"))
    exp = parse_exp_time(required(q, "exp_time"))
    location = (f"{request.scheme}://{request.host}/v1/channels/new?"
                + urlencode({"client_pubkey": pk.hex, "exp_time": exp}))
    return json_response(svc.funding_info_v1(svc.params(pk, exp)).model_dump(), headers={"Location": location})


async def open_channel(request: web.Request) -> web.Response:
    """POST /v1/channels/new?client_pubkey&exp_time&change_address&payment (`test` ignored) -> 201."""
    svc = request.app[SERVICE]
    q = request.query
    pk = parse_pubkey(required(q, "client_pubkey"))
    exp = parse_exp_time(required(q, "exp_time"))
    change = Address.parse(required(q, "change_address"), svc.network)
    payment = parse_v1_payload(required(q, "payment"))
    opened = await svc.open(Family.V1, svc.params(pk, exp), payment, change, None)
    result = opened.result
    headers = {} if result.closed else {"Location": channel_url(request, Family.V1, pk.data, exp, opened.outpoint)}
    return json_response(result_json_v1(result), status=201, headers=headers)


async def pay(request: web.Request) -> web.Response:
    """PUT /v1/channels/{txid}/{vout}?payment= (also .../pay; the fast front, `front.py`, serves it too)."""
    m = request.match_info
    return json_response(result_json_v1(await v1_payment(request.app[SERVICE], m["txid"], m["vout"],
                                                         required(request.query, "payment"))))


async def v1_payment(svc: PayChanService, txid: str, vout: str, payload: str) -> PaymentResult:
    """A payment on the v1 channel of the path (spec 6.2, 7.3)."""
    outpoint = parse_outpoint(txid, vout)
    payment = parse_v1_payload(payload)
    return await svc.pay(outpoint, payment, await svc.locate(outpoint, Family.V1))


async def close(request: web.Request) -> web.Response:
    """DELETE /v1/channels/{txid}/{vout}?payment=<latest payment> -> 202 (spec 6.2)."""
    svc = request.app[SERVICE]
    outpoint = parse_outpoint(request.match_info["txid"], request.match_info["vout"])
    payment = parse_v1_payload(required(request.query, "payment"))
    await svc.locate(outpoint, Family.V1)
    return json_response(result_json_v1(await svc.close_v1(outpoint, payment)), status=202)
