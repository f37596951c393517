"""The fast front (paychan_server/api/front.py) answers exactly as aiohttp does, and hands over cleanly.

Two stacks run side by side, one with `listen.fast_front = true` (the default) and one with it off; the same
channels (same keys, same debug funding) are opened on both, and the same requests are sent to both: every
answer must agree in status, reason phrase, headers (but Date) and body. Then, on the fast stack alone:
pipelined payments and other requests on one connection are answered in order (the connection is handed to
aiohttp at the first request that is not a payment), a payment split across many TCP segments is served,
and a chunked payment body goes to aiohttp and is stored all the same.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.channels import CLIENT_REFUND, SINGLE_ACP, TestChannel
from tests.support.plugin import ServicesFactory
from tests.support.raw_http import exchange, request
from tests.support.services import Services

pytestmark = pytest.mark.functional

EXP = int(time.time()) + 30 * 24 * 3600
OPEN_PRICE = 100000
V1_PRICE = 70000 + 348 * 40  # base price + the fixed settlement fee estimate of the test stack
SEED, V23, V1 = TestChannel(EXP), TestChannel(EXP), TestChannel(EXP)
SEED_OPEN = SEED.funding_value - OPEN_PRICE
V23_OPEN = V23.funding_value - OPEN_PRICE
V1_OPEN = V1.funding_value - V1_PRICE
V1_URL = f"/v1/channels/{V1.op.display_txid}/{V1.op.vout}"


def _v1(change: int) -> str:
    sig = V1.sign(change, CLIENT_REFUND)
    raw = change.to_bytes(8, "little") + sig.der + bytes([SINGLE_ACP])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stacks(module_services_factory: ServicesFactory) -> Iterator[tuple[Services, Services]]:
    fast = module_services_factory("fast")
    slow = module_services_factory("slow", server={"listen": {"fast_front": False}})
    for svc in (fast, slow):
        with httpx.Client(base_url=svc.url) as http:
            assert http.post(SEED.seed_url, json=SEED.v2_body(SEED_OPEN)).status_code == 201
            assert http.post(V23.v23_url, params={"secret": V23.secret(V23_OPEN)},
                             json=V23.v23_full(V23_OPEN)).status_code == 201
            assert http.post("/v1/channels/new", params={
                "client_pubkey": V1.pk, "exp_time": str(EXP), "change_address": CLIENT_REFUND,
                "payment": _v1(V1_OPEN)}).status_code == 201
    yield fast, slow


def _compact(ch: TestChannel, change: int) -> dict[str, Any]:
    return ch.v23_compact(change)


SECRET = V23.secret(V23_OPEN)
# (name, method, path, query, headers, body bytes): each sent to both stacks, in this order.
CASES: list[tuple[str, str, str, dict[str, str], dict[str, str], bytes]] = [
    ("seed pay", "PUT", SEED.seed_url, {}, JSON, json.dumps(SEED.v2_body(SEED_OPEN - 1)).encode()),
    ("seed pay again (same change)", "PUT", SEED.seed_url, {}, JSON, json.dumps(SEED.v2_body(SEED_OPEN - 1)).encode()),
    ("seed pay more", "PUT", SEED.seed_url, {}, JSON, json.dumps(SEED.v2_body(SEED_OPEN - 500)).encode()),
    ("seed bad json", "PUT", SEED.seed_url, {}, JSON, b"{not json"),
    ("seed text/plain", "PUT", SEED.seed_url, {}, {"Content-Type": "text/plain"}, b"{}"),
    ("seed json with charset", "PUT", SEED.seed_url, {}, {"Content-Type": "application/json; charset=utf-8"},
     json.dumps(SEED.v2_body(SEED_OPEN - 600)).encode()),
    ("seed bad signature", "PUT", SEED.seed_url, {}, JSON,
     json.dumps({"payment_data": {"change_value": SEED_OPEN - 700, "signature_data": "3006020101020101",
                                  "sighash_flag": "83"}}).encode()),
    ("seed off-curve key", "PUT", f"/v2/channels/02{5:064x}/{EXP}/{SEED.op.display_txid}/{SEED.op.vout}", {}, JSON,
     json.dumps(SEED.v2_body(SEED_OPEN - 800)).encode()),
    ("seed bad exp", "PUT", f"/v2/channels/{SEED.pk}/12/{SEED.op.display_txid}/{SEED.op.vout}", {}, JSON, b"{}"),
    ("seed unknown channel", "PUT", f"/v2/channels/{SEED.pk}/{EXP}/{'ab' * 32}/0", {}, JSON,
     json.dumps(SEED.v2_body(SEED_OPEN - 900)).encode()),
    ("seed not an object", "PUT", SEED.seed_url, {}, JSON, b"[1, 2]"),
    ("seed empty body", "PUT", SEED.seed_url, {}, JSON, b""),
    ("v23 pay", "PUT", V23.v23_url, {"secret": SECRET}, JSON, json.dumps(_compact(V23, V23_OPEN - 1)).encode()),
    ("v23 quoted secret", "PUT", V23.v23_url, {"secret": f'"{SECRET}"'}, JSON,
     json.dumps(_compact(V23, V23_OPEN - 2)).encode()),
    ("v23 wrong secret", "PUT", V23.v23_url, {"secret": "00" * 32}, JSON,
     json.dumps(_compact(V23, V23_OPEN - 3)).encode()),
    ("v23 no secret", "PUT", V23.v23_url, {}, JSON, json.dumps(_compact(V23, V23_OPEN - 3)).encode()),
    ("v23 short secret", "PUT", V23.v23_url, {"secret": "abcd"}, JSON,
     json.dumps(_compact(V23, V23_OPEN - 3)).encode()),
    ("v23 bad vout", "PUT", f"/v2/channels/{V23.op.display_txid}/x1", {"secret": SECRET}, JSON, b"{}"),
    ("v23 pay more", "PUT", V23.v23_url, {"secret": SECRET}, JSON, json.dumps(_compact(V23, V23_OPEN - 50)).encode()),
    ("v1 pay", "PUT", V1_URL, {"payment": _v1(V1_OPEN - 1)}, {}, b""),
    ("v1 pay alias", "PUT", V1_URL + "/pay", {"payment": _v1(V1_OPEN - 7)}, {}, b""),
    ("v1 pay with a body", "PUT", V1_URL, {"payment": _v1(V1_OPEN - 9)}, JSON, b"{}"),
    ("v1 replay", "PUT", V1_URL, {"payment": _v1(V1_OPEN - 9)}, {}, b""),
    ("v1 no payment", "PUT", V1_URL, {}, {}, b""),
    ("v1 empty payment", "PUT", V1_URL, {"payment": ""}, {}, b""),
    ("v1 bad payload", "PUT", V1_URL, {"payment": "AAAA"}, {}, b""),
    ("v1 unknown channel", "PUT", f"/v1/channels/{'cd' * 32}/1", {"payment": _v1(V1_OPEN - 11)}, {}, b""),
    ("v1 on a v2 channel", "PUT", f"/v1/channels/{SEED.op.display_txid}/{SEED.op.vout}",
     {"payment": _v1(V1_OPEN - 11)}, {}, b""),
    ("v1 new is not a payment", "PUT", "/v1/channels/new/0", {"payment": _v1(V1_OPEN - 11)}, {}, b""),
    ("trailing slash (aiohttp's 404)", "PUT", V23.v23_url + "/", {"secret": SECRET}, JSON, b"{}"),
    ("escaped path (aiohttp)", "PUT", SEED.seed_url.replace("/v2/", "/v%32/"), {}, JSON, b"{}"),
]


def _answer(resp: httpx.Response) -> tuple[int, str, dict[str, str], bytes]:
    headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() != "date"}
    return resp.status_code, resp.reason_phrase, headers, resp.content


def test_every_answer_is_the_same_with_and_without_the_front(stacks: tuple[Services, Services]) -> None:
    fast, slow = stacks
    with httpx.Client(base_url=fast.url) as f, httpx.Client(base_url=slow.url) as s:
        for name, method, path, query, headers, body in CASES:
            a = _answer(f.request(method, path, params=query, headers=headers, content=body))
            b = _answer(s.request(method, path, params=query, headers=headers, content=body))
            assert a == b, name
            assert a[2]["access-control-allow-origin"] == "*", name
            if a[0] != 200:
                error = json.loads(a[3])
                assert set(error) == {"type", "code", "message"}, name
    # and both stores hold the same channels
    with httpx.Client(base_url=fast.url) as f, httpx.Client(base_url=slow.url) as s:
        for ch, change in ((SEED, SEED_OPEN - 600), (V23, V23_OPEN - 50)):
            got = [c.put(ch.seed_url, json=ch.v2_body(change - 1)) if ch is SEED else
                   c.put(ch.v23_url, params={"secret": SECRET}, json=_compact(ch, change - 1)) for c in (f, s)]
            assert [r.status_code for r in got] == [200, 200]
            assert got[0].json() == got[1].json()
            assert got[0].json()["value_received"] == 1


def _request(method: str, target: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    return request(method, target, body, headers or {"Content-Type": "application/json"})


def _exchange(port: int, chunks: list[bytes], answers: int) -> list[tuple[int, bytes]]:
    return [(status, body) for status, _, _, body in exchange(port, chunks, answers)]


def test_pipelined_requests_are_answered_in_order_across_the_hand_over(stacks: tuple[Services, Services]) -> None:
    fast, _ = stacks
    change = SEED_OPEN - 2000
    wire = b"".join([
        _request("PUT", SEED.seed_url, json.dumps(SEED.v2_body(change)).encode()),
        _request("PUT", SEED.seed_url, json.dumps(SEED.v2_body(change - 10)).encode()),
        _request("GET", "/health", b""),  # not a payment: aiohttp takes the connection from here on
        _request("PUT", SEED.seed_url, json.dumps(SEED.v2_body(change - 30)).encode()),
    ])
    answers = _exchange(fast.port, [wire], 4)
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    received = [json.loads(body).get("value_received") for _, body in answers]
    assert received[0] >= 1 and received[1] == 10 and received[3] == 20
    assert json.loads(answers[2][1])["ok"] is True


def test_a_payment_in_many_segments_and_a_chunked_one(stacks: tuple[Services, Services]) -> None:
    fast, _ = stacks
    change = SEED_OPEN - 3000
    wire = _request("PUT", SEED.seed_url, json.dumps(SEED.v2_body(change)).encode())
    pieces = [wire[i:i + 7] for i in range(0, len(wire), 7)]
    [(status, body)] = _exchange(fast.port, pieces, 1)
    assert status == 200 and json.loads(body)["channel_status"] == "open"
    payload = json.dumps(SEED.v2_body(change - 5)).encode()
    chunked = _request("PUT", SEED.seed_url, b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload),
                       {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    [(status, body)] = _exchange(fast.port, [chunked], 1)
    assert status == 200 and json.loads(body)["value_received"] == 5


def test_a_client_that_leaves_mid_payment_does_not_lose_it(stacks: tuple[Services, Services]) -> None:
    fast, _ = stacks
    change = SEED_OPEN - 4000
    with socket.create_connection(("127.0.0.1", fast.port), timeout=10) as sock:
        sock.sendall(_request("PUT", SEED.seed_url, json.dumps(SEED.v2_body(change)).encode()))
    time.sleep(2.0)  # ample for one debug-mode payment to be stored
    with httpx.Client(base_url=fast.url) as http:
        # Had the abandoned payment been lost, this one would be credited 4,001 satoshis, not 1.
        assert http.put(SEED.seed_url, json=SEED.v2_body(change - 1)).json()["value_received"] == 1


def test_a_flood_of_pipelined_payments_is_served_in_full(stacks: tuple[Services, Services]) -> None:
    fast, _ = stacks
    change = SEED_OPEN - 5000
    one = _request("PUT", SEED.seed_url, json.dumps(SEED.v2_body(change)).encode())
    flood = one * (2_500_000 // len(one))  # ~2.5 MiB: reading pauses while over 1 MiB is buffered
    count = flood.count(b"PUT ")
    answers = _exchange(fast.port, [flood], count)
    assert len(answers) == count
    received = [json.loads(body).get("value_received", 0) for status, body in answers if status == 200]
    assert received[0] > 0 and sum(received) == received[0]  # the repeats are not newer: credited once
