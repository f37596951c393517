#!/usr/bin/env bash
# Start ChanStore, SigningService and PayChanServer on CONFIG_DIR (default config/debug), wait until
# each answers, print the server key and URLs, and stop all three on Ctrl-C / SIGTERM.
# PORT in the environment is passed through to PayChanServer.
set -euo pipefail
cd "$(dirname "$0")/.."
CONF=${1:-config/debug}
[ -d "$CONF" ] || { echo "usage: $0 CONFIG_DIR" >&2; exit 2; }
bash scripts/bootstrap.sh
PY=.venv/bin/python
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap stop INT TERM EXIT

wait_http() {  # wait_http NAME URL
  for _ in $(seq 1 300); do
    if "$PY" - "$2" <<'PYEOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
PYEOF
    sleep 0.1
  done
  echo "$1 did not come up at $2" >&2; exit 1
}
toml_get() {  # toml_get FILE SECTION KEY
  "$PY" -c 'import sys,tomllib; d=tomllib.load(open(sys.argv[1],"rb")); print(d.get(sys.argv[2],{}).get(sys.argv[3],""))' "$@"
}

"$PY" -m chan_store "$CONF/store.toml" & pids+=($!)
"$PY" -m signing_service "$CONF/signing.toml" & pids+=($!)
wait_http ChanStore "http://127.0.0.1:$(toml_get "$CONF/store.toml" listen port)/health"
wait_http SigningService "http://127.0.0.1:$(toml_get "$CONF/signing.toml" listen port)/health"
"$PY" -m paychan_server "$CONF/server.toml" & pids+=($!)
PORT=${PORT:-$(toml_get "$CONF/server.toml" listen port)}
HOST=$(toml_get "$CONF/server.toml" listen host)
wait_http PayChanServer "http://$HOST:$PORT/health"
KEY=$("$PY" -c 'import sys,json,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["server_pubkey"])' \
  "http://$HOST:$PORT/v2/funding/034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa/4000000000/info")
echo "paychan is up ($CONF)"
echo "  server public key : $KEY"
echo "  v1                : http://$HOST:$PORT/v1/fundingInfo?client_pubkey=<hex>&exp_time=<unix time>"
echo "  v2                : http://$HOST:$PORT/v2/funding/<client_pubkey>/<exp_time>/info"
echo "Ctrl-C stops all three."
wait -n "${pids[@]}"
echo "a service exited; stopping the others" >&2
exit 1
