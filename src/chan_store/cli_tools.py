"""`chan-store migrate|backup|restore|digest ...`: the storage tools of `chan_store.tools` on the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import httpx

from chan_store.config import StoreConfig
from chan_store.pg_schema import migrate
from chan_store.storage import StorageError
from chan_store.tools import copy_channels, digest_of, restore_backup
from paychan_runtime.config import ConfigError, load_config, read_password_file

__all__ = ["TOOLS", "run_tool"]

TOOLS = ("migrate", "backup", "restore", "digest")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chan-store", description="ChanStore storage tools.")
    sub = parser.add_subparsers(dest="tool", required=True)
    m = sub.add_parser("migrate", help="apply schema migrations (CONFIG), or copy between engines (--from/--to)")
    m.add_argument("config_file", nargs="?", help="a store.toml with engine = \"postgres\"")
    m.add_argument("--from", dest="source", help="leveldb:DIR or postgres:DSN (read only)")
    m.add_argument("--to", dest="target", help="leveldb:DIR or postgres:DSN (must be empty)")
    m.add_argument("--password-file", help="the PostgreSQL password, if the DSN needs one")
    b = sub.add_parser("backup", help="a consistent LevelDB snapshot from the running ChanStore")
    b.add_argument("config_file")
    b.add_argument("directory")
    r = sub.add_parser("restore", help="put a LevelDB backup in place (ChanStore stopped)")
    r.add_argument("directory")
    r.add_argument("config_file")
    d = sub.add_parser("digest", help="count and digest every channel of a store")
    d.add_argument("location", help="leveldb:DIR or postgres:DSN")
    d.add_argument("--password-file")
    return parser


async def _migrate_schema(config: StoreConfig) -> int:
    storage = config.storage
    if storage.engine != "postgres" or storage.dsn is None:
        raise ValueError("schema migrations are for engine = \"postgres\" (LevelDB has no schema)")
    conn = await asyncpg.connect(storage.dsn, password=read_password_file(storage.password_file))
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _backup(config: StoreConfig, directory: str) -> str:
    listen = config.listen
    token = Path(config.auth.token_file).read_text().strip()
    transport = httpx.HTTPTransport(uds=listen.unix_path) if listen.unix_path else None
    base = "http://localhost" if listen.unix_path else f"http://{listen.host}:{listen.port}"
    with httpx.Client(transport=transport, timeout=3600) as client:
        r = client.post(base + "/backup", json={"directory": str(Path(directory).resolve())},
                        headers={"Authorization": f"Bearer {token}"})
    body = r.json()
    if r.status_code != 200:
        raise ValueError(body.get("error", {}).get("message", r.text))
    return f"backup of {body['channels']} channels written to {body['directory']}"


def run_tool(argv: Sequence[str]) -> int:
    """Run one tool; exit 0 on success, 2 with a one-line reason otherwise."""
    args = _parser().parse_args(argv)
    try:
        if args.tool == "migrate" and args.source:
            if not args.target or args.config_file:
                raise ValueError("copy with --from SOURCE --to TARGET (and no config file)")
            password = read_password_file(args.password_file, "--password-file")
            report = asyncio.run(copy_channels(args.source, args.target, password=password))
            print(f"copied and verified {report.channels} channels {report.counts}, digest {report.digest}")
        elif args.tool == "migrate":
            if not args.config_file:
                raise ValueError("migrate CONFIG, or migrate --from SOURCE --to TARGET")
            version = asyncio.run(_migrate_schema(load_config(args.config_file, StoreConfig)))
            print(f"schema at version {version}")
        elif args.tool == "backup":
            print(_backup(load_config(args.config_file, StoreConfig), args.directory))
        elif args.tool == "restore":
            config = load_config(args.config_file, StoreConfig)
            if config.storage.engine != "leveldb":
                raise ValueError("restore is for the leveldb engine (PostgreSQL: pg_restore)")
            restore_backup(Path(args.directory), config.storage.directory)
            print(f"restored {args.directory} to {config.storage.directory}")
        else:
            password = read_password_file(args.password_file, "--password-file")
            report = asyncio.run(digest_of(args.location, password=password))
            print(f"{report.channels} channels {report.counts}, digest {report.digest}")
    except ConfigError as exc:
        print(f"chan-store: {exc.message}", file=sys.stderr)
        return 2
    except (ValueError, StorageError, OSError, asyncpg.PostgresError, httpx.HTTPError) as exc:
        print(f"chan-store {args.tool}: {exc}", file=sys.stderr)
        return 2
    return 0
