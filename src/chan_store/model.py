"""Values exchanged with ChanStore (by the core, the HTTP app and the client), and its two rich errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from chan_store.storage import CommitStats
from paychan_common.errors import ChannelExists, Conflict, InvalidInput, PaychanError
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = [
    "MAX_LIST_LIMIT",
    "MAX_PAYMENTS",
    "MAX_SIGNATURE_BYTES",
    "MAX_TIME",
    "ChannelExistsAt",
    "ChannelPage",
    "PaymentApplied",
    "PaymentItem",
    "PaymentResult",
    "StateConflict",
    "StoreStats",
    "check_count",
    "state_digest",
]

MAX_PAYMENTS = 10_000
"""Most payment items in one `apply_payments` call."""
MAX_LIST_LIMIT = 1000
"""Most states in one `list` page."""
MAX_SIGNATURE_BYTES = 80
"""A DER signature is at most 72 bytes; a little slack, still bounded."""
MAX_TIME = 2**63 - 1
"""Times are stored as signed 64-bit integers."""
_MAX_U64 = 2**64 - 1


def state_digest(state: ChannelState) -> bytes:
    """SHA256 of the serialized state: the `expected` value of a compare-and-set."""
    return hashlib.sha256(state.serialize()).digest()


def check_count(value: object, what: str, maximum: int) -> int:
    """An integer in [0, maximum], refusing bool and float; InvalidInput naming `what` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer")
    if not 0 <= value <= maximum:
        raise InvalidInput(f"{what} must be between 0 and {maximum}")
    return value


@dataclass(frozen=True, slots=True)
class PaymentItem:
    """One payment for ChanStore to apply: the channel's new change value and the signature for it."""

    outpoint: OutPoint
    change_value: int
    der: bytes
    sighash: int
    now: int | None = None
    """Time of this payment; None means the `now` of the call that carries it."""

    def __post_init__(self) -> None:
        if not isinstance(self.outpoint, OutPoint):
            raise InvalidInput("outpoint must be an OutPoint")
        check_count(self.change_value, "change_value", _MAX_U64)
        if type(self.der) is not bytes or not 0 < len(self.der) <= MAX_SIGNATURE_BYTES:
            raise InvalidInput(f"signature must be 1 to {MAX_SIGNATURE_BYTES} bytes")
        check_count(self.sighash, "sighash", 0xFF)
        if self.now is not None:
            check_count(self.now, "now", MAX_TIME)


@dataclass(frozen=True, slots=True)
class PaymentApplied:
    """A payment ChanStore stored durably."""

    value_received: int
    change_value: int
    status: Status


PaymentResult = PaymentApplied | PaychanError
"""Per-item outcome of `apply_payments`: the applied payment, or the typed error of that item."""


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """One page of `list`: the states, and the cursor of the next page (None on the last page)."""

    states: tuple[ChannelState, ...]
    next: OutPoint | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """`GET /stats`: channels by status, what memory holds, and the storage's commit counters."""

    counts: dict[str, int]
    memory: dict[str, int]
    storage: CommitStats


class ChannelExistsAt(ChannelExists):
    """ChannelExists that names the existing channel (spec 6.5, 7.2 step 4: 409 + Location)."""

    def __init__(self, message: str, existing_outpoint: OutPoint | None, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.existing_outpoint = existing_outpoint


class StateConflict(Conflict):
    """Conflict of a compare-and-set, carrying the channel's current state when known."""

    def __init__(self, message: str, current: ChannelState | None, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.current = current
