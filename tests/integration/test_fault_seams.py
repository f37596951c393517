"""The fault seams' own tests (issue 15): chan_store.verify finds every kind of index/state disagreement (so
the chaos and crash tests' "indexes agree" check can fail), the crash-point parser, and the LevelDB crash
writer's two points around the engine write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chan_store import keys
from chan_store.contract import state_digest
from chan_store.leveldb_storage import LevelDBStorage, crashing_writer, write_batches
from chan_store.memory_storage import MemoryStorage
from chan_store.storage import WriteBatch
from chan_store.store import ChannelStore
from chan_store.verify import main as verify_main
from chan_store.verify import verify_storage
from paychan_common.state import Status
from paychan_runtime.config import ConfigError, load_config
from paychan_runtime.faults import ENV_VAR, POINTS, CrashPoint, crash_point_from_env
from signing_service.config import SigningConfig
from tests.support.channels import make_channel, with_status


async def _store_with_channels(storage: MemoryStorage | LevelDBStorage) -> ChannelStore:
    store = ChannelStore(storage)
    store.load()
    for n in range(3):
        await store.create(make_channel(n).state)
    closed = make_channel(3).state
    await store.create(closed)
    closing = await store.compare_and_set(state_digest(closed), with_status(closed, Status.CLOSING))
    await store.compare_and_set(state_digest(closing), with_status(closing, Status.CLOSED, "ab" * 32))
    return store


async def test_verify_passes_a_store_written_by_chanstore() -> None:
    storage = MemoryStorage()
    await _store_with_channels(storage)
    report = verify_storage(storage)
    assert report.ok, report.problems
    assert report.counts == {"open": 3, "closing": 0, "closed": 1} and len(report.states) == 4


async def test_verify_finds_missing_extra_and_foreign_keys_and_two_open_channels() -> None:
    storage = MemoryStorage()
    await _store_with_channels(storage)
    ch0 = make_channel(0)
    op0 = ch0.outpoint.serialize()
    client_key, status_key = keys.index_keys(op0, ch0.state.serialize())
    twin = make_channel(0, vout=7).state  # same client key, another outpoint, also open
    twin_op = twin.outpoint.serialize()
    await storage.commit(WriteBatch(
        puts=((keys.channel_key(twin_op), twin.serialize()), (keys.status_key(Status.CLOSING, 5, op0), b""),
              (b"zzz", b"?"), (keys.channel_key(make_channel(9).outpoint.serialize()), b"\x01garbage")),
        deletes=(status_key,)))
    problems = verify_storage(storage).problems
    text = "\n".join(problems)
    assert f"index entry missing: {status_key.hex()}" in problems
    assert f"index entry without a matching state: {keys.status_key(Status.CLOSING, 5, op0).hex()}" in problems
    assert "two open channels" in text and "key outside the layout: 7a7a7a" in text
    assert "does not parse" in text
    assert f"index entry missing: {keys.client_key(twin.client_pubkey, twin_op).hex()}" in problems
    assert client_key.hex() not in text  # intact entries are not reported


async def test_verify_command_on_a_leveldb_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = LevelDBStorage(tmp_path / "db")
    await _store_with_channels(storage)
    await storage.close()
    assert await asyncio.to_thread(verify_main, [str(tmp_path / "db")]) == 0
    assert "4 channels" in capsys.readouterr().out
    storage = LevelDBStorage(tmp_path / "db")
    state = make_channel(1).state
    await storage.commit(WriteBatch(deletes=(keys.index_keys(state.outpoint.serialize(), state.serialize())[0],)))
    await storage.close()
    assert await asyncio.to_thread(verify_main, [str(tmp_path / "db")]) == 1
    assert "index entry missing" in capsys.readouterr().out
    assert await asyncio.to_thread(verify_main, [str(tmp_path / "absent")]) == 2


def test_crash_point_spec_parsing() -> None:
    assert crash_point_from_env({}) is None
    assert crash_point_from_env({ENV_VAR: " "}) is None
    point = crash_point_from_env({ENV_VAR: "store.after_write@7"})
    assert point is not None and point.name == "store.after_write" and point.countdown == 7
    for bad in ("store.befor_write", "store.after_write@x", "store.after_write@0", "@3"):
        with pytest.raises(ConfigError):
            crash_point_from_env({ENV_VAR: bad})
    assert set(POINTS) >= {"store.before_write", "store.after_write", "settler.after_store"}


def test_a_crash_point_counts_only_its_own_point() -> None:
    point = CrashPoint("settler.after_sign", 3)
    for _ in range(5):
        point("settler.after_store")  # another point: never counted, never crashes
    point("settler.after_sign")
    point("settler.after_sign")
    assert point.countdown == 1  # the next pass would os._exit (tested in tests/functional/test_crash_points.py)


async def test_crashing_writer_calls_its_points_around_the_engine_write(tmp_path: Path) -> None:
    seen: list[str] = []
    storage = LevelDBStorage(tmp_path / "db")

    def hook(point: str) -> None:
        seen.append(f"{point}:{storage.get(b'k')!r}")  # what is on disk at each point

    storage._writer = crashing_writer(hook, write_batches)
    await storage.commit(WriteBatch(puts=((b"k", b"v"),)))
    await storage.close()
    assert seen == ["store.before_write:None", "store.after_write:b'v'"]


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """Regression: load_config let UnicodeDecodeError escape (a traceback at start-up)."""
    path = tmp_path / "signing.toml"
    path.write_bytes(b'network = "test"\n# \xff\xfe\n')
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path, SigningConfig)
