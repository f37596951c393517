"""PayChanServer configuration (server.toml), and the start-up refusals of settings that can lose money or
leak secrets: each names the key to change (issue 11; spec 4.2, 6.5, 7.2, 8.3, 8.4)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from paychan_common.dust import change_dust_thresholds
from paychan_common.network import Network
from paychan_common.rules import ChannelPolicy
from paychan_common.settlement import FIXED_SETTLEMENT_SIZE
from paychan_runtime.config import LoopbackHost, StrictSection, config_error, is_loopback, plain_http_elsewhere


class ListenConfig(StrictSection):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=16384, ge=1024, le=1 << 20)
    # Behind a TLS reverse proxy on this host (deploy/nginx/): take the scheme and host of the channel URLs
    # from X-Forwarded-Proto / X-Forwarded-Host, on connections from loopback only.
    trust_forwarded_headers: bool = False
    # Payments (PUT on the v2-seed and v2.3.0 payment routes) served by the fast front (api/front.py)
    # before the web framework; false: every request goes through aiohttp.
    fast_front: bool = True


class ServiceRef(StrictSection):
    """Where an internal service listens (TCP URL or unix socket)."""

    url: str = "http://127.0.0.1:17079"
    unix_path: str | None = None
    pool_size: int = Field(default=100, ge=1, le=10000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)


class ChanStoreRef(ServiceRef):
    """ChanStore: `url`, and optionally more instances of the same PostgreSQL-backed store to fail over to."""

    failover_urls: list[str] = Field(default_factory=list, max_length=16)

    @property
    def urls(self) -> list[str]:
        """Every instance, `url` first."""
        return [self.url, *self.failover_urls]

    @model_validator(mode="after")
    def _distinct(self) -> ChanStoreRef:
        if len(set(self.urls)) != len(self.urls):
            raise ValueError("chan_store.failover_urls: every ChanStore URL must be distinct")
        if self.failover_urls and self.unix_path is not None:
            raise ValueError("chan_store.failover_urls: not with unix_path (one socket is one instance)")
        return self


class ChannelConfig(StrictSection):
    dust_limit: int = Field(default=700, ge=0)
    open_price: int = Field(default=100_000, ge=0)
    funding_min_conf: int = Field(default=10, ge=0)
    settlement_period_hours: int = Field(default=12, ge=0)
    min_duration_hours: int = Field(default=48, ge=0)
    report_value_left_minus_dust: bool = False  # mimic the seed's `change - dust_limit` (spec 6.5)

    def policy(self) -> ChannelPolicy:
        """The core's policy value."""
        return ChannelPolicy(self.dust_limit, self.open_price, self.funding_min_conf, self.settlement_period_hours,
                             self.min_duration_hours)

    def value_left(self, change: int) -> int:
        """The client's change as reported to clients and operators (spec 6.5, optionally minus the dust limit)."""
        if self.report_value_left_minus_dust:
            return max(change - self.dust_limit, 0)
        return change


class V1Config(StrictSection):
    base_price: int = Field(default=70_000, ge=0)
    price_add_settlement_fee: bool = True


class SettlementConfig(StrictSection):
    fee_mode: Literal["fixed", "rate"] = "rate"
    fee_rate_sat_per_byte: int = Field(default=40, ge=1, le=100_000)  # debug rate, and the fixed-mode rate
    max_fee_rate_sat_per_byte: int = Field(default=500, ge=1, le=100_000)
    scheduler_interval_seconds: float = Field(default=300.0, gt=0)
    retry_interval_seconds: float = Field(default=10.0, gt=0)
    safety_margin_hours: int = Field(default=1, ge=0)  # auto-close this long before exp - settlement_period
    confirmations: int = Field(default=3, ge=1, le=1000)  # follow each settlement until this deep, then closed
    retry_max_interval_seconds: float = Field(default=300.0, gt=0)  # publish retries back off up to this
    # Fee bumping (spec 8.6): replace an unconfirmed settlement at higher fees as its deadline nears.
    bump_enable: bool = True
    bump_deadline_margin_seconds: int = Field(default=3600, ge=0, le=30 * 86400)  # deadline = exp_time - this (MTP)
    bump_max_share_percent: int = Field(default=100, ge=0, le=100)  # ceiling: this share of the server's value
    bump_max_fee: int = Field(default=0, ge=0)  # ceiling in sat; 0: the SigningService's max_fee
    alert_hours_before_deadline: float = Field(default=6.0, ge=0, le=720)  # ceiling ALERT, metrics window


