"""Minimal legacy transaction model: serialize, parse, txid."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import InvalidInput
from .hashing import sha256d

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def varint(n: int) -> bytes:
    """Bitcoin CompactSize."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


@dataclass(frozen=True, slots=True)
class OutPoint:
    """A transaction output reference; txid in internal byte order."""

    txid: bytes
    vout: int

    def __post_init__(self) -> None:
        if len(self.txid) != 32:
            raise InvalidInput("txid must be 32 bytes")
        if isinstance(self.vout, bool) or not isinstance(self.vout, int) or not 0 <= self.vout <= 0xFFFFFFFF:
            raise InvalidInput("funding_vout must be a uint32")

    @classmethod
    def from_display(cls, txid_hex: str, vout: int) -> OutPoint:
        """Build from a display-order txid hex (spec 0.2)."""
        if not isinstance(txid_hex, str) or len(txid_hex) != 64 or not _HEX64.fullmatch(txid_hex):
            raise InvalidInput("funding_txid must be 64 hex characters")
        raw = bytes.fromhex(txid_hex)
        return cls(raw[::-1], vout)

    @property
    def display_txid(self) -> str:
        """The conventional (byte-reversed) txid hex."""
        return self.txid[::-1].hex()

    def serialize(self) -> bytes:
        """36 bytes: txid (internal) || vout uint32 LE."""
        return self.txid + self.vout.to_bytes(4, "little")

    @classmethod
    def parse(cls, data: bytes) -> OutPoint:
        """Inverse of serialize; exactly 36 bytes."""
        if len(data) != 36:
            raise InvalidInput("outpoint must be 36 bytes")
        return cls(data[:32], int.from_bytes(data[32:], "little"))

    def __str__(self) -> str:
        return f"{self.display_txid}:{self.vout}"


@functools.lru_cache(maxsize=4096)
def _remembered_outpoint(txid_hex: str, vout: int) -> OutPoint:
    return OutPoint.from_display(txid_hex, vout)


def outpoint_from_display(txid_hex: str, vout: int) -> OutPoint:
    """`OutPoint.from_display`, remembered for the last 4096 (txid, vout) pairs: every payment names its
    channel's outpoint again (in the path, and in full v2 bodies). Errors are raised, never remembered."""
    if type(txid_hex) is not str or type(vout) is not int:
        return OutPoint.from_display(txid_hex, vout)
    return _remembered_outpoint(txid_hex, vout)


@dataclass(frozen=True, slots=True)
class TxIn:
    """One input."""

    prevout: OutPoint
    script_sig: bytes = b""
    sequence: int = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class TxOut:
    """One output."""

    value: int
    script_pubkey: bytes


@dataclass(frozen=True, slots=True)
class Transaction:
    """A legacy (non-witness) transaction."""

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int = 0

    def serialize(self) -> bytes:
        """Network serialization (no witness)."""
        parts = [self.version.to_bytes(4, "little"), varint(len(self.inputs))]
        for i in self.inputs:
            parts += [i.prevout.serialize(), varint(len(i.script_sig)), i.script_sig, i.sequence.to_bytes(4, "little")]
        parts.append(varint(len(self.outputs)))
        for o in self.outputs:
            parts += [o.value.to_bytes(8, "little"), varint(len(o.script_pubkey)), o.script_pubkey]
        parts.append(self.locktime.to_bytes(4, "little"))
        return b"".join(parts)

    @property
    def txid(self) -> str:
        """Display-order txid."""
        return sha256d(self.serialize())[::-1].hex()

    @classmethod
    def parse(cls, data: bytes) -> Transaction:
        """Parse a legacy transaction; rejects truncation and trailing bytes."""
        r = _Reader(data)
        version = r.uint(4)
        inputs = []
        for _ in range(r.varint()):
            prev = OutPoint.parse(r.take(36))
            script = r.take(r.varint())
            inputs.append(TxIn(prev, script, r.uint(4)))
        outputs = []
        for _ in range(r.varint()):
            value = r.uint(8)
            outputs.append(TxOut(value, r.take(r.varint())))
        locktime = r.uint(4)
        if r.pos != len(data):
            raise InvalidInput("trailing bytes after transaction")
        return cls(version, tuple(inputs), tuple(outputs), locktime)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise InvalidInput("truncated transaction")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def varint(self) -> int:
        first = self.uint(1)
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        value = self.uint(size)
        if value < (0xFD if size == 2 else 1 << (4 * size)):
            raise InvalidInput("non-canonical CompactSize in transaction")
        return value
