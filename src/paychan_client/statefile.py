"""The state file on disk: atomic, durable JSON writes (mode 0600) and typed field reads."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

from paychan_common.errors import PaychanError
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.state import Family
from paychan_common.tx import OutPoint

from .errors import InvalidArgument, StateFileError
from .models import parse_family

FORMAT = "paychan-client-state"
FORMAT_VERSION = 1


def write_json_atomic(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Write JSON atomically: temp file in the same directory, fsync, os.replace, fsync the directory."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StateFileError(f"cannot write state file {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise StateFileError(f"cannot write state file {target}: {exc.strerror or exc}") from None
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise StateFileError(f"cannot sync directory {directory}: {exc.strerror or exc}") from None
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        raise StateFileError(f"cannot sync directory {directory}: {exc.strerror or exc}") from None
    finally:
        os.close(dir_fd)


def public_view(state: dict[str, Any]) -> dict[str, Any]:
    """A state file's content without the private key and the file-format fields (for printing)."""
    return {k: v for k, v in state.items() if k not in ("format", "version", "client_privkey")}


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state file and check its format marker."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateFileError(f"state file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(f"cannot read state file {path}: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateFileError(f"state file {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise StateFileError(f"{path} is not a paychan-client state file")
    if obj.get("version") != FORMAT_VERSION:
        raise StateFileError(f"state file {path} has unsupported version {obj.get('version')!r}")
    return cast("dict[str, Any]", obj)


class Fields:
    """Typed access to a state file's keys; every problem names the key."""

    def __init__(self, obj: dict[str, Any], source: str) -> None:
        self.obj = obj
        self.source = source

    def fail(self, key: str, what: str) -> StateFileError:
        """An error naming the file and the key."""
        return StateFileError(f"state file {self.source}: {key!r} {what}")

    def has(self, key: str) -> bool:
        """True when the key is present and not null."""
        return self.obj.get(key) is not None

    def text(self, key: str) -> str:
        """A required string."""
        value = self.obj.get(key)
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        return value

    def integer(self, key: str) -> int:
        """A required non-negative integer."""
        value = self.obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, "must be a non-negative integer")
        return value

    def hexbytes(self, key: str) -> bytes:
        """A required hex string."""
        try:
            return bytes.fromhex(self.text(key))
        except ValueError:
            raise self.fail(key, "is not valid hex") from None

    def network(self, key: str = "network") -> Network:
        """A network name."""
        try:
            return Network.parse(self.text(key))
        except PaychanError as exc:
            raise self.fail(key, exc.message) from None

    def family(self, key: str = "family") -> Family:
        """A route family name."""
        try:
            return parse_family(self.text(key))
        except InvalidArgument as exc:
            raise self.fail(key, exc.message) from None

    def private_key(self, key: str = "client_privkey") -> PrivateKey:
        """A 32-byte private key in hex."""
        try:
            return PrivateKey(self.hexbytes(key))
        except PaychanError as exc:
            raise self.fail(key, exc.message) from None

    def public_key(self, key: str) -> PublicKey:
        """A compressed public key in hex."""
        try:
            return PublicKey.from_hex(self.text(key))
        except PaychanError as exc:
            raise self.fail(key, exc.message) from None

    def outpoint(self, txid_key: str = "funding_txid", vout_key: str = "funding_vout") -> OutPoint:
        """A display txid plus vout."""
        try:
            return OutPoint.from_display(self.text(txid_key).lower(), self.integer(vout_key))
        except PaychanError as exc:
            raise self.fail(txid_key, exc.message) from None
