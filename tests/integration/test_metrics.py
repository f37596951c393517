"""`/metrics` of the three services, parsed by prometheus-client's own parser, with the figures moving as
payments flow: payments and value, latency by route template, ChanStore batches and sync latency,
signatures made and refused, settlements by state, value at risk by hours to expiry."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.channels import CLIENT_REFUND, TestChannel
from tests.support.stack import INTERNAL_TOKEN, Stack, exp_time

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """{(sample name, sorted labels): value} of an exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


async def server_metrics(stack: Stack) -> Samples:
    status, text = await stack.mgmt("GET", "/metrics")
    assert status == 200
    return parse(text)


async def plain_metrics(url: str) -> Samples:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return parse(await r.text())


async def test_server_metrics_move_with_payments(stack: Stack) -> None:
    before = await server_metrics(stack)
    assert value(before, "paychan_payments_total", kind="pay", family="v2.3.0") == 0
    ch = TestChannel(exp_time=exp_time(4))
    change = await stack.open_v23(ch)
    for _ in range(5):
        change -= 100
        await stack.pay_v23(ch, change)
    after = await server_metrics(stack)
    assert value(after, "paychan_payments_total", kind="open", family="v2.3.0") == 1
    assert value(after, "paychan_payments_total", kind="pay", family="v2.3.0") == 5
    assert value(after, "paychan_value_received_satoshis_total", kind="pay", family="v2.3.0") == 500
    assert value(after, "paychan_value_received_satoshis_total", kind="open", family="v2.3.0") == 100_000

    # Latency by route template (never the raw URL, which carries the txid).
    pay_count = value(after, "paychan_http_request_duration_seconds_count", method="PUT",
                      route="/v2/channels/{txid}/{vout}", status="200")
    assert pay_count == 5
    assert not any(ch.op.display_txid in dict(lab).get("route", "") for (_, lab) in after)
    assert value(after, "paychan_http_request_duration_seconds_bucket", method="PUT",
                 route="/v2/channels/{txid}/{vout}", status="200", le="+Inf") == 5

    # Money in flight, read from ChanStore at scrape time.
    assert value(after, "paychan_channels", status="open") == 1
    assert value(after, "paychan_value_unsettled_satoshis") == 100_500
    assert value(after, "paychan_value_at_risk_satoshis", hours_to_expiry="2-7d") == 100_500
    assert value(after, "paychan_channels_at_risk", hours_to_expiry="2-7d") == 1
    assert value(after, "paychan_value_at_risk_satoshis", hours_to_expiry=">7d") == 0

    # A close: value leaves "open", the settlement shows up by state.
    secret = stack.secret(ch)
    r = await stack.public.put(ch.v23_url + "/close", params={"secret": secret},
                               json={"payment_data": ch.v23_full(change - 20_000, CLIENT_REFUND)["payment_data"],
                                     "application_data": ""})
    assert r.status == 200, await r.text()
    closed = await server_metrics(stack)
    assert value(closed, "paychan_payments_total", kind="close", family="v2.3.0") == 1
    assert value(closed, "paychan_value_received_satoshis_total", kind="close", family="v2.3.0") == 20_000
    assert value(closed, "paychan_channels", status="open") == 0
    settled = total(closed, "paychan_settlements")
    assert settled == 1
    assert value(closed, "paychan_value_at_risk_satoshis", hours_to_expiry="2-7d") in (0, 120_500)
    assert value(closed, "paychan_settlements_confirmed_total", bumps="0") == 1  # spec 8.6: by number of bumps
    assert value(closed, "paychan_settlement_replacements_total") == 0
    assert value(closed, "paychan_settlements_near_deadline_satoshis") == 0


async def test_error_routes_are_labelled_by_template_and_unmatched(stack: Stack) -> None:
    await stack.public.get("/no/such/path/" + "ab" * 40)
    await stack.public.put("/v2/channels/" + "00" * 32 + "/1", params={"secret": "00" * 32}, json={})
    m = await server_metrics(stack)
    assert value(m, "paychan_http_request_duration_seconds_count", method="GET", route="unmatched",
                 status="404") == 1
    assert total(m, "paychan_http_request_duration_seconds_count", route="/v2/channels/{txid}/{vout}",
                 method="PUT") == 1


async def test_chan_store_metrics(stack: Stack) -> None:
    url = str(stack.store_server.make_url("/metrics"))
    before = await plain_metrics(url)  # open path: no token needed
    ch = TestChannel(exp_time=exp_time())
    change = await stack.open_v23(ch)
    for _ in range(4):
        change -= 1
        await stack.pay_v23(ch, change)
    after = await plain_metrics(url)
    # one create + four payments, each durable before its answer
    assert value(after, "chanstore_commit_duration_seconds_count") >= 5
    assert value(after, "chanstore_engine_write_batches_count") >= 1
    assert value(after, "chanstore_engine_write_duration_seconds_count") >= 1
    assert value(after, "chanstore_engine_writes_total") >= value(before, "chanstore_engine_writes_total") + 1
    assert value(after, "chanstore_batches_committed_total") >= 5
    assert value(after, "chanstore_channels", status="open") == 1
    assert value(after, "paychan_http_request_duration_seconds_count", method="POST", route="/payments",
                 status="200") == 4
    # The shared internal token is not needed for /metrics, and is still needed elsewhere.
    async with aiohttp.ClientSession() as s, s.get(str(stack.store_server.make_url("/stats"))) as r:
        assert r.status == 401


async def test_signing_metrics_made_and_refused(stack: Stack) -> None:
    url = str(stack.signing_server.make_url("/metrics"))
    before = await plain_metrics(url)
    assert value(before, "paychan_signatures_total") == 0
    ch = TestChannel(exp_time=exp_time())
    change = await stack.open_v23(ch)
    status, _ = await stack.mgmt("POST", f"/channels/{ch.op.display_txid}/{ch.op.vout}/close")
    assert status == 200
    bad: Any = {"outpoint": "nope"}
    sign_url = str(stack.signing_server.make_url("/sign_settlement"))
    auth = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    async with aiohttp.ClientSession() as s, s.post(sign_url, json=bad, headers=auth) as r:
        assert r.status == 400
        code = (await r.json())["error"]["code"]
    after = await plain_metrics(url)
    assert value(after, "paychan_signatures_total") == 1
    assert value(after, "paychan_signatures_refused_total", code=code) == 1
    assert change > 0
