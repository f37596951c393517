"""Buy from an API behind paychan-gateway: a few JSON calls and a 1 MiB download, paid by the httpx flow.

    python examples/client.py --gateway http://127.0.0.1:8090 --budget 200000

Debug mode only (the channel's funding is the server's fake debug funding, spec 9): the flow opens a v2.3.0
channel on the first 402, then pays each request from it. Prints one JSON line: what was bought and paid.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import httpx

from paychan_client.paying import Budget, ChannelWallet, PayingAuth, debug_funder, get_ranges
from paychan_common.network import Network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8090")
    parser.add_argument("--budget", type=int, default=200_000, help="total satoshis, opening payment included")
    parser.add_argument("--items", type=int, default=3)
    args = parser.parse_args()
    wallet = ChannelWallet(Network.TEST, funder=debug_funder)
    auth = PayingAuth(wallet, Budget(total=args.budget))
    items = []
    with httpx.Client(auth=auth, timeout=30) as http:
        for i in range(args.items):
            r = http.get(f"{args.gateway}/api/items/{i}")
            r.raise_for_status()
            items.append(r.json()["item"])
        digest = hashlib.sha256()
        size, last = get_ranges(http, f"{args.gateway}/files/big.bin", digest.update)
    print(json.dumps({"items": items, "file_status": last.status_code, "file_bytes": size,
                      "file_sha256": digest.hexdigest(), "paid": auth.budget.spent}))


if __name__ == "__main__":
    main()
