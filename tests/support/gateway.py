"""Harness: the three services, the example upstream and paychan-gateway as real processes (debug config)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from chan_store.client import ChanStoreClient
from paychan_common.tx import OutPoint
from tests.support.ports import reserve_port
from tests.support.regtest import wait_for
from tests.support.services import PROJECT_ROOT, Service, Services

PER_REQUEST = 1000
PER_KIB = 10
INCREMENT_KIB = 64


def _routes(upstream: str, dead: str) -> list[dict[str, Any]]:
    return [
        {"name": "api", "prefix": "/api/items/", "methods": ["GET"], "upstream": upstream,
         "price": {"per_request": PER_REQUEST}},
        {"name": "echo", "prefix": "/api/echo", "methods": ["POST"], "upstream": upstream,
         "price": {"per_request": PER_REQUEST}},
        {"name": "fail", "prefix": "/api/fail", "upstream": upstream, "price": {"per_request": PER_REQUEST}},
        {"name": "slow", "prefix": "/api/slow", "upstream": upstream, "timeout_seconds": 1.0,
         "price": {"per_request": PER_REQUEST}},
        {"name": "quote", "pattern": r"/api/quote/\d+", "upstream": upstream,
         "price": {"callback": upstream + "/price"}},
        {"name": "files", "prefix": "/files/", "upstream": upstream,
         "price": {"per_kib": PER_KIB, "increment_kib": INCREMENT_KIB}},
        {"name": "stream", "prefix": "/stream", "upstream": upstream,
         "price": {"per_kib": PER_KIB, "increment_kib": INCREMENT_KIB}},
        {"name": "down", "prefix": "/down/", "upstream": dead, "price": {"per_request": PER_REQUEST}},
    ]


def gateway_toml(server_config: Path, server_url: str, port: int, ledger: Path, routes: list[dict[str, Any]],
                 metrics_port: int) -> str:
    """gateway.toml text."""
    return tomli_w.dumps({
        "server_config": str(server_config), "public_server_url": server_url,
        "listen": {"host": "127.0.0.1", "port": port}, "ledger": {"path": str(ledger)},
        "metrics": {"enable": True, "port": metrics_port}, "routes": routes})


class GatewayStack:
    """Services + upstream (examples/upstream.py) + gateway, all on free loopback ports."""

    def __init__(self, root: Path) -> None:
        self.services = Services(root / "svc")
        self.upstream_port, self.gateway_port = reserve_port(), reserve_port()
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        self.dead_url = f"http://127.0.0.1:{reserve_port()}"  # nothing listens there
        self.metrics_url = f"http://127.0.0.1:{reserve_port()}/metrics"
        cfg = root / "gateway.toml"
        cfg.write_text(gateway_toml(root / "svc" / "server.toml", self.services.url, self.gateway_port,
                                    root / "ledger", _routes(self.upstream_url, self.dead_url),
                                    int(self.metrics_url.split(":")[2].split("/")[0])))
        self.upstream = _Upstream(root, self.upstream_port)
        self.gateway = Service("paychan_gateway", "paychan_gateway", cfg, root)

    def start(self) -> GatewayStack:
        """Start everything and wait until each answers."""
        self.services.start()
        self.upstream.start()
        self.services._ready(self.upstream.svc, self.upstream_url + "/health")
        self.gateway.start()
        self.services._ready(self.gateway, self.url + "/.well-known/paychan/health")
        return self

    def stop(self) -> None:
        """Stop everything."""
        self.gateway.stop()
        self.upstream.svc.stop()
        self.services.stop()

    def logs(self) -> str:
        """Log tails for failure reports."""
        return self.services.logs() + f"\n--- gateway\n{self.gateway.tail()}\n--- upstream\n{self.upstream.svc.tail()}"

    def stored_change(self, outpoint: OutPoint) -> int:
        """The channel's change value as ChanStore durably holds it."""
        async def get() -> int:
            client = ChanStoreClient(f"http://127.0.0.1:{self.services.store_port}", self.services.token)
            try:
                state = await client.get(outpoint)
            finally:
                await client.close()
            assert state is not None
            return state.change_value

        return asyncio.run(get())


class _Upstream:
    def __init__(self, root: Path, port: int) -> None:
        self.svc = Service("upstream", "examples.upstream", root / "unused", root)
        self.port = port
        self.root = root

    def start(self) -> None:
        fh = self.svc.logfile.open("ab")
        self.svc.proc = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "examples" / "upstream.py"), "--port", str(self.port),
             "--data", str(self.root / "upstream")], stdout=fh, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
            env=self.svc.env)
        fh.close()


__all__ = ["INCREMENT_KIB", "PER_KIB", "PER_REQUEST", "GatewayStack", "wait_for"]
