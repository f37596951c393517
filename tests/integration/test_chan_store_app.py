"""The ChanStore HTTP app through aiohttp's test client, ChanStoreClient against it, config and main()."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chan_store.__main__ import main
from chan_store.app import create_app
from chan_store.client import ChanStoreClient
from chan_store.config import StoreConfig
from chan_store.contract import (
    PAYMENTS_CONTENT_TYPE,
    RESULTS_CONTENT_TYPE,
    ChannelExistsAt,
    PaymentApplied,
    StateConflict,
    decode_payment_results,
    encode_payments_request,
    outpoint_hex,
    payment_item_json,
    state_digest,
    state_hex,
)
from chan_store.leveldb_storage import LevelDBStorage
from chan_store.memory_storage import MemoryStorage
from chan_store.storage import Storage
from paychan_common.errors import (
    ChannelGone,
    ChannelNotFound,
    InvalidInput,
    InvalidPayment,
    ServiceUnavailable,
    Unauthorized,
)
from paychan_common.state import ChannelState, Status
from paychan_runtime.config import ConfigError, load_config
from tests.support.channels import OPENED_AT, make_channel, with_status
from tests.support.storage import FatalRecorder, GatedWriter

TOKEN = "t0ken" * 12
AUTH = {"Authorization": "Bearer " + TOKEN}

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
Client = TestClient[web.Request, web.Application]


def store_config(tmp_path: Path, **storage: Any) -> StoreConfig:
    token_file = tmp_path / "internal.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)  # a token file others may read is refused
    return StoreConfig.model_validate({
        "network": "test",
        "listen": {"host": "127.0.0.1", "port": 17079},
        "auth": {"token_file": str(token_file)},
        "storage": {"path": str(tmp_path / "var" / "chanstore"), **storage},
    })


@pytest.fixture
def fatal() -> FatalRecorder:
    return FatalRecorder()


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tmp_path: Path, fatal: FatalRecorder) -> Client:
    """The app over LevelDB on tmp_path (the production storage factory)."""
    return await aiohttp_client(create_app(store_config(tmp_path), on_fatal=fatal))


async def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await client.post(path, data=orjson.dumps(body), headers=AUTH if headers is None else headers)


async def create(client: Client, state: ChannelState) -> Any:
    resp = await post(client, "/channels", {"state": state_hex(state)})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def assert_error(resp: Any, status: int, cls: str, code: str | None = None) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    assert body["error"]["class"] == cls
    assert isinstance(body["error"]["message"], str)
    if code is not None:
        assert body["error"]["code"] == code
    return body


# --------------------------------------------------------------------------- auth and health


async def test_health_needs_no_token(client: Client) -> None:
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True
    assert body["store_id"].startswith("leveldb:")


@pytest.mark.parametrize("method, path", [
    ("GET", "/stats"), ("GET", "/channels"), ("POST", "/channels"), ("POST", "/payments"),
    ("GET", "/channels/" + "00" * 36), ("POST", "/channels/" + "00" * 36 + "/cas"),
])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_routes_need_the_token(client: Client, method: str, path: str, headers: dict[str, str]) -> None:
    resp = await client.request(method, path, headers=headers, data=b"{}")
    await assert_error(resp, 401, "Unauthorized", "unauthorized")


async def test_unknown_route_is_json_404(client: Client) -> None:
    await assert_error(await client.get("/nothing", headers=AUTH), 404, "InvalidInput", "not_found")
    await assert_error(await client.delete("/channels", headers=AUTH), 405, "InvalidInput")


# --------------------------------------------------------------------------- channels


async def test_create_get_and_exists(client: Client) -> None:
    chan = make_channel(1)
    assert await create(client, chan.state) == {"state": state_hex(chan.state)}
    resp = await client.get("/channels/" + outpoint_hex(chan.outpoint), headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"state": state_hex(chan.state)}

    body = await assert_error(await post(client, "/channels", {"state": state_hex(chan.state)}), 409,
                              "ChannelExists", "channel_exists")
    assert body["existing_outpoint"] == outpoint_hex(chan.outpoint)
    other = make_channel(1, vout=chan.outpoint.vout + 1)
    body = await assert_error(await post(client, "/channels", {"state": state_hex(other.state)}), 409,
                              "ChannelExists", "open_channel_exists")
    assert body["existing_outpoint"] == outpoint_hex(chan.outpoint)

    resp = await client.get("/channels/" + outpoint_hex(make_channel(2).outpoint), headers=AUTH)
    await assert_error(resp, 404, "ChannelNotFound")


@pytest.mark.parametrize("path", ["/channels/zz", "/channels/" + "00" * 35, "/channels/" + "0" * 73])
async def test_get_bad_outpoint(client: Client, path: str) -> None:
    await assert_error(await client.get(path, headers=AUTH), 400, "InvalidInput")


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"state": 5}', b'{"state": "zz"}', b'{"state": "00"}', b'{}', b'{"state": 1.5}',
])
async def test_create_malformed(client: Client, body: bytes) -> None:
    await assert_error(await client.post("/channels", data=body, headers=AUTH), 400, "InvalidInput")


async def test_create_non_open_state_refused(client: Client) -> None:
    state = with_status(make_channel(1).state, Status.CLOSED)
    await assert_error(await post(client, "/channels", {"state": state_hex(state)}), 400, "InvalidInput")


async def test_oversized_body(client: Client) -> None:
    body = b'{"state": "' + b"00" * (1 << 20) + b'"}'
    await assert_error(await client.post("/channels", data=body, headers=AUTH), 400, "InvalidInput",
                       "body_too_large")


async def test_list_and_pages(client: Client) -> None:
    chans = [make_channel(i) for i in range(5)]
    for chan in chans:
        await create(client, chan.state)
    resp = await client.get("/channels", params={"status": "open", "limit": "2"}, headers=AUTH)
    first = await resp.json()
    assert len(first["states"]) == 2 and first["next"] is not None
    seen = list(first["states"])
    cursor = first["next"]
    while cursor is not None:
        page = await (await client.get("/channels", params={"status": "open", "limit": "2", "after": cursor},
                                       headers=AUTH)).json()
        seen += page["states"]
        cursor = page["next"]
    assert sorted(seen) == sorted(state_hex(c.state) for c in chans)
    resp = await client.get("/channels", params={"client_pubkey": chans[0].state.client_pubkey.hex()},
                            headers=AUTH)
    assert await resp.json() == {"states": [state_hex(chans[0].state)], "next": None}
    resp = await client.get("/channels", params={"status": "closed"}, headers=AUTH)
    assert await resp.json() == {"states": [], "next": None}
    resp = await client.get("/channels", params={"status": "open", "expiring_before": str(2**32)}, headers=AUTH)
    assert len((await resp.json())["states"]) == 5


@pytest.mark.parametrize("query", [
    "status=opened", "status=", "limit=0", "limit=1001", "limit=-1", "limit=1.5", "limit=ten",
    "expiring_before=-5", "expiring_before=1e9", "status=open&expiring_before=12.0", "expiring_before=5",
    "client_pubkey=zz", "client_pubkey=02", "after=00", "after=" + "0" * 72 + "&status=open", "color=red",
    "status=open&status=closed",
])
async def test_list_malformed(client: Client, query: str) -> None:
    await assert_error(await client.get("/channels?" + query, headers=AUTH), 400, "InvalidInput")


# --------------------------------------------------------------------------- payments


async def test_payments_mixed_results(client: Client) -> None:
    chan, gone = make_channel(1), make_channel(2)
    await create(client, chan.state)
    await create(client, gone.state)
    closing = with_status(gone.state, Status.CLOSING)
    resp = await post(client, f"/channels/{outpoint_hex(gone.outpoint)}/cas",
                      {"expected": state_digest(gone.state).hex(), "state": state_hex(closing)})
    assert resp.status == 200
    start = chan.state.change_value
    items = [chan.pay(start - 100), chan.pay(start - 50), make_channel(3).pay(1), gone.pay(1),
             chan.pay(start - 300)]
    resp = await post(client, "/payments", {"now": OPENED_AT, "payments": [payment_item_json(i) for i in items]})
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert results[0] == {"ok": True, "value_received": 100, "change_value": start - 100, "status": "open"}
    assert results[1]["ok"] is False and results[1]["error"]["class"] == "InvalidPayment"
    assert results[1]["error"]["code"] == "out_of_order"
    assert results[2]["error"]["class"] == "ChannelNotFound"
    assert results[3]["error"] == {"class": "ChannelGone", "code": "channel_closing",
                                   "message": "channel is closing"}
    assert results[4]["value_received"] == 200
    resp = await client.get("/stats", headers=AUTH)
    stats = await resp.json()
    assert stats["counts"] == {"open": 1, "closing": 1, "closed": 0}
    assert stats["memory"]["live"] == 2
    assert {"commits", "writes", "last_batch_size", "max_batch_size", "total_sync_seconds",
            "last_sync_seconds", "mean_batch_size"} <= set(stats["storage"])


async def test_payments_large_batch_body(client: Client) -> None:
    """A 1,000-item batch (~300 kB) arrives in several TCP chunks and must be read whole."""
    chan = make_channel(1)
    await create(client, chan.state)
    items = [payment_item_json(chan.pay(chan.state.change_value - 7))] * 1000
    body = orjson.dumps({"now": OPENED_AT, "payments": items})
    assert len(body) > 200_000
    resp = await client.post("/payments", data=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    results = (await resp.json())["results"]
    assert [r["value_received"] for r in results] == [7] + [0] * 999


def _item(**changes: Any) -> dict[str, Any]:
    chan = make_channel(1)
    return payment_item_json(chan.pay(chan.state.change_value - 1)) | changes


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"now": 1, "payments": {}}',
    b'{"payments": []}',
    b'{"now": 1.5, "payments": []}',
    b'{"now": -1, "payments": []}',
    b'{"now": true, "payments": []}',
    b'{"now": 1, "payments": [5]}',
    orjson.dumps({"now": 1, "payments": [_item(change_value=10.0)]}),
    orjson.dumps({"now": 1, "payments": [_item(change_value=-10)]}),
    json.dumps({"now": 1, "payments": [_item(change_value=2**64)]}).encode(),
    orjson.dumps({"now": 1, "payments": [_item(signature="xyz")]}),
    orjson.dumps({"now": 1, "payments": [_item(signature="")]}),
    orjson.dumps({"now": 1, "payments": [_item(signature="00" * 81)]}),
    orjson.dumps({"now": 1, "payments": [_item(sighash=256)]}),
    orjson.dumps({"now": 1, "payments": [_item(outpoint="00" * 35)]}),
    orjson.dumps({"now": 1, "payments": [_item(now=-2)]}),
    orjson.dumps({"now": 1, "payments": [_item(extra=1)]}),
    orjson.dumps({"now": 1, "payments": [0] * 10_001}),
])
async def test_payments_malformed(client: Client, body: bytes) -> None:
    await assert_error(await client.post("/payments", data=body, headers=AUTH), 400, "InvalidInput")


async def test_payments_too_many_items(client: Client) -> None:
    body = orjson.dumps({"now": 1, "payments": [0] * 10_001})
    await assert_error(await client.post("/payments", data=body, headers=AUTH), 400, "InvalidInput",
                       "too_many_items")


async def test_payments_binary_body_is_answered_in_binary(client: Client) -> None:
    chan, gone = make_channel(1), make_channel(2)
    await create(client, chan.state)
    start = chan.state.change_value
    items = [chan.pay(start - 100, OPENED_AT), chan.pay(start - 50, OPENED_AT + 5), gone.pay(1),
             chan.pay(start - 300, OPENED_AT + 7)]
    resp = await client.post("/payments", data=encode_payments_request(items, OPENED_AT),
                             headers=AUTH | {"Content-Type": PAYMENTS_CONTENT_TYPE})
    assert resp.status == 200 and resp.content_type == RESULTS_CONTENT_TYPE
    results = decode_payment_results(await resp.read())
    assert results[0] == PaymentApplied(100, start - 100, Status.OPEN)
    assert isinstance(results[1], InvalidPayment) and results[1].code == "out_of_order"
    assert isinstance(results[2], ChannelNotFound)
    assert results[3] == PaymentApplied(200, start - 300, Status.OPEN)
    resp = await client.get("/channels/" + outpoint_hex(chan.outpoint), headers=AUTH)
    stored = ChannelState.parse(bytes.fromhex((await resp.json())["state"]))
    assert stored.change_value == start - 300 and stored.last_payment_time == OPENED_AT + 7


def _binary_body() -> bytes:
    chan = make_channel(1)
    return encode_payments_request([chan.pay(chan.state.change_value - 1)], OPENED_AT)


@pytest.mark.parametrize("body", [
    b"", b"{}", b"\x02" + _binary_body()[1:], _binary_body()[:-1], _binary_body() + b"\x00",
    _binary_body()[:9] + b"\x02" + _binary_body()[10:],  # count 2, one item
    _binary_body()[:13 + 36 + 8 + 1] + b"\x04" + _binary_body()[13 + 36 + 8 + 2:],  # unknown flags
    _binary_body()[:13 + 36 + 8 + 2] + b"\x00" + _binary_body()[13 + 36 + 8 + 3:],  # empty signature
])
async def test_payments_malformed_binary_gets_a_json_400_and_changes_nothing(client: Client, body: bytes) -> None:
    chan = make_channel(1)
    await create(client, chan.state)
    resp = await client.post("/payments", data=body, headers=AUTH | {"Content-Type": PAYMENTS_CONTENT_TYPE})
    error = await assert_error(resp, 400, "InvalidInput")
    assert error["error"]["code"] in {"bad_binary", "invalid_input"}
    resp = await client.get("/channels/" + outpoint_hex(chan.outpoint), headers=AUTH)
    assert (await resp.json())["state"] == state_hex(chan.state)


async def test_client_falls_back_to_json_for_a_store_without_binary_batches(
        aiohttp_server: AiohttpServer, tmp_path: Path, fatal: FatalRecorder) -> None:
    """A ChanStore older than the binary body read every body as JSON: it refused the binary one whole
    (400 bad_json) before applying anything; the client resends that batch, and all later ones, as JSON."""
    refused: list[str] = []

    @web.middleware
    async def json_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/payments" and request.content_type != "application/json":
            refused.append(request.content_type)
            return web.json_response({"error": {"class": "InvalidInput", "code": "bad_json",
                                                "message": "request body is not valid JSON"}}, status=400)
        response: web.StreamResponse = await handler(request)
        return response

    app = create_app(store_config(tmp_path), storage_factory=lambda _c: MemoryStorage(), on_fatal=fatal)
    app.middlewares.insert(0, json_only)
    server = await aiohttp_server(app)
    chan_client = ChanStoreClient(str(server.make_url("")), TOKEN)
    try:
        chan = make_channel(1)
        await chan_client.create(chan.state)
        start = chan.state.change_value
        for i in range(3):
            pay = chan.pay(start - 10 * (i + 1))
            applied = await chan_client.apply_payment(pay.outpoint, pay.change_value, pay.der, pay.sighash,
                                                      OPENED_AT)
            assert applied == PaymentApplied(10, start - 10 * (i + 1), Status.OPEN)
        assert refused == [PAYMENTS_CONTENT_TYPE]  # asked once, then JSON only
    finally:
        await chan_client.close()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
async def test_client_payments_on_the_postgres_engine(aiohttp_server: AiohttpServer, tmp_path: Path,
                                                      fatal: FatalRecorder, pg_server: Any, binary: bool) -> None:
    """The same POST /payments, both body formats, answered by the PostgreSQL engine through the app."""
    name = f"app_{'bin' if binary else 'json'}_{random.randrange(1 << 30)}"
    pg_server.psql(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn.replace(f"/{pg_server.database}?", f"/{name}?")
    config = store_config(tmp_path)
    config = config.model_copy(update={"storage": type(config.storage).model_validate(
        {"engine": "postgres", "dsn": dsn})})
    server = await aiohttp_server(create_app(config, on_fatal=fatal))
    chan_client = ChanStoreClient(str(server.make_url("")), TOKEN, binary=binary)
    try:
        chan = make_channel(1)
        await chan_client.create(chan.state)
        start = chan.state.change_value
        items = [chan.pay(start - 100), chan.pay(start - 50), make_channel(2).pay(1), chan.pay(start - 300)]
        results = await chan_client.apply_payments(items, OPENED_AT)
        assert results[0] == PaymentApplied(100, start - 100, Status.OPEN)
        assert isinstance(results[1], InvalidPayment) and results[1].code == "out_of_order"
        assert isinstance(results[2], ChannelNotFound)
        assert results[3] == PaymentApplied(200, start - 300, Status.OPEN)
        stored = await chan_client.get(chan.outpoint)
        assert stored is not None and stored.change_value == start - 300 and stored.payment_count == 3
    finally:
        await chan_client.close()


# --------------------------------------------------------------------------- compare-and-set


async def test_cas_success_and_conflict(client: Client) -> None:
    chan = make_channel(1)
    await create(client, chan.state)
    path = f"/channels/{outpoint_hex(chan.outpoint)}/cas"
    closing = with_status(chan.state, Status.CLOSING)
    resp = await post(client, path, {"expected": state_digest(chan.state).hex(), "state": state_hex(closing)})
    assert resp.status == 200
    assert await resp.json() == {"state": state_hex(closing)}
    resp = await post(client, path, {"expected": state_digest(chan.state).hex(), "state": state_hex(closing)})
    body = await assert_error(resp, 409, "Conflict", "state_conflict")
    assert body["current"] == state_hex(closing)
    other = make_channel(2)
    resp = await post(client, f"/channels/{outpoint_hex(other.outpoint)}/cas",
                      {"expected": state_digest(other.state).hex(), "state": state_hex(other.state)})
    await assert_error(resp, 404, "ChannelNotFound")


@pytest.mark.parametrize("change", [
    {"expected": "00"}, {"expected": "zz" * 32}, {"expected": 5}, {"state": "00"}, {"state": None},
    {"state": "other-outpoint"},
])
async def test_cas_malformed(client: Client, change: dict[str, Any]) -> None:
    chan = make_channel(1)
    await create(client, chan.state)
    body = {"expected": state_digest(chan.state).hex(), "state": state_hex(chan.state)} | change
    if body["state"] == "other-outpoint":
        body["state"] = state_hex(make_channel(2).state)
    resp = await post(client, f"/channels/{outpoint_hex(chan.outpoint)}/cas", body)
    await assert_error(resp, 400, "InvalidInput")


# --------------------------------------------------------------------------- fail-stop through the app


async def test_app_fail_stop_answers_error_and_calls_hook(aiohttp_client: AiohttpClient, tmp_path: Path,
                                                          fatal: FatalRecorder) -> None:
    writer = GatedWriter()

    def factory(config: StoreConfig) -> Storage:
        return LevelDBStorage(config.storage.directory, writer=writer)

    config = store_config(tmp_path)
    config.storage.directory.parent.mkdir(parents=True)
    client = await aiohttp_client(create_app(config, storage_factory=factory, on_fatal=fatal))
    chan = make_channel(1)
    await create(client, chan.state)
    writer.fail = True
    item = payment_item_json(chan.pay(chan.state.change_value - 5))
    resp = await post(client, "/payments", {"now": OPENED_AT, "payments": [item]})
    await assert_error(resp, 503, "ServiceUnavailable")
    assert len(fatal.calls) == 1
    await assert_error(await client.get("/channels/" + outpoint_hex(chan.outpoint), headers=AUTH), 503,
                       "ServiceUnavailable")
    resp = await client.get("/health")
    assert resp.status == 503 and await resp.json() == {"ok": False}


# --------------------------------------------------------------------------- ChanStoreClient


@pytest.fixture(params=["binary", "json"])
async def store_client(aiohttp_server: AiohttpServer, tmp_path: Path, fatal: FatalRecorder,
                       request: pytest.FixtureRequest) -> AsyncIterator[ChanStoreClient]:
    """A ChanStoreClient talking to the app over TCP (MemoryStorage behind it), payment batches in either
    body format."""
    app = create_app(store_config(tmp_path), storage_factory=lambda _c: MemoryStorage(), on_fatal=fatal)
    server = await aiohttp_server(app)
    chan_client = ChanStoreClient(str(server.make_url("")), TOKEN, binary=request.param == "binary")
    yield chan_client
    await chan_client.close()


async def test_client_create_get_exists(store_client: ChanStoreClient) -> None:
    assert await store_client.health()
    chan = make_channel(1)
    assert await store_client.create(chan.state) == chan.state
    assert await store_client.get(chan.outpoint) == chan.state
    assert await store_client.get(make_channel(2).outpoint) is None
    with pytest.raises(ChannelExistsAt) as info:
        await store_client.create(chan.state)
    assert info.value.existing_outpoint == chan.outpoint
    other = make_channel(1, vout=chan.outpoint.vout + 1)
    with pytest.raises(ChannelExistsAt) as info:
        await store_client.create(other.state)
    assert info.value.code == "open_channel_exists"
    assert info.value.existing_outpoint == chan.outpoint


async def test_client_payments_errors_cas_list_stats(store_client: ChanStoreClient) -> None:
    chan = make_channel(1)
    await store_client.create(chan.state)
    start = chan.state.change_value
    pay = chan.pay(start - 400)
    applied = await store_client.apply_payment(pay.outpoint, pay.change_value, pay.der, pay.sighash, OPENED_AT)
    assert applied == PaymentApplied(400, start - 400, Status.OPEN)
    late = chan.pay(start - 100)
    with pytest.raises(InvalidPayment) as info:
        await store_client.apply_payment(late.outpoint, late.change_value, late.der, late.sighash, OPENED_AT)
    assert info.value.code == "out_of_order"
    unknown = make_channel(7).pay(5)
    with pytest.raises(ChannelNotFound):
        await store_client.apply_payment(unknown.outpoint, 5, unknown.der, unknown.sighash, OPENED_AT)
    with pytest.raises(InvalidInput):  # refused locally, never sent (it would fail the whole batch)
        await store_client.apply_payment(pay.outpoint, -1, pay.der, pay.sighash, OPENED_AT)

    current = await store_client.get(chan.outpoint)
    assert current is not None
    closing = with_status(current, Status.CLOSING)
    with pytest.raises(StateConflict) as conflict:
        await store_client.compare_and_set(chan.state, closing)
    assert conflict.value.current == current
    assert await store_client.compare_and_set(current, closing) == closing
    with pytest.raises(ChannelGone):
        await store_client.apply_payment(pay.outpoint, 1, pay.der, pay.sighash, OPENED_AT)

    assert await store_client.list(status=Status.CLOSING) == [closing]
    page = await store_client.list_page(client_pubkey=chan.state.client_pubkey, limit=1)
    assert page.states == (closing,) and page.next == chan.outpoint
    stats = await store_client.stats()
    assert stats.counts == {"open": 0, "closing": 1, "closed": 0}
    assert stats.storage.writes >= 3
    results = await store_client.apply_payments([unknown], OPENED_AT)
    assert isinstance(results[0], ChannelNotFound)


async def test_client_coalesces_concurrent_payments(store_client: ChanStoreClient) -> None:
    chan = make_channel(1)
    await store_client.create(chan.state)
    start = chan.state.change_value
    items = [chan.pay(start - 1000 * (i + 1), OPENED_AT + i) for i in range(50)]
    random.Random(7).shuffle(items)
    outcomes = await asyncio.gather(
        *(store_client.apply_payment(i.outpoint, i.change_value, i.der, i.sighash, i.now or 0) for i in items),
        return_exceptions=True)
    successes = [o for o in outcomes if isinstance(o, PaymentApplied)]
    failures = [o for o in outcomes if not isinstance(o, PaymentApplied)]
    assert all(isinstance(f, InvalidPayment) and f.code == "out_of_order" for f in failures)
    final = await store_client.get(chan.outpoint)
    assert final is not None
    assert sum(s.value_received for s in successes) == start - final.change_value
    assert final.payment_count == 1 + len(successes)
    assert store_client.batches_sent < 50  # coalesced
    # each caller got its own item's result
    for item, outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, PaymentApplied):
            assert outcome.change_value == item.change_value


async def test_client_one_payment_at_low_load_is_sent_at_once(store_client: ChanStoreClient) -> None:
    chan = make_channel(1)
    await store_client.create(chan.state)
    for i in range(3):
        item = chan.pay(chan.state.change_value - 10 * (i + 1))
        await store_client.apply_payment(item.outpoint, item.change_value, item.der, item.sighash, OPENED_AT)
    assert store_client.batches_sent == 3


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_client_transport_failure_fails_every_caller() -> None:
    chan_client = ChanStoreClient(f"http://127.0.0.1:{_unused_port()}", TOKEN, max_in_flight=1, overlap_below=0)
    try:
        item = make_channel(1).pay(5)
        outcomes = await asyncio.gather(
            *(chan_client.apply_payment(item.outpoint, 5, item.der, item.sighash, OPENED_AT) for _ in range(5)),
            return_exceptions=True)
        assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes
        assert chan_client.batches_sent == 2  # one alone, then the four that queued meanwhile
    finally:
        await chan_client.close()


async def test_client_wrong_token(aiohttp_server: AiohttpServer, tmp_path: Path, fatal: FatalRecorder) -> None:
    app = create_app(store_config(tmp_path), storage_factory=lambda _c: MemoryStorage(), on_fatal=fatal)
    server = await aiohttp_server(app)
    chan_client = ChanStoreClient(str(server.make_url("")), "wrong")
    try:
        with pytest.raises(Unauthorized):
            await chan_client.get(make_channel(1).outpoint)
    finally:
        await chan_client.close()


async def test_client_over_unix_socket(tmp_path: Path, fatal: FatalRecorder) -> None:
    app = create_app(store_config(tmp_path), on_fatal=fatal)
    runner = web.AppRunner(app)
    await runner.setup()
    path = str(tmp_path / "store.sock")
    site = web.UnixSite(runner, path)
    await site.start()
    chan_client = ChanStoreClient("http://chanstore", TOKEN, unix_path=path)
    try:
        chan = make_channel(1)
        await chan_client.create(chan.state)
        assert await chan_client.get(chan.outpoint) == chan.state
    finally:
        await chan_client.close()
        await runner.cleanup()


# --------------------------------------------------------------------------- config and main()


def test_config_files_load() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("debug", "test", "regtest", "live"):
        config = load_config(root / "config" / name / "store.toml", StoreConfig)
        assert config.storage.sync
    assert load_config(root / "config/live/store.toml", StoreConfig).listen.port == 17078


@pytest.mark.parametrize("listen", [
    {"host": "0.0.0.0", "port": 17079}, {"host": "127.0.0.1"}, {"port": 1, "unix_path": "x.sock"},
    {"port": "17079"}, {"port": 70000},
])
def test_config_refuses_bad_listen(tmp_path: Path, listen: dict[str, Any]) -> None:
    text = ('network = "test"\n[listen]\n' + "".join(f"{k} = {orjson.dumps(v).decode()}\n" for k, v in listen.items())
            + '[auth]\ntoken_file = "t"\n[storage]\npath = "db"\n')
    (tmp_path / "store.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "store.toml", StoreConfig)
    assert "listen" in info.value.message


def test_main_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "store.toml").write_text('network = "test"\n[listen]\nport = 1\n')
    assert main([str(tmp_path / "store.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chan-store: invalid config") and err.count("\n") == 1
    assert "auth" in err and "storage" in err
    assert main([str(tmp_path / "missing.toml")]) == 2


async def test_app_reloads_after_restart(aiohttp_client: AiohttpClient, tmp_path: Path,
                                         fatal: FatalRecorder) -> None:
    config = store_config(tmp_path, sync=False)
    chan = make_channel(1)
    app = create_app(config, on_fatal=fatal)
    client = await aiohttp_client(app)
    await create(client, chan.state)
    await client.close()  # runs the cleanup context: the storage is closed
    client = await aiohttp_client(create_app(config, on_fatal=fatal))
    resp = await client.get("/channels/" + outpoint_hex(chan.outpoint), headers=AUTH)
    assert await resp.json() == {"state": state_hex(chan.state)}
    stats = await (await client.get("/stats", headers=AUTH)).json()
    assert stats["counts"]["open"] == 1


def test_state_digest_is_sha256_of_serialization() -> None:
    import hashlib

    state = make_channel(1).state
    assert state_digest(state) == hashlib.sha256(state.serialize()).digest()
    assert state_digest(dataclasses.replace(state, payment_count=2)) != state_digest(state)


def test_default_fail_stop_ends_the_process_with_status_70() -> None:
    code = "from chan_store.store import exit_process; exit_process(OSError('disk')); print('survived')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 70
    assert "survived" not in done.stdout
