#!/usr/bin/env bash
# Creates .venv (first use) and installs the project with its test extras; idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.paychan-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi

# A real PostgreSQL server for the tests of ChanStore's postgres engine (Debian's packages; the harness
# runs it as an unprivileged user in a temporary directory, see tests/support/postgres.py).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "bootstrap: PostgreSQL server binaries are missing; install Debian's postgresql package" >&2
    exit 1
  fi
fi
