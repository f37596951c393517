"""Running an aiohttp app: uvloop, TCP or unix socket, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

from aiohttp import web

from paychan_runtime.config import ConfigError, InternalListenConfig, InternalServiceConfig, load_config

from .files import set_private_umask
from .logs import LogFormat, configure_logging
from .port_claim import reuseport_socket

__all__ = ["install_uvloop", "reuseport_socket", "run_internal_service", "serve_app", "setup_logging"]

log = logging.getLogger("paychan.serve")
SHUTDOWN_SECONDS = 60.0  # aiohttp's own shutdown_timeout
BACKLOG = 128  # aiohttp's sites' own backlog

_Config = TypeVar("_Config", bound=InternalServiceConfig)


def env_port(default: int) -> int:
    """The PORT environment variable if set (a port number, else PaychanError), or default."""
    from paychan_common.errors import PaychanError

    port = os.environ.get("PORT")
    if not port:
        return default
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise PaychanError(f"PORT environment variable is not a port number: {port!r}")
    return int(port)


def setup_logging(level: str = "INFO", fmt: LogFormat = "kv") -> None:
    """Structured one-line log records on stderr, secrets masked (paychan_runtime.logs)."""
    configure_logging(level, fmt)


def install_uvloop() -> None:
    """Use uvloop's event loop policy when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class Front(Protocol):
    """A protocol in front of aiohttp's on a listening socket (it hands connections over to `server()`)."""

    def protocol(self) -> asyncio.Protocol:
        """The protocol of a new connection."""
        ...

    async def shutdown(self) -> None:
        """Close its connections once the answers in progress are written (the caller bounds the wait)."""
        ...


async def serve_app(app: web.Application, *, host: str | None = None, port: int | None = None,
                    unix_path: str | None = None, sock: socket.socket | None = None,
                    on_started: Callable[[], Awaitable[None]] | None = None,
                    front: Callable[[web.Server], Front] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then shut down cleanly (cleanup contexts run). With `front`, the listening
    socket's connections start with the front's protocol, which hands them to aiohttp's as it sees fit."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    if unix_path is not None and sock is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(unix_path)
    if front is not None and runner.server is not None:
        await _serve_front(runner, front(runner.server), sock=sock, host=host, port=port, unix_path=unix_path,
                           on_started=on_started)
        return
    site: web.BaseSite
    if sock is not None:
        site = web.SockSite(runner, sock)
    elif unix_path is not None:
        site = web.UnixSite(runner, unix_path)
    else:
        site = web.TCPSite(runner, host or "127.0.0.1", port or 0, reuse_address=True)
    await site.start()
    if unix_path is not None:
        os.chmod(unix_path, 0o600)
    await _until_signalled(on_started, runner.cleanup)


async def _serve_front(runner: web.AppRunner, fronted: Front, *, sock: socket.socket | None, host: str | None,
                       port: int | None, unix_path: str | None,
                       on_started: Callable[[], Awaitable[None]] | None) -> None:
    """Listen as the aiohttp site would (same backlog, SO_REUSEADDR on TCP, a 0600 unix socket), but with
    the front's protocol."""
    loop = asyncio.get_running_loop()
    server: asyncio.AbstractServer
    if sock is not None:
        server = await loop.create_server(fronted.protocol, sock=sock, backlog=BACKLOG)
    elif unix_path is not None:
        server = await loop.create_unix_server(fronted.protocol, unix_path, backlog=BACKLOG)
        os.chmod(unix_path, 0o600)
    else:
        server = await loop.create_server(fronted.protocol, host or "127.0.0.1", port or 0, backlog=BACKLOG,
                                          reuse_address=True)

    async def shutdown() -> None:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await fronted.shutdown()
        await runner.cleanup()

    await _until_signalled(on_started, shutdown)


async def _until_signalled(on_started: Callable[[], Awaitable[None]] | None,
                           shutdown: Callable[[], Awaitable[None]]) -> None:
    """Call on_started, then serve until SIGTERM/SIGINT; `shutdown` runs then (or when cancelled)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_started is not None:
        await on_started()
    # What start-up built (modules, models, configuration, a store's loaded channels) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it on the serving path.
    gc.freeze()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await shutdown()


def run_internal_service(app: web.Application, listen: InternalListenConfig,
                         on_started: Callable[[], Awaitable[None]], logger: logging.Logger,
                         front: Callable[[web.Server], Front] | None = None) -> int:
    """Serve an internal service on its loopback port or unix socket until SIGTERM; exit code 0, or 1 when
    it cannot listen (the socket's folder is created first)."""
    if listen.unix_path is not None:
        Path(listen.unix_path).parent.mkdir(parents=True, exist_ok=True)
    install_uvloop()
    try:
        asyncio.run(serve_app(app, host=listen.host, port=listen.port, unix_path=listen.unix_path,
                              on_started=on_started, front=front))
    except OSError as exc:
        logger.error("cannot listen on %s: %s", listen.where, exc)
        return 1
    return 0


def prepare_internal_service(prog: str, config_file: str, model: type[_Config], files: str,
                             build: Callable[[_Config], web.Application]) -> tuple[_Config, web.Application] | None:
    """Load the config, set up logging, build the app; None after a one-line error on stderr naming the bad
    config or `files` (the main then exits 2)."""
    try:
        config = load_config(config_file, model)
        set_private_umask()  # the database, tokens and keys it creates: owner only
        setup_logging(config.log_level, config.log_format)
        return config, build(config)
    except ConfigError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
    except OSError as exc:
        print(f"{prog}: cannot prepare the {files}: {exc}", file=sys.stderr)
    return None
