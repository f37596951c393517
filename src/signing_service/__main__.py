"""`signing-service CONFIG_FILE`: load the config and the key, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from paychan_runtime.config import ConfigError, load_config
from paychan_runtime.serve import install_uvloop, serve_app, setup_logging

from .app import create_app
from .config import SigningConfig
from .keystore import load_server_key

log = logging.getLogger("paychan.signing")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit code 2 with a one-line error on a bad config, key or token file."""
    parser = argparse.ArgumentParser(prog="signing-service",
                                     description="Sign settlement transactions with the server key.")
    parser.add_argument("config_file", help="TOML config file (see config/*/signing.toml)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config_file, SigningConfig)
        setup_logging(config.log_level, config.log_format)
        key = load_server_key(config.key, config.net)
        app = create_app(config, key)
    except ConfigError as exc:
        print(f"signing-service: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"signing-service: cannot prepare the key or token file: {exc}", file=sys.stderr)
        return 2
    listen = config.listen
    where = listen.unix_path if listen.unix_path is not None else f"{listen.host}:{listen.port}"

    async def started() -> None:
        log.info("signing service listening on %s (network %s, pubkey %s, destination %s, max_fee %d)",
                 where, config.network, key.public_key.hex, config.settlement.destination,
                 config.settlement.max_fee)

    if listen.unix_path is not None:
        Path(listen.unix_path).parent.mkdir(parents=True, exist_ok=True)
    install_uvloop()
    try:
        asyncio.run(serve_app(app, host=listen.host, port=listen.port, unix_path=listen.unix_path,
                              on_started=started))
    except OSError as exc:
        log.error("cannot listen on %s: %s", where, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
