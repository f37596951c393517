"""Write N open debug-mode channels straight into a ChanStore LevelDB (for the scale benchmark).

Usage: python bench/gen_channels.py --count 10000000 --path DIR [--seed HEX] [--exp-days 30] [--procs 2]
       [--copy-file FILE]   (also write PostgreSQL COPY text of the `channels` table, for --engine postgres)

Channel i has the client secret SHA256(seed ‖ i as 8 bytes big-endian) (bench/channels.derived_secret),
the debug funding of spec 9, and the state PayChanServer itself would store after a v2-seed opening
payment of the open price: a real RFC 6979 signature by the client key over the channel's sighash. The
state is built with the fields `paychan_common.rules.open_state` sets, without re-verifying the signature
we just made (50 us of a ~120 us channel); every SAMPLE-th channel (and the first) is built through
`open_state` itself, signature verified, and must come out byte for byte the same, or the run stops.

Two phases, so that LevelDB never compacts: (1) `--procs` worker processes compute the records and append
them to bucket files (by key space and the key's first random byte, so bucket order is key order); (2) the
main process reads each bucket, sorts it and writes it to LevelDB in ascending key order, in unsynced
batches of 10,000 records, then one synced write. Ascending writes make every memtable flush a file that
overlaps nothing, which LevelDB moves down the levels without rewriting it. The keys are ChanStore's own
(chan_store.keys: the state under `c`, the client-key and status/expiry index entries). A sidecar DIR.json
records the seed, count, exp_time, open price and server key, so that `bench_payments.py --existing
DIR.json` can pay on them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import coincurve
import plyvel
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from chan_store import keys
from chan_store.postgres import row_values
from channels import derived_secret
from paychan_common.address import Address, p2sh_script
from paychan_common.base58 import ALPHABET
from paychan_common.channel import ChannelParams, ClientSignature, PaymentVerifier, debug_funding
from paychan_common.hashing import hash160, sha256d
from paychan_common.keys import PublicKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import ChannelPolicy, open_state
from paychan_common.sighash import SINGLE_ACP, PaymentSighashTemplate
from paychan_common.state import ChannelState, Family, Status

DEBUG_SERVER_PUBKEY = "0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3"  # spec 13.2
CHUNK = 10_000
SAMPLE = 1000  # every SAMPLE-th channel goes through open_state (signature verified) and must match
BUCKETS = 64
WRITE_BATCH = 10_000  # records per LevelDB write (~3 MiB of states): tables stay near the 4 MiB memtable size
SPACES = (keys.CHANNEL, keys.CLIENT, keys.STATUS)  # key order: c < k < s
_HEAD = struct.Struct("<BH")  # key length, value length

_Spec = tuple[bytes, str, int, int, int, str]  # seed, server key, exp_time, open price, now, network


def _bucket(key: bytes) -> int:
    """The bucket of a key within its key space; bucket order is key order (phase 2 checks it)."""
    space = key[:1]
    if space == keys.CHANNEL:  # c ‖ outpoint: the txid is SHA256(client key)
        return key[1] >> 2
    if space == keys.CLIENT:  # k ‖ 02/03 ‖ x ...
        return ((key[1] & 1) << 5) | (key[2] >> 3)
    return key[6] >> 2  # s ‖ status ‖ exp_time ‖ outpoint: one status and one exp_time per run


_B58_3 = [a + b + c for a in ALPHABET for b in ALPHABET for c in ALPHABET]  # every 3-digit group, in order


def _b58check(version: int, payload: bytes) -> str:
    """Base58Check, three digits per division (paychan_common.base58 is the reference, checked on samples)."""
    raw = bytes([version]) + payload
    raw += sha256d(raw)[:4]
    n = int.from_bytes(raw, "big")
    groups: list[str] = []
    while n:
        n, r = divmod(n, 195_112)  # 58 ** 3
        groups.append(_B58_3[r])
    text = "".join(reversed(groups)).lstrip("1")
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + text


def _sign(secret: bytes, digest: bytes) -> bytes:
    """RFC 6979 ECDSA, DER, low S: what coincurve.PrivateKey(secret).sign(digest, hasher=None) returns,
    without building the key pair that constructor derives."""
    sig = ffi.new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_sign(GLOBAL_CONTEXT.ctx, sig, digest, secret, ffi.NULL, ffi.NULL):
        raise ValueError("secret key out of range")
    der = ffi.new("unsigned char[72]")
    size = ffi.new("size_t *", 72)
    lib.secp256k1_ecdsa_signature_serialize_der(GLOBAL_CONTEXT.ctx, der, size, sig)
    return bytes(ffi.buffer(der, size[0]))


class _Maker:
    """Builds channel states for one run's constants."""

    def __init__(self, spec: _Spec) -> None:
        seed, server_hex, exp_time, open_price, now, network = spec
        self.seed, self.exp_time, self.open_price, self.now = seed, exp_time, open_price, now
        self.server = PublicKey.from_hex(server_hex)
        self.net = Network.parse(network)
        self.version = self.net.params.p2sh_version
        self.policy = ChannelPolicy(open_price=open_price)

    def fast(self, i: int) -> ChannelState:
        """Channel i's state, the signature made but not re-verified."""
        secret = derived_secret(self.seed, i)
        client = coincurve.PublicKey.from_secret(secret).format(compressed=True)
        params = ChannelParams(PublicKey(client), self.server, self.exp_time, self.net)
        script = params.redeem_script
        h160 = hash160(script)
        change_script = p2sh_script(h160)
        funding = debug_funding(params.client_pubkey, self.exp_time, change_script)
        change = funding.value - self.open_price
        digest = PaymentSighashTemplate.build(funding.outpoint.serialize(), script).digest_single(change, change_script)
        sig = ClientSignature(_sign(secret, digest), SINGLE_ACP)
        return ChannelState(  # the fields open_state sets (rules.py); checked against it on samples
            client_pubkey=client, exp_time=self.exp_time, outpoint=funding.outpoint, funding_value=funding.value,
            redeem_script=script, change_address=_b58check(self.version, h160), change_script=change_script,
            family=Family.V2_SEED, status=Status.OPEN, change_value=change, signature=sig.der,
            sighash=sig.sighash, secret=sig.secret(), payment_count=1, open_time=self.now,
            last_payment_time=self.now)

    def checked(self, i: int) -> ChannelState:
        """Channel i's state through PayChanServer's own opening rules (signature verified)."""
        secret = derived_secret(self.seed, i)
        signer = coincurve.PrivateKey(secret)
        client = PublicKey(signer.public_key.format(compressed=True))
        params = ChannelParams(client, self.server, self.exp_time, self.net)
        address = params.funding_address
        funding = debug_funding(client, self.exp_time, address.script_pubkey)
        verifier = PaymentVerifier(client, funding.outpoint, params.redeem_script)
        change = funding.value - self.open_price
        der = signer.sign(verifier.digest(change, address.script_pubkey, SINGLE_ACP), hasher=None)
        payment = Payment(change, ClientSignature(der, SINGLE_ACP), funding.outpoint, params.redeem_script,
                          address.text)
        return open_state(params, funding, payment, verifier, address, Family.V2_SEED, self.policy, self.now).state

    def state(self, i: int) -> ChannelState:
        """Channel i's state (through open_state on samples, which must agree with the fast path)."""
        fast = self.fast(i)
        if i % SAMPLE == 0:
            checked = self.checked(i)
            if checked.serialize() != fast.serialize():
                raise SystemExit(f"channel {i}: the fast state differs from open_state's; fix gen_channels.py")
            if Address.p2sh(hash160(checked.redeem_script), self.net).text != fast.change_address:
                raise SystemExit(f"channel {i}: fast Base58Check differs")
        return fast


