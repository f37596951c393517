#!/usr/bin/env bash
# Start ChanStore, SigningService and PayChanServer on a temporary copy of config/debug (free ports, a
# fresh LevelDB), run bench/bench_payments.py against them, stop them. See bench/run_bench.py --help.
#   bench/run_bench.sh [--workers N] [--no-sync] [--runs 3] [--unix] [--set FILE.SECTION.KEY=VALUE]
#                      [--keep] [--json] [bench_payments args: --payments 2000 --clients 5 --rate R ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
exec "$PY" bench/run_bench.py "$@"
