"""deploy/prometheus/: the scrape jobs reach the ports of config/live, every metric an alert rule reads is one
the services export, and every alert has its runbook section in docs/OPERATIONS.md."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")
PROMQL_WORDS = {"up", "time", "sum", "rate", "increase", "min_over_time", "by", "and", "or"}


def _exported() -> set[str]:
    """Metric names declared in the sources (Counter("x"), GaugeMetricFamily("x"), ...)."""
    text = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    return set(re.findall(r'(?:Counter|Gauge|Histogram|CounterMetricFamily|GaugeMetricFamily)\(\s*"([a-z_]+)"', text))


def test_alert_rules_read_exported_metrics_and_have_a_runbook() -> None:
    rules = yaml.safe_load((PROM / "paychan.rules.yml").read_text())["groups"][0]["rules"]
    exported = _exported()
    runbook = (ROOT / "docs" / "OPERATIONS.md").read_text().split("## When an alert fires", 1)[1]
    assert len(rules) >= 6
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert f"**{rule['alert']}**" in runbook, f"no runbook entry for {rule['alert']}"
        expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', "", rule["expr"])
        for name in set(re.findall(r"[a-z_]{2,}", expr)) - PROMQL_WORDS:
            base = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
            assert base in exported, f"{rule['alert']}: {name} is not a metric the services export"


def test_scrape_jobs_match_the_live_ports() -> None:
    scrape = {job["job_name"]: job for job in yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]}
    folder = ROOT / "config" / "live"
    live = {f: tomllib.loads((folder / f"{f}.toml").read_text()) for f in ("server", "store", "signing")}
    target = {name: job["static_configs"][0]["targets"] for name, job in scrape.items()}
    assert target["paychan-server"] == [f"127.0.0.1:{live['server']['management']['port']}"]
    assert target["paychan-chanstore"] == [f"127.0.0.1:{live['store']['listen']['port']}"]
    assert target["paychan-signing"] == [f"127.0.0.1:{live['signing']['listen']['port']}"]
    credentials = scrape["paychan-server"]["authorization"]["credentials_file"]
    assert credentials == live["server"]["management"]["metrics_token_file"]
