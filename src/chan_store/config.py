"""The ChanStore config (store.toml): one TOML file loaded into a frozen, validated model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from chan_store.store import DEFAULT_CACHE_SIZE
from paychan_runtime.config import InternalListenConfig as ListenConfig
from paychan_runtime.config import InternalServiceConfig, StrictSection
from paychan_runtime.config import TokenAuthConfig as AuthConfig

__all__ = ["AuthConfig", "ListenConfig", "StorageConfig", "StoreConfig"]


class StorageConfig(StrictSection):
    """The LevelDB directory and its write settings."""

    path: Annotated[str, Field(min_length=1)]
    sync: bool = True
    max_batch: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    cache_size: Annotated[int, Field(ge=1, le=10_000_000)] = DEFAULT_CACHE_SIZE

    @property
    def directory(self) -> Path:
        """The LevelDB directory as a path."""
        return Path(self.path)


class StoreConfig(InternalServiceConfig):
    """The whole ChanStore config file."""

    storage: StorageConfig
