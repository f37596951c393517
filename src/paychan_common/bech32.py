"""Bech32 (BIP173) and bech32m (BIP350) segwit addresses."""

from __future__ import annotations

from .errors import InvalidInput

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data: list[int] | bytes, frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    ret: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise InvalidInput("invalid bech32 data value")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if pad:
        if bits:
            ret.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise InvalidInput("invalid bech32 padding")
    return ret


def decode_segwit(hrp: str, addr: str) -> tuple[int, bytes]:
    """Decode a segwit address of the given hrp into (witness version, program) (BIP173/350)."""
    if len(addr) > 90 or (addr.lower() != addr and addr.upper() != addr):
        raise InvalidInput("invalid bech32 address")
    addr = addr.lower()
    pos = addr.rfind("1")
    if pos < 1 or pos + 7 > len(addr):
        raise InvalidInput("invalid bech32 address")
    if addr[:pos] != hrp:
        raise InvalidInput(f"address is not for this network (expected prefix {hrp!r})")
    data: list[int] = []
    for c in addr[pos + 1 :]:
        idx = CHARSET.find(c)
        if idx < 0:
            raise InvalidInput(f"invalid bech32 character {c!r}")
        data.append(idx)
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (BECH32_CONST, BECH32M_CONST):
        raise InvalidInput("bech32 checksum mismatch")
    values = data[:-6]
    if not values:
        raise InvalidInput("empty segwit address")
    witver = values[0]
    prog = bytes(_convertbits(values[1:], 5, 8, False))
    if witver > 16 or not 2 <= len(prog) <= 40:
        raise InvalidInput("invalid segwit program")
    if witver == 0:
        if const != BECH32_CONST or len(prog) not in (20, 32):
            raise InvalidInput("invalid segwit v0 address")
    elif const != BECH32M_CONST:
        raise InvalidInput("segwit v1+ address must use bech32m")
    return witver, prog


def encode_segwit(hrp: str, witver: int, prog: bytes) -> str:
    """Encode a segwit address (bech32 for v0, bech32m otherwise)."""
    data = [witver, *_convertbits(prog, 8, 5, True)]
    const = BECH32_CONST if witver == 0 else BECH32M_CONST
    poly = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ const
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)
