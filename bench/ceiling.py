"""What this machine allows a payment server built like paychan: the same load generator and the same payment
requests as `bench_payments.py`, against three minimal servers in the same shape (CPython on uvloop, two
SO_REUSEPORT worker processes, a store process), each doing only the unavoidable part of a payment:

  frame    the workers frame each request (head to the blank line, Content-Length bytes) and write a
           canned answer: the cost of HTTP over loopback TCP from Python, nothing else;
  verify   the same, plus one ECDSA verification per request (libsecp256k1 through coincurve, a fixed
           signature and key): the one check no payment server can skip;
  durable  the same, plus the hop the design requires: each worker sends the payments it holds to the store
           over one connection (length-prefixed records, one batch in flight per worker, as paychan's
           batcher), the store writes every group that arrived meanwhile with one synced LevelDB write
           (fdatasync; a group under 16 records in the loop's thread when the writer thread is idle, as
           ChanStore's default) and answers, and only then do the workers answer their clients.

No HTTP head parse, no JSON, no rule, no state, no metric, no log: whatever paychan does beyond these
servers is the protocol's own work. A payment server written this way cannot be faster than `durable` on
this machine, whatever it optimises; the ratio of paychan's rate to it is how much of the room is used.

    .venv/bin/python bench/ceiling.py [--clients 100] [--payments 500] [--runs 3] [--workers 2] [--rate R]
        [--kinds frame,verify,durable] [--inline-below 16] [--json]

Each kind runs `--runs` times, one after the other, with the median printed; the generator's own CPU and
every server process's CPU (user + kernel, from /proc) are reported per request, and the CPU time the host
stole from this VM during the run (`/proc/stat`'s steal: the neighbours' share, which slows every figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ephemeral_port_reserve import reserve

from bench_payments import INFO_KEY, cpu_snapshot, machine_cpu, percentile, run_timed
from channels import PlanSpec, build_channels

HERE = Path(__file__).resolve().parent
KINDS = ("frame", "verify", "durable")
BODY = (b'{"channel_status":"open","channel_value_left":12345678799999,"value_received":1,'
        b'"settlement_txid":null,"application_data":""}')
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
RECORD = 48 + 160  # key + value bytes per payment sent to the store: about a stored channel state's size
_LENGTH = struct.Struct("!I")


# ------------------------------------------------------------------ the servers


class _Verifier:
    """One fixed signature and key: a verification of a payment's cost."""

    def __init__(self) -> None:
        import hashlib

        from coincurve import PrivateKey, PublicKey

        key = PrivateKey(hashlib.sha256(b"paychan ceiling").digest())
        self.digest = hashlib.sha256(b"a payment's sighash").digest()
        self.signature = key.sign(self.digest, hasher=None)
        self.key = PublicKey(key.public_key.format())

    def __call__(self) -> None:
        if not self.key.verify(self.signature, self.digest, hasher=None):
            raise RuntimeError("the fixed signature does not verify")


INLINE_BELOW = 16  # records: a smaller group is written in the loop's thread (ChanStore's default)