class BitcoinConfig(StrictSection):
    network: Literal["live", "test", "regtest"]
    rpc_url: str = ""
    rpc_user: str = ""
    rpc_password: str = ""
    rpc_cookie_file: str = ""
    rpc_timeout_seconds: float = Field(default=10.0, gt=0)
    wallet: str = ""

    @property
    def net(self) -> Network:
        """The network enum."""
        return Network.parse(self.network)


class DebugConfig(StrictSection):
    enable: bool = False
    time_offset_seconds: int = 0  # tests: shift the server clock (debug mode only)


class AuthConfig(StrictSection):
    token_file: str


class CallbackConfig(StrictSection):
    enable: bool = False
    url: str = ""
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _check(self) -> CallbackConfig:
        if self.enable and not self.url.startswith(("http://", "https://")):
            raise ValueError("callback.url: an http(s) URL is required when callback.enable = true")
        return self


class ManagementConfig(StrictSection):
    """The management API, /metrics included: its own loopback port, bearer token (spec 10.5)."""

    enable: bool = False
    host: LoopbackHost = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    token_file: str = ""
    metrics_token_file: str = ""  # optional read-only token for scrapers: it opens GET /metrics only
    totals_max_age_seconds: float = Field(default=15.0, ge=0, le=3600)  # /metrics reuses totals this fresh

    @model_validator(mode="after")
    def _check(self) -> ManagementConfig:
        if self.enable and not self.token_file:
            raise ValueError("management.token_file: required when management.enable = true")
        return self


class ServerConfig(StrictSection):
    """The whole server.toml."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["kv", "json"] = "kv"  # key=value lines, or one JSON object per line
    listen: ListenConfig = ListenConfig()
    bitcoin: BitcoinConfig
    channel: ChannelConfig = ChannelConfig()
    v1: V1Config = V1Config()
    settlement: SettlementConfig = SettlementConfig()
    debug: DebugConfig = DebugConfig()
    auth: AuthConfig
    chan_store: ChanStoreRef = ChanStoreRef()
    signing_service: ServiceRef = ServiceRef(url="http://127.0.0.1:17081")
    callback: CallbackConfig = CallbackConfig()
    management: ManagementConfig = ManagementConfig()

    @model_validator(mode="after")
    def _check(self) -> ServerConfig:
        if self.debug.enable and self.bitcoin.network == "live":
            raise ValueError("debug.enable: debug mode is refused on the live network")
        if self.debug.time_offset_seconds and not self.debug.enable:
            raise ValueError("debug.time_offset_seconds: only allowed with debug.enable = true")
        if not self.debug.enable and not self.bitcoin.rpc_url:
            raise ValueError("bitcoin.rpc_url: required unless debug.enable = true")
        problem = unsafe_setting(self)  # every setting that can lose money names its key (config_safety)
        if problem is not None:
            raise config_error(problem)
        return self


# -- settings refused at start -----------------------------------------------------------------------------

HOUR = 3600


def settlement_fee_estimate(cfg: ServerConfig) -> int:
    """The settlement fee estimate: the original's 348-byte size at the configured rate (spec 8.3)."""
    return FIXED_SETTLEMENT_SIZE * cfg.settlement.fee_rate_sat_per_byte


def v1_open_price(cfg: ServerConfig) -> int:
    """v1 open price: base price plus the settlement fee estimate if configured (spec 6.2)."""
    extra = settlement_fee_estimate(cfg) if cfg.v1.price_add_settlement_fee else 0
    return cfg.v1.base_price + extra


def unsafe_setting(cfg: ServerConfig) -> str | None:
    """The first unsafe setting as `key: why`, or None (spec 4.2, 6.5, 7.2, 8.3, 8.4)."""
    for check in (_dust, _open_prices, _periods, _scheduler, _funding, _transport, _ports):
        problem = check(cfg)
        if problem is not None:
            return problem
    return None


