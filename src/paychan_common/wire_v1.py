"""The v1 binary payment payload: change_value u64 LE ‖ DER ‖ sighash byte, base64url (spec 5.1)."""

from __future__ import annotations

import base64
import binascii
import re

from .amount import check_amount
from .channel import ClientSignature
from .der import der_length
from .errors import InvalidInput, InvalidPayment
from .payment import Payment

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
MAX_PAYLOAD_CHARS = 200


def encode_v1_payload(change_value: int, der: bytes, sighash: int, *, padded: bool = False) -> str:
    """Serialize a v1 payment payload (unpadded base64url, as the JS client sends)."""
    raw = change_value.to_bytes(8, "little") + der + bytes([sighash])
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def decode_v1_bytes(text: str) -> bytes:
    """base64url (padded or not) to bytes; the standard alphabet's '+' and '/' are refused."""
    if not isinstance(text, str) or not text:
        raise InvalidInput("missing payment payload")
    if len(text) > MAX_PAYLOAD_CHARS or not _B64URL.fullmatch(text):
        raise InvalidInput("payment payload is not base64url")
    body = text.rstrip("=")
    if len(body) % 4 == 1:
        raise InvalidInput("payment payload has an invalid base64url length")
    if "=" in text and len(text) % 4:
        raise InvalidInput("payment payload has invalid base64url padding")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput("payment payload is not base64url") from None


def parse_v1_payload(text: str) -> Payment:
    """Decode and strictly parse a v1 payload: len == 8 + der_len + 1."""
    raw = decode_v1_bytes(text)
    if len(raw) < 8 + 2 + 1:
        raise InvalidPayment("payment payload too short", code="bad_payload")
    change = check_amount(int.from_bytes(raw[:8], "little"), "change_value")
    n = der_length(raw[8:])
    if len(raw) != 8 + n + 1:
        raise InvalidPayment("payment payload length does not match its signature", code="bad_payload")
    sig = ClientSignature.from_parts(raw[8 : 8 + n], raw[8 + n])
    return Payment(change_value=change, signature=sig)
