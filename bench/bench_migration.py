"""Migration round trip at scale: N channels LevelDB -> PostgreSQL -> LevelDB, verified by counts and digest.

Usage: .venv/bin/python bench/bench_migration.py [--count 100000]
Starts its own PostgreSQL server (tests/support/postgres.py; fsync and synchronous_commit on), writes N
synthetic channels of every status with ChanStore's key layout, copies them with `chan_store.tools`, and
prints each step's time and the digests (which must be equal).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.synthetic import synthetic_states, write_leveldb  # noqa: E402

from chan_store.tools import copy_channels, digest_of  # noqa: E402


async def run(count: int) -> int:
    pg = PostgresServer()
    pg.start()
    work = Path(tempfile.mkdtemp(prefix="paychan-migr-"))
    try:
        write_leveldb(work / "source", synthetic_states(count))
        original = await digest_of(f"leveldb:{work / 'source'}")
        started = time.perf_counter()
        to_pg = await copy_channels(f"leveldb:{work / 'source'}", f"postgres:{pg.dsn}")
        middle = time.perf_counter()
        back = await copy_channels(f"postgres:{pg.dsn}", f"leveldb:{work / 'back'}")
        done = time.perf_counter()
        print(f"{count} channels {original.counts}")
        print(f"leveldb -> postgres: {middle - started:.1f} s ({count / (middle - started):,.0f} channels/s), "
              f"digest {to_pg.digest[:16]}")
        print(f"postgres -> leveldb: {done - middle:.1f} s ({count / (done - middle):,.0f} channels/s), "
              f"digest {back.digest[:16]}")
        ok = original.digest == to_pg.digest == back.digest and original.counts == back.counts
        print("round trip exact" if ok else "ROUND TRIP DIFFERS")
        return 0 if ok else 1
    finally:
        pg.remove()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=100_000)
    return asyncio.run(run(ap.parse_args().count))


if __name__ == "__main__":
    sys.exit(main())
