"""ChanStore's internal API, shared by its app (`chan_store.app`) and its clients (`chan_store.client`,
PayChanServer): the values exchanged, the two rich errors, and their JSON encoding.

Nothing outside ChanStore imports its internals: only this module and the client. Binary fields travel as
hex: a state is `ChannelState.serialize()` (the compact binary form the store keeps), an outpoint
`OutPoint.serialize()` (72 hex characters), a client key 66. Integers are JSON integers: floats,
booleans, negatives refused. Routes: see `chan_store.app`.

`POST /payments` also takes a compact binary body (`PAYMENTS_CONTENT_TYPE`) and then answers in binary
(`RESULTS_CONTENT_TYPE`); the JSON form stays accepted. Both formats are versioned, little-endian:

    request  = version(1) = 1 | now: u64 | count: u32 | count x item
    item     = outpoint(36) | change_value: u64 | sighash: u8 | flags: u8 (bit 0: own now) | der_len: u8
               | [now: u64 if flags & 1] | der(der_len)
    answer   = version(1) = 1 | count: u32 | count x result
    result   = 1 | value_received: u64 | change_value: u64 | status: u8                 (applied)
             | 0 | 3 x (len: u16 | UTF-8): error class, code, message                  (refused)

Every field is checked as in the JSON form (the same limits); a malformed body is refused whole with
InvalidInput code `bad_binary` (a JSON 400), before any payment is applied.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from paychan_common.amount import check_amount
from paychan_common.channel import parse_hex
from paychan_common.errors import ChannelExists, Conflict, InvalidInput, PaychanError, error_from_json
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_LIST_LIMIT",
    "MAX_PAYMENTS",
    "MAX_SIGNATURE_BYTES",
    "MAX_STATE_BYTES",
    "MAX_TIME",
    "PAYMENTS_CONTENT_TYPE",
    "RESULTS_CONTENT_TYPE",
    "ChannelExistsAt",
    "ChannelPage",
    "CommitStats",
    "ListQuery",
    "PaymentApplied",
    "PaymentItem",
    "PaymentResult",
    "StateConflict",
    "StoreStats",
    "check_count",
    "check_list_args",
    "check_payments_args",
    "decode_payment_results",
    "decode_payments_request",
    "encode_payment_results",
    "encode_payments_request",
    "error_json",
    "outpoint_hex",
    "page_json",
    "parse_cas_body",
    "parse_outpoint",
    "parse_page",
    "parse_payment_result",
    "parse_payments_request",
    "parse_state",
    "parse_stats",
    "parse_status",
    "payment_item_json",
    "payment_result_json",
    "require_object",
    "state_digest",
    "state_hex",
    "stats_json",
]

MAX_PAYMENTS = 10_000
"""Most payment items in one `apply_payments` call."""
MAX_LIST_LIMIT = 1000
"""Most states in one `list` page."""
MAX_SIGNATURE_BYTES = 80
"""A DER signature is at most 72 bytes; a little slack, still bounded."""
MAX_TIME = 2**63 - 1
"""Times are stored as signed 64-bit integers."""


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


def check_list_args(status: Status | None, client_pubkey: bytes | None, expiring_before: int | None,
                    limit: int) -> None:
    """The arguments of every engine's `list` (the same refusals whichever engine answers)."""
    check_count(limit, "limit", MAX_LIST_LIMIT)
    if limit == 0:
        raise InvalidInput("limit must be at least 1")
    if expiring_before is not None:
        check_count(expiring_before, "expiring_before", MAX_TIME)
        if status is None and client_pubkey is None:
            raise InvalidInput("expiring_before needs status or client_pubkey")
    if client_pubkey is not None and len(client_pubkey) != 33:
        raise InvalidInput("client_pubkey must be 33 bytes")


