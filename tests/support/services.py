"""Harness: the three paychan services as real subprocesses on reserved ports (debug or regtest config).

Readiness by polling `/health`, never fixed sleeps; each service's log goes to a file in the test's folder."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from paychan_runtime.processes import terminate
from tests.support.ports import reserve_port
from tests.support.regtest import wait_for

log = logging.getLogger("paychan.tests")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """base updated by extra, tables merged key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Service:
    """One subprocess with its log file."""

    def __init__(self, name: str, module: str, config: Path, logdir: Path, env: Mapping[str, str] | None = None):
        self.name = name
        self.module = module
        self.config = config
        self.logfile = logdir / f"{name}.log"
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (log appended)."""
        fh = self.logfile.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, str(self.config)], stdout=fh,
                                     stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=self.env)
        fh.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal and wait for the process to end."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 15 s; returns the exit code."""
        return None if self.proc is None else terminate(self.proc)

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        """Last lines of its log."""
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Services:
    """ChanStore + SigningService + PayChanServer with configs written into `root`."""

    def __init__(self, root: Path, *, time_offset: int = 0, server: Mapping[str, Any] | None = None,
                 store: Mapping[str, Any] | None = None, signing: Mapping[str, Any] | None = None,
                 network: str = "test", debug: bool = True) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port, self.store_port, self.signer_port = reserve_port(), reserve_port(), reserve_port()
        token_file = str(root / "internal.token")
        store_cfg = {"network": network, "listen": {"host": "127.0.0.1", "port": self.store_port},
                     "auth": {"token_file": token_file}, "storage": {"path": str(root / "chanstore"), "sync": True}}
        signing_cfg: dict[str, Any] = {
            "network": network, "listen": {"host": "127.0.0.1", "port": self.signer_port},
            "auth": {"token_file": token_file},
            "key": {"file": str(root / "server.key"), "debug_seed": debug},
            "settlement": {"destination": "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY", "max_fee": 200000},
            "funding_check": {"mode": "debug" if debug else "none"}}
        server_cfg: dict[str, Any] = {
            "log_level": "INFO", "listen": {"host": "127.0.0.1", "port": self.port},
            "bitcoin": {"network": network}, "debug": {"enable": debug, "time_offset_seconds": time_offset},
            "channel": {"dust_limit": 700, "open_price": 100000, "funding_min_conf": 10,
                        "settlement_period_hours": 12, "min_duration_hours": 48},
            "v1": {"base_price": 70000, "price_add_settlement_fee": True},
            "settlement": {"fee_mode": "fixed", "fee_rate_sat_per_byte": 40, "retry_interval_seconds": 0.5},
            "auth": {"token_file": token_file},
            "chan_store": {"url": f"http://127.0.0.1:{self.store_port}"},
            "signing_service": {"url": f"http://127.0.0.1:{self.signer_port}"}}
        self.configs = {
            "store": deep_merge(store_cfg, store or {}),
            "signing": deep_merge(signing_cfg, signing or {}),
            "server": deep_merge(server_cfg, server or {}),
        }
        for name, data in self.configs.items():
            (root / f"{name}.toml").write_text(tomli_w.dumps(data))
        self.store = Service("chan_store", "chan_store", root / "store.toml", root)
        self.signer = Service("signing_service", "signing_service", root / "signing.toml", root)
        self.server = Service("paychan_server", "paychan_server", root / "server.toml", root)
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The internal bearer token (created by the first service)."""
        return (self.root / "internal.token").read_text().strip()

    def _ready(self, svc: Service, url: str, timeout: float = 60.0) -> None:
        def up() -> bool:
            if not svc.alive:
                raise RuntimeError(f"{svc.name} exited during start-up:\n{svc.tail()}")
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=timeout, interval=0.05, description=f"{svc.name} ready")

    def start_store(self) -> None:
        """Start ChanStore and wait until it answers."""
        self.store.start()
        self._ready(self.store, f"http://127.0.0.1:{self.store_port}/health")

    def start(self) -> Services:
        """Start all three in order and wait for each."""
        log.info("starting services in %s", self.root)
        self.start_store()
        self.signer.start()
        self._ready(self.signer, f"http://127.0.0.1:{self.signer_port}/health")
        self.server.start()
        self._ready(self.server, self.url + "/health")
        return self

    def stop(self) -> None:
        """Stop all three (server first)."""
        for svc in (self.server, self.signer, self.store):
            svc.stop()

    def logs(self) -> str:
        """The tails of all logs, for failure reports."""
        return "\n".join(f"--- {s.name}\n{s.tail()}" for s in (self.store, self.signer, self.server))


@contextlib.contextmanager
def logged(svc: Services) -> Iterator[Services]:
    """Stop the services when the block ends; when it fails, log their log tails first."""
    try:
        yield svc
    except BaseException:
        log.error("service logs:\n%s", svc.logs())
        raise
    finally:
        svc.stop()


def wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    """Poll a predicate with backoff (re-exported for tests)."""
    return wait_for(predicate, timeout=timeout)


def now() -> int:
    """Wall-clock seconds."""
    return int(time.time())
