"""Reference server: a bare aiohttp handler on uvloop (reads the body, answers a small JSON object).

Usage: python bench/bare_server.py PORT [--workers N]. Prints "ready" on stdout once it listens.
Its request rate, driven by the same load generator as the payments, is the ceiling of any aiohttp
service on this machine: payments/s divided by it is the share of the web framework's own speed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import sys

from aiohttp import web

ANSWER = (b'{"channel_status":"open","channel_value_left":12345678799999,"value_received":1,'
          b'"settlement_txid":null,"application_data":""}')


async def handle(request: web.Request) -> web.Response:
    """Read the body, answer a payment-sized JSON object."""
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


def _socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(port: int, announce: bool) -> None:
    """Serve until SIGTERM."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, _socket(port)).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if announce:
        print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()


def _worker(port: int, announce: bool) -> None:
    import uvloop

    uvloop.run(serve(port, announce))


def main() -> None:
    """Run one process, or N SO_REUSEPORT processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("port", type=int)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers == 1:
        _worker(args.port, True)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(args.port, False)) for _ in range(args.workers)]
    for p in procs:
        p.start()

    def stop(signum: int, frame: object) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)  # the caller polls the port anyway
    for p in procs:
        p.join()
    sys.exit(0)


if __name__ == "__main__":
    main()
