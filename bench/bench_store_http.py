"""ChanStore's own CPU per POST /payments batch: the app (real create_app, LevelDB synced by default) in a
child process, served as `chan-store` serves it (with its fast front, chan_store/front.py), one
ChanStoreClient sending N sequential batches of B payments; the child's user and system CPU (from /proc) per
batch. With --before SRC the same is measured for another tree's ChanStore (e.g. an extracted older commit's
src/, sent JSON batches, no front), alternating with this tree's (binary batches); with --without-front this
tree is measured with the front off too (aiohttp serves every batch).

    .venv/bin/python bench/bench_store_http.py [--kind sync|nosync|memory] [--reps 2] [--before /tmp/old/src]
        [--without-front]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import glob
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "t0ken" * 12
PORT = 17979


def _config(tmp: str, sync: bool) -> Any:
    from chan_store.config import StoreConfig
    token = os.path.join(tmp, "token")
    Path(token).write_text(TOKEN)
    os.chmod(token, 0o600)
    return StoreConfig.model_validate({"network": "test", "listen": {"host": "127.0.0.1", "port": PORT},
                                       "auth": {"token_file": token},
                                       "storage": {"path": os.path.join(tmp, "db"), "sync": sync}})


def _child(tmp: str, kind: str, ready: Any, src: str, fronted: bool) -> None:
    sys.path.insert(0, src)
    import logging

    import uvloop
    from aiohttp import web

    from chan_store.app import create_app
    from chan_store.memory_storage import MemoryStorage
    logging.disable(logging.INFO)
    factory: dict[str, Any] = {"storage_factory": lambda _c: MemoryStorage()} if kind == "memory" else {}
    app = create_app(_config(tmp, kind != "nosync"), **factory)

    async def serve() -> None:
        if fronted:
            from chan_store.front import front
            from paychan_runtime.serve import serve_app

            async def started() -> None:
                ready.set()
            await serve_app(app, host="127.0.0.1", port=PORT, on_started=started, front=front(app))
            return
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", PORT).start()
        ready.set()
        await asyncio.Event().wait()

    uvloop.run(serve())


def _cpu(pid: int) -> tuple[int, int]:
    user = system = 0
    for task in glob.glob(f"/proc/{pid}/task/*/stat"):
        fields = Path(task).read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user, system


async def _drive(pid: int, batch: int, binary: bool, rounds: int) -> tuple[float, float, float]:
    from tests.fuzz.seeds import sample_states

    from chan_store.client import ChanStoreClient
    from chan_store.contract import PaymentItem
    from paychan_common.tx import OutPoint
    base = sample_states()[0]
    client = ChanStoreClient(f"http://127.0.0.1:{PORT}", TOKEN, binary=binary)
    chans = [dataclasses.replace(base, outpoint=OutPoint(i.to_bytes(32, "big"), 0),
                                 client_pubkey=b"\x02" + i.to_bytes(32, "big")) for i in range(batch)]
    for state in chans:
        await client.create(state)
    change = base.change_value
    before, started = _cpu(pid), time.perf_counter()
    for _ in range(rounds):
        change -= 1
        await client.apply_payments([PaymentItem(s.outpoint, change, base.signature, 0x83) for s in chans],
                                    1_700_000_001)
    after, ended = _cpu(pid), time.perf_counter()
    await client.close()
    tick = os.sysconf("SC_CLK_TCK")
    return ((after[0] - before[0]) / tick / rounds * 1e6, (after[1] - before[1]) / tick / rounds * 1e6,
            (ended - started) / rounds * 1e6)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["sync", "nosync", "memory"], default="sync")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--before", default=None, help="another tree's src/ to compare (sent JSON batches)")
    parser.add_argument("--without-front", action="store_true", help="this tree without its fast front too")
    args = parser.parse_args()
    import uvloop
    mp.set_start_method("spawn")
    here = str(ROOT / "src")
    trees = (([("before", args.before, False, False)] if args.before else [])
             + ([("aiohttp", here, True, False)] if args.without_front else []) + [("after", here, True, True)])
    for _ in range(args.reps):
        for batch in (1, 3, 20):
            for label, src, binary, fronted in trees:
                tmp = tempfile.mkdtemp(prefix="bench-store-http-")
                ready = mp.Event()
                child = mp.Process(target=_child, args=(tmp, args.kind, ready, src, fronted))
                child.start()
                ready.wait()
                try:
                    user, system, wall = uvloop.run(_drive(child.pid or 0, batch, binary, args.rounds))
                finally:
                    child.terminate()
                    child.join()
                print(f"{args.kind} {label:7} batch {batch:2} {'binary' if binary else 'json'}: ChanStore CPU "
                      f"user {user:5.0f} + sys {system:4.0f} = {user + system:5.0f} us/batch, wall {wall:5.0f} us",
                      flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
