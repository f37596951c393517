"""`chan-store CONFIG_FILE`: load the config, open the storage, serve until SIGTERM/SIGINT (and the storage
tools: `chan-store migrate|backup|restore|digest`, see chan_store.tools)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from chan_store.app import create_app
from chan_store.cli_tools import TOOLS, run_tool
from chan_store.config import StoreConfig
from chan_store.front import front
from chan_store.storage import StorageError
from paychan_common.version import version_string
from paychan_runtime.serve import prepare_internal_service, run_internal_service

log = logging.getLogger("paychan.chanstore")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit 2 with a one-line error on a bad config or token file, 1 if it cannot start."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        return run_tool(argv)
    parser = argparse.ArgumentParser(prog="chan-store", description="Store channel states durably.",
                                     epilog="Storage tools: chan-store {migrate,backup,restore,digest} --help")
    parser.add_argument("--version", action="version", version=version_string("chan-store"))
    parser.add_argument("config_file", help="TOML config file (see config/*/store.toml)")
    args = parser.parse_args(argv)
    prepared = prepare_internal_service("chan-store", args.config_file, StoreConfig, "token file", create_app)
    if prepared is None:
        return 2
    config, app = prepared
    listen = config.listen

    async def started() -> None:
        log.info("chan store listening on %s (network %s, storage %s, sync %s)",
                 listen.where, config.network, config.storage.where, config.storage.sync)

    try:
        return run_internal_service(app, listen, started, log, front=front(app) if listen.fast_front else None)
    except StorageError as exc:
        log.error("cannot open the channel storage: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
