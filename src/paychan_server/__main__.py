"""`paychan-server CONFIG_FILE [--workers N]`: the client-facing server; PORT env overrides the port.

The port is claimed first, with the standard library only (paychan_runtime.port_claim), so a second
instance on a served port stops within a moment, before the heavy imports of paychan_server.launch."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from paychan_common.version import version_string
from paychan_runtime.port_claim import PortInUse, claim_port


def _listen(path: str) -> tuple[str, int] | None:
    """listen.host and listen.port as written (PORT overrides); None if absent or odd: validation decides."""
    try:
        listen = tomllib.loads(Path(path).read_text()).get("listen")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(listen, dict):
        return None
    host, port = listen.get("host"), listen.get("port")
    env = os.environ.get("PORT", "")
    if env.isdigit():
        port = int(env)
    if not isinstance(host, str) or type(port) is not int or not 0 <= port <= 65535:
        return None
    return host, port


def main(argv: list[str] | None = None) -> None:
    """Entry point: claim the port, then start one process or a supervisor of N SO_REUSEPORT workers."""
    parser = argparse.ArgumentParser(prog="paychan-server", description=__doc__)
    parser.add_argument("--version", action="version", version=version_string("paychan-server"))
    parser.add_argument("config", help="path to server.toml")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: listen.workers)")
    args = parser.parse_args(argv)
    address = _listen(args.config)
    try:
        claim = claim_port(*address) if address is not None else None  # held until this process ends
    except PortInUse as exc:
        print(f"paychan-server: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    from .launch import run  # the heavy part: aiohttp, pydantic, the app

    run(args.config, args.workers, claim)


if __name__ == "__main__":
    main()
