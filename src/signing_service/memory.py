"""The SigningService's memory of what it signed (spec 8.6, 10.3): per funding outpoint, the lowest client
change and the highest fee rate of any settlement it signed.

A compromised PayChanServer must not get a settlement for an older client state (a higher change back to
the client) once a newer one was signed, nor a replacement paying a lower fee rate than one already signed
(which would let it trade the replaced version's fee back). `check()` refuses both with typed
SigningRefused codes, `older_state` and `lower_fee_rate`; asking again for exactly what was signed is
allowed (signatures are deterministic, RFC 6979, so the answer is the same transaction).

The memory is an append-only file of JSON lines, written and fsynced (and the directory too, when the file
is new) before the signature is returned: a signature the caller saw is always remembered after a crash or
restart. A torn last line (a crash mid-write, never acknowledged) is dropped at load; any other damage
refuses start-up rather than forgetting.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

from paychan_common.errors import SigningRefused
from paychan_common.tx import OutPoint
from paychan_runtime.config import ConfigError


@dataclass(frozen=True, slots=True)
class Signed:
    """The most the service signed for one outpoint: lowest change, and its highest fee rate (fee / size)."""

    change: int
    fee: int
    size: int


class MemoryFileError(ConfigError):
    """The memory file cannot be read or is damaged."""

    code = "memory_file_error"


def _key(outpoint: OutPoint) -> str:
    return f"{outpoint.display_txid}:{outpoint.vout}"


def _fold(old: Signed | None, new: Signed) -> Signed:
    """What is remembered after signing `new` (check() already allowed it)."""
    if old is None or new.change < old.change:
        return new
    if new.fee * old.size > old.fee * new.size:
        return new
    return old


class SigningMemory:
    """Per-outpoint memory of signed settlements, durable before the caller is answered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: dict[str, Signed] = {}
        self._lock = asyncio.Lock()
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise MemoryFileError(f"memory.file {self.path}: {exc.strerror}") from None
        lines = data.split(b"\n")
        if lines and lines[-1]:  # a torn last write: it was never fsynced, so never acknowledged
            lines = lines[:-1]
            self._truncate(sum(len(line) + 1 for line in lines))
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                rec = json.loads(line)
                key, signed = str(rec["outpoint"]), Signed(int(rec["change"]), int(rec["fee"]), int(rec["size"]))
            except (ValueError, KeyError, TypeError):
                raise MemoryFileError(f"memory.file {self.path}: line {number} is damaged; refusing to start "
                                      "without the record of what was signed") from None
            self._seen[key] = _fold(self._seen.get(key), signed)

    def _truncate(self, size: int) -> None:
        with self.path.open("r+b") as fh:
            fh.truncate(size)
            os.fsync(fh.fileno())

    def get(self, outpoint: OutPoint) -> Signed | None:
        """What was signed for outpoint, if anything."""
        return self._seen.get(_key(outpoint))

    def check(self, outpoint: OutPoint, new: Signed) -> None:
        """Refuse an older client state or a lower fee rate than already signed for outpoint (spec 8.6)."""
        old = self.get(outpoint)
        if old is None:
            return
        if new.change > old.change:
            raise SigningRefused(f"an older client state: change {new.change} is above the {old.change} of a "
                                 "settlement already signed for this channel", code="older_state")
        if new.fee * old.size < old.fee * new.size:
            raise SigningRefused(f"a lower fee rate than already signed for this channel: fee {new.fee} for "
                                 f"{new.size} bytes after {old.fee} for {old.size}", code="lower_fee_rate")

    async def admit(self, outpoint: OutPoint, new: Signed) -> None:
        """check(), then record durably; concurrent requests are serialized."""
        async with self._lock:
            self.check(outpoint, new)
            key = _key(outpoint)
            merged = _fold(self._seen.get(key), new)
            if merged != self._seen.get(key):
                line = json.dumps({"outpoint": key, "change": new.change, "fee": new.fee, "size": new.size})
                await asyncio.to_thread(self._append, (line + "\n").encode())
                self._seen[key] = merged

    def _append(self, data: bytes) -> None:
        """Append and fsync (the directory too when the file is new)."""
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
