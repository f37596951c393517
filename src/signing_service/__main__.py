"""`signing-service CONFIG_FILE`: load the config and the key, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from paychan_common.version import version_string
from paychan_runtime.serve import prepare_internal_service, run_internal_service

from .app import KEY_KEY, create_app
from .config import SigningConfig
from .keystore import load_server_key

log = logging.getLogger("paychan.signing")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit code 2 with a one-line error on a bad config, key or token file."""
    parser = argparse.ArgumentParser(prog="signing-service",
                                     description="Sign settlement transactions with the server key.")
    parser.add_argument("--version", action="version", version=version_string("signing-service"))
    parser.add_argument("config_file", help="TOML config file (see config/*/signing.toml)")
    args = parser.parse_args(argv)
    def build(config: SigningConfig) -> web.Application:
        return create_app(config, load_server_key(config.key, config.net))

    prepared = prepare_internal_service("signing-service", args.config_file, SigningConfig, "key or token file",
                                        build)
    if prepared is None:
        return 2
    config, app = prepared
    key = app[KEY_KEY]
    listen = config.listen

    async def started() -> None:
        log.info("signing service listening on %s (network %s, pubkey %s, destination %s, max_fee %d)",
                 listen.where, config.network, key.public_key.hex, config.settlement.destination,
                 config.settlement.max_fee)

    return run_internal_service(app, listen, started, log)


if __name__ == "__main__":
    sys.exit(main())
