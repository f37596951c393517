"""The ChanStore config (store.toml): one TOML file loaded into a frozen, validated model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from chan_store.store import DEFAULT_CACHE_SIZE
from paychan_runtime.config import InternalListenConfig as ListenConfig
from paychan_runtime.config import InternalServiceConfig, StrictSection, config_error
from paychan_runtime.config import TokenAuthConfig as AuthConfig

__all__ = ["AuthConfig", "ListenConfig", "StorageConfig", "StoreConfig", "StoreListenConfig"]


def _dsn_has_password(dsn: str) -> bool:
    """True when a URL or key=value DSN carries a password."""
    if "://" in dsn:
        return urlsplit(dsn).password is not None or "password=" in urlsplit(dsn).query
    return "password" in dsn.lower()


class StorageConfig(StrictSection):
    """The engine: LevelDB (a directory, the embedded default) or PostgreSQL (a DSN, several instances)."""

    engine: Literal["leveldb", "postgres"] = "leveldb"
    path: Annotated[str, Field(min_length=1)] | None = None
    """LevelDB: the directory."""
    dsn: Annotated[str, Field(min_length=1)] | None = None
    """PostgreSQL: a libpq-style DSN without the password, e.g. `postgresql://paychan@db.internal/paychan`."""
    password_file: Annotated[str, Field(min_length=1)] | None = None
    """PostgreSQL: a file holding the password (0600); never logged."""
    pool_size: Annotated[int, Field(ge=1, le=1000)] = 8
    """PostgreSQL: connections per ChanStore process."""
    sync: bool = True
    max_batch: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    inline_write_below: Annotated[int, Field(ge=0, le=1_000_000)] = 16
    """LevelDB: a group write of fewer operations (one per payment) is written in the event loop's own thread,
    two thread wake-ups cheaper than the writer thread (few clients); 0 = always the writer thread."""
    cache_size: Annotated[int, Field(ge=1, le=10_000_000)] = DEFAULT_CACHE_SIZE

    @model_validator(mode="after")
    def _engine_settings(self) -> StorageConfig:
        if self.engine == "leveldb":
            if self.path is None:
                raise ValueError("storage.path is required with engine = \"leveldb\"")
            if self.dsn is not None or self.password_file is not None:
                raise ValueError("storage.dsn and storage.password_file are for engine = \"postgres\"")
        else:
            if self.dsn is None:
                raise ValueError("storage.dsn is required with engine = \"postgres\"")
            if self.path is not None:
                raise ValueError("storage.path is for engine = \"leveldb\"")
            if not self.sync:
                raise ValueError("storage.sync = false is not offered with engine = \"postgres\" "
                                 "(synchronous_commit is the database's setting)")
            if _dsn_has_password(self.dsn):
                raise ValueError("storage.dsn must not carry a password: put it in storage.password_file")
        return self

    @property
    def directory(self) -> Path:
        """The LevelDB directory as a path."""
        if self.path is None:
            raise ValueError("no LevelDB directory: the engine is postgres")
        return Path(self.path)

    @property
    def where(self) -> str:
        """The engine and its location, for logs (never a password)."""
        return f"leveldb:{self.path}" if self.engine == "leveldb" else f"postgres:{self.dsn}"


class StoreListenConfig(ListenConfig):
    """Where ChanStore listens, and whether binary payment batches take the fast front (chan_store.front)."""

    fast_front: bool = True


class StoreConfig(InternalServiceConfig):
    """The whole ChanStore config file."""

    listen: StoreListenConfig
    storage: StorageConfig

    @model_validator(mode="after")
    def _check(self) -> StoreConfig:
        if self.network == "live" and not self.storage.sync:
            raise config_error("storage.sync: false is refused on network 'live': a crash would lose "
                               "acknowledged payments")
        return self
