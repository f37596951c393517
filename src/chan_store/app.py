"""The ChanStore HTTP application: bearer-authenticated JSON over `ChannelStore`.

Routes (all but GET /health need the bearer token; errors are `{"error": {"class","code","message"}}`):
GET /health, POST /channels, GET /channels, GET /channels/{outpoint}, POST /channels/{outpoint}/cas,
POST /payments, GET /stats, POST /backup.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from chan_store.config import StoreConfig
from chan_store.contract import (
    MAX_BODY_BYTES,
    PAYMENTS_CONTENT_TYPE,
    RESULTS_CONTENT_TYPE,
    ChannelExistsAt,
    ListQuery,
    StateConflict,
    StoreStats,
    decode_payments_request,
    encode_payment_results,
    error_json,
    outpoint_hex,
    page_json,
    parse_cas_body,
    parse_outpoint,
    parse_payments_request,
    parse_state,
    payment_result_json,
    require_object,
    state_hex,
    stats_json,
)
from chan_store.engine import ChannelEngine
from chan_store.leveldb_storage import LevelDBStorage, crashing_writer, write_batches
from chan_store.metrics import STORE_METRICS, InstrumentedStorage, StoreMetrics, store_middlewares
from chan_store.postgres import PostgresChannelStore
from chan_store.storage import Storage
from chan_store.store import ChannelStore, FatalHandler, exit_process
from chan_store.tools import snapshot_to
from paychan_common.errors import ChannelNotFound, InvalidInput
from paychan_runtime.config import check_private_file, load_or_create_secret, read_password_file
from paychan_runtime.faults import CrashHook, crash_point_from_env
from paychan_runtime.http import (
    bearer_auth_middleware,
    http_error_json_middleware,
    internal_error_middleware,
    json_response,
    read_body,
    read_json,
)
from paychan_runtime.http_errors import http_status
from paychan_runtime.metrics import metrics_handler

__all__ = ["AUTH_HEADER_KEY", "CONFIG_KEY", "STORE_KEY", "StorageFactory", "create_app", "open_leveldb",
           "open_postgres"]

log = logging.getLogger("paychan.chanstore")

CONFIG_KEY = web.AppKey("config", StoreConfig)
STORE_KEY: web.AppKey[ChannelEngine] = web.AppKey("store", ChannelEngine)
IDENTITY_KEY = web.AppKey("store_id", str)
AUTH_HEADER_KEY = web.AppKey("auth_header", bytes)  # `Bearer <token>`, for the fast front (chan_store.front)
STORAGE_KEY: web.AppKey[Storage] = web.AppKey("storage", Storage)  # LevelDB/memory engines only
OPEN_PATHS = frozenset({"/health", "/metrics"})  # /metrics: counts and latencies only, loopback

StorageFactory = Callable[[StoreConfig], Storage]


def open_leveldb(config: StoreConfig, crash: CrashHook | None = None) -> Storage:
    """The production storage: LevelDB at storage.path (parents created); `crash` arms the write crash points."""
    path = config.storage.directory
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = write_batches if crash is None else crashing_writer(crash)
    return LevelDBStorage(path, sync=config.storage.sync, max_batch=config.storage.max_batch, writer=writer,
                          inline_below=config.storage.inline_write_below)


def _default_storage() -> StorageFactory:
    """LevelDB, with the write crash points armed if PAYCHAN_CRASH_POINT says so (tests only)."""
    crash = crash_point_from_env()
    return open_leveldb if crash is None else functools.partial(open_leveldb, crash=crash)


def open_postgres(config: StoreConfig) -> PostgresChannelStore:
    """The PostgreSQL engine at storage.dsn, its password read from storage.password_file."""
    storage = config.storage
    assert storage.dsn is not None  # the config validator requires it for this engine
    password = read_password_file(storage.password_file)
    return PostgresChannelStore(storage.dsn, password=password, pool_size=storage.pool_size)


async def health(request: web.Request) -> web.Response:
    """GET /health: liveness and which store this is (engine:identity), no auth; 503 once the store failed."""
    if request.app[STORE_KEY].failed:
        return json_response({"ok": False}, status=503)
    return json_response({"ok": True, "store_id": request.app[IDENTITY_KEY]})


async def create_channel(request: web.Request) -> web.Response:
    """POST /channels {"state"} -> 201 {"state"}; 409 ChannelExists with "existing_outpoint"."""
    body = require_object(await read_json(request, MAX_BODY_BYTES))
    state = parse_state(body.get("state"))
    try:
        created = await request.app[STORE_KEY].create(state)
    except ChannelExistsAt as err:
        existing = None if err.existing_outpoint is None else outpoint_hex(err.existing_outpoint)
        return json_response({"error": error_json(err, "ChannelExists"), "existing_outpoint": existing},
                             status=http_status(err))
    return json_response({"state": state_hex(created)}, status=201)


async def get_channel(request: web.Request) -> web.Response:
    """GET /channels/{outpoint} -> {"state"}; 404 if unknown."""
    outpoint = parse_outpoint(request.match_info["outpoint"])
    state = await request.app[STORE_KEY].get(outpoint)
    if state is None:
        raise ChannelNotFound(f"no channel with funding outpoint {outpoint}")
    return json_response({"state": state_hex(state)})


async def list_channels(request: web.Request) -> web.Response:
    """GET /channels?status&client_pubkey&expiring_before&after&limit -> {"states", "next"}."""
    query = ListQuery.parse(request.query)
    page = await request.app[STORE_KEY].list(
        status=query.status, client_pubkey=query.client_pubkey, expiring_before=query.expiring_before,
        after=query.after, limit=query.limit)
    return json_response(page_json(page))


async def apply_payments(request: web.Request) -> web.Response:
    """POST /payments {"now", "payments": [...]} -> {"results": [...]} (one durable batch); a binary body
    (PAYMENTS_CONTENT_TYPE, chan_store.contract) is answered in binary (RESULTS_CONTENT_TYPE)."""
    if request.content_type == PAYMENTS_CONTENT_TYPE:
        now, items = decode_payments_request(await read_body(request, MAX_BODY_BYTES))
        results = await request.app[STORE_KEY].apply_payments(items, now)
        return web.Response(body=encode_payment_results(results), content_type=RESULTS_CONTENT_TYPE)
    now, items = parse_payments_request(await read_json(request, MAX_BODY_BYTES))
    results = await request.app[STORE_KEY].apply_payments(items, now)
    return json_response({"results": [payment_result_json(result) for result in results]})


async def compare_and_set(request: web.Request) -> web.Response:
    """POST /channels/{outpoint}/cas {"expected": sha256hex, "state"} -> {"state"}; 409 with "current"."""
    outpoint = parse_outpoint(request.match_info["outpoint"])
    expected, state = parse_cas_body(await read_json(request, MAX_BODY_BYTES))
    if state.outpoint != outpoint:
        raise InvalidInput("the state's outpoint differs from the one in the path")
    try:
        stored = await request.app[STORE_KEY].compare_and_set(expected, state)
    except StateConflict as err:
        current = None if err.current is None else state_hex(err.current)
        return json_response({"error": error_json(err, "Conflict"), "current": current}, status=http_status(err))
    return json_response({"state": state_hex(stored)})


async def backup(request: web.Request) -> web.Response:
    """POST /backup {"directory"} -> {"channels", "directory"}: a consistent LevelDB snapshot, written while
    serving (every write acknowledged before the call is in it); the directory must be absent or empty."""
    body = require_object(await read_json(request, MAX_BODY_BYTES))
    directory = body.get("directory")
    if not isinstance(directory, str) or not directory.startswith("/") or len(directory) > 4096:
        raise InvalidInput("directory must be an absolute path")
    storage = request.app.get(STORAGE_KEY)
    if storage is None:
        raise InvalidInput("this store runs the postgres engine: back it up with pg_dump (docs/STORAGE.md)")
    try:
        channels = await asyncio.to_thread(snapshot_to, storage, Path(directory))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    except OSError as exc:
        log.error("backup to %s failed: %s", directory, exc)
        raise InvalidInput("cannot write the backup directory (see the ChanStore log)") from None
    log.info("backup of %d channels written to %s", channels, directory)
    return json_response({"channels": channels, "directory": directory})


async def stats(request: web.Request) -> web.Response:
    """GET /stats -> channel counts, memory use and the storage's commit counters."""
    store = request.app[STORE_KEY]
    if isinstance(store, PostgresChannelStore):
        await store.refresh_counts()
    return json_response(stats_json(StoreStats(store.counts(), store.memory(), store.storage_stats())))


