"""bench/run_bench.sh end to end at a small size: the three services on a copy of the debug config, every
payment answered and checked, each run's host steal and the floor reference (bench/ceiling.py's durable
server, read before and after the timed phase) in its JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.services import PROJECT_ROOT

pytestmark = pytest.mark.functional


def test_run_bench_reports_the_floor_and_the_steal() -> None:
    done = subprocess.run(
        [sys.executable, "bench/run_bench.py", "--workers", "1", "--runs", "1", "--quiet-wait", "0", "--retries", "0",
         "--json", "--payments", "20", "--clients", "3", "--no-reference", "--floor"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["total_errors"] == 0 and result["payments"] == 60
    assert result["steal_cpu_s"] >= 0 and result["runs"][0]["steal_cpu_s"] == result["steal_cpu_s"]
    floor = result["floor"]
    assert len(floor["readings"]) == 2 and floor["requests_per_second"] == max(floor["readings"])  # closed loop
    assert floor["fraction_of_floor"] == round(result["payments_per_second"] / floor["requests_per_second"], 3)
    assert 0 < floor["p50_ms"] <= floor["p99_ms"]
