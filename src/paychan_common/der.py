"""Strict DER ECDSA signatures (BIP66) with low-S normalisation (spec 4.4)."""

from __future__ import annotations

from .errors import InvalidPayment

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_ORDER = CURVE_ORDER // 2

SIG_FAILED = "signature verification failed"


def der_length(data: bytes) -> int:
    """Total length of the DER signature at the start of data (2 + byte[1]); spec 5.1."""
    if len(data) < 2 or data[0] != 0x30:
        raise InvalidPayment(SIG_FAILED + ": not a DER signature", code="bad_signature")
    return 2 + data[1]


def _check_int(data: bytes, what: str) -> None:
    if not data:
        raise InvalidPayment(f"{SIG_FAILED}: empty {what}", code="bad_signature")
    if data[0] & 0x80:
        raise InvalidPayment(f"{SIG_FAILED}: negative {what}", code="bad_signature")
    if len(data) > 1 and data[0] == 0 and not data[1] & 0x80:
        raise InvalidPayment(f"{SIG_FAILED}: non-minimal {what}", code="bad_signature")


def parse_der(sig: bytes) -> tuple[int, int]:
    """Parse a strict-DER signature (BIP66 IsValidSignatureEncoding without the hashtype byte)."""
    n = len(sig)
    if n < 8 or n > 72:
        raise InvalidPayment(f"{SIG_FAILED}: bad DER length", code="bad_signature")
    if sig[0] != 0x30 or sig[1] != n - 2:
        raise InvalidPayment(f"{SIG_FAILED}: bad DER header", code="bad_signature")
    rlen = sig[3]
    if sig[2] != 0x02 or 5 + rlen >= n:
        raise InvalidPayment(f"{SIG_FAILED}: bad DER R", code="bad_signature")
    slen = sig[5 + rlen]
    if sig[4 + rlen] != 0x02 or rlen + slen + 6 != n:
        raise InvalidPayment(f"{SIG_FAILED}: bad DER S", code="bad_signature")
    r = sig[4 : 4 + rlen]
    s = sig[6 + rlen :]
    _check_int(r, "R")
    _check_int(s, "S")
    ri = int.from_bytes(r, "big")
    si = int.from_bytes(s, "big")
    if not 0 < ri < CURVE_ORDER or not 0 < si < CURVE_ORDER:
        raise InvalidPayment(f"{SIG_FAILED}: R or S out of range", code="bad_signature")
    return ri, si


def _der_int(v: int) -> bytes:
    b = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def encode_der(r: int, s: int) -> bytes:
    """Canonical DER of (r, s)."""
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def normalize_der(sig: bytes) -> bytes:
    """Strict-parse a DER signature and return its low-S form (s -> n - s when high)."""
    r, s = parse_der(sig)
    if s > HALF_ORDER:
        return encode_der(r, CURVE_ORDER - s)
    return sig
