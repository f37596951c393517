"""TOML config loading into frozen, validated pydantic models; errors name the bad key."""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

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
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {p}: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "<root>"
            lines.append(f"{key}: {err['msg']}")
        raise ConfigError(f"invalid config {p}: " + "; ".join(lines)) from None


def load_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """Read a hex secret (token) from path, creating it with mode 0600 if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text().strip()
        if not text:
            raise ConfigError(f"secret file {path} is empty") from None
        return text
    value = secrets.token_hex(nbytes)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return value
