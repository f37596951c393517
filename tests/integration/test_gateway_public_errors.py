"""paychan-gateway answers internal failures like PayChanServer: generically, the detail in its log only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from paychan_common.errors import InvalidPayment, PaychanError, ServiceUnavailable, SigningRefused
from paychan_gateway.answers import UpstreamError, error_middleware

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


def _app(err: Exception) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        raise err

    app = web.Application(middlewares=[error_middleware("http://127.0.0.1:1")])
    app.router.add_get("/paid", handler)
    return app


@pytest.mark.parametrize(("err", "status", "text"), [
    (ServiceUnavailable("ChanStore did not answer at http://127.0.0.1:7001 (ReadTimeout)"), 503,
     "service temporarily unavailable; retry later"),
    (SigningRefused("fee 20000 is above max_fee 10000", code="fee_too_high"), 500, "internal server error"),
    (PaychanError("chan store sent a malformed state: KeyError"), 500, "internal server error"),
], ids=["store-down", "signer-cap", "other"])
async def test_gateway_keeps_internal_detail_in_its_log(aiohttp_client: AiohttpClient,
                                                        caplog: pytest.LogCaptureFixture, err: PaychanError,
                                                        status: int, text: str) -> None:
    client = await aiohttp_client(_app(err))
    with caplog.at_level(logging.WARNING):
        resp = await client.get("/paid")
    public = await resp.text()
    assert resp.status == status and (await resp.json())["message"] == text
    for leak in ("ChanStore", "7001", "ReadTimeout", "max_fee", "10000", "KeyError", "chan store", "fee_too_high"):
        assert leak not in public
    assert err.message in caplog.text


async def test_gateway_client_errors_keep_their_message(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(_app(InvalidPayment("out-of-order payment", code="out_of_order")))
    resp = await client.get("/paid")
    assert resp.status == 400 and (await resp.json())["code"] == "out_of_order"


async def test_gateway_upstream_errors_keep_their_status_and_code(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(_app(UpstreamError("the upstream is unreachable; nothing was charged")))
    resp = await client.get("/paid")
    assert resp.status == 502 and (await resp.json())["code"] == "upstream_unavailable"
