"""bench/ceiling.py, the machine's floor for a payment server built like paychan: each of its three minimal
servers answers every request of the load generator, and the durable one has really written each channel's
record to LevelDB before the run ends. And bench/machine_probe.py's wake-up reading, which every benchmark
run prints beside its figures."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.support.services import PROJECT_ROOT

pytestmark = pytest.mark.functional


def _bench(name: str) -> ModuleType:
    bench = str(PROJECT_ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["frame", "verify", "durable"])
def test_ceiling_servers_answer_every_request(kind: str) -> None:
    ceiling = _bench("ceiling")
    spec = ceiling.PlanSpec("v2", ceiling.INFO_KEY, 1000, 20, 2_000_000_000, "127.0.0.1:1")
    lanes = [plan.payments for plan in ceiling.build_channels(spec, 3, processes=1)]
    run = ceiling.run_kind(kind, lanes, 2, None)  # raises unless all 60 requests were answered 200
    assert run["requests_per_second"] > 0
    assert run["stored_keys"] == (3 if kind == "durable" else None)


def test_ceiling_store_writer_thread_commits_every_group() -> None:
    """With inline writes off, every group goes through the store's writer thread and is still answered
    after its write: all 20 channels' records are stored and every request answered (run_kind raises)."""
    ceiling = _bench("ceiling")
    spec = ceiling.PlanSpec("v2", ceiling.INFO_KEY, 1000, 10, 2_000_000_000, "127.0.0.1:1")
    lanes = [plan.payments for plan in ceiling.build_channels(spec, 20, processes=1)]
    run = ceiling.run_kind("durable", lanes, 2, None, inline_below=0)
    assert run["stored_keys"] == 20


def test_machine_probe_round_trips_and_wake_up() -> None:
    probe = _bench("machine_probe")
    blocking = probe.round_trip_us(spin=False, count=300)
    spinning = probe.round_trip_us(spin=True, count=300)
    assert 0 < spinning < 10_000 and 0 < blocking < 10_000
    assert probe.wake_up(50.5, 7.7) == 21.4  # half the difference, to 0.1 us
    assert isinstance(probe.wake_up_us(100), float)
