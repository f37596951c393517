"""Write N open debug-mode channels straight into a ChanStore LevelDB (for the scale benchmark).

Usage: python bench/gen_channels.py --count 1000000 --path DIR [--seed HEX] [--exp-days 30] [--procs 2]

Channel i has the client secret SHA256(seed ‖ i as 8 bytes big-endian) (bench/channels.derived_secret),
the debug funding of spec 9, and the state PayChanServer itself would store after a v2-seed opening
payment of the open price (paychan_common.rules.open_state: the signature is real and verified). The keys
are ChanStore's own (chan_store.keys: the state under `c`, the client-key and status/expiry index
entries), written in LevelDB batches; the last one synced. A sidecar DIR.json records the seed, count,
exp_time, open price and server key, so that `bench_payments.py --existing DIR.json` can pay on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import coincurve
import plyvel

from chan_store import keys
from channels import derived_secret
from paychan_common.channel import ChannelParams, ClientSignature, PaymentVerifier, debug_funding
from paychan_common.keys import PublicKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import ChannelPolicy, open_state
from paychan_common.sighash import SINGLE_ACP
from paychan_common.state import Family

DEBUG_SERVER_PUBKEY = "0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3"  # spec 13.2
CHUNK = 10_000

_Spec = tuple[bytes, str, int, int, int, str]  # seed, server key, exp_time, open price, now, network


def channel_records(spec: _Spec, start: int, stop: int) -> list[tuple[bytes, bytes]]:
    """The LevelDB (key, value) pairs of channels start..stop-1."""
    seed, server_hex, exp_time, open_price, now, network = spec
    server = PublicKey.from_hex(server_hex)
    net = Network.parse(network)
    policy = ChannelPolicy(open_price=open_price)
    out: list[tuple[bytes, bytes]] = []
    for i in range(start, stop):
        secret = derived_secret(seed, i)
        signer = coincurve.PrivateKey(secret)
        client = PublicKey(signer.public_key.format(compressed=True))
        params = ChannelParams(client, server, exp_time, net)
        address = params.funding_address
        funding = debug_funding(client, exp_time, address.script_pubkey)
        verifier = PaymentVerifier(client, funding.outpoint, params.redeem_script)
        change = funding.value - open_price
        der = signer.sign(verifier.digest(change, address.script_pubkey, SINGLE_ACP), hasher=None)
        payment = Payment(change, ClientSignature(der, SINGLE_ACP), funding.outpoint, params.redeem_script,
                          address.text)
        state = open_state(params, funding, payment, verifier, address, Family.V2_SEED, policy, now).state
        op = state.outpoint.serialize()
        data = state.serialize()
        out.append((keys.channel_key(op), data))
        out.extend((key, b"") for key in keys.index_keys(op, data))
    return out


def _ranges(count: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, CHUNK):
        yield start, min(count, start + CHUNK)


def main() -> int:
    """Generate the channels."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--path", required=True, help="LevelDB directory (must not exist yet)")
    ap.add_argument("--seed", default=None, help="hex seed of the client keys (default: random)")
    ap.add_argument("--exp-days", type=float, default=30.0, help="exp_time = now + this many days")
    ap.add_argument("--open-price", type=int, default=100_000)
    ap.add_argument("--server-pubkey", default=DEBUG_SERVER_PUBKEY)
    ap.add_argument("--network", default="test")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    path = Path(args.path)
    if path.exists():
        ap.error(f"{path} exists; choose a new directory")
    seed = bytes.fromhex(args.seed) if args.seed else os.urandom(16)
    now = int(time.time())
    exp_time = now + int(args.exp_days * 86400)
    spec: _Spec = (seed, args.server_pubkey, exp_time, args.open_price, now, args.network)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)
    started = time.perf_counter()
    written = 0
    try:
        with ProcessPoolExecutor(max(1, args.procs)) as pool:
            pending: deque[tuple[int, Future[list[tuple[bytes, bytes]]]]] = deque()
            ranges = _ranges(args.count)
            while True:
                while len(pending) < 4 * max(1, args.procs):  # bounded: results are written in order
                    nxt = next(ranges, None)
                    if nxt is None:
                        break
                    pending.append((nxt[1], pool.submit(channel_records, spec, *nxt)))
                if not pending:
                    break
                stop, fut = pending.popleft()
                batch = db.write_batch(sync=stop == args.count)
                for key, value in fut.result():
                    batch.put(key, value)
                batch.write()
                written = stop
                if written % 100_000 == 0 or written == args.count:
                    rate = written / (time.perf_counter() - started)
                    print(f"{written:,} channels written ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    finally:
        db.close()
    meta = {"path": str(path.resolve()), "count": args.count, "seed": seed.hex(), "exp_time": exp_time,
            "open_price": args.open_price, "server_pubkey": args.server_pubkey, "network": args.network,
            "family": "v2", "generated_at": now}
    Path(str(path) + ".json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"{args.count:,} channels in {time.perf_counter() - started:.1f} s; LevelDB {size / 2**20:.0f} MiB; "
          f"metadata {path}.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
