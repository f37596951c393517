"""JSON encoding of ChanStore's HTTP API, shared by the app (strict parsing) and the client.

Binary fields travel as hex: a state is `ChannelState.serialize()`, an outpoint `OutPoint.serialize()`
(72 hex characters), a client key 66. Integers are JSON integers: floats, booleans, negatives refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chan_store.model import (
    MAX_LIST_LIMIT,
    MAX_PAYMENTS,
    MAX_SIGNATURE_BYTES,
    MAX_TIME,
    PaymentApplied,
    PaymentItem,
    PaymentResult,
    check_count,
)
from paychan_common.channel import parse_hex
from paychan_common.errors import InvalidInput, PaychanError, error_from_json
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_STATE_BYTES",
    "ListQuery",
    "error_json",
    "outpoint_hex",
    "parse_cas_body",
    "parse_outpoint",
    "parse_payment_result",
    "parse_payments_request",
    "parse_state",
    "parse_status",
    "payment_item_json",
    "payment_result_json",
    "require_object",
    "state_hex",
    "states_hex",
]

MAX_BODY_BYTES = 1 << 20
"""Largest request body the app reads (1 MiB)."""
MAX_STATE_BYTES = 1 << 16
"""Largest serialized channel state accepted."""
_STATUSES = {status.label: status for status in Status}


def require_object(body: object, what: str = "request body") -> dict[str, Any]:
    """A JSON object, else InvalidInput."""
    if not isinstance(body, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return body


def outpoint_hex(outpoint: OutPoint) -> str:
    """72 hex characters of the serialized outpoint."""
    return outpoint.serialize().hex()


def parse_outpoint(text: object, what: str = "outpoint") -> OutPoint:
    """An outpoint from 72 hex characters."""
    raw = parse_hex(text, what, max_len=72)
    if len(raw) != 36:
        raise InvalidInput(f"{what} must be 36 bytes (72 hex characters)")
    return OutPoint.parse(raw)


def state_hex(state: ChannelState) -> str:
    """Hex of the serialized state."""
    return state.serialize().hex()


def parse_state(text: object, what: str = "state") -> ChannelState:
    """A channel state from the hex of its serialization."""
    return ChannelState.parse(parse_hex(text, what, max_len=2 * MAX_STATE_BYTES))


def parse_cas_body(body: object) -> tuple[bytes, ChannelState]:
    """(expected SHA256, new state) of a `POST /channels/{outpoint}/cas` body."""
    fields = require_object(body)
    expected_hex = fields.get("expected")
    if not isinstance(expected_hex, str) or len(expected_hex) != 64:
        raise InvalidInput("expected must be 64 hex characters (SHA256 of the current state)")
    try:
        expected = bytes.fromhex(expected_hex)
    except ValueError:
        raise InvalidInput("expected is not valid hex") from None
    return expected, parse_state(fields.get("state"))


def parse_status(text: object) -> Status:
    """A status from its label (open, closing, closed)."""
    status = _STATUSES.get(text) if isinstance(text, str) else None
    if status is None:
        raise InvalidInput("status must be one of: " + ", ".join(_STATUSES))
    return status


def error_json(err: PaychanError, wire_class: str | None = None) -> dict[str, str]:
    """The {"class","code","message"} of an error; `wire_class` names a base class the peer knows."""
    return {"class": wire_class or type(err).__name__, "code": err.code, "message": err.message}


def payment_item_json(item: PaymentItem) -> dict[str, Any]:
    """One element of `POST /payments`'s "payments"."""
    body: dict[str, Any] = {"outpoint": outpoint_hex(item.outpoint), "change_value": item.change_value,
                            "signature": item.der.hex(), "sighash": item.sighash}
    if item.now is not None:
        body["now"] = item.now
    return body


