#!/usr/bin/env bash
# The project's one test command: sets up everything on a fresh machine, then runs
# ruff, mypy --strict and the whole pytest suite (unit, integration, functional, regtest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
PY=.venv/bin/python
echo "== ruff";  .venv/bin/ruff check src tests bench scripts
echo "== mypy";  .venv/bin/mypy --strict src/ tests/ bench/
echo "== pytest"
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
