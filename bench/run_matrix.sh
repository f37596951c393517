#!/usr/bin/env bash
# Every figure of bench/RESULTS.md: median of 3 runs per configuration, JSON per configuration in OUT.
#   bench/run_matrix.sh [OUT_DIR] [STORE_1M_DIR]     (STORE_1M_DIR: made by bench/gen_channels.py; optional)
# Runs disturbed by other processes on the machine are discarded and repeated (see run_bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
DB1M=${2:-}
mkdir -p "$OUT"
run() {  # run NAME ARGS...
  local name=$1; shift
  echo "== $name: bench/run_bench.sh --runs 3 $*" >&2
  bench/run_bench.sh --runs 3 --json "$@" > "$OUT/$name.json"
}
SHAPE=(--payments 500 --clients 100)
run w2-sync     --workers 2 "${SHAPE[@]}"
run w1-sync     --workers 1 "${SHAPE[@]}"
run w2-nosync   --workers 2 --no-sync "${SHAPE[@]}"
run w1-nosync   --workers 1 --no-sync "${SHAPE[@]}"
run w2-rate2500 --workers 2 "${SHAPE[@]}" --rate 2500
run w1-rate2500 --workers 1 "${SHAPE[@]}" --rate 2500
run w1-original --workers 1 --payments 2000 --clients 5
run w2-original --workers 2 --payments 2000 --clients 5
run w2-v1       --workers 2 "${SHAPE[@]}" --family v1
run w2-v23      --workers 2 "${SHAPE[@]}" --family v2.3
if [ -n "$DB1M" ]; then
  run w2-1m-existing --workers 2 "${SHAPE[@]}" --store-db "$DB1M"
  run w2-1m-fresh    --workers 2 "${SHAPE[@]}" --store-db "$DB1M" --fresh-channels
fi
.venv/bin/python bench/summarize.py "$OUT"