def check_payments_args(items: Sequence[PaymentItem], now: int) -> None:
    """The arguments of every engine's `apply_payments`."""
    check_count(now, "now", MAX_TIME)
    if len(items) > MAX_PAYMENTS:
        raise InvalidInput(f"too many payments in one call (limit {MAX_PAYMENTS})")


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
        check_amount(self.change_value, "change_value")
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
class CommitStats:
    """Snapshot of an adapter's commit counters, for metrics."""

    commits: int
    """Number of (synced) writes to the engine; one write may carry many batches."""
    writes: int
    """Number of `WriteBatch` commits acknowledged."""
    last_batch_size: int
    """Number of `WriteBatch` commits carried by the latest engine write."""
    max_batch_size: int
    """Largest number of `WriteBatch` commits carried by one engine write."""
    total_sync_seconds: float
    """Time spent in engine writes (including fsync), summed."""
    last_sync_seconds: float
    """Time spent in the latest engine write (including fsync)."""

    @property
    def mean_batch_size(self) -> float:
        """Return the average number of commits per engine write (0.0 before any write)."""
        return self.writes / self.commits if self.commits else 0.0


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
        change_value=check_amount(fields.get("change_value"), f"{what}.change_value"),
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
            value_received=check_amount(fields.get("value_received"), "value_received"),
            change_value=check_amount(fields.get("change_value"), "change_value"),
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


def page_json(page: ChannelPage) -> dict[str, Any]:
    """The `GET /channels` answer: {"states": [hex...], "next": outpoint hex or null}."""
    return {"states": [state_hex(state) for state in page.states],
            "next": None if page.next is None else outpoint_hex(page.next)}


def parse_page(body: object) -> ChannelPage:
    """Inverse of page_json (client side)."""
    fields = require_object(body, "list")
    states = fields.get("states")
    if not isinstance(states, list):
        raise InvalidInput("states must be a list")
    cursor = fields.get("next")
    return ChannelPage(tuple(parse_state(text) for text in states),
                       None if cursor is None else parse_outpoint(cursor, "next"))


def stats_json(stats: StoreStats) -> dict[str, Any]:
    """The `GET /stats` answer (the commit counters with their mean batch size)."""
    storage = asdict(stats.storage) | {"mean_batch_size": stats.storage.mean_batch_size}
    return {"counts": stats.counts, "memory": stats.memory, "storage": storage}


def parse_stats(body: object) -> StoreStats:
    """Inverse of stats_json (client side)."""
    fields = require_object(body, "stats")
    storage = require_object(fields.get("storage"), "stats.storage")
    try:
        counters = {name: storage[name] for name in CommitStats.__dataclass_fields__}
        return StoreStats(counts=dict(fields["counts"]), memory=dict(fields["memory"]),
                          storage=CommitStats(**counters))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed stats: {exc!r}") from None


# --------------------------------------------------------------------------- POST /payments, binary

PAYMENTS_CONTENT_TYPE = "application/x-chanstore-payments"
"""Content type of a binary `POST /payments` body (format in the module docstring)."""
RESULTS_CONTENT_TYPE = "application/x-chanstore-results"
"""Content type of the binary answer to a binary `POST /payments`."""
_BINARY_VERSION = 1
_REQUEST_HEAD = struct.Struct("<BQI")
_ITEM = struct.Struct("<36sQBBB")
_ANSWER_HEAD = struct.Struct("<BI")
_APPLIED = struct.Struct("<BQQB")
_U64 = struct.Struct("<Q")
_U16 = struct.Struct("<H")
_OWN_NOW = 1
_STATUS_BY_VALUE = {status.value: status for status in Status}


def _bad(what: str) -> InvalidInput:
    return InvalidInput(f"malformed binary payments body: {what}", code="bad_binary")


def encode_payments_request(items: Sequence[PaymentItem], now: int) -> bytes:
    """The binary `POST /payments` body; an item whose `now` equals the call's travels without it."""
    parts = [_REQUEST_HEAD.pack(_BINARY_VERSION, now, len(items))]
    for item in items:
        own = item.now is not None and item.now != now
        parts.append(_ITEM.pack(item.outpoint.serialize(), item.change_value, item.sighash,
                                _OWN_NOW if own else 0, len(item.der)))
        if own:
            parts.append(_U64.pack(item.now))
        parts.append(item.der)
    return b"".join(parts)


