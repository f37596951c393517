"""`paychan-gateway GATEWAY_TOML`: the pay-per-request reverse proxy; PORT in the environment overrides the port."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from paychan_common.errors import PaychanError
from paychan_runtime.files import set_private_umask
from paychan_runtime.serve import env_port, install_uvloop, serve_app, setup_logging

from .app import create_app
from .config import load_gateway_config


def main(argv: list[str] | None = None) -> None:
    """Entry point: one process (the ledger is one LevelDB directory)."""
    parser = argparse.ArgumentParser(prog="paychan-gateway", description=__doc__)
    parser.add_argument("config", help="path to gateway.toml")
    args = parser.parse_args(argv)
    try:
        cfg, server_cfg = load_gateway_config(args.config)
        port = env_port(cfg.listen.port)
        cfg = cfg.model_copy(update={"listen": cfg.listen.model_copy(update={"port": port})})
    except PaychanError as exc:
        print(f"paychan-gateway: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    set_private_umask()  # the ledger holds the payments taken: owner only
    setup_logging(cfg.log_level, cfg.log_format)
    install_uvloop()
    Path(cfg.ledger.path).parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve_app(create_app(cfg, server_cfg), host=cfg.listen.host, port=cfg.listen.port))


if __name__ == "__main__":
    main()
