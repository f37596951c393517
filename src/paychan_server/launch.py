"""Starting PayChanServer once its port is claimed: config, token files, crash points, one process or a
supervisor restarting N SO_REUSEPORT workers."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from paychan_common.errors import PaychanError
from paychan_runtime.config import load_config, load_or_create_secret
from paychan_runtime.faults import crash_point_from_env
from paychan_runtime.files import set_private_umask
from paychan_runtime.metrics import enable_multiprocess
from paychan_runtime.port_claim import PortInUse, claim_port
from paychan_runtime.serve import env_port, install_uvloop, reuseport_socket, serve_app, setup_logging

from .api.front import front
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


def worker(path: str, index: int) -> None:
    """One worker process: its own SO_REUSEPORT socket on the claimed port; worker 0 runs the background tasks."""
    cfg = _load(path)
    setup_logging(cfg.log_level, cfg.log_format)
    install_uvloop()
    try:
        sock = reuseport_socket(cfg.listen.host, cfg.listen.port)
    except OSError as exc:
        print(f"paychan-server: cannot listen on {cfg.listen.host} port {cfg.listen.port}: {exc.strerror}",
              file=sys.stderr)
        raise SystemExit(1) from None
    app = create_app(cfg, background=index == 0)
    asyncio.run(serve_app(app, sock=sock, front=front(app) if cfg.listen.fast_front else None))


def _check_secrets(cfg: ServerConfig) -> None:
    """Read (or create) every token file now, so a bad one stops the start with one line (issue 11)."""
    files = [cfg.auth.token_file]
    if cfg.management.enable:
        files += [f for f in (cfg.management.token_file, cfg.management.metrics_token_file) if f]
    for name in files:
        load_or_create_secret(Path(name))


def _supervise(procs: list[BaseProcess], make: Callable[[int], BaseProcess], stopping: Callable[[], bool]) -> None:
    """Restart every worker that dies (a crash, a kill) until SIGTERM/SIGINT; then wait for all of them.

    A worker dying within RESPAWN_FAST_SECONDS of its start waits before its restart (doubling up to
    RESPAWN_MAX_DELAY), so a worker that cannot start does not spin."""
    started = {i: time.monotonic() for i in range(len(procs))}
    delay = dict.fromkeys(range(len(procs)), 0.0)
    while not stopping():
        wait([p.sentinel for p in procs])
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


def _spawn(ctx: SpawnContext, config: str, index: int) -> BaseProcess:
    return ctx.Process(target=worker, args=(config, index), name=f"paychan-worker-{index}")


def run(config: str, workers_arg: int | None, claim: socket.socket | None) -> None:
    """Validate the config and the token files, claim the port if not done yet, then serve (exit code on error)."""
    try:
        cfg = _load(config)
        set_private_umask()  # tokens, metrics files: owner only
        _check_secrets(cfg)
        crash_point_from_env()  # a bad PAYCHAN_CRASH_POINT fails here, in one line, not in each worker
        if claim is None:
            claim = claim_port(cfg.listen.host, cfg.listen.port)  # held until this process ends
    except PortInUse as exc:
        print(f"paychan-server: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    except PaychanError as exc:
        print(f"paychan-server: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"paychan-server: cannot prepare a token file: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    workers = workers_arg or cfg.listen.workers
    if workers == 1:
        worker(config, 0)
        return
    metrics_dir = enable_multiprocess()  # the workers share their Prometheus counters (paychan_runtime.metrics)
    ctx = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = [_spawn(ctx, config, i) for i in range(workers)]
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
    _supervise(procs, lambda i: _spawn(ctx, config, i), lambda: stopping)
    codes = [p.exitcode for p in procs]
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    raise SystemExit(0 if all(c == 0 for c in codes) else 1)
