"""paychan-gateway configuration (gateway.toml): where PayChanServer's config is, the ledger, the routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from paychan_runtime.config import LoopbackHost, StrictSection, config_error, load_config
from paychan_server.config import ServerConfig

__all__ = ["GatewayConfig", "PriceConfig", "RouteConfig", "load_gateway_config"]

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Sat = Annotated[int, Field(ge=0, le=2_100_000_000_000_000)]


def _read_only() -> list[Method]:
    return ["GET", "HEAD"]


class PriceConfig(StrictSection):
    """Exactly one way to price a route: per request, per KiB of response (metered), or a callback."""

    per_request: Sat | None = None
    per_kib: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    increment_kib: Annotated[int, Field(ge=1, le=1 << 20)] = 64  # metered: the least a client prepays
    callback: str | None = None  # dynamic: POST {method, path, query, route} -> {"price": sat}
    callback_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0

    @model_validator(mode="after")
    def _one(self) -> PriceConfig:
        given = [self.per_request is not None, self.per_kib is not None, self.callback is not None]
        if sum(given) != 1:
            raise config_error("price: set exactly one of per_request, per_kib, callback")
        if self.callback is not None and not self.callback.startswith(("http://", "https://")):
            raise config_error("price.callback: an http(s) URL is required")
        return self

    @property
    def mode(self) -> Literal["per_request", "per_kib", "dynamic"]:
        """How this route is priced."""
        if self.per_kib is not None:
            return "per_kib"
        return "per_request" if self.per_request is not None else "dynamic"


class RouteConfig(StrictSection):
    """One priced route family: a path prefix or a regular expression, the methods, the upstream."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    prefix: str | None = None
    pattern: str | None = None
    methods: list[Method] = Field(default_factory=_read_only, min_length=1)
    upstream: str
    strip_prefix: bool = False
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0  # upstream answer (headers) deadline
    price: PriceConfig

    @model_validator(mode="after")
    def _check(self) -> RouteConfig:
        if (self.prefix is None) == (self.pattern is None):
            raise config_error(f"routes.{self.name}: set exactly one of prefix and pattern")
        if self.prefix is not None and not self.prefix.startswith("/"):
            raise config_error(f"routes.{self.name}.prefix: must start with /")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise config_error(f"routes.{self.name}.pattern: {exc}") from None
        if self.strip_prefix and self.prefix is None:
            raise config_error(f"routes.{self.name}.strip_prefix: needs a prefix")
        if not self.upstream.startswith(("http://", "https://")):
            raise config_error(f"routes.{self.name}.upstream: an http(s) URL is required")
        return self


class ListenConfig(StrictSection):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)


class MetricsConfig(StrictSection):
    """Prometheus /metrics on its own loopback port."""

    enable: bool = False
    host: LoopbackHost = "127.0.0.1"
    port: int = Field(default=8091, ge=1, le=65535)


class LedgerConfig(StrictSection):
    """Where the gateway keeps its receipts (LevelDB, synced group commit)."""

    path: str
    sync: bool = True  # false is UNSAFE (benchmarks only): an acknowledged receipt can be lost


class GatewayConfig(StrictSection):
    """The whole gateway.toml."""

    log_level: str = "INFO"
    log_format: Literal["kv", "json"] = "kv"
    server_config: str  # PayChanServer's server.toml (its ChanStore, SigningService, chain and policy)
    public_server_url: str  # where clients open channels: the funding-info URL named in 402 answers
    listen: ListenConfig = ListenConfig()
    ledger: LedgerConfig
    metrics: MetricsConfig = MetricsConfig()
    routes: list[RouteConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        names = [r.name for r in self.routes]
        if len(set(names)) != len(names):
            raise config_error("routes: names must be unique")
        if not self.public_server_url.startswith(("http://", "https://")):
            raise config_error("public_server_url: an http(s) URL is required")
        return self


def load_gateway_config(path: str | Path) -> tuple[GatewayConfig, ServerConfig]:
    """The gateway's config and the PayChanServer config it names (relative to the gateway file)."""
    cfg = load_config(path, GatewayConfig)
    server_path = Path(cfg.server_config)
    if not server_path.is_absolute():
        server_path = Path(path).parent / server_path
    return cfg, load_config(server_path, ServerConfig)
