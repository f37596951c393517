"""`chan-store backup` against a real ChanStore process under load, and `chan-store restore`: the restored
store holds every payment acknowledged before the backup began, and is a consistent store of its own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from chan_store.client import ChanStoreClient
from chan_store.leveldb_storage import LevelDBStorage
from chan_store.store import ChannelStore
from paychan_common.state import Status
from tests.support.services import Services
from tests.support.synthetic import synthetic_states

pytestmark = pytest.mark.functional


async def test_backup_under_load_restores_every_payment_acknowledged_before(tmp_path: Path) -> None:
    svc = Services(tmp_path / "svc")
    svc.start_store()
    client = ChanStoreClient(f"http://127.0.0.1:{svc.store_port}", svc.token)
    try:
        channels = [s for s in synthetic_states(60) if s.status is Status.OPEN][:20]
        for state in channels:
            await client.create(state)
        acked: dict[bytes, int] = {s.outpoint.serialize(): s.change_value for s in channels}
        stop = asyncio.Event()

        async def pay(index: int) -> None:
            state = channels[index]
            change = state.change_value
            while not stop.is_set() and change > 0:
                change -= 1
                applied = await client.apply_payment(state.outpoint, change, b"\x30" * 70, 0x83, 1_700_000_000)
                assert applied.change_value == change
                acked[state.outpoint.serialize()] = change

        payers = [asyncio.create_task(pay(i)) for i in range(len(channels))]
        await asyncio.sleep(1.0)
        before = dict(acked)  # every payment acknowledged before the backup began
        backup_dir = tmp_path / "backup"
        out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "chan_store", "backup",
                                                       str(svc.root / "store.toml"), str(backup_dir)],
                                      capture_output=True, text=True, timeout=120)
        await asyncio.sleep(0.5)  # payments go on after the backup
        stop.set()
        await asyncio.gather(*payers)
        assert out.returncode == 0, out.stderr
        assert "backup of 20 channels" in out.stdout
    finally:
        await client.close()
        svc.stop()

    restored_cfg = dict(svc.configs["store"])
    restored_cfg["storage"] = {"path": str(tmp_path / "restored"), "sync": True}
    cfg_file = tmp_path / "restored.toml"
    cfg_file.write_text(tomli_w.dumps(restored_cfg))
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "chan_store", "restore", str(backup_dir),
                                                   str(cfg_file)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    storage = LevelDBStorage(tmp_path / "restored")
    try:
        store = ChannelStore(storage)
        store.load()  # every open channel checked against its index entry
        assert store.counts()["open"] == 20
        progressed = after_backup = 0
        for state in channels:
            op = state.outpoint.serialize()
            restored = await store.get(state.outpoint)
            assert restored is not None
            assert restored.change_value <= before[op], "a payment acknowledged before the backup is missing"
            progressed += restored.change_value < state.change_value
            after_backup += acked[op] < restored.change_value
        assert progressed == 20, "the backup was taken while payments flowed"
        assert after_backup > 0, "payments made after the backup are not in it (it is a snapshot)"
    finally:
        await storage.close()
    again = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "chan_store", "restore",
                                                     str(backup_dir), str(cfg_file)],
                                    capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr
