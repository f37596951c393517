"""A decoded client payment, independent of the wire format it came in."""

from __future__ import annotations

from dataclasses import dataclass

from .channel import ClientSignature
from .tx import OutPoint


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment as sent by a client; fields absent from a compact/v1 payment are None."""

    change_value: int
    signature: ClientSignature
    outpoint: OutPoint | None = None
    redeem_script: bytes | None = None
    change_address: str | None = None
    application_data: str = ""
