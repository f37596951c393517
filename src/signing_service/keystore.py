"""The server key: read from its file, created (mode 0600, O_EXCL, fsynced) on first start, or the
spec's debug seed (spec 9, 13.2) on test and regtest only."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import coincurve

from paychan_common.errors import InvalidInput
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_runtime.config import ConfigError, check_private_file

from .config import KeyConfig

log = logging.getLogger("paychan.signing")

# The original's debug `privKeySeed` (spec 13.2); its public key is 0225b3aa...c8f3. Public knowledge:
# anything it signs on a real chain can be spent by anyone, hence test/regtest only.
DEBUG_SEED = bytes.fromhex("9b4b4cf8f8796ca8a3a8a3da5c73deeb7c558a89e3752b896349ec58c010879d")


class KeyFileError(ConfigError):
    """The key file is unreadable, malformed or readable by other users."""

    code = "key_file_error"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_secret() -> bytes:
    while True:
        candidate = secrets.token_bytes(32)
        try:
            coincurve.PrivateKey(candidate)
        except ValueError:  # pragma: no cover - probability ~2^-128
            continue
        return candidate


def create_key_file(path: Path) -> PrivateKey | None:
    """Create path with a fresh key (O_EXCL, mode 0600, fsynced); None if it already exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    secret = _new_secret()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(path.parent)
    return PrivateKey(secret)


def read_key_file(path: Path) -> PrivateKey:
    """Read a 64-hex key file; refuse one that group or others may access."""
    try:
        check_private_file(path, "key file", KeyFileError)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {type(exc).__name__}") from None
    if len(text) != 64:
        raise KeyFileError(f"key file {path} must hold 64 hex characters")
    try:
        return PrivateKey(bytes.fromhex(text))
    except (ValueError, InvalidInput):
        raise KeyFileError(f"key file {path} does not hold a valid secp256k1 secret") from None


def load_or_create_key(path: Path) -> PrivateKey:
    """The key in path, created on first start."""
    created = create_key_file(path)
    if created is not None:
        log.info("created a new server key file %s (mode 0600)", path)
        return created
    return read_key_file(path)


def load_server_key(config: KeyConfig, network: Network) -> PrivateKey:
    """The server key per config: the debug seed (never on live) or the key file."""
    if config.debug_seed:
        if network is Network.LIVE:
            raise KeyFileError("key.debug_seed is not allowed on network 'live'")
        log.warning("DEBUG SEED IN USE: the server key is the publicly known spec key (network %s)",
                    network.params.name)
        return PrivateKey(DEBUG_SEED)
    return load_or_create_key(Path(config.file))
