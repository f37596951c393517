"""Benchmark LevelDBStorage group commit: N concurrent committers x M commits of ~200-byte values.

Usage: python bench/bench_storage.py [--committers 50] [--commits 200] [--value-size 200] [--no-sync]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from chan_store.leveldb_storage import LevelDBStorage
from chan_store.storage import WriteBatch


async def committer(store: LevelDBStorage, who: int, commits: int, value_size: int) -> list[float]:
    """Commit `commits` single-put batches one after the other; return each commit's latency."""
    latencies: list[float] = []
    for i in range(commits):
        batch = WriteBatch(puts=((b"bench:%04d:%06d" % (who, i), os.urandom(value_size)),))
        started = time.perf_counter()
        await store.commit(batch)
        latencies.append(time.perf_counter() - started)
    return latencies


async def run(args: argparse.Namespace, directory: Path) -> None:
    """Run the benchmark in `directory` and print the figures."""
    store = LevelDBStorage(directory / "db", sync=not args.no_sync, max_batch=args.max_batch)
    try:
        started = time.perf_counter()
        per_committer = await asyncio.gather(
            *(committer(store, who, args.commits, args.value_size) for who in range(args.committers))
        )
        elapsed = time.perf_counter() - started
        stats = store.stats()
    finally:
        await store.close()
    latencies = sorted(latency for group in per_committer for latency in group)
    mode = "sync=False (UNSAFE, no fsync)" if args.no_sync else "sync=True (fsync per group write)"
    print(f"mode                 {mode}")
    print(f"committers x commits {args.committers} x {args.commits}, value {args.value_size} bytes")
    print(f"acknowledged commits {stats.writes} in {elapsed:.3f} s")
    print(f"commits/s            {stats.writes / elapsed:,.0f}")
    print(f"synced writes        {stats.commits}")
    print(f"average batch size   {stats.mean_batch_size:.1f} (max {stats.max_batch_size})")
    print(f"average write time   {1000 * stats.total_sync_seconds / max(stats.commits, 1):.3f} ms")
    print(
        f"commit latency       p50 {1000 * statistics.median(latencies):.2f} ms,"
        f" p99 {1000 * latencies[int(0.99 * (len(latencies) - 1))]:.2f} ms"
    )


def main() -> None:
    """Parse the arguments and run the benchmark in a temporary directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--committers", type=int, default=50, help="concurrent committers (N)")
    parser.add_argument("--commits", type=int, default=200, help="commits per committer (M)")
    parser.add_argument("--value-size", type=int, default=200, help="bytes per value")
    parser.add_argument("--max-batch", type=int, default=4096, help="max commits per synced write")
    parser.add_argument("--no-sync", action="store_true", help="skip fsync (UNSAFE; measures its cost)")
    args = parser.parse_args()
    if args.committers < 1 or args.commits < 1:
        parser.error("--committers and --commits must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
