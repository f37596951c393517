"""Operator tools for ChanStore's storage: schema migration, copying between engines, backup and restore.

* `chan-store migrate CONFIG`: apply the PostgreSQL schema migrations of the config's database.
* `chan-store migrate --from leveldb:DIR --to postgres:DSN` (or the other way): copy every channel, then
  verify the target by its count per status and a digest over every (outpoint, state) pair; the source is
  only read. The target must be empty. Stop the ChanStore that serves the source first (LevelDB allows one
  process per directory; for PostgreSQL, stopping the writers keeps the copy exact).
* `chan-store backup CONFIG DIR`: ask the running ChanStore for a consistent LevelDB snapshot written to DIR
  (it keeps serving meanwhile); `chan-store restore DIR CONFIG`: put a backup in place of the config's
  store (ChanStore stopped, target absent or empty). PostgreSQL: `pg_dump` and point-in-time recovery
  (docs/STORAGE.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import plyvel

from chan_store import keys
from chan_store.pg_schema import migrate
from chan_store.postgres import COLUMNS, row_values
from chan_store.storage import Storage, StorageError
from paychan_common.state import ChannelState

__all__ = ["CopyReport", "copy_channels", "digest_of", "parse_location", "restore_backup", "snapshot_to"]

BATCH = 5000


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy moved, and what both sides hold after it (they must agree)."""

    channels: int
    counts: dict[str, int]
    digest: str


def parse_location(text: str) -> tuple[str, str]:
    """`leveldb:DIR` or `postgres:DSN` -> (engine, where)."""
    engine, sep, where = text.partition(":")
    if not sep or engine not in ("leveldb", "postgres") or not where:
        raise ValueError(f"{text!r}: expected leveldb:DIR or postgres:DSN")
    return engine, where


class _Digest:
    """Counts per status and a SHA256 over (outpoint, state) pairs taken in outpoint order."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.counts: dict[str, int] = {}
        self.n = 0

    def add(self, outpoint: bytes, data: bytes) -> None:
        if keys.raw_outpoint(data) != outpoint:  # the copy itself parses every record fully
            raise StorageError(f"channel {outpoint.hex()} holds the state of another outpoint")
        label = keys.raw_status(data).label
        self.sha.update(outpoint + len(data).to_bytes(4, "big") + data)
        self.counts[label] = self.counts.get(label, 0) + 1
        self.n += 1


def _leveldb_records(path: Path) -> Iterator[tuple[bytes, bytes]]:
    if not (path / "CURRENT").exists():
        raise StorageError(f"no LevelDB store at {path}")
    db = plyvel.DB(str(path), create_if_missing=False)
    try:
        for key, value in db.iterator(prefix=keys.CHANNEL):
            yield key[1:], value
    finally:
        db.close()


async def _pg_records(conn: asyncpg.Connection) -> list[tuple[bytes, bytes]]:
    rows = await conn.fetch("SELECT outpoint, state FROM channels ORDER BY outpoint")
    return [(bytes(r["outpoint"]), bytes(r["state"])) for r in rows]


async def digest_of(location: str, *, password: str | None = None) -> CopyReport:
    """Count and digest every channel of a store (the verification a copy ends with)."""
    engine, where = parse_location(location)
    digest = _Digest()
    if engine == "leveldb":
        for op, data in await asyncio.to_thread(lambda: list(_leveldb_records(Path(where)))):
            digest.add(op, data)
    else:
        conn = await asyncpg.connect(where, password=password)
        try:
            for op, data in await _pg_records(conn):
                digest.add(op, data)
        finally:
            await conn.close()
    return CopyReport(digest.n, digest.counts, digest.sha.hexdigest())


async def copy_channels(source: str, target: str, *, password: str | None = None) -> CopyReport:
    """Copy every channel from source to an empty target, then verify the target against the source."""
    src_engine, src = parse_location(source)
    dst_engine, dst = parse_location(target)
    if src_engine == dst_engine:
        raise ValueError("copy between two engines: one leveldb: and one postgres: location")
    before = await digest_of(source, password=password)
    if dst_engine == "postgres":
        conn = await asyncpg.connect(dst, password=password)
        try:
            await migrate(conn)
            if await conn.fetchval("SELECT count(*) FROM channels"):
                raise ValueError("the target database already holds channels")
            records = await asyncio.to_thread(lambda: list(_leveldb_records(Path(src))))
            async with conn.transaction():
                for i in range(0, len(records), BATCH):
                    rows = [row_values(ChannelState.parse(data), data) for _, data in records[i:i + BATCH]]
                    await conn.copy_records_to_table("channels", records=rows, columns=list(COLUMNS))
        finally:
            await conn.close()
    else:
        conn = await asyncpg.connect(src, password=password)
        try:
            records = await _pg_records(conn)
        finally:
            await conn.close()
        await asyncio.to_thread(_write_leveldb, Path(dst), records)
    after = await digest_of(target, password=password)
    if (after.channels, after.counts, after.digest) != (before.channels, before.counts, before.digest):
        raise StorageError(f"verification failed: source {before}, target {after}")
    return after


def _write_leveldb(path: Path, records: list[tuple[bytes, bytes]]) -> None:
    """A new LevelDB store holding these states and their index entries (synced at the end)."""
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"the target directory {path} is not empty")
    path.mkdir(parents=True, exist_ok=True)
    db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)
    try:
        for i in range(0, max(len(records), 1), BATCH):
            last = i + BATCH >= len(records)
            with db.write_batch(sync=last) as batch:  # the last write is synced: all before it is durable
                for op, data in records[i:i + BATCH]:
                    batch.put(keys.channel_key(op), data)
                    for index_key in keys.index_keys(op, data):
                        batch.put(index_key, b"")
    finally:
        db.close()


def snapshot_to(storage: Storage, path: Path) -> int:
    """Write a consistent snapshot of every key of a serving store to a new LevelDB at path; return the
    number of channels. The snapshot is taken when the scan starts: every write acknowledged before is in it."""
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"the backup directory {path} is not empty")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)
    channels = 0
    try:
        chunk: list[tuple[bytes, bytes]] = []
        for key, value in storage.scan(b""):
            chunk.append((key, value))
            channels += key[:1] == keys.CHANNEL
            if len(chunk) == BATCH:
                _put_all(db, chunk, sync=False)
                chunk = []
        _put_all(db, chunk, sync=True)  # the last write is synced: every write before it is durable
    finally:
        db.close()
    return channels


def restore_backup(backup: Path, target: Path) -> None:
    """Copy a backup directory into place as the store's directory (absent or empty)."""
    if not (backup / "CURRENT").exists():
        raise ValueError(f"{backup} is not a LevelDB backup")
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"the store directory {target} is not empty: move it aside first")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rmdir()
    shutil.copytree(backup, target)
    target.chmod(0o700)


def _put_all(db: plyvel.DB, pairs: list[tuple[bytes, bytes]], *, sync: bool) -> None:
    with db.write_batch(sync=sync) as batch:
        for key, value in pairs:
            batch.put(key, value)
