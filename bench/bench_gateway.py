"""Paid requests per second through paychan-gateway against a trivial upstream, beside the bare payment rate.

    PYTHONPATH=. .venv/bin/python bench/bench_gateway.py --clients 20 --requests 100

Starts ChanStore, SigningService, PayChanServer (1 worker), examples/upstream.py and the gateway (debug
config, every payment and every receipt synced) on free loopback ports. T channels are opened and N
payments per channel signed before the timed phases; each phase runs T concurrent lanes (one keep-alive
connection and one channel each, requests one after the other) with the same aiohttp client:

  upstream   GET /api/items/i straight to the upstream (no payment): the proxy's ceiling
  bare pay   PUT /v2/channels/{txid}/{vout}?secret= with a compact payment: the payment rate
  gateway    GET /api/items/i through the gateway with the payment in the Authorization header

and every answer is checked (200; the gateway's value received == T x N x price).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from tests.support.gateway import PER_REQUEST, GatewayStack

from paychan_client.api import PaychanClient
from paychan_client.paying import debug_funder, payment_header
from paychan_client.payments import sign
from paychan_client.state import ClientChannel
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.state import Family


def open_channels(server: str, count: int, first: int) -> list[ClientChannel]:
    """count v2.3 channels on the debug funding (client keys first+1 ...)."""
    out = []
    with PaychanClient(server, Network.TEST) as client:
        for i in range(count):
            key = PrivateKey((first + i + 1).to_bytes(32, "big"))
            exp = int(time.time()) + 7 * 24 * 3600
            info = client.funding_info(key.public_key, exp, Family.V2_3)
            op, value = debug_funder(info)
            out.append(client.open_channel(key, exp, op, value, Family.V2_3, info=info).channel)
    return out


def payments(ch: ClientChannel, n: int) -> list[ClientChannel]:
    """n successive payments of the price, signed ahead."""
    out = []
    for _ in range(n):
        p = sign(ch.client_key, ch.funding_outpoint, ch.redeem_script, ch.change_value - PER_REQUEST,
                 ch.change_address, ch.network, ch.dust_limit)
        ch = ch.with_payment(p.change_value, p.signature)
        out.append(ch)
    return out


async def lane(http: aiohttp.ClientSession, requests: Sequence[tuple[str, str, dict[str, str], bytes | None]]
               ) -> int:
    ok = 0
    for method, url, headers, body in requests:
        async with http.request(method, url, headers=headers, data=body) as r:
            await r.read()
            ok += r.status == 200
    return ok


Lanes = list[list[tuple[str, str, dict[str, str], bytes | None]]]
"""Per client, its requests: (method, URL, headers, body)."""


async def phase(lanes: Lanes) -> tuple[float, int]:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        t0 = time.perf_counter()
        oks = await asyncio.gather(*(lane(http, reqs) for reqs in lanes))
        return time.perf_counter() - t0, sum(oks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    t, n = args.clients, args.requests
    stack = GatewayStack(Path(tempfile.mkdtemp(prefix="bench-gw-"))).start()
    try:
        bare_chs, gw_chs = open_channels(stack.services.url, t, 0), open_channels(stack.services.url, t, t)
        results: dict[str, object] = {"clients": t, "requests_per_client": n}
        upstream: Lanes = [[("GET", f"{stack.upstream_url}/api/items/{i}", {}, None) for i in range(n)]
                           for _ in range(t)]
        bare: Lanes = [[("PUT", f"{ch.channel_url}?secret={ch.secret}", {"Content-Type": "application/json"},
                  json.dumps({"payment_data": {"change_value": p.change_value,
                                               "signature_data": p.latest_signature.script_sig_push.hex()},
                              "application_data": ""}).encode()) for p in payments(ch, n)] for ch in bare_chs]
        gateway: Lanes = [[("GET", f"{stack.url}/api/items/{i}", {"Authorization": payment_header(p)}, None)
                    for i, p in enumerate(payments(ch, n))] for ch in gw_chs]
        for name, lanes in (("upstream", upstream), ("bare_pay", bare), ("gateway", gateway)):
            seconds, ok = asyncio.run(phase(lanes))
            results[name] = {"per_second": round(t * n / seconds, 1), "ok": ok, "of": t * n}
        received = sum(ch.funding_value - stack.stored_change(ch.funding_outpoint) for ch in gw_chs)
        results["gateway_value_received_exact"] = received == t * n * PER_REQUEST + t * 100_000
        print(json.dumps(results))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
