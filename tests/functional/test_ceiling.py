"""bench/ceiling.py, the machine's floor for a payment server built like paychan: each of its three minimal
servers answers every request of the load generator, and the durable one has really written each channel's
record to LevelDB before the run ends."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.support.services import PROJECT_ROOT

pytestmark = pytest.mark.functional


def _ceiling() -> ModuleType:
    bench = str(PROJECT_ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    spec = importlib.util.spec_from_file_location("ceiling", PROJECT_ROOT / "bench" / "ceiling.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["frame", "verify", "durable"])
def test_ceiling_servers_answer_every_request(kind: str) -> None:
    ceiling = _ceiling()
    spec = ceiling.PlanSpec("v2", ceiling.INFO_KEY, 1000, 20, 2_000_000_000, "127.0.0.1:1")
    lanes = [plan.payments for plan in ceiling.build_channels(spec, 3, processes=1)]
    run = ceiling.run_kind(kind, lanes, 2, None)  # raises unless all 60 requests were answered 200
    assert run["requests_per_second"] > 0
    assert run["stored_keys"] == (3 if kind == "durable" else None)
