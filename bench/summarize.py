"""Print a Markdown table of the JSON results written by bench/run_matrix.sh (one file per configuration).

Usage: python bench/summarize.py RESULTS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _command(r: dict[str, Any]) -> str:
    c = r["config"]
    parts = [f"--workers {c['workers']}"]
    if not c["sync"]:
        parts.append("--no-sync")
    parts.append(f"--payments {c['payments']} --clients {c['clients']}")
    if c["rate"]:
        parts.append(f"--rate {c['rate']:g}")
    if c["family"] != "v2":
        parts.append(f"--family {c['family']}")
    if r.get("store", {}).get("preloaded_db"):
        parts.append("--store-db DB1M" + (" --fresh-channels" if not c.get("existing_channels") else ""))
    return "bench/run_bench.sh --runs 3 " + " ".join(parts)


def _cpu(r: dict[str, Any]) -> str:
    total: dict[str, float] = {}
    for name, us in r.get("cpu_us_per_payment", {}).items():
        if name.endswith("(kernel)"):
            continue
        key = name.split("[")[0].split("/")[0]
        total[key] = total.get(key, 0.0) + us
    gen = 1e6 * r["generator_cpu_s"] / r["payments"]
    short = {"paychan_server": "server", "chan_store": "store", "signing_service": "signer"}
    cells = [f"{short.get(k, k)} {v:.0f}" for k, v in total.items() if v >= 1]
    return ", ".join([*cells, f"generator {gen:.0f}"])


def main() -> int:
    """Print the table."""
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rows = []
    for path in sorted(Path(sys.argv[1]).glob("*.json")):
        r = json.loads(path.read_text())
        ref = r.get("reference", {})
        st = r.get("store_stats", {}).get("storage", {})
        batch = r["payments"] / st["writes"] if st.get("writes") else 0.0
        store = r.get("store", {})
        rows.append([
            path.stem, f"`{_command(r)}`",
            f"**{r['median_payments_per_second']:,.0f}** ("
            + " / ".join(f"{x['payments_per_second']:,.0f}" for x in r["runs"]) + ")",
            f"{r['steady_payments_per_second']:,.0f}",
            f"{r['p50_ms']:.1f} / {r['p90_ms']:.1f} / {r['p99_ms']:.1f} / {r['max_ms']:.1f}",
            str(r["total_errors"]),
            f"{ref.get('fraction_of_secp256k1', 0):.3f} ({ref.get('secp256k1_verify_per_second_one_core', 0):,.0f}/s)",
            f"{ref.get('fraction_of_bare_aiohttp', 0):.3f} ({ref.get('bare_aiohttp_requests_per_second', 0):,.0f}/s,"
            f" {ref.get('bare_aiohttp_workers', 1)} proc)",
            _cpu(r), f"{batch:.1f}",
            f"{store.get('start_s', 0):.2f} s, {store.get('rss_mib_after_start', 0):.0f} -> "
            f"{store.get('rss_mib_after_run', 0):.0f} MiB",
            str(r.get("discarded_runs", 0)),
        ])
    head = ["config", "command", "payments/s: median (runs)", "steady/s", "p50/p90/p99/max ms (median run)",
            "errors", "÷ secp256k1 verify", "÷ bare aiohttp", "CPU µs/payment", "payments/batch",
            "ChanStore start, RSS", "runs discarded"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if rows:
        first = json.loads(sorted(Path(sys.argv[1]).glob("*.json"))[0].read_text())["config"]
        m = first["machine"]
        print(f"\nDate {first['date']}; machine: {m['cpus']} cores, {m['platform']}, Python {m['python']}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