def _dust(cfg: ServerConfig) -> str | None:
    dust = cfg.channel.dust_limit
    below = {name: t for name, t in change_dust_thresholds().items() if dust < t}
    if below:
        types = ", ".join(f"{name} {t}" for name, t in below.items())
        return (f"channel.dust_limit: {dust} sat is below the relay dust threshold of accepted change types "
                f"({types} sat at 3 sat/vB): a settlement with such change would not relay; use at least "
                f"{max(below.values())}")
    return None


def _open_prices(cfg: ServerConfig) -> str | None:
    fee = settlement_fee_estimate(cfg)
    floor = fee + cfg.channel.dust_limit
    if cfg.channel.open_price < floor:
        return (f"channel.open_price: {cfg.channel.open_price} is below the settlement fee estimate plus the dust "
                f"limit ({fee} + {cfg.channel.dust_limit}; spec 8.3)")
    v1 = v1_open_price(cfg)
    if v1 < floor:
        return (f"v1.base_price: the v1 open price {v1} (base_price {cfg.v1.base_price}, price_add_settlement_fee "
                f"{str(cfg.v1.price_add_settlement_fee).lower()}) is below the settlement fee estimate plus the "
                f"dust limit ({fee} + {cfg.channel.dust_limit}; spec 8.3)")
    return None


def _periods(cfg: ServerConfig) -> str | None:
    ch = cfg.channel
    if ch.settlement_period_hours < 1:
        return ("channel.settlement_period_hours: must be at least 1: with 0 the settlement is published when the "
                "client's refund becomes valid, and the refund can win")
    if ch.settlement_period_hours > ch.min_duration_hours:
        return (f"channel.settlement_period_hours: {ch.settlement_period_hours} h is longer than "
                f"channel.min_duration_hours ({ch.min_duration_hours} h)")
    return None


def _scheduler(cfg: ServerConfig) -> str | None:
    half = cfg.channel.settlement_period_hours * HOUR / 2
    s = cfg.settlement
    if s.scheduler_interval_seconds > half:
        return (f"settlement.scheduler_interval_seconds: {s.scheduler_interval_seconds:g} s is more than half the "
                f"settlement period ({half:g} s): a channel could reach its refund time before it is settled")
    if s.retry_max_interval_seconds > half:
        return (f"settlement.retry_max_interval_seconds: {s.retry_max_interval_seconds:g} s is more than half the "
                f"settlement period ({half:g} s): a failed broadcast might not be retried before the refund time")
    if s.retry_interval_seconds > s.retry_max_interval_seconds:
        return (f"settlement.retry_interval_seconds: {s.retry_interval_seconds:g} s is above "
                f"settlement.retry_max_interval_seconds ({s.retry_max_interval_seconds:g} s)")
    return None


def _funding(cfg: ServerConfig) -> str | None:
    if not cfg.debug.enable and cfg.channel.funding_min_conf < 1:
        return ("channel.funding_min_conf: 0 accepts unconfirmed funding, which the client can double-spend "
                "after it has been paid for; use at least 1")
    return None


def _transport(cfg: ServerConfig) -> str | None:
    urls = [("chan_store.url", cfg.chan_store.url, cfg.chan_store.unix_path),
            *(("chan_store.failover_urls", url, None) for url in cfg.chan_store.failover_urls),
            ("signing_service.url", cfg.signing_service.url, cfg.signing_service.unix_path)]
    for key, url, unix_path in urls:
        host = urlsplit(url).hostname or ""
        if unix_path is None and not is_loopback(host):
            return (f"{key}: {host!r} is not a loopback address: the internal services listen on loopback "
                    f"only, and the bearer token must not cross a network")
    if cfg.bitcoin.rpc_url and plain_http_elsewhere(cfg.bitcoin.rpc_url):
        return "bitcoin.rpc_url: plain http to a non-loopback host sends the RPC credentials in clear; use https"
    return None


def _ports(cfg: ServerConfig) -> str | None:
    m = cfg.management
    if m.enable and m.port == cfg.listen.port:
        return f"management.port: {m.port} is also listen.port"
    return None
