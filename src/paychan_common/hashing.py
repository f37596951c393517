"""Bitcoin hash functions."""

from __future__ import annotations

import hashlib


def sha256(data: bytes) -> bytes:
    """Single SHA256."""
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    """Double SHA256 (txids, sighashes, Base58Check)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)) (P2PKH/P2SH payloads)."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()