def channel_records(spec: _Spec, start: int, stop: int) -> list[tuple[bytes, bytes]]:
    """The LevelDB (key, value) pairs of channels start..stop-1."""
    maker = _Maker(spec)
    out: list[tuple[bytes, bytes]] = []
    for i in range(start, stop):
        data = maker.state(i).serialize()
        op = keys.raw_outpoint(data)
        out.append((keys.channel_key(op), data))
        out.extend((key, b"") for key in keys.index_keys(op, data))
    return out


def _copy_escape(value: object) -> str:
    """One field of PostgreSQL's COPY text format (bytea as \\x hex, backslash doubled)."""
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    return str(value)


def _worker(spec: _Spec, ranges: list[tuple[int, int]], parts: Path, index: int, copy: bool,
            progress: Any) -> None:
    """Phase 1 in one process: the records of `ranges`, appended to this worker's bucket files."""
    files: dict[tuple[bytes, int], BinaryIO] = {}
    copy_file = (parts / f"w{index}.copy").open("w") if copy else None
    maker = _Maker(spec)
    try:
        for start, stop in ranges:
            buffers: dict[tuple[bytes, int], list[bytes]] = {}
            lines: list[str] = []
            for i in range(start, stop):
                state = maker.state(i)
                data = state.serialize()
                op = keys.raw_outpoint(data)
                for key, value in ((keys.channel_key(op), data), *((k, b"") for k in keys.index_keys(op, data))):
                    record = _HEAD.pack(len(key), len(value)) + key + value
                    buffers.setdefault((key[:1], _bucket(key)), []).append(record)
                if copy_file is not None:
                    lines.append("\t".join(_copy_escape(v) for v in row_values(state, data)))
            for where, records in buffers.items():
                handle = files.get(where)
                if handle is None:
                    handle = files[where] = (parts / f"w{index}-{where[0].decode()}-{where[1]:02d}").open("ab")
                handle.write(b"".join(records))
            if copy_file is not None:
                copy_file.write("\n".join(lines) + "\n")
            with progress.get_lock():
                progress.value += stop - start
    finally:
        for handle in files.values():
            handle.close()
        if copy_file is not None:
            copy_file.close()


