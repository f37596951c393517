"""Load a `bench/gen_channels.py --copy-file` into a kept PostgreSQL cluster (for the 10M-channel benchmark).

Usage: python bench/load_pg.py --base DIR --copy-file FILE [--verify-against leveldb:DIR]

Creates the cluster at DIR (tests/support/postgres.py's layout; as the user `nobody` when run as root) on
first use, applies ChanStore's schema, drops the table's indexes, COPYs the rows in one transaction,
rebuilds the primary key and the indexes exactly as the schema defines them (bulk builds instead of 10M
random index inserts), then VACUUM ANALYZE (the visibility map lets the start-up count use the index).
The cluster is left stopped; start ChanStore on it with `bench/run_bench.sh --engine postgres --pg-base DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer  # noqa: E402

from chan_store.pg_schema import MIGRATIONS, migrate  # noqa: E402
from chan_store.postgres import COLUMNS  # noqa: E402
from chan_store.tools import digest_of  # noqa: E402

INDEXES = re.findall(r"^CREATE (?:UNIQUE )?INDEX .*?;$", MIGRATIONS[0][2], flags=re.M)


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


async def _schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        if await conn.fetchval("SELECT count(*) FROM channels"):
            raise SystemExit("the channels table is not empty")
    finally:
        await conn.close()


def main() -> int:
    """Load the file, report the times."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--base", required=True, help="cluster directory (created on first use)")
    ap.add_argument("--copy-file", required=True)
    ap.add_argument("--verify-against", metavar="leveldb:DIR",
                    help="compare count and digest with this store afterwards (holds every row in memory)")
    args = ap.parse_args()
    pg = PostgresServer(Path(args.base))
    pg.start()
    try:
        asyncio.run(_schema(pg.dsn))
        began = time.perf_counter()
        names = [re.search(r"INDEX (\w+)", sql).group(1) for sql in INDEXES]  # type: ignore[union-attr]
        pg.psql("ALTER TABLE channels DROP CONSTRAINT channels_pkey; " + " ".join(f"DROP INDEX {n};" for n in names))
        copy_s = _timed(lambda: pg.psql_from(f"COPY channels ({', '.join(COLUMNS)}) FROM STDIN", Path(args.copy_file)))
        print(f"COPY: {copy_s:.1f} s", file=sys.stderr, flush=True)
        index_s = _timed(lambda: pg.psql("SET maintenance_work_mem = '1GB'; "
                                         "ALTER TABLE channels ADD PRIMARY KEY (outpoint); " + " ".join(INDEXES),
                                         timeout=7200))
        print(f"primary key and {len(INDEXES)} indexes: {index_s:.1f} s", file=sys.stderr, flush=True)
        vacuum_s = _timed(lambda: pg.psql("VACUUM ANALYZE channels", timeout=7200))
        print(f"VACUUM ANALYZE: {vacuum_s:.1f} s; total {time.perf_counter() - began:.1f} s", file=sys.stderr)
        print(pg.psql("SELECT status, count(*) FROM channels GROUP BY status", timeout=600).strip(), file=sys.stderr)
        print("table + indexes: " + pg.psql("SELECT pg_size_pretty(pg_total_relation_size('channels'))").strip(),
              file=sys.stderr)
        if args.verify_against:
            ours, theirs = asyncio.run(digest_of(f"postgres:{pg.dsn}")), asyncio.run(digest_of(args.verify_against))
            print(f"postgres {ours}\n{args.verify_against} {theirs}", file=sys.stderr)
            if (ours.channels, ours.counts, ours.digest) != (theirs.channels, theirs.counts, theirs.digest):
                raise SystemExit("the loaded table differs from the LevelDB store")
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
