"""secp256k1 keys (spec 2.1): compressed public keys only, validated on the curve."""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from .errors import InvalidInput
from .hashing import hash160


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A compressed SEC1 secp256k1 public key (33 bytes), known to be on the curve."""

    data: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """Validate a 33-byte compressed key."""
        if len(data) != 33 or data[0] not in (2, 3):
            raise InvalidInput("public key must be 33-byte compressed SEC1 (02/03 prefix)")
        try:
            coincurve.PublicKey(data)
        except ValueError:
            raise InvalidInput("public key is not a point on secp256k1") from None
        return cls(data)

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        """Validate 66 hex characters of a compressed key."""
        if not isinstance(text, str) or len(text) != 66:
            raise InvalidInput("public key must be 66 hex characters (compressed)")
        if not all(c in "0123456789abcdefABCDEF" for c in text):
            raise InvalidInput("public key is not valid hex")
        return cls.from_bytes(bytes.fromhex(text))

    @property
    def hex(self) -> str:
        """Lowercase hex."""
        return self.data.hex()

    def hash160(self) -> bytes:
        """HASH160 of the key (P2PKH payload)."""
        return hash160(self.data)


@dataclass(frozen=True, slots=True, repr=False)
class PrivateKey:
    """A secp256k1 secret key; never printed."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise InvalidInput("private key must be 32 bytes")
        try:
            coincurve.PrivateKey(self.secret)
        except ValueError:
            raise InvalidInput("private key out of range") from None

    def __repr__(self) -> str:
        return "PrivateKey(<secret>)"

    @property
    def public_key(self) -> PublicKey:
        """The compressed public key."""
        return PublicKey(coincurve.PrivateKey(self.secret).public_key.format(compressed=True))

    def sign_digest(self, digest: bytes) -> bytes:
        """RFC 6979 low-S DER ECDSA signature of a 32-byte digest (no further hashing)."""
        return coincurve.PrivateKey(self.secret).sign(digest, hasher=None)
