#!/usr/bin/env bash
# Creates .venv (first use) and installs the project with its test extras; then (unless --python-only)
# the system packages the tests drive: Debian's chromium (the dashboard test), nginx (the TLS proxy test),
# curl and openssl. Idempotent and quick when everything is there.
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
[ "${1:-}" = "--python-only" ] && exit 0

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

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: missing system packages (${missing[*]}): install them with apt as root" >&2
    exit 0  # the tests that need them say so and fail
  fi
  echo "bootstrap: installing ${missing[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
