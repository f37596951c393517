"""Concurrency against the real services: racing payments on one channel, racing opens of one channel.

Exactly one of two racing payments on a channel may win (docs/ARCHITECTURE.md "The hot path"); what the clients are
told must add up to what ChanStore holds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from paychan_common.state import ChannelState
from tests.support.channels import CLIENT_REFUND, TestChannel
from tests.support.services import Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

FAMILIES = ["v1", "seed", "v23"]
N_PAYMENTS = 50
N_OPENS = 20
OPEN_PRICE = 100000  # >= the v1 open price (83920) too


@dataclass(frozen=True)
class Req:
    """One HTTP request, ready to send."""

    method: str
    path: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None


def open_req(family: str, ch: TestChannel, change: int) -> Req:
    """The opening request of `ch` in a route family."""
    if family == "v1":
        return Req("POST", "/v1/channels/new", {"client_pubkey": ch.pk, "exp_time": str(ch.exp_time),
                                                "change_address": CLIENT_REFUND,
                                                "payment": ch.v1_payload(change, CLIENT_REFUND)})
    if family == "seed":
        return Req("POST", ch.seed_url, json=ch.v2_body(change))
    return Req("POST", ch.v23_url, {"secret": ch.secret(change)}, ch.v23_full(change))


def pay_req(family: str, ch: TestChannel, change: int, secret: str) -> Req:
    """A payment on `ch` leaving `change`."""
    if family == "v1":
        return Req("PUT", f"/v1/channels/{ch.op.display_txid}/{ch.op.vout}",
                   {"payment": ch.v1_payload(change, CLIENT_REFUND)})
    if family == "seed":
        return Req("PUT", ch.seed_url, json=ch.v2_body(change))
    return Req("PUT", ch.v23_url, {"secret": secret}, ch.v23_compact(change))


def stored_state(svc: Services, ch: TestChannel) -> ChannelState | None:
    """The channel's state read directly from ChanStore."""
    r = httpx.get(f"http://127.0.0.1:{svc.store_port}/channels/{ch.op.serialize().hex()}",
                  headers={"Authorization": f"Bearer {svc.token}"})
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return ChannelState.parse(bytes.fromhex(r.json()["state"]))


async def send_all(base: str, reqs: list[Req]) -> list[httpx.Response]:
    """Send every request at once (one connection each), released together by one event."""
    go = asyncio.Event()
    limits = httpx.Limits(max_connections=len(reqs), max_keepalive_connections=len(reqs))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:
        async def one(req: Req) -> httpx.Response:
            await go.wait()
            return await client.request(req.method, req.path, params=req.params, json=req.json)

        tasks = [asyncio.create_task(one(r)) for r in reqs]
        await asyncio.sleep(0)  # let every task reach the barrier
        go.set()
        return await asyncio.gather(*tasks)


@pytest.mark.parametrize("family", FAMILIES)
async def test_concurrent_payments_add_up(shared_services: Services, family: str) -> None:
    ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
    opened = ch.funding_value - OPEN_PRICE
    secret = ch.secret(opened)
    r = await asyncio.to_thread(lambda: httpx.request(**_kw(shared_services.url, open_req(family, ch, opened))))
    assert r.status_code == 201, r.text
    rng = random.Random()
    changes = sorted({opened - rng.randint(1, 10**6) for _ in range(N_PAYMENTS * 2)}, reverse=True)[:N_PAYMENTS]
    assert len(changes) == N_PAYMENTS
    order = changes[:]
    rng.shuffle(order)
    log.info("%s: %d payments with distinct decreasing change values, sent at once in random order", family,
             N_PAYMENTS)
    responses = await send_all(shared_services.url, [pay_req(family, ch, c, secret) for c in order])
    acked: list[int] = []
    received = 0
    for change, resp in zip(order, responses, strict=True):
        if resp.status_code == 200:
            body = resp.json()
            assert body["channel_value_left"] == change and body["channel_status"] == "open"
            received += body["value_received"]
            acked.append(change)
        else:
            assert resp.status_code == 400, resp.text
            assert resp.json()["code"] == "out_of_order", resp.text
    log.info("%s: %d acknowledged, %d refused as out of order; %d satoshis received", family, len(acked),
             N_PAYMENTS - len(acked), received)
    assert acked, "at least one payment must win"
    assert min(changes) in acked, "the lowest change value can never be out of order"
    state = stored_state(shared_services, ch)
    assert state is not None and state.status.label == "open"
    assert state.change_value == min(acked)
    assert received == opened - state.change_value
    assert state.payment_count == 1 + len(acked)


def _kw(base: str, req: Req) -> dict[str, Any]:
    return {"method": req.method, "url": base + req.path, "params": req.params, "json": req.json, "timeout": 60.0}


@pytest.mark.parametrize("family", FAMILIES)
async def test_concurrent_opens_one_wins(shared_services: Services, family: str) -> None:
    ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
    opened = ch.funding_value - OPEN_PRICE
    req = open_req(family, ch, opened)
    log.info("%s: %d identical opens of one channel at once", family, N_OPENS)
    responses = await send_all(shared_services.url, [req] * N_OPENS)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (N_OPENS - 1), [(r.status_code, r.text) for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] in ("channel_exists", "open_channel_exists"), r.text
        else:
            assert r.json()["value_received"] == ch.funding_value - opened
    state = stored_state(shared_services, ch)
    assert state is not None and state.change_value == opened and state.payment_count == 1
