"""`paychan_runtime.metrics.observed`: the final status both the latency histogram and the access log see."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from paychan_runtime.http import Handler
from paychan_runtime.logs import access_log_middleware
from paychan_runtime.metrics import observed


async def _created(_: web.Request) -> web.StreamResponse:
    return web.Response(status=201)


async def _missing(_: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


async def _gone(_: web.Request) -> web.StreamResponse:
    raise asyncio.CancelledError


async def _broken(_: web.Request) -> web.StreamResponse:
    raise RuntimeError("a bug")


@pytest.mark.parametrize(("handler", "status", "raises"), [
    (_created, 201, None),
    (_missing, 404, web.HTTPNotFound),
    (_gone, 499, asyncio.CancelledError),
    (_broken, 500, RuntimeError),
])
async def test_observed_tells_the_final_status_however_the_handler_ended(
        handler: Handler, status: int, raises: type[BaseException] | None) -> None:
    seen: list[tuple[int, float]] = []
    request = make_mocked_request("GET", "/x")
    if raises is None:
        response = await observed(request, handler, lambda s, t: seen.append((s, t)))
        assert response.status == status
    else:
        with pytest.raises(raises):
            await observed(request, handler, lambda s, t: seen.append((s, t)))
    assert [s for s, _ in seen] == [status]
    assert 0 <= seen[0][1] < 5


async def test_the_access_log_says_499_for_a_client_that_went_away(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("paychan.test.access")
    middleware = access_log_middleware(logger=log)
    with caplog.at_level(logging.INFO, logger=log.name), pytest.raises(asyncio.CancelledError):
        await middleware(make_mocked_request("PUT", "/v2/x"), _gone)
    [record] = [r for r in caplog.records if r.name == log.name]
    assert record.status == 499 and record.method == "PUT"  # type: ignore[attr-defined]