def _payment_item(obj: object, index: int) -> PaymentItem:
    what = f"payments[{index}]"
    fields = require_object(obj, what)
    unknown = set(fields) - {"outpoint", "change_value", "signature", "sighash", "now"}
    if unknown:
        raise InvalidInput(f"{what} has unknown fields: {', '.join(sorted(unknown))}")
    now = fields.get("now")
    return PaymentItem(
        outpoint=parse_outpoint(fields.get("outpoint"), f"{what}.outpoint"),
        change_value=check_count(fields.get("change_value"), f"{what}.change_value", 2**64 - 1),
        der=parse_hex(fields.get("signature"), f"{what}.signature", max_len=2 * MAX_SIGNATURE_BYTES),
        sighash=check_count(fields.get("sighash"), f"{what}.sighash", 0xFF),
        now=None if now is None else check_count(now, f"{what}.now", MAX_TIME),
    )


def parse_payments_request(body: object) -> tuple[int, list[PaymentItem]]:
    """(now, items) of a `POST /payments` body."""
    fields = require_object(body)
    now = check_count(fields.get("now"), "now", MAX_TIME)
    payments = fields.get("payments")
    if not isinstance(payments, list):
        raise InvalidInput("payments must be a list")
    if len(payments) > MAX_PAYMENTS:
        raise InvalidInput(f"too many payments in one request (limit {MAX_PAYMENTS})", code="too_many_items")
    return now, [_payment_item(obj, i) for i, obj in enumerate(payments)]


def payment_result_json(result: PaymentResult) -> dict[str, Any]:
    """One element of `POST /payments`'s "results"."""
    if isinstance(result, PaymentApplied):
        return {"ok": True, "value_received": result.value_received, "change_value": result.change_value,
                "status": result.status.label}
    return {"ok": False, "error": error_json(result)}


def parse_payment_result(obj: object) -> PaymentResult:
    """Inverse of payment_result_json (client side)."""
    fields = require_object(obj, "payment result")
    if fields.get("ok") is True:
        return PaymentApplied(
            value_received=check_count(fields.get("value_received"), "value_received", 2**64 - 1),
            change_value=check_count(fields.get("change_value"), "change_value", 2**64 - 1),
            status=parse_status(fields.get("status")),
        )
    err = require_object(fields.get("error"), "payment error")
    return error_from_json(str(err.get("class")), str(err.get("code")), str(err.get("message")))


def _int_param(text: str, what: str, maximum: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise InvalidInput(f"{what} must be a non-negative decimal integer")
    return check_count(int(text), what, maximum)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The query of `GET /channels`."""

    status: Status | None = None
    client_pubkey: bytes | None = None
    expiring_before: int | None = None
    after: OutPoint | None = None
    limit: int = 100

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ListQuery:
        """Strictly parse the query parameters; unknown or repeated ones are refused."""
        allowed = {"status", "client_pubkey", "expiring_before", "after", "limit"}
        unknown = set(query) - allowed
        if unknown:
            raise InvalidInput(f"unknown query parameters: {', '.join(sorted(unknown))}")
        if len(query) != len(set(query)):
            raise InvalidInput("repeated query parameter")
        pubkey = query.get("client_pubkey")
        client_pubkey = None if pubkey is None else parse_hex(pubkey, "client_pubkey", max_len=66)
        if client_pubkey is not None and len(client_pubkey) != 33:
            raise InvalidInput("client_pubkey must be 33 bytes (66 hex characters)")
        expiring = query.get("expiring_before")
        after = query.get("after")
        limit = _int_param(query.get("limit", "100"), "limit", MAX_LIST_LIMIT)
        if limit == 0:
            raise InvalidInput("limit must be at least 1")
        return cls(
            status=None if "status" not in query else parse_status(query["status"]),
            client_pubkey=client_pubkey,
            expiring_before=None if expiring is None else _int_param(expiring, "expiring_before", MAX_TIME),
            after=None if after is None else parse_outpoint(after, "after"),
            limit=limit,
        )

    def params(self) -> dict[str, str]:
        """The query parameters (client side)."""
        out = {"limit": str(self.limit)}
        if self.status is not None:
            out["status"] = self.status.label
        if self.client_pubkey is not None:
            out["client_pubkey"] = self.client_pubkey.hex()
        if self.expiring_before is not None:
            out["expiring_before"] = str(self.expiring_before)
        if self.after is not None:
            out["after"] = outpoint_hex(self.after)
        return out


def states_hex(states: Sequence[ChannelState]) -> list[str]:
    """Hex of each state."""
    return [state_hex(state) for state in states]
