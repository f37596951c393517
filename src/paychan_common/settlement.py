"""Settlement and refund transactions (spec 8): outputs, fees, signatures, scriptSigs."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .channel import ClientSignature
from .errors import InvalidInput
from .keys import PrivateKey
from .script import OP_0, OP_1, push_data
from .sighash import NONE_ACP, SIGHASH_ALL, legacy_sighash
from .tx import OutPoint, Transaction, TxIn, TxOut

FIXED_SETTLEMENT_SIZE = 348  # the original's size estimate (spec 8.3)
_MAX_SERVER_SIG_PUSH = 73  # push opcode + 71-byte low-S DER + sighash byte
REFUND_SEQUENCE = 0xFFFFFFFE
#: The largest settlement any channel can have (spec 8.1): 81-byte redeem script, two 73-byte signature
#: pushes, two outputs with 34-byte scripts (P2WSH/P2TR, the longest accepted addresses).
MAX_SETTLEMENT_SIZE = 4 + 1 + 36 + 1 + (73 + 73 + 1 + 2 + 81) + 4 + 1 + 2 * (8 + 1 + 34) + 4


class FeeMode(enum.Enum):
    """How the settlement fee is computed."""

    FIXED = "fixed"  # FIXED_SETTLEMENT_SIZE x rate (the original)
    RATE = "rate"  # rate x the real size of the settlement transaction


@dataclass(frozen=True, slots=True)
class SettlementInput:
    """What a settlement is built from: the channel's funding and its latest client payment."""

    outpoint: OutPoint
    funding_value: int
    redeem_script: bytes
    change_value: int
    change_script: bytes
    client_signature: ClientSignature


def _outputs(s: SettlementInput, destination: bytes, server_value: int, dust_limit: int) -> tuple[TxOut, ...]:
    outs: list[TxOut] = []
    if s.client_signature.sighash != NONE_ACP:
        outs.append(TxOut(s.change_value, s.change_script))
    if server_value >= max(dust_limit, 1):
        outs.append(TxOut(server_value, destination))
    if not outs:
        raise InvalidInput("settlement would have no output: channel value below fee plus dust", code="no_output")
    return tuple(outs)


def _script_sig(client_push: bytes, server_push: bytes, redeem_script: bytes) -> bytes:
    """<client sig> <server sig> OP_1 <redeem script> (spec 8.2)."""
    return push_data(client_push) + push_data(server_push) + bytes([OP_1]) + push_data(redeem_script)


def signed_size_bound(s: SettlementInput, tx: Transaction) -> int:
    """Upper bound on the size of the unsigned settlement tx once signed (server signature at its longest)."""
    placeholder = b"\0" * (_MAX_SERVER_SIG_PUSH - 1)
    sig = _script_sig(s.client_signature.script_sig_push, placeholder, s.redeem_script)
    return len(Transaction(tx.version, (TxIn(s.outpoint, sig),), tx.outputs, tx.locktime).serialize())


def settlement_size(s: SettlementInput, destination: bytes, dust_limit: int) -> int:
    """Upper bound on the signed settlement's size with its server output (spec 8.1)."""
    outs = _outputs(s, destination, dust_limit + 1, dust_limit)
    return signed_size_bound(s, Transaction(1, (TxIn(s.outpoint, b""),), outs, 0))


def settlement_fee(s: SettlementInput, destination: bytes, dust_limit: int, rate: int, mode: FeeMode,
                   min_fee: int = 0) -> int:
    """Fee: rate x size (fixed 348 or real), at least min_fee (v2.3.0's closing payment value)."""
    size = FIXED_SETTLEMENT_SIZE if mode is FeeMode.FIXED else settlement_size(s, destination, dust_limit)
    return max(rate * size, min_fee)


def unsigned_settlement(s: SettlementInput, destination: bytes, fee: int, dust_limit: int) -> Transaction:
    """Latest payment tx plus the server output (funding - change - fee; dropped below dust)."""
    server_value = s.funding_value - s.change_value - fee
    return Transaction(1, (TxIn(s.outpoint, b""),), _outputs(s, destination, server_value, dust_limit), 0)


def sign_settlement(s: SettlementInput, tx: Transaction, key: PrivateKey) -> Transaction:
    """Add the server's SIGHASH_ALL signature and the two-signature scriptSig (spec 8.1, 8.2)."""
    digest = legacy_sighash(tx, 0, s.redeem_script, SIGHASH_ALL)
    server_push = key.sign_digest(digest) + bytes([SIGHASH_ALL])
    script_sig = _script_sig(s.client_signature.script_sig_push, server_push, s.redeem_script)
    txin = TxIn(tx.inputs[0].prevout, script_sig, tx.inputs[0].sequence)
    return Transaction(tx.version, (txin,), tx.outputs, tx.locktime)


def build_refund(outpoint: OutPoint, funding_value: int, redeem_script: bytes, exp_time: int,
                 refund_script: bytes, fee: int, key: PrivateKey) -> Transaction:
    """The client's refund after expiry (spec 8.5): nLockTime = exp_time, sequence 0xfffffffe."""
    if fee < 0 or fee >= funding_value:
        raise InvalidInput("refund fee must be below the funding value")
    unsigned = Transaction(1, (TxIn(outpoint, b"", REFUND_SEQUENCE),),
                           (TxOut(funding_value - fee, refund_script),), exp_time)
    digest = legacy_sighash(unsigned, 0, redeem_script, SIGHASH_ALL)
    sig = key.sign_digest(digest) + bytes([SIGHASH_ALL])
    script_sig = push_data(sig) + bytes([OP_0]) + push_data(redeem_script)
    return Transaction(1, (TxIn(outpoint, script_sig, REFUND_SEQUENCE),), unsigned.outputs, exp_time)


def refund_fee_for_rate(outpoint: OutPoint, funding_value: int, redeem_script: bytes, exp_time: int,
                        refund_script: bytes, rate: int, key: PrivateKey) -> int:
    """fee = rate x size of the refund built with fee 0 (the JS helper's rule, spec 8.5)."""
    probe = build_refund(outpoint, funding_value, redeem_script, exp_time, refund_script, 0, key)
    return rate * len(probe.serialize())
