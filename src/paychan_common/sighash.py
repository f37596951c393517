"""Legacy signature hashes (spec 4.3): a general one for our one-input transactions, and a
per-channel template that makes the payment digest one hash of a short byte concatenation."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput
from .hashing import sha256d
from .tx import Transaction, TxIn, TxOut, varint

SIGHASH_ALL = 0x01
SIGHASH_NONE = 0x02
SIGHASH_SINGLE = 0x03
SIGHASH_ANYONECANPAY = 0x80
SINGLE_ACP = SIGHASH_SINGLE | SIGHASH_ANYONECANPAY  # 0x83
NONE_ACP = SIGHASH_NONE | SIGHASH_ANYONECANPAY  # 0x82


def legacy_sighash(tx: Transaction, index: int, script_code: bytes, hashtype: int) -> bytes:
    """Bitcoin's legacy SignatureHash (no OP_CODESEPARATOR in our scripts)."""
    if not 0 <= index < len(tx.inputs):
        raise InvalidInput("sighash input index out of range")
    base = hashtype & 0x1F
    if base == SIGHASH_SINGLE and index >= len(tx.outputs):
        return (1).to_bytes(32, "little")
    inputs: list[TxIn] = []
    for i, txin in enumerate(tx.inputs):
        if i == index:
            inputs.append(TxIn(txin.prevout, script_code, txin.sequence))
        elif not hashtype & SIGHASH_ANYONECANPAY:
            seq = 0 if base in (SIGHASH_NONE, SIGHASH_SINGLE) else txin.sequence
            inputs.append(TxIn(txin.prevout, b"", seq))
    if hashtype & SIGHASH_ANYONECANPAY:
        inputs = [TxIn(tx.inputs[index].prevout, script_code, tx.inputs[index].sequence)]
    outputs: tuple[TxOut, ...]
    if base == SIGHASH_NONE:
        outputs = ()
    elif base == SIGHASH_SINGLE:
        outputs = (*tuple(TxOut(18446744073709551615, b"") for _ in range(index)), tx.outputs[index])
    else:
        outputs = tx.outputs
    stripped = Transaction(tx.version, tuple(inputs), outputs, tx.locktime)
    return sha256d(stripped.serialize() + (hashtype & 0xFFFFFFFF).to_bytes(4, "little"))


@dataclass(frozen=True, slots=True)
class PaymentSighashTemplate:
    """Preimage prefix of a channel's payment transaction (nVersion..nSequence), built once."""

    prefix: bytes

    @classmethod
    def build(cls, outpoint_bytes: bytes, redeem_script: bytes) -> PaymentSighashTemplate:
        """Prefix for one channel: version, 1 input, outpoint, scriptCode, sequence (spec 4.3)."""
        return cls(b"\x01\x00\x00\x00\x01" + outpoint_bytes + varint(len(redeem_script)) + redeem_script
                   + b"\xff\xff\xff\xff")

    def digest_single(self, change_value: int, change_script: bytes) -> bytes:
        """Digest for SIGHASH_SINGLE|ANYONECANPAY (0x83) with this change output."""
        return sha256d(self.prefix + b"\x01" + change_value.to_bytes(8, "little") + varint(len(change_script))
                       + change_script + b"\x00\x00\x00\x00\x83\x00\x00\x00")

    def digest_none(self) -> bytes:
        """Digest for SIGHASH_NONE|ANYONECANPAY (0x82): outputs not hashed."""
        return sha256d(self.prefix + b"\x00\x00\x00\x00\x00\x82\x00\x00\x00")
