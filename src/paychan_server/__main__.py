"""`paychan-server CONFIG_FILE [--workers N]`: the client-facing server; PORT env overrides the port."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing
import os
import shutil
import signal
import sys

from paychan_common.errors import PaychanError
from paychan_common.version import version_string
from paychan_runtime.config import load_config
from paychan_runtime.metrics import enable_multiprocess
from paychan_runtime.serve import env_port, install_uvloop, reuseport_socket, serve_app, setup_logging

from .app import create_app
from .config import ServerConfig


def _load(path: str) -> ServerConfig:
    cfg = load_config(path, ServerConfig)
    port = env_port(cfg.listen.port)
    if port != cfg.listen.port:
        cfg = cfg.model_copy(update={"listen": cfg.listen.model_copy(update={"port": port})})
    return cfg


def _worker(path: str, index: int) -> None:
    cfg = _load(path)
    setup_logging(cfg.log_level, cfg.log_format)
    install_uvloop()
    sock = reuseport_socket(cfg.listen.host, cfg.listen.port)
    app = create_app(cfg, background=index == 0)
    asyncio.run(serve_app(app, sock=sock))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one process, or a supervisor of N SO_REUSEPORT workers."""
    parser = argparse.ArgumentParser(prog="paychan-server", description=__doc__)
    parser.add_argument("--version", action="version", version=version_string("paychan-server"))
    parser.add_argument("config", help="path to server.toml")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: listen.workers)")
    args = parser.parse_args(argv)
    try:
        cfg = _load(args.config)
    except PaychanError as exc:
        print(f"paychan-server: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    workers = args.workers or cfg.listen.workers
    if workers == 1:
        _worker(args.config, 0)
        return
    metrics_dir = enable_multiprocess()  # the workers share their Prometheus counters (paychan_runtime.metrics)
    ctx = multiprocessing.get_context("spawn")
    # Under `python -m paychan_server` this module is `__main__`, which spawned children do not re-import:
    # hand them the worker by its importable name.
    target = importlib.import_module("paychan_server.__main__")._worker
    procs = [ctx.Process(target=target, args=(args.config, i), name=f"paychan-worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()

    def _stop(signum: int, frame: object) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for p in procs:
        p.join()
    codes = [p.exitcode for p in procs]
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    raise SystemExit(0 if all(c == 0 for c in codes) else 1)


if __name__ == "__main__":
    main()
