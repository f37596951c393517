"""The fuzz smoke run of the test command (issue 15): every atheris harness for a few seconds in its own
process, then the saved crash inputs of tests/fuzz/regressions/ replayed; the long run is tests/fuzz/README.md."""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.run import ROOT, TARGETS, run_target

log = logging.getLogger("paychan.tests")
SMOKE_SECONDS = 2
REGRESSIONS = Path(__file__).parent / "regressions"


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every harness at once, each in its own process (libFuzzer's time bound is wall-clock)."""
    work = tmp_path_factory.mktemp("fuzz")
    with ThreadPoolExecutor(len(TARGETS)) as pool:
        runs = pool.map(lambda target: run_target(target, SMOKE_SECONDS, work), TARGETS)
        return {run["target"]: run for run in runs}


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_smoke(target: str, smoke_runs: dict[str, dict[str, Any]]) -> None:
    result = smoke_runs[target]
    log.info("%s: %d executions, cov %d, ft %d, corpus %d", target, result["executions"], result["cov"],
             result["ft"], result["corpus"])
    assert result["returncode"] == 0 and result["crashes"] == [], result["tail"]
    assert result["executions"] > 100 and result["cov"] > 20, result  # it ran, instrumented, on real code


def test_every_parser_has_a_harness() -> None:
    assert sorted(p.stem.removeprefix("fuzz_") for p in Path(__file__).parent.glob("fuzz_*.py")) == sorted(TARGETS)


@pytest.mark.parametrize("target", sorted(p.name for p in REGRESSIONS.iterdir()) if REGRESSIONS.is_dir() else [])
def test_saved_crash_inputs_pass(target: str) -> None:
    files = sorted(str(p) for p in (REGRESSIONS / target).iterdir())
    assert files
    proc = subprocess.run([sys.executable, "-m", f"tests.fuzz.fuzz_{target}", *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
