"""`signing-service CONFIG_FILE`: load the config and the key, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from paychan_runtime.config import ConfigError, load_config
from paychan_runtime.serve import run_internal_service, setup_logging

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

    async def started() -> None:
        log.info("signing service listening on %s (network %s, pubkey %s, destination %s, max_fee %d)",
                 listen.where, config.network, key.public_key.hex, config.settlement.destination,
                 config.settlement.max_fee)

    return run_internal_service(app, listen, started, log)


if __name__ == "__main__":
    sys.exit(main())
