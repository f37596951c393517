"""The ChanStore config (store.toml): one TOML file loaded into a frozen, validated model."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from chan_store.store import DEFAULT_CACHE_SIZE
from paychan_runtime.config import ConfigModel

__all__ = ["AuthConfig", "ListenConfig", "StorageConfig", "StoreConfig", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Section(ConfigModel):
    model_config = ConfigDict(strict=True)


class ListenConfig(_Section):
    """Where to listen: a loopback TCP port, or a unix socket (exactly one of the two)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    unix_path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ListenConfig:
        if (self.port is None) == (self.unix_path is None):
            raise ValueError("exactly one of listen.port and listen.unix_path must be set")
        if not is_loopback_host(self.host):
            raise ValueError(f"listen.host {self.host!r} is not a loopback address (internal service)")
        return self

    @property
    def where(self) -> str:
        """Human-readable listening address."""
        return self.unix_path if self.unix_path is not None else f"{self.host}:{self.port}"


class AuthConfig(_Section):
    """The shared bearer token, read from (or created in) token_file."""

    token_file: Annotated[str, Field(min_length=1)]


class StorageConfig(_Section):
    """The LevelDB directory and its write settings."""

    path: Annotated[str, Field(min_length=1)]
    sync: bool = True
    max_batch: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    cache_size: Annotated[int, Field(ge=1, le=10_000_000)] = DEFAULT_CACHE_SIZE

    @property
    def directory(self) -> Path:
        """The LevelDB directory as a path."""
        return Path(self.path)


class StoreConfig(_Section):
    """The whole ChanStore config file."""

    network: Literal["live", "test", "regtest"]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    listen: ListenConfig
    auth: AuthConfig
    storage: StorageConfig
