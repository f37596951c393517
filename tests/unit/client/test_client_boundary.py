"""The client library stands alone: it needs paychan_common and the shared bitcoind JSON-RPC client, never
aiohttp or a server package (README: the client is usable without the servers)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import paychan_client

FORBIDDEN = ("aiohttp", "paychan_server", "chan_store", "signing_service")
MODULES = sorted(f"paychan_client.{m.name}" for m in pkgutil.iter_modules([str(Path(paychan_client.__file__).parent)])
                 if m.name != "__main__")  # __main__ runs the CLI


def test_client_modules_pull_no_server_package() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({FORBIDDEN!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "paychan_client.rpc" in MODULES and "paychan_client.cli" in MODULES
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
