"""The value callback (spec 10.6 + its Recommended resolution) with a real small aiohttp application: its
app_data comes back as application_data; slow, down or broken applications never fail a stored payment."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from paychan_server.config import ServerConfig
from tests.support.channels import CLIENT_REFUND, TestChannel
from tests.support.ports import reserve_port
from tests.support.stack import AiohttpClient, AiohttpServer, Stack, exp_time, start_stack

Behaviour = Callable[[dict[str, Any]], Awaitable[web.Response]]


class App:
    """The application behind the server: records each callback; answers as `behaviour` says."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.behaviour: Behaviour = self.thanks

    @staticmethod
    async def thanks(body: dict[str, Any]) -> web.Response:
        return web.json_response({"app_data": f"thanks for {body['amount']} sat"})

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        return await self.behaviour(body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/value_received", self.handle)
        return app


@pytest.fixture
async def application(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[App, TestServer]]:
    """The application on a test server."""
    app = App()
    server = await aiohttp_server(app.app())
    yield app, server


async def _stack(tmp_path: Path, aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient,
                 url: str) -> AsyncIterator[Stack]:
    async for s in start_stack(tmp_path, aiohttp_server, aiohttp_client,
                               {"callback": {"enable": True, "url": url, "timeout_seconds": 0.5}}):
        yield s


@pytest.fixture
async def stack(tmp_path: Path, aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient,
                application: tuple[App, TestServer]) -> AsyncIterator[Stack]:
    """The stack with the callback pointing at the application."""
    url = str(application[1].make_url("")).rstrip("/")  # the server appends /value_received
    async for s in _stack(tmp_path, aiohttp_server, aiohttp_client, url):
        yield s


async def _payment_count(stack: Stack, ch: TestChannel) -> int:
    _, detail = await stack.mgmt("GET", f"/channels/{ch.op.display_txid}/{ch.op.vout}")
    return int(detail["payment_count"])


async def test_app_data_comes_back_as_application_data(stack: Stack, application: tuple[App, TestServer]) -> None:
    app, _ = application
    ch = TestChannel(exp_time=exp_time())
    change = await stack.open_v23(ch)
    assert app.calls == []  # not for the opening payment (spec 10.6)
    body = await stack.pay_v23(ch, change - 1234)
    assert body["application_data"] == "thanks for 1234 sat" and body["value_received"] == 1234
    assert app.calls == [{
        "amount": 1234, "sender": ch.pk, "chan_value_left": change - 1234, "chan_total_value": ch.funding_value,
        "funding_txid": ch.op.display_txid, "funding_vout": ch.op.vout, "channel_status": "open",
        "application_data": ""}]


async def test_v2_seed_and_v1_payments_call_it_too(stack: Stack, application: tuple[App, TestServer]) -> None:
    app, _ = application
    seed = TestChannel(exp_time=exp_time())
    change = seed.funding_value - 100_000
    assert (await stack.public.post(seed.seed_url, json=seed.v2_body(change))).status == 201
    body = seed.v2_body(change - 10)
    body["application_data"] = "order 42"
    r = await stack.public.put(seed.seed_url, json=body)
    assert r.status == 200 and (await r.json())["application_data"] == "thanks for 10 sat"
    assert app.calls[-1]["application_data"] == "order 42"  # the client's data is forwarded

    v1 = TestChannel(exp_time=exp_time())
    change = v1.funding_value - 200_000
    r = await stack.public.post("/v1/channels/new", params={
        "client_pubkey": v1.pk, "exp_time": v1.exp_time, "change_address": CLIENT_REFUND,
        "payment": v1.v1_payload(change, CLIENT_REFUND)})
    assert r.status == 201, await r.text()
    r = await stack.public.put(f"/v1/channels/{v1.op.display_txid}/{v1.op.vout}",
                               params={"payment": v1.v1_payload(change - 3, CLIENT_REFUND)})
    assert r.status == 200
    assert "application_data" not in await r.json()  # v1 has no such field
    assert app.calls[-1]["amount"] == 3 and len(app.calls) == 2

    r = await stack.public.put(seed.seed_url + "/close", json=seed.v2_body(change=seed.funding_value - 100_010,
                                                                            address=CLIENT_REFUND))
    assert r.status == 200 and (await r.json())["application_data"] == ""
    assert len(app.calls) == 2  # not for the closing payment


async def _sleep_long(body: dict[str, Any]) -> web.Response:
    await asyncio.sleep(3)
    return web.json_response({"app_data": "too late"})


async def _error(body: dict[str, Any]) -> web.Response:
    return web.json_response({"oops": True}, status=500)


async def _not_json(body: dict[str, Any]) -> web.Response:
    return web.Response(text="<html>hello</html>")


async def _wrong_type(body: dict[str, Any]) -> web.Response:
    return web.json_response({"app_data": 42})


@pytest.mark.parametrize(("behaviour", "outcome"), [
    (_sleep_long, "timeout"), (_error, "http_error"), (_not_json, "bad_answer"), (_wrong_type, "bad_answer")])
async def test_failing_app_never_fails_a_stored_payment(stack: Stack, application: tuple[App, TestServer],
                                                        caplog: pytest.LogCaptureFixture, behaviour: Behaviour,
                                                        outcome: str) -> None:
    app, _ = application
    app.behaviour = behaviour
    ch = TestChannel(exp_time=exp_time())
    change = await stack.open_v23(ch)
    with caplog.at_level(logging.WARNING, logger="paychan.callback"):
        loop = asyncio.get_running_loop()
        started = loop.time()
        body = await stack.pay_v23(ch, change - 500)
        elapsed = loop.time() - started
    assert body["application_data"] == "" and body["value_received"] == 500 and body["channel_status"] == "open"
    assert elapsed < 2.5  # bounded by callback.timeout_seconds (0.5 s), not by the application
    assert await _payment_count(stack, ch) == 2  # stored
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "paychan.callback"]
    assert len(warnings) == 1 and outcome in warnings[0].getMessage()
    assert stack.metrics.callback_calls.labels(outcome)._value.get() == 1
    # The next payment still works, and the warning is rate-limited.
    with caplog.at_level(logging.WARNING, logger="paychan.callback"):
        await stack.pay_v23(ch, change - 600)
    assert len([r for r in caplog.records if r.name == "paychan.callback"]) == 1
    assert await _payment_count(stack, ch) == 3


@pytest.fixture
async def down_stack(tmp_path: Path, aiohttp_server: AiohttpServer,
                     aiohttp_client: AiohttpClient) -> AsyncIterator[Stack]:
    """The callback points at a port where nothing listens."""
    async for s in _stack(tmp_path, aiohttp_server, aiohttp_client, f"http://127.0.0.1:{reserve_port()}"):
        yield s


async def test_app_down(down_stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    ch = TestChannel(exp_time=exp_time())
    change = await down_stack.open_v23(ch)
    with caplog.at_level(logging.WARNING, logger="paychan.callback"):
        body = await down_stack.pay_v23(ch, change - 1)
    assert body["application_data"] == "" and body["value_received"] == 1
    assert await _payment_count(down_stack, ch) == 2
    assert any("unreachable" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_callback_config_needs_a_url() -> None:
    with pytest.raises(ValueError, match=r"callback\.url"):
        ServerConfig.model_validate({"bitcoin": {"network": "test"}, "debug": {"enable": True},
                                     "auth": {"token_file": "t"}, "callback": {"enable": True}})
