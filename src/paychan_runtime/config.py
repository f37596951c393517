"""TOML config loading into frozen, validated pydantic models; errors name the bad key."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from paychan_common.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


class ConfigModel(BaseModel):
    """Base of every config section: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ConfigError(InvalidInput):
    """A config file is missing, unreadable or invalid."""

    code = "config_error"


def load_config(path: str | os.PathLike[str], model: type[M]) -> M:
    """Load one TOML file into `model`; the error names the file and the key."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {p}: {exc}") from None
    return parse_config(text, model, str(p))


def parse_config(text: str, model: type[M], source: str = "<config>") -> M:
    """Parse TOML text into `model`; ConfigError naming `source` and the key on anything wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config {source}: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {source}: {validation_summary(exc)}") from None


def validation_summary(exc: ValidationError, root: str = "<root>") -> str:
    """`key: message; ...` for every error of a pydantic validation (names keys, never echoes values)."""
    return "; ".join(f"{'.'.join(str(part) for part in err['loc']) or root}: {err['msg']}" for err in exc.errors())


def load_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """Read a hex secret (token) from path, creating it with mode 0600 if missing.

    A new secret is written to a private temporary file first and then linked into place, so a process
    starting at the same moment reads either no file or the whole secret, never an empty one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        value = secrets.token_hex(nbytes)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
            return value
        except FileExistsError:
            pass  # another process created it first: read theirs
        finally:
            tmp.unlink(missing_ok=True)
    text = path.read_text().strip()
    if not text:
        raise ConfigError(f"secret file {path} is empty")
    return text


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is (it names the key itself)."""
    return PydanticCustomError("paychan_config", "{message}", {"message": message})


class StrictSection(ConfigModel):
    """A config section with strict types (no string-to-int coercion)."""

    model_config = ConfigDict(strict=True)


class InternalListenConfig(StrictSection):
    """Where an internal service listens: a loopback TCP port or a unix socket (exactly one)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    unix_path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> InternalListenConfig:
        if (self.port is None) == (self.unix_path is None):
            raise config_error("exactly one of listen.port and listen.unix_path must be set")
        if not is_loopback(self.host):
            raise config_error(f"listen.host {self.host!r} is not a loopback address (internal service)")
        return self

    @property
    def where(self) -> str:
        """Human-readable listening address."""
        return self.unix_path if self.unix_path is not None else f"{self.host}:{self.port}"


class TokenAuthConfig(StrictSection):
    """The shared bearer token, read from (or created in) token_file."""

    token_file: Annotated[str, Field(min_length=1)]


class InternalServiceConfig(StrictSection):
    """What every internal service's config file holds: network, logging, where it listens, its token."""

    network: Literal["live", "test", "regtest"]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["kv", "json"] = "kv"  # key=value lines, or one JSON object per line
    listen: InternalListenConfig
    auth: TokenAuthConfig
