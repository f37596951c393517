"""The payment header: `Authorization: Paychan <txid>:<vout>:<secret> <change_value>:<signature_data>`.

The channel is a v2.3.0 channel (its funding outpoint and the secret of its opening payment, spec 6.4);
the payment is the v2.3.0 compact payment (spec 5.3): the new change value and DER ‖ sighash in hex.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from paychan_common.errors import InvalidInput
from paychan_common.payment import Payment
from paychan_common.tx import OutPoint
from paychan_common.wire_v2 import parse_v2_payment
from paychan_server.api.params import parse_outpoint, parse_secret

__all__ = ["SCHEME", "PaymentHeader", "parse_payment_header", "request_key"]

SCHEME = "Paychan"
MAX_HEADER = 600
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True, slots=True)
class PaymentHeader:
    """A channel and a payment on it, as a client put them in its request."""

    outpoint: OutPoint
    secret: bytes
    payment: Payment

    @property
    def channel(self) -> str:
        """`txid:vout` of the channel."""
        return f"{self.outpoint.display_txid}:{self.outpoint.vout}"


def has_payment(authorization: str | None) -> bool:
    """True when the Authorization header uses the Paychan scheme."""
    return authorization is not None and authorization[:len(SCHEME) + 1].lower() == SCHEME.lower() + " "


def parse_payment_header(value: str) -> PaymentHeader:
    """Parse the Paychan Authorization header; InvalidInput (400) saying what is wrong."""
    if len(value) > MAX_HEADER:
        raise InvalidInput("Authorization header too long", code="bad_payment_header")
    parts = value.split()
    if len(parts) != 3 or parts[0].lower() != SCHEME.lower():
        raise InvalidInput("Authorization must be 'Paychan <txid>:<vout>:<secret> <change_value>:<signature>'",
                           code="bad_payment_header")
    channel, pay = parts[1].split(":"), parts[2].split(":")
    if len(channel) != 3 or len(pay) != 2 or not (pay[0].isascii() and pay[0].isdigit()) or len(pay[0]) > 16:
        raise InvalidInput("Authorization must be 'Paychan <txid>:<vout>:<secret> <change_value>:<signature>'",
                           code="bad_payment_header")
    outpoint = parse_outpoint(channel[0], channel[1])
    secret = parse_secret(channel[2])
    payment = parse_v2_payment({"change_value": int(pay[0]), "signature_data": pay[1]})
    return PaymentHeader(outpoint, secret, payment)


def format_payment_header(txid: str, vout: int, secret: str, change_value: int, signature_data: str) -> str:
    """The header value a client sends (inverse of parse_payment_header)."""
    return f"{SCHEME} {txid}:{vout}:{secret} {change_value}:{signature_data}"


def request_key(method: str, target: str, idempotency_key: str | None) -> bytes:
    """The binding of a payment to its request: SHA256(method, target, Idempotency-Key)."""
    if idempotency_key is not None and (len(idempotency_key) > MAX_IDEMPOTENCY_KEY
                                        or not idempotency_key.isprintable()):
        raise InvalidInput(f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} printable characters",
                           code="bad_idempotency_key")
    return hashlib.sha256(b"\0".join([method.encode(), target.encode("utf-8", "surrogateescape"),
                                      (idempotency_key or "").encode()])).digest()
