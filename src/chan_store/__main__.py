"""`chan-store CONFIG_FILE`: load the config, open the storage, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from chan_store.app import create_app
from chan_store.config import StoreConfig
from chan_store.storage import StorageError
from paychan_runtime.config import ConfigError, load_config
from paychan_runtime.serve import install_uvloop, serve_app, setup_logging

log = logging.getLogger("paychan.chanstore")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit 2 with a one-line error on a bad config or token file, 1 if it cannot start."""
    parser = argparse.ArgumentParser(prog="chan-store", description="Store channel states durably.")
    parser.add_argument("config_file", help="TOML config file (see config/*/store.toml)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config_file, StoreConfig)
        setup_logging(config.log_level, config.log_format)
        app = create_app(config)
    except ConfigError as exc:
        print(f"chan-store: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"chan-store: cannot prepare the token file: {exc}", file=sys.stderr)
        return 2
    listen = config.listen

    async def started() -> None:
        log.info("chan store listening on %s (network %s, storage %s, sync %s)",
                 listen.where, config.network, config.storage.path, config.storage.sync)

    if listen.unix_path is not None:
        Path(listen.unix_path).parent.mkdir(parents=True, exist_ok=True)
    install_uvloop()
    try:
        asyncio.run(serve_app(app, host=listen.host, port=listen.port, unix_path=listen.unix_path,
                              on_started=started))
    except StorageError as exc:
        log.error("cannot open the channel storage: %s", exc)
        return 1
    except OSError as exc:
        log.error("cannot listen on %s: %s", listen.where, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
