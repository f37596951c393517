"""Base58Check encoding (spec 2.2)."""

from __future__ import annotations

from .errors import InvalidInput
from .hashing import sha256d

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Plain Base58 of bytes (leading zero bytes become '1')."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Plain Base58 to bytes."""
    n = 0
    for c in text:
        idx = _INDEX.get(c)
        if idx is None:
            raise InvalidInput(f"invalid Base58 character {c!r}")
        n = n * 58 + idx
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def b58check_encode(version: int, payload: bytes) -> str:
    """Base58Check(version || payload || checksum)."""
    raw = bytes([version]) + payload
    return b58encode(raw + sha256d(raw)[:4])


def b58check_decode(text: str) -> tuple[int, bytes]:
    """Decode Base58Check into (version, payload); checksum verified."""
    if not text or len(text) > 64:
        raise InvalidInput("invalid Base58Check string length")
    raw = b58decode(text)
    if len(raw) < 5:
        raise InvalidInput("Base58Check string too short")
    body, check = raw[:-4], raw[-4:]
    if sha256d(body)[:4] != check:
        raise InvalidInput("Base58Check checksum mismatch")
    return body[0], body[1:]