def _read_bucket(paths: list[Path]) -> list[tuple[bytes, bytes]]:
    records: list[tuple[bytes, bytes]] = []
    for path in paths:
        blob = path.read_bytes()
        at, end = 0, len(blob)
        while at < end:
            klen, vlen = _HEAD.unpack_from(blob, at)
            at += 3
            records.append((blob[at:at + klen], blob[at + klen:at + klen + vlen]))
            at += klen + vlen
    records.sort()
    return records


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
    ap.add_argument("--copy-file", default=None,
                    help="also write the channels as PostgreSQL COPY text (columns of chan_store.postgres.COLUMNS)")
    ap.add_argument("--keep-parts", action="store_true", help="keep the bucket files of phase 1")
    args = ap.parse_args()
    path = Path(args.path)
    if path.exists():
        ap.error(f"{path} exists; choose a new directory")
    seed = bytes.fromhex(args.seed) if args.seed else os.urandom(16)
    now = int(time.time())
    exp_time = now + int(args.exp_days * 86400)
    spec: _Spec = (seed, args.server_pubkey, exp_time, args.open_price, now, args.network)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = Path(str(path) + ".parts")
    parts.mkdir()
    started = time.perf_counter()

    procs = max(1, args.procs)
    chunks = list(_ranges(args.count))
    progress = multiprocessing.Value("q", 0)
    workers = [multiprocessing.Process(target=_worker, args=(spec, chunks[w::procs], parts, w,
                                                             args.copy_file is not None, progress))
               for w in range(procs)]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        workers[0].join(10) if workers[0].is_alive() else workers[-1].join(10)
        done = progress.value
        print(f"phase 1: {done:,} channels built ({done / (time.perf_counter() - started):,.0f}/s)",
              file=sys.stderr, flush=True)
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a worker failed (exit {worker.exitcode})")
    phase1 = time.perf_counter() - started
    print(f"phase 1: {args.count:,} channels in {phase1:.1f} s", file=sys.stderr, flush=True)

    db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)  # 4 MiB memtables: ~4 MiB table files
    written = 0
    last_key = b""
    try:
        for space in SPACES:
            for bucket in range(BUCKETS):
                records = _read_bucket(sorted(parts.glob(f"w*-{space.decode()}-{bucket:02d}")))
                if records and records[0][0] <= last_key:
                    raise AssertionError("bucket order is not key order")
                for at in range(0, len(records), WRITE_BATCH):  # a batch lands in one memtable, so in one table
                    with db.write_batch() as batch:
                        for key, value in records[at:at + WRITE_BATCH]:
                            batch.put(key, value)
                if records:
                    last_key = records[-1][0]
                written += len(records)
            print(f"phase 2: {space.decode()} written, {written:,} keys ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
        with db.write_batch(sync=True):  # an empty synced write: every write before it is durable
            pass
    finally:
        db.close()
    if written != 3 * args.count:
        raise SystemExit(f"wrote {written} keys, expected {3 * args.count}")
    if args.copy_file is not None:
        with Path(args.copy_file).open("wb") as out:
            for piece in sorted(parts.glob("w*.copy")):
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    if not args.keep_parts:
        shutil.rmtree(parts)
    meta = {"path": str(path.resolve()), "count": args.count, "seed": seed.hex(), "exp_time": exp_time,
            "open_price": args.open_price, "server_pubkey": args.server_pubkey, "network": args.network,
            "family": "v2", "generated_at": now}
    Path(str(path) + ".json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"{args.count:,} channels in {time.perf_counter() - started:.1f} s (phase 1 {phase1:.1f} s); "
          f"LevelDB {size / 2**20:.0f} MiB; metadata {path}.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