def create_app(config: StoreConfig, *, storage_factory: StorageFactory | None = None,
               on_fatal: FatalHandler = exit_process) -> web.Application:
    """The ChanStore app; the storage (default: LevelDB, crash points armed only by PAYCHAN_CRASH_POINT) is
    opened and the channels loaded in a cleanup context."""
    factory = storage_factory if storage_factory is not None else _default_storage()
    token = load_or_create_secret(Path(config.auth.token_file))
    if config.storage.password_file is not None:  # refused at start, not when the engine opens
        check_private_file(Path(config.storage.password_file), "storage.password_file")
    metrics = StoreMetrics()
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[*store_middlewares(metrics), http_error_json_middleware, internal_error_middleware,
                     bearer_auth_middleware(token, OPEN_PATHS)],
    )
    app[CONFIG_KEY] = config
    app[STORE_METRICS] = metrics
    app[AUTH_HEADER_KEY] = ("Bearer " + token).encode()

    async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
        if config.storage.engine == "postgres":
            engine = open_postgres(config)
            await engine.open()
            app[STORE_KEY] = engine
            app[IDENTITY_KEY] = engine.identity
            metrics.store = engine
            try:
                yield
            finally:
                await engine.close()
            return
        if not config.storage.sync:
            log.warning("storage.sync = false: acknowledged payments can be lost on a crash "
                        "(UNSAFE, for benchmarks only)")
        storage = InstrumentedStorage(factory(config), metrics)
        try:
            store = ChannelStore(storage, cache_size=config.storage.cache_size, on_fatal=on_fatal)
            store.load(background_check=True)  # serves while it checks the indexes (docs/STORAGE.md)
            app[STORE_KEY] = store
            app[STORAGE_KEY] = storage
            app[IDENTITY_KEY] = f"leveldb:{socket.gethostname()}:{config.storage.directory.resolve()}"
            metrics.store = store
            try:
                yield
            finally:
                await store.stop_check()
        finally:
            await storage.close()

    app.cleanup_ctx.append(storage_ctx)
    app.router.add_get("/health", health)
    app.router.add_post("/channels", create_channel)
    app.router.add_get("/channels", list_channels)
    app.router.add_get("/channels/{outpoint}", get_channel)
    app.router.add_post("/channels/{outpoint}/cas", compare_and_set)
    app.router.add_post("/payments", apply_payments)
    app.router.add_get("/stats", stats)
    app.router.add_post("/backup", backup)
    app.router.add_get("/metrics", metrics_handler(metrics))
    return app
