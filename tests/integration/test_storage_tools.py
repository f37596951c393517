"""ChanStore's storage tools against real engines: LevelDB -> PostgreSQL -> LevelDB round-trips the
channels exactly (counts and digest; 20,000 here, 100,000 in bench/bench_migration.py), the copy refuses
a non-empty target, the schema migrations are versioned and idempotent, and a LevelDB snapshot restores to
the same store."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chan_store import keys
from chan_store.memory_storage import MemoryStorage
from chan_store.pg_schema import SCHEMA_VERSION
from chan_store.postgres import PostgresChannelStore
from chan_store.storage import WriteBatch
from chan_store.store import ChannelStore
from chan_store.tools import copy_channels, digest_of, restore_backup, snapshot_to
from paychan_common.state import Status
from tests.support.postgres import PostgresServer
from tests.support.synthetic import synthetic_states, write_leveldb

N = 20_000  # the 100,000-channel round trip with its timings: bench/bench_migration.py


@pytest.fixture
def fresh_db(pg_server: PostgresServer) -> str:
    """The DSN of a new, empty database on the session's PostgreSQL server."""
    name = f"tools_{time.monotonic_ns()}"
    pg_server.psql(f"CREATE DATABASE {name}")
    return pg_server.dsn.replace(f"/{pg_server.database}?", f"/{name}?")


async def test_leveldb_postgres_leveldb_round_trip_is_exact(tmp_path: Path, fresh_db: str) -> None:
    states = synthetic_states(N)
    source = tmp_path / "source"
    write_leveldb(source, states)
    original = await digest_of(f"leveldb:{source}")
    assert original.channels == N
    assert original.counts == {label: sum(1 for s in states if s.status.label == label)
                               for label in ("open", "closing", "closed")}
    assert min(original.counts.values()) >= N // 3

    to_pg = await copy_channels(f"leveldb:{source}", f"postgres:{fresh_db}")
    assert (to_pg.channels, to_pg.counts, to_pg.digest) == (original.channels, original.counts, original.digest)

    back = tmp_path / "back"
    to_ldb = await copy_channels(f"postgres:{fresh_db}", f"leveldb:{back}")
    assert to_ldb.digest == original.digest

    # the copies are real stores: the PostgreSQL engine and a LevelDB ChannelStore read the same states
    engine = PostgresChannelStore(fresh_db)
    await engine.open()
    try:
        sample = random.Random(1).sample(states, 50)
        for state in sample:
            assert await engine.get(state.outpoint) == state
        assert engine.counts() == original.counts
    finally:
        await engine.close()
    from chan_store.leveldb_storage import LevelDBStorage

    storage = LevelDBStorage(back)
    try:
        store = ChannelStore(storage)
        store.load()  # checks every open and closing state against its index entry
        assert store.counts() == original.counts
        page = await store.list(status=Status.CLOSING, limit=10)
        expected = sorted((s for s in states if s.status is Status.CLOSING),
                          key=lambda s: (s.exp_time, s.outpoint.serialize()))[:10]
        assert list(page.states) == expected
    finally:
        await storage.close()


async def test_copy_refuses_a_non_empty_target_and_a_same_engine_copy(tmp_path: Path, fresh_db: str) -> None:
    source = tmp_path / "source"
    write_leveldb(source, synthetic_states(30))
    await copy_channels(f"leveldb:{source}", f"postgres:{fresh_db}")
    with pytest.raises(ValueError, match="already holds channels"):
        await copy_channels(f"leveldb:{source}", f"postgres:{fresh_db}")
    with pytest.raises(ValueError, match="not empty"):
        await copy_channels(f"postgres:{fresh_db}", f"leveldb:{source}")
    with pytest.raises(ValueError, match="two engines"):
        await copy_channels(f"leveldb:{source}", f"leveldb:{tmp_path / 'x'}")


def test_migrate_cli_is_versioned_and_idempotent(tmp_path: Path, fresh_db: str, pg_server: PostgresServer) -> None:
    config = tmp_path / "store.toml"
    config.write_text(f'network = "test"\n[listen]\nport = 1\n[auth]\ntoken_file = "{tmp_path}/t"\n'
                      f'[storage]\nengine = "postgres"\ndsn = "{fresh_db}"\n')
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "chan_store", "migrate", str(config)], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"schema at version {SCHEMA_VERSION}"
    db = fresh_db.split("@/")[1].split("?")[0]
    versions = pg_server.psql("SELECT version FROM chanstore_schema ORDER BY version", database=db).split()
    assert versions == [str(v) for v in range(1, SCHEMA_VERSION + 1)]  # each applied once


def test_migrate_cli_copy_reports_the_verified_digest(tmp_path: Path, fresh_db: str) -> None:
    source = tmp_path / "source"
    write_leveldb(source, synthetic_states(300))
    out = subprocess.run([sys.executable, "-m", "chan_store", "migrate", "--from", f"leveldb:{source}",
                          "--to", f"postgres:{fresh_db}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("copied and verified 300 channels")
    again = subprocess.run([sys.executable, "-m", "chan_store", "migrate", "--from", f"leveldb:{source}",
                            "--to", f"postgres:{fresh_db}"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert "already holds channels" in again.stderr
    assert "Traceback" not in again.stderr


async def test_snapshot_restores_the_same_store(tmp_path: Path) -> None:
    storage = MemoryStorage()
    states = synthetic_states(90)
    puts = []
    for state in states:
        op, data = state.outpoint.serialize(), state.serialize()
        puts.append((keys.channel_key(op), data))
        puts.extend((k, b"") for k in keys.index_keys(op, data))
    await storage.commit(WriteBatch(puts=tuple(puts), deletes=()))
    assert snapshot_to(storage, tmp_path / "backup") == 90
    assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700
    restore_backup(tmp_path / "backup", tmp_path / "restored")
    original = await digest_of(f"leveldb:{tmp_path / 'backup'}")
    restored = await digest_of(f"leveldb:{tmp_path / 'restored'}")
    assert restored == original and restored.channels == 90
    with pytest.raises(ValueError, match="not empty"):
        snapshot_to(storage, tmp_path / "backup")
    with pytest.raises(ValueError, match="not empty"):
        restore_backup(tmp_path / "backup", tmp_path / "restored")
