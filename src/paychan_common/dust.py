"""Relay dust thresholds of output scripts, computed as Bitcoin Core's policy does (GetDustThreshold).

An output is dust when its value is below what spending it would cost at the dust relay fee (3 sat/vB by
default): the output's own serialized size plus the size of a typical input spending it (148 bytes for
legacy scripts, 67 vbytes for witness programs). A transaction with a dust output is non-standard, so a
settlement carrying one would not relay (spec 8.1, 8.3)."""

from __future__ import annotations

from .address import p2pkh_script, p2sh_script
from .tx import varint

DUST_RELAY_FEE_SAT_PER_KVB = 3000  # Bitcoin Core's DUST_RELAY_TX_FEE
_LEGACY_INPUT = 32 + 4 + 1 + 107 + 4  # outpoint, scriptSig length, a P2PKH scriptSig, nSequence
_WITNESS_INPUT = 32 + 4 + 1 + 107 // 4 + 4  # the same with the witness discounted (BIP141)


def is_witness_program(script: bytes) -> bool:
    """OP_0..OP_16 followed by one direct push of 2 to 40 bytes (BIP141)."""
    if not 4 <= len(script) <= 42:
        return False
    version_ok = script[0] == 0 or 0x51 <= script[0] <= 0x60
    return version_ok and script[1] + 2 == len(script)


def dust_threshold(script_pubkey: bytes, relay_fee_sat_per_kvb: int = DUST_RELAY_FEE_SAT_PER_KVB) -> int:
    """The smallest non-dust value of an output paying script_pubkey (Bitcoin Core policy.cpp)."""
    size = 8 + len(varint(len(script_pubkey))) + len(script_pubkey)
    size += _WITNESS_INPUT if is_witness_program(script_pubkey) else _LEGACY_INPUT
    return -(-relay_fee_sat_per_kvb * size // 1000)  # CFeeRate::GetFee, rounded up


# The change output types the server accepts (spec 2.2 and the project decisions), with a sample script each.
CHANGE_SCRIPT_SAMPLES: dict[str, bytes] = {
    "P2PKH": p2pkh_script(bytes(20)),
    "P2SH": p2sh_script(bytes(20)),
    "P2WPKH": b"\x00\x14" + bytes(20),
    "P2WSH": b"\x00\x20" + bytes(32),
    "P2TR": b"\x51\x20" + bytes(32),
}


def change_dust_thresholds(relay_fee_sat_per_kvb: int = DUST_RELAY_FEE_SAT_PER_KVB) -> dict[str, int]:
    """Dust threshold of every accepted change script type: P2PKH 546, P2SH 540, P2WPKH 294, P2WSH/P2TR 330."""
    return {name: dust_threshold(script, relay_fee_sat_per_kvb) for name, script in CHANGE_SCRIPT_SAMPLES.items()}
