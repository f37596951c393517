"""TOML config loading into frozen, validated pydantic models; errors name the bad key."""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
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


MIN_SECRET_BITS = 128
_ALPHABETS = ((frozenset("0123456789abcdefABCDEF"), 16),
              (frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 64))


def secret_bits(text: str) -> float:
    """A cautious strength estimate of a token: half the bits of the smallest alphabet holding it, per character
    (a token chosen by a person is not uniformly random); 64 hex characters give 128."""
    chars = frozenset(text)
    size = next((n for alphabet, n in _ALPHABETS if chars <= alphabet), 94)
    return len(text) * math.log2(size) / 2


def check_private_file(path: Path, what: str, error: type[ConfigError] = ConfigError) -> None:
    """Refuse a secret's file that group or others may access (chmod 600)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise error(f"{what} {path} is accessible by group or others (mode {mode:o}); chmod 600 it")


def read_secret(path: Path) -> str:
    """An existing token: its file private to its owner, the token at least 128 bits (secret_bits)."""
    check_private_file(path, "token file")
    text = path.read_text().strip()
    if not text:
        raise ConfigError(f"token file {path} is empty")
    if any(c.isspace() or not c.isprintable() for c in text) or secret_bits(text) < MIN_SECRET_BITS:
        raise ConfigError(f"token file {path} holds a weak token ({len(text)} characters): use at least "
                          f"{MIN_SECRET_BITS} bits, e.g. 64 random hex characters (openssl rand -hex 32)")
    return text


def read_password_file(path: str | None, key: str = "storage.password_file") -> str | None:
    """The password in path (None without one), its file private to its owner like a token file."""
    if path is None:
        return None
    check_private_file(Path(path), key)
    return Path(path).read_text().strip()


def load_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """Read a token from path (mode 0600, at least 128 bits: read_secret), or create it: random hex, mode 0600.

    A new secret is written to a private temporary file first and then linked into place, so a process
    starting at the same moment reads either no file or the whole secret, never an empty one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
            pass  # another process created it first: read theirs, with the same checks
        finally:
            tmp.unlink(missing_ok=True)
    return read_secret(path)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_host(host: str) -> str:
    if not is_loopback(host):
        raise config_error(f"{host!r} is not a loopback address")
    return host


LoopbackHost = Annotated[str, AfterValidator(_loopback_host)]
"""A host key that must name a loopback address (`is_loopback`): an internal service's or an operator's port."""


def plain_http_elsewhere(url: str) -> bool:
    """True for an http:// URL whose host is not loopback: credentials would cross a network in clear."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def config_error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is (it names the key itself)."""
    return PydanticCustomError("paychan_config", "{message}", {"message": message})


class StrictSection(ConfigModel):
    """A config section with strict types (no string-to-int coercion)."""

    model_config = ConfigDict(strict=True)


class InternalListenConfig(StrictSection):
    """Where an internal service listens: a loopback TCP port or a unix socket (exactly one)."""

    host: LoopbackHost = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    unix_path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> InternalListenConfig:
        if (self.port is None) == (self.unix_path is None):
            raise config_error("exactly one of listen.port and listen.unix_path must be set")
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
