"""Channel parameters, funding, client signatures and the payment verifier (spec 3, 4, 9)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import coincurve

from .address import Address
from .der import SIG_FAILED, der_length, normalize_der
from .errors import InvalidInput, InvalidPayment
from .hashing import hash160, sha256
from .keys import PrivateKey, PublicKey
from .network import Network
from .script import channel_redeem_script, check_exp_time
from .sighash import NONE_ACP, SINGLE_ACP, PaymentSighashTemplate
from .tx import OutPoint, Transaction, TxIn, TxOut

DEBUG_FUNDING_VALUE = 12_345_678_900_000
_HEX = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """(client key, server key, expiry) and what they determine: redeem script, P2SH address."""

    client_pubkey: PublicKey
    server_pubkey: PublicKey
    exp_time: int
    network: Network

    def __post_init__(self) -> None:
        check_exp_time(self.exp_time)

    @property
    def redeem_script(self) -> bytes:
        """The channel redeem script (spec 3.1)."""
        return channel_redeem_script(self.server_pubkey.data, self.client_pubkey.data, self.exp_time)

    @property
    def funding_address(self) -> Address:
        """P2SH address of the redeem script (spec 3.3)."""
        return Address.p2sh(hash160(self.redeem_script), self.network)


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding output as found on chain (or derived in debug mode)."""

    outpoint: OutPoint
    value: int
    confirmations: int
    script_pubkey: bytes


def debug_funding(client_pubkey: PublicKey, exp_time: int, funding_script: bytes) -> Funding:
    """Deterministic fake funding (spec 9): txid SHA256(pk) internal, vout exp%7, 12345678900000 sat."""
    return Funding(OutPoint(sha256(client_pubkey.data), exp_time % 7), DEBUG_FUNDING_VALUE, 0, funding_script)


@dataclass(frozen=True, slots=True)
class ClientSignature:
    """A client's payment signature: strict DER (low-S normalised) and its sighash byte."""

    der: bytes
    sighash: int

    @classmethod
    def from_parts(cls, der: bytes, sighash: int) -> ClientSignature:
        """Validate DER strictly, normalise S, check the sighash is 0x83 or 0x82 (spec 4.2, 4.4)."""
        if sighash not in (SINGLE_ACP, NONE_ACP):
            raise InvalidPayment(f"{SIG_FAILED}: unsupported sighash type 0x{sighash:02x}", code="bad_sighash")
        return cls(normalize_der(der), sighash)

    @classmethod
    def from_script_sig(cls, data: bytes) -> ClientSignature:
        """Parse DER followed by exactly one sighash byte."""
        n = der_length(data)
        if len(data) != n + 1:
            raise InvalidPayment(f"{SIG_FAILED}: signature must be DER plus one sighash byte",
                                 code="bad_signature")
        return cls.from_parts(data[:n], data[n])

    @property
    def script_sig_push(self) -> bytes:
        """DER ‖ sighash byte, as pushed in the settlement scriptSig."""
        return self.der + bytes([self.sighash])

    def secret(self) -> bytes:
        """The v2.3.0 channel secret: SHA256(DER ‖ sighash byte) of the opening payment (spec 6.4)."""
        return sha256(self.script_sig_push)


class PaymentVerifier:
    """Verifies client signatures for one channel; static parts (key, sighash prefix) built once."""

    __slots__ = ("_key", "_template", "outpoint", "redeem_script")

    def __init__(self, client_pubkey: PublicKey, outpoint: OutPoint, redeem_script: bytes) -> None:
        self._key = coincurve.PublicKey(client_pubkey.data)
        self._template = PaymentSighashTemplate.build(outpoint.serialize(), redeem_script)
        self.outpoint = outpoint
        self.redeem_script = redeem_script

    def digest(self, change_value: int, change_script: bytes, sighash: int) -> bytes:
        """The digest the client signs (spec 4.3)."""
        if sighash == SINGLE_ACP:
            return self._template.digest_single(change_value, change_script)
        if sighash == NONE_ACP:
            return self._template.digest_none()
        raise InvalidPayment(f"{SIG_FAILED}: unsupported sighash type 0x{sighash:02x}", code="bad_sighash")

    def verify(self, sig: ClientSignature, change_value: int, change_script: bytes) -> None:
        """Raise InvalidPayment unless sig signs this change output."""
        digest = self.digest(change_value, change_script, sig.sighash)
        try:
            ok = self._key.verify(sig.der, digest, hasher=None)
        except ValueError:
            ok = False
        if not ok:
            raise InvalidPayment(SIG_FAILED, code="bad_signature")


def payment_transaction(outpoint: OutPoint, change_value: int, change_script: bytes) -> Transaction:
    """The unsigned 1-in/1-out payment transaction (spec 4.1)."""
    return Transaction(1, (TxIn(outpoint, b"", 0xFFFFFFFF),), (TxOut(change_value, change_script),), 0)


def sign_payment(secret: bytes, outpoint: OutPoint, redeem_script: bytes, change_value: int,
                 change_script: bytes, sighash: int = SINGLE_ACP) -> ClientSignature:
    """Client side: sign a payment (0x83, or 0x82 for giving away everything)."""
    key = PrivateKey(secret)
    verifier = PaymentVerifier(key.public_key, outpoint, redeem_script)
    der = key.sign_digest(verifier.digest(change_value, change_script, sighash))
    return ClientSignature(der, sighash)


def parse_hex(text: object, what: str, max_len: int = 4096) -> bytes:
    """Decode a hex string field (upper or lower case), with a clear error."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a hex string")
    if len(text) > max_len or len(text) % 2:
        raise InvalidInput(f"{what} has an invalid hex length")
    if not _HEX.fullmatch(text):
        raise InvalidInput(f"{what} is not valid hex")
    return bytes.fromhex(text)
