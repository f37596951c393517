"""A small upstream to sell through paychan-gateway: a JSON API, a large file (ranges), a stream, a price list.

    python examples/upstream.py --port 9000

GET  /api/items/{id}    JSON; echoes the Paychan-* headers the gateway set (what the app is told was paid)
POST /api/echo          the request body back (streamed), with the byte count in a header
GET  /api/fail          500 (the gateway does not charge for it)
GET  /files/big.bin     1 MiB of deterministic bytes, Range supported (metered per KiB behind the gateway)
GET  /stream            an endless-looking chunked stream of 4 KiB blocks (metered: stops where the payment does)
POST /price             the gateway's dynamic-pricing callback: /api/quote/{n} costs n sat
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from pathlib import Path

from aiohttp import web

BIG_SIZE = 1 << 20


def big_file_bytes() -> bytes:
    """The 1 MiB served at /files/big.bin: SHA256 counter blocks, so a test can check every byte."""
    blocks = (hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(BIG_SIZE // 32))
    return b"".join(blocks)


def _seen(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower().startswith(("paychan-", "authorization"))}


async def item(request: web.Request) -> web.Response:
    return web.json_response({"item": request.match_info["id"], "seen_headers": _seen(request)})


async def quoted(request: web.Request) -> web.Response:
    return web.json_response({"quote": int(request.match_info["n"]), "seen_headers": _seen(request)})


async def echo(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    async for chunk in request.content.iter_chunked(65536):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def fail(request: web.Request) -> web.Response:
    return web.json_response({"error": "upstream failure"}, status=500)


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.json_response({"slow": True, "seen_headers": _seen(request)})


async def stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    block = bytes(range(256)) * 16
    for _ in range(100_000):  # 400 MB at most; a metered client stops it long before
        await resp.write(block)
    await resp.write_eof()
    return resp


async def price(request: web.Request) -> web.Response:
    ask = await request.json()
    tail = str(ask.get("path", "")).rsplit("/", 1)[-1]
    return web.json_response({"price": int(tail) if tail.isdigit() else 1000})


def create_app(big: Path) -> web.Application:
    """The upstream app; big is where the 1 MiB file is written."""
    big.write_bytes(big_file_bytes())

    async def big_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(big)

    app = web.Application()
    app.add_routes([
        web.get("/api/items/{id}", item),
        web.get("/api/quote/{n}", quoted),
        web.post("/api/echo", echo),
        web.get("/api/fail", fail),
        web.get("/api/slow", slow),
        web.get("/files/big.bin", big_file),
        web.get("/stream", stream),
        web.post("/price", price),
        web.get("/health", lambda r: _ok()),
    ])
    return app


async def _ok() -> web.Response:
    return web.json_response({"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--data", default="var/upstream", help="folder for the big file")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    web.run_app(create_app(data / "big.bin"), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
