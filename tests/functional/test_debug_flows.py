"""End-to-end flows of all three route families against the three services in debug mode."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from paychan_common.keys import PrivateKey
from tests.support.channels import CLIENT_REFUND, NONE_ACP, TestChannel
from tests.support.plugin import ServicesFactory
from tests.support.services import Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

VECTOR_NOW = 1_499_000_000  # before the spec vectors' exp_time 1500000000 minus 60 h
VECTOR_KEY = "1111111111111111111111111111111111111111111111111111111111111111"
V1_PAYLOAD_D = ("UOPMczoLAAAwRQIhALdU3l9u4w4jYQqF53iWYFg5K39oOt51OCWoPZGuzYjqAiAIHIrWU2BHBWsqQ15CWahORODIjKovOJiSe"
                "_tUbZwLcIM")
SEED_OPEN_B = {"application_data": "", "payment_data": {
    "change_address": "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W", "change_value": 12345678800000,
    "funding_txid": "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b", "funding_vout": 2,
    "redeem_script": "63210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b17568"
                     "21034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaac",
    "sighash_flag": "83",
    "signature_data": "3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226"
                      "ee555d9edd8b9b3f879a79feb1d6da21641e18aa579576f70619"}}
B_PATH = ("/v2/channels/034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa/1500000000/"
          "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b/2")


@pytest.fixture
def vector_services(services_factory: ServicesFactory) -> Services:
    """Services whose clock reads 2017, before the vectors' expiry."""
    return services_factory(time_offset=VECTOR_NOW - int(time.time()))


def test_vector_d_v1_open_exact_request(vector_services: Services) -> None:
    log.info("vector D: the spec's exact v1 open request gets 201 with the spec's values")
    url = (f"{vector_services.url}/v1/channels/new?client_pubkey=034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f85"
           f"9ab0f0b704075871aa&exp_time=1500000000&change_address=n4XmX91N5FfccY678vaG1ELNtXh6skVES7"
           f"&payment={V1_PAYLOAD_D}&test=true")
    r = httpx.post(url)
    assert r.status_code == 201, r.text
    assert r.json() == {"channel_status": "open", "channel_value_left": 12345678816080, "value_received": 83920,
                        "settlement_txid": None}
    assert r.headers["Location"] == (f"{vector_services.url}/v1/channels/153c8e2acd788e918f101831c17837a34da571312a"
                                     f"d561ab6359767bb3926b5b/2")
    assert r.headers["Access-Control-Expose-Headers"] == "Location"


def test_vector_b_v2_seed_open_pay_close_gives_spec_settlement(vector_services: Services) -> None:
    base = vector_services.url
    ch = TestChannel(exp_time=1_500_000_000, key=PrivateKey(bytes.fromhex(VECTOR_KEY)))
    log.info("funding info carries the spec's funding address and script")
    info = httpx.get(f"{base}/v2/funding/{ch.pk}/1500000000/info").json()
    assert info["funding_address_copy"] == "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W"
    assert info["server_pubkey"] == "0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3"
    begin = httpx.get(f"{base}/v2/funding/{ch.pk}/1500000000/begin_open").json()
    assert begin["channel_uri"] == base + B_PATH
    log.info("vector B opening body -> 201")
    r = httpx.post(base + B_PATH, json=SEED_OPEN_B)
    assert r.status_code == 201, r.text
    assert r.json() == {"channel_status": "open", "channel_value_left": 12345678800000, "value_received": 100000,
                        "settlement_txid": None, "application_data": ""}
    assert r.headers["Location"] == base + B_PATH
    log.info("payment 2: 1 satoshi")
    r = httpx.put(base + B_PATH, json=ch.v2_body(12345678799999))
    assert r.status_code == 200, r.text
    assert r.json()["value_received"] == 1
    log.info("closing payment to the refund address -> the spec's settlement txid")
    r = httpx.put(base + B_PATH + "/close", json=ch.v2_body(12345678799999, CLIENT_REFUND))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["channel_status"] == "closed" and body["value_received"] == 0
    assert body["settlement_txid"] == "754c727936f9688ae25011f10082c415e9f889ddd112f306beb4d3617402c315"
    log.info("a repeated close returns the stored txid")
    again = httpx.put(base + B_PATH + "/close", json=ch.v2_body(12345678799999, CLIENT_REFUND))
    assert again.status_code == 200 and again.json()["settlement_txid"] == body["settlement_txid"]
    log.info("payments after close get 410")
    assert httpx.put(base + B_PATH, json=ch.v2_body(12345678799998)).status_code == 410


def _exp() -> int:
    return int(time.time()) + 7 * 24 * 3600


