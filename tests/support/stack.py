"""An in-process stack for the operator-feature tests: ChanStore (memory storage) and SigningService on
aiohttp test servers, PayChanServer in debug mode through aiohttp's test client, and its management site
on a free loopback port (started by app.py's real wiring)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chan_store.app import create_app as create_store_app
from chan_store.config import StoreConfig
from chan_store.memory_storage import MemoryStorage
from paychan_server.api.keys import SERVICE
from paychan_server.app import create_app as create_server_app
from paychan_server.config import ServerConfig
from paychan_server.operator.metrics import METRICS
from signing_service.app import create_app as create_signing_app
from signing_service.config import SigningConfig
from signing_service.keystore import load_server_key
from tests.support.channels import TestChannel
from tests.support.ports import reserve_port
from tests.support.services import deep_merge

INTERNAL_TOKEN = "1n7ernal" * 8
MGMT_TOKEN = "m4nagement" * 6
METRICS_TOKEN = "me7rics-only" * 4
DESTINATION = "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY"

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


def exp_time(days: float = 7) -> int:
    """An expiry `days` from now."""
    return int(time.time() + days * 86400)


class Stack:
    """The running stack and helpers to drive it."""

    def __init__(self, public: TestClient[web.Request, web.Application], cfg: ServerConfig,
                 session: aiohttp.ClientSession, store_server: TestServer, signing_server: TestServer) -> None:
        self.public = public
        self.cfg = cfg
        self.session = session
        self.store_server = store_server
        self.signing_server = signing_server
        self.mgmt_url = f"http://127.0.0.1:{cfg.management.port}"
        self.openings: dict[str, int] = {}

    @property
    def app(self) -> web.Application:
        """The PayChanServer application."""
        return self.public.app

    @property
    def service(self) -> Any:
        """The PayChanService."""
        return self.app[SERVICE]

    @property
    def metrics(self) -> Any:
        """The server's metrics."""
        return self.app[METRICS]

    async def mgmt(self, method: str, path: str, token: str | None = MGMT_TOKEN, **kw: Any) -> tuple[int, Any]:
        """Call the management API; (status, parsed JSON or text)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.session.request(method, self.mgmt_url + path, headers=headers, **kw) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def open_v23(self, ch: TestChannel, price: int = 100_000) -> int:
        """Open a v2.3.0 channel paying `price`; return the change left."""
        change = ch.funding_value - price
        r = await self.public.post(ch.v23_url, params={"secret": ch.secret(change)}, json=ch.v23_full(change))
        assert r.status == 201, await r.text()
        self.openings[ch.pk] = change
        return change

    def secret(self, ch: TestChannel) -> str:
        """The v2.3.0 secret of a channel opened by open_v23."""
        return ch.secret(self.openings[ch.pk])

    async def pay_v23(self, ch: TestChannel, change: int) -> dict[str, Any]:
        """One v2.3.0 payment leaving `change`; the JSON answer."""
        r = await self.public.put(ch.v23_url, params={"secret": self.secret(ch)}, json=ch.v23_compact(change))
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def start_stack(tmp_path: Path, aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient,
                      server: dict[str, Any] | None = None) -> AsyncIterator[Stack]:
    """Start the stack (an async generator for a fixture); `server` overrides server.toml keys."""
    token_file = tmp_path / "internal.token"
    for path, token in ((token_file, INTERNAL_TOKEN), (tmp_path / "management.token", MGMT_TOKEN),
                        (tmp_path / "metrics.token", METRICS_TOKEN)):
        path.write_text(token + "\n")
        path.chmod(0o600)  # a token file others may read is refused
    store_cfg = StoreConfig.model_validate({
        "network": "test", "listen": {"host": "127.0.0.1", "port": 1}, "auth": {"token_file": str(token_file)},
        "storage": {"path": str(tmp_path / "chanstore")}})
    store_server = await aiohttp_server(create_store_app(store_cfg, storage_factory=lambda _c: MemoryStorage()))
    signing_cfg = SigningConfig.model_validate({
        "network": "test", "listen": {"host": "127.0.0.1", "port": 1}, "auth": {"token_file": str(token_file)},
        "key": {"file": str(tmp_path / "server.key"), "debug_seed": True},
        "settlement": {"destination": DESTINATION, "max_fee": 200_000}})
    key = load_server_key(signing_cfg.key, signing_cfg.net)
    signing_server = await aiohttp_server(create_signing_app(signing_cfg, key))
    base: dict[str, Any] = {
        "bitcoin": {"network": "test"}, "debug": {"enable": True},
        "settlement": {"fee_mode": "fixed", "fee_rate_sat_per_byte": 40, "retry_interval_seconds": 0.2},
        "auth": {"token_file": str(token_file)},
        "chan_store": {"url": str(store_server.make_url("")).rstrip("/")},
        "signing_service": {"url": str(signing_server.make_url("")).rstrip("/")},
        "management": {"enable": True, "port": reserve_port(), "token_file": str(tmp_path / "management.token"),
                       "metrics_token_file": str(tmp_path / "metrics.token"), "totals_max_age_seconds": 0},
    }
    cfg = ServerConfig.model_validate(deep_merge(base, server or {}))
    public = await aiohttp_client(create_server_app(cfg, background=True))
    async with aiohttp.ClientSession() as session:
        yield Stack(public, cfg, session, store_server, signing_server)
