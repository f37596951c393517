#!/usr/bin/env bash
# Start ChanStore, SigningService and PayChanServer on CONFIG_DIR (default config/debug), wait until each
# answers, print the server key and URLs, and stop all three on Ctrl-C / SIGTERM (exit 0).
# A service that exits is reported with its last lines (exit 1); ports already served are refused.
# PAYCHAN_PORT_BASE=N moves every port of the config (server N, management N+1, ChanStore N+2,
# SigningService N+3); PORT moves PayChanServer's public port alone. Details: scripts/run_everything.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --python-only
exec .venv/bin/python scripts/run_everything.py "${1:-config/debug}"