@pytest.mark.parametrize("padded", [False, True])
def test_v1_open_pay_delete(services: Services, padded: bool) -> None:
    base = services.url
    ch = TestChannel(exp_time=_exp())
    info = httpx.get(f"{base}/v1/fundingInfo", params={"client_pubkey": ch.pk, "exp_time": ch.exp_time})
    assert info.status_code == 200
    assert info.json()["funding_address_copy"] == ch.params.funding_address.text
    price = info.json()["open_price"]
    assert price == 70000 + 348 * 40
    change = ch.funding_value - price
    new_url = info.headers["Location"].split("?")[0]
    r = httpx.post(new_url, params={"client_pubkey": ch.pk, "exp_time": ch.exp_time, "change_address": CLIENT_REFUND,
                                    "payment": ch.v1_payload(change, CLIENT_REFUND, padded=padded)})
    assert r.status_code == 201, r.text
    chan_url = r.headers["Location"]
    for _ in range(10):
        change -= 1
        r = httpx.put(chan_url, params={"payment": ch.v1_payload(change, CLIENT_REFUND, padded=padded)})
        assert r.status_code == 200, r.text
        assert r.json() == {"channel_status": "open", "channel_value_left": change, "value_received": 1,
                            "settlement_txid": None}
    log.info("DELETE with an older payment is refused; with the latest it settles (202)")
    stale = ch.v1_payload(change + 1, CLIENT_REFUND, padded=padded)
    assert httpx.delete(chan_url, params={"payment": stale}).status_code == 400
    latest = ch.v1_payload(change, CLIENT_REFUND, padded=padded)
    r = httpx.delete(chan_url, params={"payment": latest})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["channel_status"] == "closed" and len(body["settlement_txid"]) == 64
    assert httpx.delete(chan_url, params={"payment": latest}).json() == body
    assert httpx.put(chan_url, params={"payment": ch.v1_payload(change - 1, CLIENT_REFUND)}).status_code == 404


def test_v1_exhausting_payment_settles(services: Services) -> None:
    base = services.url
    ch = TestChannel(exp_time=_exp())
    change = ch.funding_value - 100000
    r = httpx.post(f"{base}/v1/channels/new", params={
        "client_pubkey": ch.pk, "exp_time": ch.exp_time, "change_address": CLIENT_REFUND,
        "payment": ch.v1_payload(change, CLIENT_REFUND)})
    assert r.status_code == 201
    r = httpx.put(r.headers["Location"], params={"payment": ch.v1_payload(0, CLIENT_REFUND, NONE_ACP)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["channel_status"] == "closed" and body["value_received"] == change
    assert body["channel_value_left"] == 0 and body["settlement_txid"]


def test_v2_seed_flow_with_one_satoshi_payments(services: Services) -> None:
    base = services.url
    ch = TestChannel(exp_time=_exp())
    change = ch.funding_value - 100000
    r = httpx.post(base + ch.seed_url, json=ch.v2_body(change))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == base + ch.seed_url
    for _ in range(20):
        change -= 1
        r = httpx.put(base + ch.seed_url, json=ch.v2_body(change))
        assert r.status_code == 200 and r.json()["value_received"] == 1
    r = httpx.put(base + ch.seed_url + "/close", json=ch.v2_body(change, CLIENT_REFUND))
    assert r.status_code == 200, r.text
    assert r.json()["channel_status"] == "closed" and r.json()["settlement_txid"]


def test_v23_flow_compact_payments_and_secret(services: Services) -> None:
    base = services.url
    ch = TestChannel(exp_time=_exp())
    change = ch.funding_value - 100000
    secret = ch.secret(change)
    r = httpx.post(base + ch.v23_url, params={"secret": secret}, json=ch.v23_full(change))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == base + ch.v23_url
    for quoted in (False, True):
        change -= 5
        s = f'"{secret}"' if quoted else secret
        r = httpx.put(base + ch.v23_url, params={"secret": s}, json=ch.v23_compact(change))
        assert r.status_code == 200 and r.json()["value_received"] == 5
    log.info("a wrong secret is a 404, like an unknown channel")
    wrong = httpx.put(base + ch.v23_url, params={"secret": "00" * 32}, json=ch.v23_compact(change - 1))
    assert wrong.status_code == 404
    other = TestChannel(exp_time=_exp())
    unknown = httpx.put(base + other.v23_url, params={"secret": "00" * 32}, json=other.v23_compact(change))
    assert unknown.status_code == 404 and unknown.json()["message"] == wrong.json()["message"]
    log.info("close: the closing payment's value is the fee")
    fee = 20000
    r = httpx.put(base + ch.v23_url + "/close", params={"secret": secret},
                  json={"payment_data": ch.v23_full(change - fee, CLIENT_REFUND)["payment_data"],
                        "application_data": ""})
    assert r.status_code == 200, r.text
    assert r.json()["channel_status"] == "closed" and r.json()["value_received"] == fee
