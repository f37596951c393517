"""Public error bodies never name internal services, exception classes or caps; the detail goes to the log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from paychan_common.errors import InvalidPayment, PaychanError, ServiceUnavailable, SigningRefused
from paychan_runtime.bitcoin_rpc import RpcError
from paychan_server.api.middleware import error_middleware

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]

INTERNAL = [
    (ServiceUnavailable("SigningService unreachable: ClientConnectorError"), 503,
     "service temporarily unavailable; retry later"),
    (ServiceUnavailable("bitcoin node unreachable at http://127.0.0.1:8332 (ConnectError)", code="node_unreachable"),
     503, "service temporarily unavailable; retry later"),
    (SigningRefused("fee 20000 is above max_fee 10000", code="fee_too_high"), 500, "internal server error"),
    (PaychanError("chan store sent a malformed state: KeyError"), 500, "internal server error"),
    (RpcError(-26, "bad-txns-inputs-missingorspent", "sendrawtransaction"), 500, "internal server error"),
]


def _app(err: Exception) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        raise err

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/v2/x", handler)
    app.router.add_get("/v1/x", handler)
    return app


@pytest.mark.parametrize(("err", "status", "text"), INTERNAL,
                         ids=["signer-down", "node-down", "signer-cap", "other", "node-502"])
@pytest.mark.parametrize("path", ["/v1/x", "/v2/x"])
async def test_internal_detail_stays_in_the_log(aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture,
                                                err: PaychanError, status: int, text: str, path: str) -> None:
    client = await aiohttp_client(_app(err))
    with caplog.at_level(logging.WARNING, logger="paychan.server"):
        resp = await client.get(path)
    body = await resp.json()
    assert resp.status == status and resp.reason == text
    assert body["message"] == text and body["code"] in ("service_unavailable", "internal_error")
    public = (await resp.text()) + (resp.reason or "")
    for leak in ("SigningService", "ClientConnectorError", "ConnectError", "bitcoin", "max_fee", "10000", "KeyError",
                 "chan store", "node_unreachable", "fee_too_high", "missingorspent", "sendrawtransaction", "-26"):
        assert leak not in public
    assert err.message in caplog.text  # the operator still sees what happened


async def test_client_errors_keep_their_message(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(_app(InvalidPayment("server dust limit of 700 not respected by client change "
                                                      "output", code="dust_limit")))
    resp = await client.get("/v2/x")
    assert resp.status == 400 and (await resp.json())["code"] == "dust_limit"
