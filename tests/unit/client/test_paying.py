"""The paying httpx flow (paychan_client.paying) against a fake gateway on httpx.MockTransport: budgets,
retries with the same payment, prepaying, and one request's payment never reused."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import httpx
import pytest

from paychan_client import Family
from paychan_client.errors import InvalidArgument
from paychan_client.paying import Budget, ChannelWallet, PayingAuth, payment_header

from .vectors import ENDPOINT, NETWORK, TXID, V23_SECRET, VALUE, opened_v23_channel

GATEWAY = "http://gateway.test"
PRICE = 1000
OPENED = VALUE - 100_000  # the change of vector B's opening payment


class FakeGateway:
    """Answers 402 until a payment of PRICE more arrives; `fail` answers 502 that many times first."""

    def __init__(self, fail: int = 0) -> None:
        self.change = OPENED
        self.fail = fail
        self.seen: list[tuple[str, str | None, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        self.seen.append((request.url.path, auth, request.headers.get("idempotency-key")))
        if auth is not None:
            change = int(auth.split()[2].split(":")[0])
            if self.fail:
                self.fail -= 1
                self.change = min(self.change, change)
                return httpx.Response(502, json={"code": "upstream_unavailable"})
            if self.change - change >= PRICE or (change == self.change and len(self.seen) > 1):
                self.change = change
                return httpx.Response(200, json={"ok": True}, headers={"Paychan-Credit": "0"})
        body = {"type": "payment_error", "code": "payment_required", "message": "pay", "price": PRICE,
                "amount_due": PRICE, "server_url": ENDPOINT, "route": "api"}
        return httpx.Response(402, content=json.dumps(body).encode(),
                              headers={"WWW-Authenticate": f'Paychan price="{PRICE}"'})


def _client(gw: FakeGateway, budget: Budget | None = None) -> tuple[httpx.Client, ChannelWallet, PayingAuth]:
    wallet = ChannelWallet(NETWORK, channels=[opened_v23_channel()])
    auth = PayingAuth(wallet, budget)
    return httpx.Client(transport=httpx.MockTransport(gw), auth=auth), wallet, auth


def test_a_402_is_paid_once_then_prepaid() -> None:
    gw = FakeGateway()
    http, wallet, auth = _client(gw)
    assert http.get(f"{GATEWAY}/api/a").status_code == 200
    assert [auth is not None for _, auth, _ in gw.seen] == [False, True]
    assert http.get(f"{GATEWAY}/api/b").status_code == 200  # the price is known now: one round trip
    assert len(gw.seen) == 3 and gw.seen[2][1] is not None
    channel = wallet.channel(ENDPOINT)
    assert channel is not None and OPENED - channel.change_value == 2 * PRICE == auth.budget.spent


def test_budget_refusals_return_the_402() -> None:
    for budget in (Budget(per_request=PRICE - 1), Budget(total=PRICE - 1), Budget(per_channel=PRICE - 1)):
        gw = FakeGateway()
        http, wallet, auth = _client(gw, budget)
        r = http.get(f"{GATEWAY}/api/a")
        assert r.status_code == 402 and r.json()["code"] == "payment_required"
        assert auth.budget.spent == 0 and wallet.channel(ENDPOINT) == opened_v23_channel()


def test_total_budget_stops_after_what_it_allows() -> None:
    gw = FakeGateway()
    http, _, auth = _client(gw, Budget(total=3 * PRICE))
    assert [http.get(f"{GATEWAY}/api/{i}").status_code for i in range(5)] == [200, 200, 200, 402, 402]
    assert auth.budget.spent == 3 * PRICE


def test_a_502_is_retried_with_the_same_payment_and_key() -> None:
    gw = FakeGateway(fail=1)
    http, _, auth = _client(gw)
    assert http.get(f"{GATEWAY}/api/a").status_code == 200
    (_, a1, k1), (_, a2, k2) = gw.seen[1], gw.seen[2]
    assert a1 == a2 and k1 == k2 and a1 is not None
    assert auth.budget.spent == PRICE


def test_no_wallet_channel_and_no_funder_returns_the_402() -> None:
    wallet = ChannelWallet(NETWORK)
    with httpx.Client(transport=httpx.MockTransport(FakeGateway()), auth=PayingAuth(wallet)) as http:
        assert http.get(f"{GATEWAY}/api/a").status_code == 402


def test_the_async_flow_pays_the_same_way() -> None:
    gw = FakeGateway()
    wallet = ChannelWallet(NETWORK, channels=[opened_v23_channel()])

    async def run() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(gw), auth=PayingAuth(wallet)) as http:
            return (await http.get(f"{GATEWAY}/api/a")).status_code

    assert asyncio.run(run()) == 200
    channel = wallet.channel(ENDPOINT)
    assert channel is not None and OPENED - channel.change_value == PRICE
    assert payment_header(channel).startswith(f"Paychan {TXID}:2:{V23_SECRET} {channel.change_value}:")


def test_a_v2_seed_channel_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"v2\.3 channel"):
        ChannelWallet(NETWORK, channels=[replace(opened_v23_channel(), family=Family.V2_SEED)])