class _Commit:
    """The store's group commit, as ChanStore's LevelDB engine does it: the frames that arrive in one loop
    iteration go as one synced write; a small group is written in the loop's own thread when the writer
    thread is idle (waking it and being woken costs more than the overlap gains), a larger one, or any
    group while the thread is busy, goes to the writer thread."""

    def __init__(self, db: Any, loop: asyncio.AbstractEventLoop, inline_below: int) -> None:
        self._db = db
        self._loop = loop
        self._inline_below = inline_below * RECORD
        self._pending: list[tuple[_Store, bytes]] = []
        self._queued = 0  # groups handed to the writer thread and not yet answered
        self._writes: queue.SimpleQueue[list[tuple[_Store, bytes]] | None] = queue.SimpleQueue()
        threading.Thread(target=self._writer, daemon=True).start()

    def add(self, conn: _Store, frame: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append((conn, frame))

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        if not self._queued and sum(len(frame) for _, frame in group) < self._inline_below:
            self._write(group)
            self._answer(group)
        else:
            self._queued += 1
            self._writes.put(group)

    def _write(self, group: list[tuple[_Store, bytes]]) -> None:
        with self._db.write_batch(sync=True) as batch:
            for _, frame in group:
                for at in range(0, len(frame), RECORD):
                    batch.put(frame[at:at + 48], frame[at + 48:at + RECORD])

    @staticmethod
    def _answer(group: list[tuple[_Store, bytes]]) -> None:
        for conn, frame in group:
            if conn.transport is not None:
                conn.transport.write(_LENGTH.pack(len(frame) // RECORD))

    def _answered(self, groups: list[list[tuple[_Store, bytes]]]) -> None:
        self._queued -= len(groups)
        for group in groups:
            self._answer(group)

    def _writer(self) -> None:
        while True:
            first = self._writes.get()
            if first is None:
                return
            groups = [first]
            while not self._writes.empty():  # the groups queued during the last write go together
                more = self._writes.get()
                if more is None:
                    return
                groups.append(more)
            self._write([item for group in groups for item in group])
            self._loop.call_soon_threadsafe(self._answered, groups)


class _Store(asyncio.Protocol):
    """The store's side of one worker connection: frames of records in, a 4-byte count out once written."""

    def __init__(self, commit: _Commit) -> None:
        self._commit = commit
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            (size,) = _LENGTH.unpack_from(buffer)
            if len(buffer) < 4 + size:
                return
            self._commit.add(self, bytes(buffer[4:4 + size]))
            del buffer[:4 + size]


def _store(port: int, path: str, inline_below: int) -> None:
    """The store process: every group of frames committed with one synced LevelDB write (`_Commit`)."""
    import plyvel
    import uvloop

    db = plyvel.DB(path, create_if_missing=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        commit = _Commit(db, loop, inline_below)
        server = await loop.create_server(lambda: _Store(commit), "127.0.0.1", port)
        await _serve_until_stopped(server)

    uvloop.run(main())


class _Worker(asyncio.Protocol):
    """One client connection of a worker: frame each request, then answer it (after the store if any)."""

    def __init__(self, verify: Callable[[], None] | None, hop: _Hop | None) -> None:
        self._verify = verify
        self._hop = hop
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            at = buffer.find(b"Content-Length: ", 0, end)
            size = int(buffer[at + 16:buffer.index(b"\r\n", at)]) if at >= 0 else 0
            if len(buffer) < end + 4 + size:
                return
            key = bytes(buffer[17:65])  # the target's txid part: a stable key per channel
            del buffer[:end + 4 + size]
            if self._verify is not None:
                self._verify()
            if self._hop is None:
                if self.transport is not None:
                    self.transport.write(ANSWER)
            else:
                self._hop.submit(self, key)


class _Hop(asyncio.Protocol):
    """A worker's one connection to the store: one batch in flight, the payments that come meanwhile wait
    for the next (paychan's batcher does the same)."""

    def __init__(self) -> None:
        self._waiting: list[_Worker] = []
        self._records: list[bytes] = []
        self._in_flight: list[_Worker] | None = None
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self._value = b"v" * (RECORD - 48)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def submit(self, conn: _Worker, key: bytes) -> None:
        self._waiting.append(conn)
        self._records.append(key.ljust(48, b"k")[:48] + self._value)
        if self._in_flight is None:
            self._send()

    def _send(self) -> None:
        frame = b"".join(self._records)
        self._in_flight, self._waiting, self._records = self._waiting, [], []
        if self.transport is not None:
            self.transport.write(_LENGTH.pack(len(frame)) + frame)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4 and self._in_flight is not None:
            del self._buffer[:4]
            done, self._in_flight = self._in_flight, None
            for conn in done:
                if conn.transport is not None:
                    conn.transport.write(ANSWER)
            if self._waiting:
                self._send()


async def _serve_until_stopped(server: asyncio.AbstractServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def _worker(kind: str, port: int, store_port: int | None) -> None:
    """One worker process of `kind`."""
    import uvloop

    verify = _Verifier() if kind in ("verify", "durable") else None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        hop: _Hop | None = None
        if store_port is not None:
            _, hop = await loop.create_connection(_Hop, "127.0.0.1", store_port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        sock.setblocking(False)
        server = await loop.create_server(lambda: _Worker(verify, hop), sock=sock)
        await _serve_until_stopped(server)

    uvloop.run(main())


# ------------------------------------------------------------------ the runs


def _wait_port(port: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a ceiling server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("a ceiling server did not start")


def run_kind(kind: str, lanes: list[list[bytes]], workers: int, rate: float | None,
             inline_below: int = INLINE_BELOW) -> dict[str, Any]:
    """One timed run against a fresh set of servers of `kind`: requests/s and CPU per request."""
    port = int(reserve("127.0.0.1"))
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="ceiling-") as tmp:
        try:
            store_port = None
            if kind == "durable":
                store_port = int(reserve("127.0.0.1"))
                procs.append(subprocess.Popen([sys.executable, __file__, "--serve", "store", str(store_port),
                                               os.path.join(tmp, "db"), str(inline_below)]))
                _wait_port(store_port, procs)
            for _ in range(workers):
                procs.append(subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port)]
                                              + ([str(store_port)] if store_port else [])))
            _wait_port(port, procs)
            time.sleep(0.3)  # let every worker bind
            pids = [p.pid for p in procs]
            before = cpu_snapshot(pids)
            ru_before, (_, steal_before) = os.times(), machine_cpu()
            start, end, results = run_timed("127.0.0.1", port, lanes, len(lanes), rate, 1)
            ru_after, (_, steal_after) = os.times(), machine_cpu()
            after = cpu_snapshot(pids)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
        stored = _stored(os.path.join(tmp, "db")) if kind == "durable" else None
    total = sum(len(lane) for lane in lanes)
    answered = sum(1 for lane in results for a in lane.answers if a is not None and a[0] == 200)
    if answered != total:
        raise RuntimeError(f"{kind}: {total - answered} of {total} requests not answered 200")
    cpu = {k: v - before.get(k, 0.0) for k, v in after.items()}
    user_and_kernel = sum(v for k, v in cpu.items() if not k.endswith("(kernel)"))
    generator = (ru_after.user + ru_after.system) - (ru_before.user + ru_before.system)
    latencies = sorted(x for lane in results for x in lane.latencies)
    return {"kind": kind, "requests_per_second": round(total / (end - start), 1),
            "p50_ms": round(1000 * percentile(latencies, 50), 3), "p99_ms": round(1000 * percentile(latencies, 99), 3),
            "server_cpu_us_per_request": round(1e6 * user_and_kernel / total, 1),
            "generator_cpu_us_per_request": round(1e6 * generator / total, 1), "stored_keys": stored,
            "steal_cpu_s": round(steal_after - steal_before, 2)}


def _stored(path: str) -> int:
    """How many keys the durable store holds (one per channel: each payment overwrites its channel's)."""
    import plyvel

    db = plyvel.DB(path)
    try:
        return sum(1 for _ in db.iterator(include_value=False))
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    """Run the ceiling kinds; print one line per run and the medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--payments", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=None, help="cap the offered load (requests/s, open loop)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--json", action="store_true", help="print the medians as one JSON object")
    ap.add_argument("--inline-below", type=int, default=INLINE_BELOW,
                    help="the store writes a group of fewer records in its loop's thread (0: never)")
    ap.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)  # KIND PORT [STORE_PORT] | store PORT PATH N
    args = ap.parse_args(argv)
    if args.serve:
        role, port = args.serve[0], int(args.serve[1])
        if role == "store":
            _store(port, args.serve[2], int(args.serve[3]))
        else:
            _worker(role, port, int(args.serve[2]) if len(args.serve) > 2 else None)
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or any(k not in KINDS for k in kinds):
        ap.error(f"--kinds: a comma-separated choice of {', '.join(KINDS)}")
    spec = PlanSpec("v2", INFO_KEY, 1000, args.payments, int(time.time()) + 7 * 24 * 3600, "127.0.0.1:1")
    lanes = [plan.payments for plan in build_channels(spec, args.clients)]  # paychan's own payment requests
    medians: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        runs = [run_kind(kind, lanes, args.workers, args.rate, args.inline_below) for _ in range(args.runs)]
        for i, run in enumerate(runs, 1):
            print(f"{kind:8} run {i}: {run['requests_per_second']:>9,.0f} requests/s  p50 {run['p50_ms']:.2f}  "
                  f"p99 {run['p99_ms']:.2f} ms  CPU us/request: servers "
                  f"{run['server_cpu_us_per_request']:.1f}, generator {run['generator_cpu_us_per_request']:.1f}; "
                  f"stolen by the host {run['steal_cpu_s']:.2f} s",
                  file=sys.stderr if args.json else sys.stdout, flush=True)
        medians[kind] = dict(sorted(runs, key=lambda r: r["requests_per_second"])[len(runs) // 2])
        medians[kind]["runs"] = [r["requests_per_second"] for r in runs]
    if args.json:
        print(json.dumps(medians))
    else:
        for kind, med in medians.items():
            print(f"median {kind:8} {med['requests_per_second']:>9,.0f} requests/s, p50 {med['p50_ms']:.2f}, "
                  f"p99 {med['p99_ms']:.2f} ms "
                  f"(runs {', '.join(f'{r:,.0f}' for r in med['runs'])}; "
                  f"spread {statistics.pstdev(med['runs']) / max(statistics.mean(med['runs']), 1):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
