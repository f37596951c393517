"""The management API (spec 10.5, extended) on its own loopback port: auth, each route, filters, pagination,
totals by hours to expiry, and the manual close, against an in-process stack (see operator_stack.py)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from paychan_server.config import ServerConfig
from paychan_server.operator.totals import BUCKETS, bucket_index
from tests.support.channels import TestChannel
from tests.support.stack import (
    METRICS_TOKEN,
    AiohttpClient,
    AiohttpServer,
    Stack,
    exp_time,
    start_stack,
)


def _cid(ch: TestChannel) -> str:
    return f"{ch.op.display_txid}:{ch.op.vout}"


async def _three_channels(stack: Stack) -> list[TestChannel]:
    """Channels expiring in 10, 4 and 8 days; the second gets 3 payments of 7 sat."""
    chans = [TestChannel(exp_time=exp_time(d)) for d in (10, 4, 8)]
    for ch in chans:
        await stack.open_v23(ch)
    change = stack.openings[chans[1].pk]
    for _ in range(3):
        change -= 7
        await stack.pay_v23(chans[1], change)
    return chans


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize("path", ["/channels", "/totals", "/metrics", "/health", "/nope",
                                  "/channels/" + "ab" * 32 + "/0"])
@pytest.mark.parametrize("token", [None, "wrong", "m4nagement"])
async def test_every_route_needs_the_token(stack: Stack, path: str, token: str | None) -> None:
    status, body = await stack.mgmt("GET", path, token=token)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


async def test_auth_failure_on_close_changes_nothing(stack: Stack) -> None:
    ch = TestChannel(exp_time=exp_time())
    await stack.open_v23(ch)
    status, _ = await stack.mgmt("POST", f"/channels/{ch.op.display_txid}/{ch.op.vout}/close", token="x")
    assert status == 401
    _, detail = await stack.mgmt("GET", f"/channels/{ch.op.display_txid}/{ch.op.vout}")
    assert detail["status"] == "open"


async def test_metrics_token_opens_metrics_only(stack: Stack) -> None:
    status, text = await stack.mgmt("GET", "/metrics", token=METRICS_TOKEN)
    assert status == 200 and "paychan_payments_total" in text
    for method, path in (("GET", "/channels"), ("GET", "/totals"), ("POST", "/channels/" + "ab" * 32 + "/0/close")):
        status, _ = await stack.mgmt(method, path, token=METRICS_TOKEN)
        assert status == 401, (method, path)


async def test_unknown_route_with_token_is_json_404(stack: Stack) -> None:
    status, body = await stack.mgmt("GET", "/nope")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await stack.mgmt("DELETE", "/channels")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


def test_management_host_must_be_loopback() -> None:
    with pytest.raises(ValueError, match=r"management\.host"):
        ServerConfig.model_validate({"bitcoin": {"network": "test"}, "debug": {"enable": True},
                                     "auth": {"token_file": "t"},
                                     "management": {"enable": True, "host": "0.0.0.0", "token_file": "m"}})
    with pytest.raises(ValueError, match=r"management\.token_file"):
        ServerConfig.model_validate({"bitcoin": {"network": "test"}, "debug": {"enable": True},
                                     "auth": {"token_file": "t"}, "management": {"enable": True}})


# ---------------------------------------------------------------- channels


async def test_list_all_and_filters(stack: Stack) -> None:
    chans = await _three_channels(stack)
    status, body = await stack.mgmt("GET", "/channels")
    assert status == 200 and body["count"] == 3 and body["next"] is None
    assert {c["channel_id"] for c in body["channels"]} == {_cid(c) for c in chans}

    _, by_key = await stack.mgmt("GET", "/channels", params={"client_pubkey": chans[1].pk})
    assert [c["channel_id"] for c in by_key["channels"]] == [_cid(chans[1])]
    assert by_key["channels"][0]["payment_count"] == 4 and by_key["channels"][0]["value_received"] == 100_021

    _, open_ = await stack.mgmt("GET", "/channels", params={"status": "open"})
    assert [c["expires"] for c in open_["channels"]] == sorted(c.exp_time for c in chans)  # by expiry

    before = chans[2].exp_time + 1  # the 4- and 8-day channels
    _, soon = await stack.mgmt("GET", "/channels", params={"status": "open", "expiring_before": str(before)})
    assert {c["channel_id"] for c in soon["channels"]} == {_cid(chans[1]), _cid(chans[2])}

    _, closed = await stack.mgmt("GET", "/channels", params={"status": "closed"})
    assert closed["channels"] == []


@pytest.mark.parametrize("params", [{"status": "open"}, {}])
async def test_pagination_walks_every_channel_once(stack: Stack, params: dict[str, str]) -> None:
    chans = await _three_channels(stack)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, "limit": "2"} | ({"after": cursor} if cursor else {})
        status, body = await stack.mgmt("GET", "/channels", params=query)
        assert status == 200
        pages += 1
        seen += [c["channel_id"] for c in body["channels"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(_cid(c) for c in chans) and pages == 2


@pytest.mark.parametrize(("params", "word"), [
    ({"status": "bogus"}, "status"), ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
    ({"limit": "x"}, "limit"), ({"after": "nope"}, "after"), ({"after": "zz:1"}, ""),
    ({"client_pubkey": "02ab"}, ""), ({"expiring_before": "123"}, "expiring_before"),
    ({"expiring_before": "-1", "status": "open"}, "expiring_before"), ({"colour": "red"}, "colour"),
])
async def test_list_rejects_bad_filters(stack: Stack, params: dict[str, str], word: str) -> None:
    status, body = await stack.mgmt("GET", "/channels", params=params)
    assert status == 400, body
    assert body["error"]["class"] == "InvalidInput" and word in body["error"]["message"]


async def test_channel_detail(stack: Stack) -> None:
    chans = await _three_channels(stack)
    ch = chans[1]
    status, body = await stack.mgmt("GET", f"/channels/{ch.op.display_txid}/{ch.op.vout}")
    assert status == 200
    assert body["sender"] == ch.pk and body["status"] == "open" and body["family"] == "v2.3.0"
    assert body["expires"] == ch.exp_time and body["funding_value"] == ch.funding_value
    assert body["value_left"] == ch.funding_value - 100_021 and body["value_received"] == 100_021
    assert body["funding_address"] == ch.params.funding_address.text
    assert body["funding_source"] == ch.op.serialize().hex()
    assert body["payment_count"] == 4 and body["last_payment_time"] >= body["open_time"] > 0
    assert body["settlement_txid"] is None and body["settlement_confirmations"] is None
    status, body = await stack.mgmt("GET", f"/channels/{'00' * 32}/1")
    assert status == 404 and body["error"]["code"] == "channel_not_found"


async def test_spec_info_route_keeps_the_original_shape(stack: Stack) -> None:
    chans = await _three_channels(stack)
    ch = chans[1]
    status, body = await stack.mgmt("GET", f"/channels/{ch.pk}/info")
    assert status == 200
    assert body == {"sender": ch.pk, "status": "open", "value_left": ch.funding_value - 100_021,
                    "expires": ch.exp_time, "funding_value": ch.funding_value,
                    "funding_address": ch.params.funding_address.text,
                    "funding_source": ch.op.serialize().hex(), "settlement_txid": None}
    unknown = TestChannel(exp_time=exp_time())
    status, body = await stack.mgmt("GET", f"/channels/{unknown.pk}/info")
    assert status == 404


# ---------------------------------------------------------------- manual close


async def test_manual_close(stack: Stack) -> None:
    chans = await _three_channels(stack)
    ch = chans[1]
    path = f"/channels/{ch.op.display_txid}/{ch.op.vout}"
    status, body = await stack.mgmt("POST", path + "/close")
    assert status == 200, body
    txid = body["settlement_txid"]
    assert isinstance(txid, str) and len(txid) == 64
    assert body["channel"]["status"] in ("closing", "closed")
    assert body["channel"]["settlement_txid"] == txid and body["channel"]["settlement_fee"] > 0
    assert isinstance(body["channel"]["settlement_confirmations"], int)

    again_status, again = await stack.mgmt("POST", path + "/close")
    assert again_status == 200 and again["settlement_txid"] == txid  # idempotent

    r = await stack.public.put(ch.v23_url, params={"secret": stack.secret(ch)},
                               json=ch.v23_compact(ch.funding_value - 200_000))
    assert r.status == 410  # the client can no longer pay into it

    _, info = await stack.mgmt("GET", f"/channels/{ch.pk}/info")
    assert info["status"] == "closed" and info["settlement_txid"] == txid
    status, body = await stack.mgmt("POST", f"/channels/{'00' * 32}/0/close")
    assert status == 404


# ---------------------------------------------------------------- totals


def test_bucket_boundaries() -> None:
    now = 1_700_000_000
    hours = [-1, 0, 11.99, 12, 23.99, 24, 47.99, 48, 167.99, 168, 10_000]
    labels = [BUCKETS[bucket_index(now + math.floor(h * 3600), now)].label for h in hours]
    assert labels == ["expired", "<12h", "<12h", "12-24h", "12-24h", "1-2d", "1-2d", "2-7d", "2-7d", ">7d", ">7d"]


@pytest.fixture
async def short_stack(tmp_path: Path, aiohttp_server: AiohttpServer,
                      aiohttp_client: AiohttpClient) -> AsyncIterator[Stack]:
    """A stack whose channels may expire within hours (1 h settlement period, no minimum duration)."""
    async for s in start_stack(tmp_path, aiohttp_server, aiohttp_client,
                               {"channel": {"min_duration_hours": 1, "settlement_period_hours": 1}}):
        yield s


async def test_totals_bucket_value_at_risk_by_hours_to_expiry(short_stack: Stack) -> None:
    stack = short_stack
    days = {"<12h": 5 / 24, "12-24h": 18 / 24, "1-2d": 1.5, "2-7d": 4, ">7d": 10}
    chans = {label: TestChannel(exp_time=exp_time(d)) for label, d in days.items()}
    prices = {label: 100_000 + 1000 * i for i, label in enumerate(days)}
    for label, ch in chans.items():
        await stack.open_v23(ch, prices[label])
    status, totals = await stack.mgmt("GET", "/totals")
    assert status == 200
    assert totals["open_channels"] == 5 and totals["channels"]["open"] == 5
    assert totals["value_received_unsettled"] == sum(prices.values())
    by_label: dict[str, Any] = {b["hours_to_expiry"]: b for b in totals["value_at_risk"]}
    assert list(by_label) == [b.label for b in BUCKETS]
    assert by_label["expired"] == {"hours_to_expiry": "expired", "below_hours": 0, "channels": 0, "value": 0}
    for label, price in prices.items():
        assert (by_label[label]["channels"], by_label[label]["value"]) == (1, price), label
    assert by_label[">7d"]["below_hours"] is None

    # A manual close moves the channel out of "open" (its value is unsettled until the settlement is deep).
    ch = chans["2-7d"]
    await stack.mgmt("POST", f"/channels/{ch.op.display_txid}/{ch.op.vout}/close")
    _, after = await stack.mgmt("GET", "/totals")
    assert after["open_channels"] == 4
    assert after["channels"].get("closing", 0) + after["channels"].get("closed", 0) == 1
