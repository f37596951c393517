"""paychan-gateway through real processes (debug config): 402s, paid proxying, metering, dynamic prices,
upstream failures, exactly-once retries, and the httpx paying flow over one channel."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from examples.upstream import BIG_SIZE, big_file_bytes

from paychan_client.api import AsyncPaychanClient
from paychan_client.paying import Budget, ChannelWallet, PayingAuth, debug_funder, get_ranges, payment_header
from paychan_client.state import ClientChannel
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.state import Family
from tests.support.gateway import INCREMENT_KIB, PER_KIB, PER_REQUEST, GatewayStack, wait_for
from tests.support.services import PROJECT_ROOT

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    s = GatewayStack(tmp_path_factory.mktemp("gateway")).start()
    try:
        yield s
    except BaseException:
        log.error(s.logs())
        raise
    finally:
        s.stop()


def _wallet(stack: GatewayStack) -> ChannelWallet:
    """A wallet that opens its own debug-funded channel on first need."""
    return ChannelWallet(Network.TEST, funder=debug_funder)


def _open(stack: GatewayStack) -> tuple[ChannelWallet, ClientChannel]:
    wallet = _wallet(stack)
    r = httpx.get(stack.url + "/api/items/0", auth=PayingAuth(wallet))
    assert r.status_code == 200, r.text
    channel = wallet.channel(stack.services.url)
    assert channel is not None
    return wallet, channel


def _paid(stack: GatewayStack, key: str) -> tuple[ChannelWallet, ClientChannel, ClientChannel, dict[str, str]]:
    """A channel opened by _open, one more payment of PER_REQUEST signed on it (not sent yet), and the
    request headers carrying that payment with Idempotency-Key `key`."""
    wallet, channel = _open(stack)
    current = wallet.pay(wallet.channel(stack.services.url) or channel, PER_REQUEST)
    return wallet, channel, current, {"Authorization": payment_header(current), "Idempotency-Key": key}


def _received(stack: GatewayStack, channel: ClientChannel) -> int:
    return channel.funding_value - stack.stored_change(channel.funding_outpoint)


def test_unpaid_request_gets_402_with_the_price(stack: GatewayStack) -> None:
    log.info("no payment: 402, a JSON body in the server's error shape plus the price, and a Paychan challenge")
    r = httpx.get(stack.url + "/api/items/7")
    assert r.status_code == 402
    body = r.json()
    assert body["type"] == "payment_error" and body["code"] == "payment_required"
    assert body["price"] == PER_REQUEST and body["pricing"] == "per_request" and body["route"] == "api"
    assert body["family"] == "v2.3"
    assert body["funding_info"] == stack.services.url + "/v2/funding/{client_pubkey}/{exp_time}/info"
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Paychan ") and f'price="{PER_REQUEST}"' in challenge
    assert 'family="v2.3"' in challenge and "funding_info=" in challenge and 'route="api"' in challenge
    assert httpx.get(stack.url + "/nowhere").status_code == 404
    listed = httpx.get(stack.url + "/.well-known/paychan/routes").json()
    assert listed["funding_info"] == body["funding_info"] and listed["family"] == "v2.3"
    assert {r["name"]: r["per_request"] for r in listed["routes"]}["api"] == PER_REQUEST
    assert {r["name"]: r["per_kib"] for r in listed["routes"]}["files"] == PER_KIB
    bad = httpx.get(stack.url + "/api/items/7", headers={"Authorization": "Paychan nonsense"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_payment_header"


def test_paid_request_is_proxied_with_the_gateways_headers_only(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    before = _received(stack, channel)
    log.info("a client forging the gateway's headers: the upstream sees the gateway's values, not the forgery")
    r = httpx.get(stack.url + "/api/items/42", auth=PayingAuth(wallet),
                  headers={"Paychan-Amount-Paid": "99999999", "Paychan-Channel": "forged", "Paychan-Evil": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["item"] == "42"
    seen = {k.lower(): v for k, v in r.json()["seen_headers"].items()}
    op = channel.funding_outpoint
    assert seen["paychan-channel"] == f"{op.display_txid}:{op.vout}"
    assert seen["paychan-amount-paid"] == str(PER_REQUEST)
    assert "paychan-evil" not in seen and "authorization" not in seen
    assert r.headers["Paychan-Charged"] == str(PER_REQUEST)
    assert _received(stack, channel) - before == PER_REQUEST


def test_one_thousand_paid_requests_over_one_channel(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    before = _received(stack, channel)
    log.info("1,000 paid requests through the httpx flow: value received == 1,000 x the price, exactly")
    t0 = time.monotonic()
    with httpx.Client(auth=PayingAuth(wallet, Budget(per_request=PER_REQUEST)), timeout=10) as http:
        for i in range(1000):
            r = http.get(f"{stack.url}/api/items/{i}")
            assert r.status_code == 200, r.text
    log.info("1,000 paid requests in %.1f s", time.monotonic() - t0)
    after = wallet.channel(stack.services.url)
    assert after is not None and after.funding_outpoint == channel.funding_outpoint
    assert _received(stack, channel) - before == 1000 * PER_REQUEST
    assert channel.change_value - after.change_value == 1000 * PER_REQUEST


def test_async_flow_and_async_client(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    before = _received(stack, channel)

    async def run() -> list[int]:
        async with httpx.AsyncClient(auth=PayingAuth(wallet), timeout=10) as http:
            return [(await http.get(f"{stack.url}/api/items/{i}")).status_code for i in range(20)]

    log.info("the same flow over httpx.AsyncClient")
    assert asyncio.run(run()) == [200] * 20
    assert _received(stack, channel) - before == 20 * PER_REQUEST


def test_replayed_payment_header_is_refused(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    latest = wallet.channel(stack.services.url)
    assert latest is not None
    header = payment_header(latest)  # the payment that paid the request in _open
    before = _received(stack, channel)
    log.info("replaying a used payment header: on the same request, and on another one")
    for path, key in (("/api/items/0", None), ("/api/items/1", "k1")):
        headers = {"Authorization": header} | ({"Idempotency-Key": key} if key else {})
        r = httpx.get(stack.url + path, headers=headers)
        assert r.status_code == 402 and r.json()["code"] == "payment_already_used", r.text
    assert _received(stack, channel) == before


def test_retry_after_a_dropped_response_is_not_charged_twice(stack: GatewayStack) -> None:
    _, channel, _, headers = _paid(stack, "drop-1")
    before = _received(stack, channel)
    log.info("the client gives up before the (slow) answer arrives: the gateway cannot deliver it")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(stack.url + "/api/slow?s=0.6", headers=headers, timeout=0.2)
    log.info("the same request with the same payment, once the first attempt settled: served, charged once")
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(stack.url + "/api/slow?s=0.6", headers=headers, timeout=5)
        if r.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert r.headers["Paychan-Charged"] == str(PER_REQUEST)
    assert _received(stack, channel) - before == PER_REQUEST
    log.info("a third time: the payment is used up")
    again = httpx.get(stack.url + "/api/slow?s=0.6", headers=headers, timeout=5)
    assert again.status_code == 402 and again.json()["code"] == "payment_already_used"


def test_upstream_down_is_502_and_not_charged(stack: GatewayStack) -> None:
    wallet, channel, current, headers = _paid(stack, "down-1")
    r = httpx.get(stack.url + "/down/x", headers=headers)
    assert r.status_code == 502 and r.json()["code"] == "upstream_unavailable", r.text
    log.info("the price went back to the channel's credit: the next request costs only what credit lacks")
    r = httpx.get(stack.url + "/api/items/5", headers={"Authorization": payment_header(current)})
    assert r.status_code == 402 and r.json()["code"] == "payment_already_used"
    assert r.json()["credit"] >= PER_REQUEST and r.json()["amount_due"] == 1
    before = _received(stack, channel)
    nxt = wallet.pay(current, 1)
    r = httpx.get(stack.url + "/api/items/5", headers={"Authorization": payment_header(nxt)})
    assert r.status_code == 200, r.text
    assert _received(stack, channel) - before == 1
    log.info("a 500 from the upstream is passed on and not charged either")
    fail = wallet.pay(nxt, PER_REQUEST)
    r = httpx.get(stack.url + "/api/fail", headers={"Authorization": payment_header(fail)})
    assert r.status_code == 500 and r.headers["Paychan-Charged"] == "0"


def test_dynamic_price_from_the_callback(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    r = httpx.get(stack.url + "/api/quote/1234")
    assert r.status_code == 402 and r.json()["price"] == 1234 and r.json()["pricing"] == "dynamic"
    before = _received(stack, channel)
    auth = PayingAuth(wallet)
    r = httpx.get(stack.url + "/api/quote/1234", auth=auth)
    assert r.status_code == 200, r.text
    assert _received(stack, channel) - before == 1234 and r.headers["Paychan-Credit"] == "0"
    log.info("the flow prepays the last price it saw; what a cheaper request leaves is credit, used next")
    r = httpx.get(stack.url + "/api/quote/5", auth=auth)
    assert r.status_code == 200 and r.headers["Paychan-Credit"] == str(1234 - 5)
    r = httpx.get(stack.url + "/api/quote/7", auth=auth)
    assert r.status_code == 200 and r.headers["Paychan-Charged"] == "7"
    credit = int(r.headers["Paychan-Credit"])
    assert credit == 1234 - 5 + 5 - 7  # it prepaid only 1234 - 1229 = 5
    assert _received(stack, channel) - before == 1234 + 5 + 7 + credit


def test_metered_download_costs_the_per_kib_price(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    before = _received(stack, channel)
    log.info("1 MiB through a per-KiB route, prepaid one %d KiB increment at a time", INCREMENT_KIB)
    got = bytearray()
    with httpx.Client(auth=PayingAuth(wallet), timeout=10) as http:
        n, last = get_ranges(http, stack.url + "/files/big.bin", got.extend)
    assert last.status_code == 206 and n == BIG_SIZE
    assert bytes(got) == big_file_bytes()
    cost = _received(stack, channel) - before
    assert abs(cost - 1024 * PER_KIB) <= INCREMENT_KIB * PER_KIB, cost


def test_metered_budget_runs_out_cleanly(stack: GatewayStack) -> None:
    wallet, channel = _open(stack)
    increment = INCREMENT_KIB * PER_KIB
    budget = Budget(total=5 * increment)
    got = bytearray()
    log.info("a budget of 5 increments: 5 x %d KiB delivered, then a clean 402", INCREMENT_KIB)
    before = _received(stack, channel)
    with httpx.Client(auth=PayingAuth(wallet, budget), timeout=10) as http:
        n, last = get_ranges(http, stack.url + "/files/big.bin", got.extend)
    assert last.status_code == 402 and last.json()["code"] == "payment_required"
    assert n == 5 * INCREMENT_KIB * 1024 and bytes(got) == big_file_bytes()[:n]
    assert _received(stack, channel) - before == 5 * increment
    log.info("a stream stops where its prepaid amount does, with a clean end of body")
    with httpx.Client(auth=PayingAuth(wallet), timeout=10) as http:
        r = http.get(stack.url + "/stream")
    assert r.status_code == 200 and len(r.content) == INCREMENT_KIB * 1024
    assert r.headers["Paychan-Prepaid-Bytes"] == str(INCREMENT_KIB * 1024)
    log.info("a metered 200 of known length, asked without Range: cut at the paid byte, the whole size named")
    with httpx.Client(auth=PayingAuth(wallet), timeout=10) as http:
        r = http.get(stack.url + "/files/big.bin")
    assert r.status_code == 200 and r.content == big_file_bytes()[:INCREMENT_KIB * 1024]
    assert r.headers["Paychan-Content-Length"] == str(BIG_SIZE)


def test_request_body_streams_to_the_upstream(stack: GatewayStack) -> None:
    wallet, _ = _open(stack)
    payload = bytes(range(256)) * 8192  # 2 MiB, sent chunked

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    auth = PayingAuth(wallet)
    httpx.post(stack.url + "/api/echo", content=b"", auth=auth)  # learn the price: later requests prepay
    r = httpx.post(stack.url + "/api/echo", content=chunks(), auth=auth, timeout=10)
    assert r.status_code == 200 and r.content == payload


def test_example_client_and_cli_get(stack: GatewayStack, tmp_path_factory: pytest.TempPathFactory) -> None:
    log.info("examples/client.py: opens a channel on the first 402, buys 3 items and the 1 MiB file")
    out = subprocess.run([sys.executable, str(PROJECT_ROOT / "examples" / "client.py"), "--gateway", stack.url,
                          "--budget", "200000"], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["items"] == ["0", "1", "2"] and summary["file_bytes"] == BIG_SIZE
    assert summary["file_sha256"] == hashlib.sha256(big_file_bytes()).hexdigest()
    assert summary["paid"] == 100_000 + 3 * PER_REQUEST + 1024 * PER_KIB  # open price + items + 1 MiB
    log.info("paychan-client get: the same through the CLI, with a state file")
    tmp = tmp_path_factory.mktemp("cli")
    state, body = tmp / "gw.json", tmp / "big.bin"
    cli = [sys.executable, "-m", "paychan_client", "get", "--state", str(state), "--network", "test"]
    r = subprocess.run([*cli, stack.url + "/api/items/9", "--open-debug"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["item"] == "9" and json.loads(r.stdout)["seen_headers"]
    r = subprocess.run([*cli, stack.url + "/files/big.bin", "-o", str(body)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bytes"] == BIG_SIZE and body.read_bytes() == big_file_bytes()
    r = subprocess.run([*cli, stack.url + "/api/items/9", "--budget", "10"], capture_output=True, timeout=60)
    assert r.returncode == 2 and b"402" in r.stderr


def test_async_paychan_client_opens_pays_and_closes(stack: GatewayStack) -> None:
    log.info("AsyncPaychanClient: the same protocol as PaychanClient over httpx.AsyncClient")

    async def run() -> tuple[int, str | None]:
        async with AsyncPaychanClient(stack.services.url, Network.TEST) as client:
            key = PrivateKey(hashlib.sha256(b"async-client").digest())
            exp = int(time.time()) + 7 * 24 * 3600
            info = await client.funding_info(key.public_key, exp, Family.V2_3)
            op, value = debug_funder(info)
            opened = await client.open_channel(key, exp, op, value, Family.V2_3, info=info)
            paid = await client.pay(opened.channel, 5000)
            closed = await client.close(paid.channel, fee=info.open_price // 10)
            return paid.result.value_received, closed.settlement_txid

    received, txid = asyncio.run(run())
    assert received == 5000 and txid is not None and len(txid) == 64


def test_metrics_count_outcomes_and_satoshis(stack: GatewayStack) -> None:
    _open(stack)
    httpx.get(stack.url + "/api/items/3")  # a 402
    text = httpx.get(stack.metrics_url).text
    assert 'paychan_gateway_requests_total{outcome="served",route="api"}' in text
    assert 'paychan_gateway_requests_total{outcome="payment_required",route="api"}' in text
    assert 'paychan_gateway_charged_satoshis_total{route="api"}' in text
    assert "paychan_http_request_duration_seconds" in text
    assert httpx.get(stack.url + "/metrics").status_code == 404  # not on the public port


def test_gateway_errors_have_the_servers_shape(stack: GatewayStack) -> None:
    for method, path, status, code in (("GET", "/nowhere", 404, "no_route"),
                                       ("DELETE", "/api/items/1", 405, "method_not_allowed")):
        r = httpx.request(method, stack.url + path)
        assert r.status_code == status and r.json() == {"type": "application_error", "code": code,
                                                        "message": r.json()["message"]}


def test_gateway_killed_mid_request_serves_the_retry_once(stack: GatewayStack) -> None:
    _, channel, _, headers = _paid(stack, "crash-1")
    before = _received(stack, channel)
    log.info("the payment is stored, the upstream is still answering: SIGKILL the gateway")
    outcome: list[object] = []

    def attempt() -> None:
        try:
            outcome.append(httpx.get(stack.url + "/api/slow?s=0.8", headers=headers, timeout=10))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt)
    worker.start()
    wait_for(lambda: _received(stack, channel) - before == PER_REQUEST, timeout=10, interval=0.02,
             description="the payment stored in ChanStore")
    stack.gateway.kill(signal.SIGKILL)  # the upstream is still answering (0.8 s)
    worker.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError), outcome
    assert _received(stack, channel) - before == PER_REQUEST  # ChanStore had it before the upstream saw it
    log.info("restarted, the gateway serves the same request with the same payment once, charging nothing more")
    stack.gateway.start()
    stack.services._ready(stack.gateway, stack.url + "/.well-known/paychan/health")
    r = httpx.get(stack.url + "/api/slow?s=0.1", headers=headers)
    assert r.status_code == 402  # another request (other target) cannot take the payment
    r = httpx.get(stack.url + "/api/slow?s=0.8", headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    assert _received(stack, channel) - before == PER_REQUEST
    again = httpx.get(stack.url + "/api/slow?s=0.8", headers=headers, timeout=5)
    assert again.status_code == 402 and again.json()["code"] == "payment_already_used"
