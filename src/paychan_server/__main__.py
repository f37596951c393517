"""`paychan-server CONFIG_FILE [--workers N]`: the client-facing server; PORT env overrides the port."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from paychan_common.errors import PaychanError
from paychan_common.version import version_string
from paychan_runtime.config import load_config
from paychan_runtime.faults import crash_point_from_env
from paychan_runtime.metrics import enable_multiprocess
from paychan_runtime.serve import env_port, install_uvloop, reuseport_socket, serve_app, setup_logging

from .app import create_app
from .config import ServerConfig

RESPAWN_FAST_SECONDS = 5.0
RESPAWN_MAX_DELAY = 5.0


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


def _supervise(procs: list[BaseProcess], make: Callable[[int], BaseProcess], stopping: Callable[[], bool]) -> None:
    """Restart every worker that dies (a crash, a kill) until SIGTERM/SIGINT; then wait for all of them.

    A worker dying within RESPAWN_FAST_SECONDS of its start waits before its restart (doubling up to
    RESPAWN_MAX_DELAY), so a worker that cannot start does not spin."""
    started = {i: time.monotonic() for i in range(len(procs))}
    delay = dict.fromkeys(range(len(procs)), 0.0)
    while not stopping():
        multiprocessing.connection.wait([p.sentinel for p in procs])
        for i, p in enumerate(procs):
            if p.is_alive() or stopping():
                continue
            p.join()
            fast = time.monotonic() - started[i] < RESPAWN_FAST_SECONDS
            delay[i] = min(max(delay[i] * 2, 0.1), RESPAWN_MAX_DELAY) if fast else 0.0
            print(f"paychan-server: worker {i} (pid {p.pid}) exited with code {p.exitcode}: restarting it"
                  + (f" in {delay[i]:.1f} s" if delay[i] else ""), file=sys.stderr, flush=True)
            if delay[i]:
                time.sleep(delay[i])
            if stopping():
                break
            procs[i] = make(i)
            procs[i].start()
            started[i] = time.monotonic()
    for p in procs:
        if p.is_alive() and p.pid is not None:  # one restarted just as the stop signal came
            os.kill(p.pid, signal.SIGTERM)
        p.join()


def main(argv: list[str] | None = None) -> None:
    """Entry point: one process, or a supervisor of N SO_REUSEPORT workers."""
    parser = argparse.ArgumentParser(prog="paychan-server", description=__doc__)
    parser.add_argument("--version", action="version", version=version_string("paychan-server"))
    parser.add_argument("config", help="path to server.toml")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: listen.workers)")
    args = parser.parse_args(argv)
    try:
        cfg = _load(args.config)
        crash_point_from_env()  # a bad PAYCHAN_CRASH_POINT fails here, in one line, not in each worker
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
    procs: list[BaseProcess] = [ctx.Process(target=target, args=(args.config, i), name=f"paychan-worker-{i}")
                                for i in range(workers)]
    for p in procs:
        p.start()
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _supervise(procs, lambda i: ctx.Process(target=target, args=(args.config, i), name=f"paychan-worker-{i}"),
               lambda: stopping)
    codes = [p.exitcode for p in procs]
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    raise SystemExit(0 if all(c == 0 for c in codes) else 1)


if __name__ == "__main__":
    main()