def decode_payments_request(data: bytes) -> tuple[int, list[PaymentItem]]:
    """(now, items) of a binary `POST /payments` body; InvalidInput (code bad_binary) if malformed."""
    if len(data) < _REQUEST_HEAD.size:
        raise _bad("truncated header")
    version, now, count = _REQUEST_HEAD.unpack_from(data, 0)
    if version != _BINARY_VERSION:
        raise _bad(f"unknown version {version}")
    check_count(now, "now", MAX_TIME)
    if count > MAX_PAYMENTS:
        raise InvalidInput(f"too many payments in one request (limit {MAX_PAYMENTS})", code="too_many_items")
    pos = _REQUEST_HEAD.size
    size = len(data)
    items: list[PaymentItem] = []
    for index in range(count):
        if pos + _ITEM.size > size:
            raise _bad(f"payments[{index}] truncated")
        raw_outpoint, change_value, sighash, flags, der_len = _ITEM.unpack_from(data, pos)
        pos += _ITEM.size
        own_now = None
        if flags == _OWN_NOW:
            if pos + 8 > size:
                raise _bad(f"payments[{index}] truncated")
            own_now = _U64.unpack_from(data, pos)[0]
            pos += 8
        elif flags != 0:
            raise _bad(f"payments[{index}] has unknown flags {flags}")
        if not 0 < der_len <= MAX_SIGNATURE_BYTES or pos + der_len > size:
            raise _bad(f"payments[{index}] signature length")
        der = data[pos : pos + der_len]
        pos += der_len
        try:
            items.append(PaymentItem(OutPoint.parse(raw_outpoint), change_value, der, sighash, own_now))
        except InvalidInput as err:
            raise InvalidInput(f"payments[{index}]: {err.message}", code=err.code) from None
    if pos != size:
        raise _bad("trailing bytes")
    return now, items


def _utf8(text: str) -> bytes:
    data = text.encode("utf-8", "replace")
    if len(data) > 0xFFFF:  # cut on a character boundary
        data = data[:0xFFFF].decode("utf-8", "ignore").encode()
    return _U16.pack(len(data)) + data


def encode_payment_results(results: Sequence[PaymentResult]) -> bytes:
    """The binary answer to a binary `POST /payments`: one result per item, in order."""
    parts = [_ANSWER_HEAD.pack(_BINARY_VERSION, len(results))]
    for result in results:
        if isinstance(result, PaymentApplied):
            parts.append(_APPLIED.pack(1, result.value_received, result.change_value, result.status.value))
        else:
            parts.append(b"\x00" + _utf8(type(result).__name__) + _utf8(result.code) + _utf8(result.message))
    return b"".join(parts)


def decode_payment_results(data: bytes) -> list[PaymentResult]:
    """Inverse of encode_payment_results (client side); InvalidInput (code bad_binary) if malformed."""
    if len(data) < _ANSWER_HEAD.size:
        raise _bad("truncated answer")
    version, count = _ANSWER_HEAD.unpack_from(data, 0)
    if version != _BINARY_VERSION:
        raise _bad(f"unknown answer version {version}")
    if count > MAX_PAYMENTS:
        raise _bad("too many results")
    pos = _ANSWER_HEAD.size
    size = len(data)
    results: list[PaymentResult] = []
    for index in range(count):
        if pos >= size:
            raise _bad(f"results[{index}] truncated")
        kind = data[pos]
        if kind == 1:
            if pos + _APPLIED.size > size:
                raise _bad(f"results[{index}] truncated")
            _, received, change, status = _APPLIED.unpack_from(data, pos)
            pos += _APPLIED.size
            if status not in _STATUS_BY_VALUE:
                raise _bad(f"results[{index}] has unknown status {status}")
            results.append(PaymentApplied(check_amount(received, "value_received"),
                                          check_amount(change, "change_value"), _STATUS_BY_VALUE[status]))
        elif kind == 0:
            pos += 1
            texts: list[str] = []
            for _ in range(3):
                if pos + 2 > size:
                    raise _bad(f"results[{index}] truncated")
                length = _U16.unpack_from(data, pos)[0]
                pos += 2
                if pos + length > size:
                    raise _bad(f"results[{index}] truncated")
                try:
                    texts.append(data[pos : pos + length].decode("utf-8"))
                except UnicodeDecodeError:
                    raise _bad(f"results[{index}] is not UTF-8") from None
                pos += length
            results.append(error_from_json(*texts))
        else:
            raise _bad(f"results[{index}] has unknown kind {kind}")
    if pos != size:
        raise _bad("trailing bytes in answer")
    return results
