"""The CI-sized chaos soak (bench/chaos.py, issue 15): >= 30 SIGKILLs of ChanStore, PayChanServer workers and
the SigningService under a mixed v1/v2-seed/v2.3.0 workload; every invariant must hold afterwards."""

from __future__ import annotations

import importlib.util
import logging
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.services import PROJECT_ROOT

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

KILLS_EACH = 10  # x 3 targets = 30 kills


def _chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chaos", PROJECT_ROOT / "bench" / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("chaos", module)
    spec.loader.exec_module(module)
    return module


def test_chaos_soak_ci_sized(tmp_path: Path) -> None:
    chaos = _chaos()
    seed = random.randrange(1 << 32)
    log.info("chaos seed %d (replay: python bench/chaos.py --kills %d --seed %d)", seed, KILLS_EACH, seed)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The bound is generous: the run stops after its 30 kills (~50 s alone on 2 cores), slower on a loaded machine.
    report = chaos.run_chaos(tmp_path / "chaos", kills_each=KILLS_EACH, seconds=900.0, seed=seed)
    log.info("chaos report: %s", report)
    assert report.violations == []
    assert report.kills == {"chan_store": KILLS_EACH, "worker": KILLS_EACH, "signing_service": KILLS_EACH}
    assert report.payments_lost == 0
    assert report.payments_acknowledged > 50, "the workload made too little progress to prove anything"
    assert report.closes_acknowledged > 0 and report.settlements_checked >= report.closes_acknowledged
    assert set(report.store_counts) == {"open", "closing", "closed"} and report.store_counts["closing"] == 0
